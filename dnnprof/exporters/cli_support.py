"""`dnnprof export`, and the `--otlp` options of `dnnprof parse` and `dnnprof trace`.

`dnnprof.cli` registers `export` through `add_export_commands(subparsers)`; `parse` and
`trace` get the span options through `add_export_options(parser)` and call
`export_from_args(trace, args)` once their Trace is built (and saved). Exit statuses follow
docs/exporters.md: 0 exported, 2 unusable input or flags, `ExportError.exit_code` (3) when
an export failed; the trace and its file are never touched by an export.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from dnnprof.exporters.spans import ExportError

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_EXPORT = ExportError.exit_code

PROTOCOLS = ("grpc", "http", "jaeger")
DEFAULT_SPAN_ITERATIONS = 3
# Flags that only shape an export; given without any output they would be silently unused.
MODIFIERS = (("protocol", "--protocol"), ("service_name", "--service-name"),
             ("span_iterations", "--span-iterations"))


def _span_iterations(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (every steady iteration) or more")
    return value


def add_export_options(parser: argparse.ArgumentParser) -> None:
    """Add --otlp, --protocol, --service-name and --span-iterations to a subcommand."""
    group = parser.add_argument_group("span export (Jaeger)")
    group.add_argument(
        "--otlp", metavar="URL",
        help="send the spans (run > iteration > layer > primitive) to this collector, e.g. "
        "http://localhost:4317 (Jaeger's OTLP gRPC port; 4318 with --protocol http)",
    )
    group.add_argument(
        "--protocol", choices=PROTOCOLS, default=None,
        help="grpc (default), http (OTLP/HTTP, /v1/traces appended), or jaeger: the legacy "
        "Thrift exporter for Jaeger older than 1.35 (URL http://HOST:14268/api/traces or "
        "udp://HOST:6831; needs the `jaeger` extra)",
    )
    group.add_argument(
        "--service-name", metavar="NAME", default=None,
        help="service the spans appear under in Jaeger (default dnnprof)",
    )
    group.add_argument(
        "--span-iterations", metavar="N", type=_span_iterations, default=None,
        help=f"export the last N steady-state iterations (default {DEFAULT_SPAN_ITERATIONS}; "
        "0: all of them), so a trace stays within what the Jaeger UI shows comfortably",
    )


def add_export_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `dnnprof export`."""
    export = subparsers.add_parser(
        "export",
        help="send a stored trace to Jaeger (OTLP) or write it as Jaeger JSON, Chrome "
        "trace-event JSON or benchdnn cases",
        description="Export a stored trace (trace.parquet or a run folder). Several outputs "
        "may be given at once. Exit status: 0 exported, 2 unreadable trace or no output "
        "named, 3 an export failed (the trace file is left as it was; re-run once the "
        "collector is up).",
    )
    export.add_argument("trace", metavar="TRACE", help="stored trace or run folder")
    add_export_options(export)
    files = export.add_argument_group("files")
    files.add_argument(
        "--jaeger-json", metavar="FILE",
        help="Jaeger JSON (Jaeger UI: Search > JSON File); same iterations as --otlp",
    )
    files.add_argument(
        "--chrome", metavar="FILE",
        help="Chrome trace-event JSON for Perfetto / chrome://tracing (every iteration)",
    )
    files.add_argument(
        "--benchdnn", metavar="FILE", help="one benchdnn case per distinct primitive",
    )
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """`dnnprof export TRACE ...`: load the trace, then write or send each output asked for."""
    from dnnprof.trace import Trace, TraceFileError

    if not _outputs(args):
        print("dnnprof export: name at least one output: --otlp URL, --jaeger-json FILE, "
              "--chrome FILE or --benchdnn FILE", file=sys.stderr)
        return EXIT_INPUT
    try:
        trace = Trace.load(args.trace)
    except TraceFileError as exc:
        print(f"dnnprof: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return export_from_args(trace, args, out=sys.stdout)


def _outputs(args: argparse.Namespace) -> list[str]:
    names = ("otlp", "jaeger_json", "chrome", "benchdnn")
    return [name for name in names if getattr(args, name, None)]


def export_from_args(trace: Any, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run every export the flags ask for; 0 if all succeeded (or none was asked), else 3.

    Each output is attempted even when an earlier one failed, so one unreachable collector
    does not cost the files. Messages go to `out` (stderr by default, since `parse` and
    `trace` print their summary, possibly JSON, on stdout); errors always go to stderr.
    """
    out = out or sys.stderr
    outputs = _outputs(args)
    if not outputs:
        unused = [flag for attr, flag in MODIFIERS if getattr(args, attr, None) is not None]
        if unused:
            print(f"dnnprof: ignoring {', '.join(unused)}: nothing to export without --otlp",
                  file=sys.stderr)
        return EXIT_OK
    steps: dict[str, Callable[[], str]] = {
        "jaeger_json": lambda: _jaeger_json(trace, args),
        "chrome": lambda: _chrome(trace, args),
        "benchdnn": lambda: _benchdnn(trace, args),
        "otlp": lambda: _send(trace, args),  # last: the files are done even if it fails
    }
    status = EXIT_OK
    for name, step in steps.items():
        if name not in outputs:
            continue
        try:
            print(step(), file=out)
        except ExportError as exc:
            print(f"dnnprof: export failed: {exc}", file=sys.stderr)
            status = EXIT_EXPORT
        except OSError as exc:
            target = getattr(args, name)
            print(f"dnnprof: export failed: cannot write {target}: {exc.strerror or exc}",
                  file=sys.stderr)
            status = EXIT_EXPORT
    return status


def _service(args: argparse.Namespace) -> str:
    return getattr(args, "service_name", None) or "dnnprof"


def _limit(args: argparse.Namespace) -> int | None:
    value = getattr(args, "span_iterations", None)
    if value is None:
        return DEFAULT_SPAN_ITERATIONS
    return value or None  # 0: no limit


def _send(trace: Any, args: argparse.Namespace) -> str:
    from dnnprof.exporters import export_jaeger_legacy, export_otlp

    protocol = getattr(args, "protocol", None) or "grpc"
    common = {"service_name": _service(args), "span_iterations": _limit(args)}
    if protocol == "jaeger":
        result = export_jaeger_legacy(trace, args.otlp, **common)
    else:
        result = export_otlp(trace, args.otlp, protocol=protocol, **common)
    counts = result.counts
    return (
        f"spans sent to {result.endpoint} ({result.protocol}): {result.spans} spans "
        f"({counts.get('iteration', 0)} iterations, {counts.get('layer', 0)} layers, "
        f"{counts.get('primitive', 0)} primitives) in {result.seconds:.2f}s; "
        f"service {result.service_name}, trace id {result.trace_id}"
    )


def _jaeger_json(trace: Any, args: argparse.Namespace) -> str:
    from dnnprof.exporters import write_jaeger_json

    path = write_jaeger_json(trace, Path(args.jaeger_json), service_name=_service(args),
                             span_iterations=_limit(args))
    return f"Jaeger JSON written to {path} (Jaeger UI: Search > JSON File)"


def _chrome(trace: Any, args: argparse.Namespace) -> str:
    from dnnprof.exporters import write_chrome_trace

    path = write_chrome_trace(trace, Path(args.chrome))
    return f"Chrome trace written to {path} (open in https://ui.perfetto.dev)"


def _benchdnn(trace: Any, args: argparse.Namespace) -> str:
    from dnnprof.exporters import write_benchdnn

    path = write_benchdnn(trace, Path(args.benchdnn))
    return f"benchdnn cases written to {path}"
