"""The export flags of `parse`, `trace` and `export`, and running the exports they ask for.

Each flag is one `dnnprof.export(trace, format, destination, ...)`. Each output is attempted
even when an earlier one failed, so one unreachable collector does not cost the files; a
collector down ends the command with ExitCode.UNREACHABLE (3), a file not written with
ExitCode.USAGE (2, the worse: the user's to fix), as docs/exporters.md says. The trace and
its file are never touched by an export. `check_paths` refuses, before any work, an output
that would overwrite an input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dnnprof.errors import DnnprofError
from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.trace import Trace

PROTOCOLS = ("grpc", "http", "jaeger")
DEFAULT_SPAN_ITERATIONS = 3
DEFAULT_SERVICE = "dnnprof"
# Flags that only shape an export; given without any output they would be silently unused.
MODIFIERS = (("protocol", "--protocol"), ("service_name", "--service-name"),
             ("span_iterations", "--span-iterations"), ("query_url", "--query-url"),
             ("all_iterations", "--all-iterations"))
# Output flags (their argparse names), in the order they run: the collector last, so the
# files are written even when it cannot be reached.
OUTPUTS = ("jaeger_json", "chrome", "benchdnn", "otlp")
# The export format (dnnprof.exporters.FORMATS) of each file flag without options.
OUTPUT_FORMATS = {"chrome": "chrome_trace", "benchdnn": "benchdnn"}


def add_export_options(parser: argparse.ArgumentParser) -> None:
    """Add --otlp, --protocol, --service-name and --span-iterations to a subcommand."""
    group = parser.add_argument_group("span export (Jaeger)")
    group.add_argument(
        "--otlp", metavar="URL", type=_endpoint,
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
        help=f"service the spans appear under in Jaeger (default {DEFAULT_SERVICE})",
    )
    group.add_argument(
        "--span-iterations", metavar="N", type=_span_iterations, default=None,
        help=f"export the last N steady-state iterations (default {DEFAULT_SPAN_ITERATIONS}; "
        "0: all of them), so a trace stays within what the Jaeger UI shows comfortably",
    )
    group.add_argument(
        "--all-iterations", action="store_const", const=True, default=None,
        help="export every iteration, warm-up and setup included, to every span output "
        "(--otlp, --jaeger-json, --chrome); a message says when that is more than the "
        "viewer handles comfortably. Default: the last steady iterations (--chrome: every "
        "iteration while the file stays under 50 MB)",
    )
    group.add_argument(
        "--query-url", metavar="URL", default=None,
        help="Jaeger's query service (its UI), e.g. http://localhost:16686: the link to the "
        "trace is printed there (default: port 16686 of the --otlp host when --otlp uses one "
        "of Jaeger's own ports, 4317, 4318, 14268 or 6831)",
    )


def _endpoint(text: str) -> str:
    """The collector URL, checked before the log is read (a typo is exit 2 at once)."""
    from dnnprof.exporters.base import EndpointError, parse_endpoint

    try:
        parse_endpoint(text)
    except EndpointError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _span_iterations(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (every steady iteration) or more")
    return value


def check_paths(inputs: Iterable[str | Path | None], files: Iterable[str | Path | None] = (),
                traces: Iterable[str | Path | None] = ()) -> None:
    """Before any work: OutputError (exit 2) if an output would overwrite an input, is a
    device, folder or socket, or is named twice (dnnprof.files.check_outputs).

    `traces` are stored-trace outputs, which may name a folder (to hold trace.parquet), and
    an input folder is read through its trace.parquet, so both compare as that file.
    """
    from dnnprof.files import check_outputs
    from dnnprof.storage import TRACE_FILE

    def as_file(path: str | Path | None) -> Path | None:
        if path is None or str(path) in ("", "-"):
            return None
        path = Path(path)
        return path / TRACE_FILE if path.is_dir() else path

    sources = [source for source in map(as_file, inputs) if source is not None]
    check_outputs([*files, *map(as_file, traces)], inputs=sources)


def file_outputs(args: argparse.Namespace) -> list[str | None]:
    """The files the export flags name (the collector URL is not a file)."""
    return [getattr(args, name, None) for name in OUTPUTS if name != "otlp"]


def requested_outputs(args: argparse.Namespace) -> list[str]:
    """The output flags given, in the order they run."""
    return [name for name in OUTPUTS if getattr(args, name, None)]


def export_from_args(trace: Trace, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run every export the flags ask for: ExitCode.OK if all succeeded (or none was asked).

    Messages go to `out` (stderr by default, since `parse` and `trace` print their summary,
    possibly JSON, on stdout); errors always go to stderr.
    """
    import dnnprof

    out = out or sys.stderr
    outputs = requested_outputs(args)
    if not outputs:
        unused = [flag for attr, flag in MODIFIERS if getattr(args, attr, None) is not None]
        if unused:
            print(f"dnnprof: ignoring {', '.join(unused)}: nothing to export without --otlp",
                  file=sys.stderr)
        return ExitCode.OK
    status = ExitCode.OK
    for name in outputs:
        fmt, options = _format_and_options(name, args)
        try:
            result = dnnprof.export(trace, fmt, getattr(args, name), **options)
        except DnnprofError as exc:  # a collector down or a file not written: try the rest
            print(f"dnnprof: export failed: {exc}", file=sys.stderr)
            # the worst status wins: a write error (2) is the user's to fix, like bad input
            status = max(status, ExitCode(exc.exit_code), key=_severity)
        else:
            print(result.message, file=out)
    return status


def _severity(code: ExitCode) -> int:
    return {ExitCode.OK: 0, ExitCode.UNREACHABLE: 1, ExitCode.USAGE: 2}.get(code, 3)


def _format_and_options(output: str, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The export format an output flag asks for, and the options that shape it."""
    spans = {"service_name": getattr(args, "service_name", None) or DEFAULT_SERVICE,
             "span_iterations": getattr(args, "span_iterations", None),
             "query_url": getattr(args, "query_url", None)}
    if getattr(args, "all_iterations", None):
        spans.update(iterations="all", span_iterations=0)
    if output == "otlp":
        protocol = getattr(args, "protocol", None) or "grpc"
        if protocol == "jaeger":
            return "jaeger_legacy", spans
        return "otlp", {**spans, "protocol": protocol}
    if output == "jaeger_json":
        return "jaeger_json", spans
    if output == "chrome" and getattr(args, "all_iterations", None):
        return "chrome_trace", {"iterations": "all"}
    return OUTPUT_FORMATS[output], {}
