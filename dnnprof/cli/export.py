"""`dnnprof export TRACE`: send a stored trace to Jaeger or write it in other formats."""

from __future__ import annotations

import argparse
import sys

from dnnprof.cli import options
from dnnprof.cli.outputs import (
    add_export_options,
    check_paths,
    export_from_args,
    file_outputs,
    requested_outputs,
)
from dnnprof.vocabulary import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `export` and its flags."""
    parser = options.add_command(
        subparsers, "export", run,
        "send a stored trace to Jaeger (OTLP) or write it as Jaeger JSON, Chrome trace-event "
        "JSON or benchdnn cases",
        "Export a stored trace (trace.parquet or a run folder). Several outputs may be given at "
        "once. Exit status: 0 exported, 2 unreadable trace or no output named, 3 an export "
        "failed (the trace file is left as it was; re-run once the collector is up).")
    parser.add_argument("trace", metavar="TRACE", help="stored trace or run folder")
    add_export_options(parser)
    files = parser.add_argument_group("files")
    files.add_argument(
        "--jaeger-json", metavar="FILE",
        help="Jaeger JSON (Jaeger UI: Search > JSON File); same iterations as --otlp",
    )
    files.add_argument(
        "--chrome", metavar="FILE",
        help="Chrome trace-event JSON for Perfetto / chrome://tracing (every iteration while "
        "the file stays under 50 MB, else the last 3 steady ones; --all-iterations: all)",
    )
    files.add_argument("--benchdnn", metavar="FILE", help="one benchdnn case per distinct primitive")


def run(args: argparse.Namespace) -> int:
    """Load the stored trace, then write or send each output asked for."""
    import dnnprof

    if not requested_outputs(args):
        print("dnnprof export: name at least one output: --otlp URL, --jaeger-json FILE, "
              "--chrome FILE or --benchdnn FILE", file=sys.stderr)
        return ExitCode.USAGE
    check_paths([args.trace], files=file_outputs(args))
    # a stored trace or run folder only: a broken trace file is an error, not an empty log
    trace = dnnprof.load(args.trace)
    return export_from_args(trace, args, out=sys.stdout)
