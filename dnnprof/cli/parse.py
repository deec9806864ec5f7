"""`dnnprof parse LOG`: parse a log captured anywhere, reconstruct its layers, summarise it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dnnprof.cli import options
from dnnprof.cli.outputs import add_export_options, check_paths, export_from_args, file_outputs
from dnnprof.display import json_text
from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.trace import Trace


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `parse` and its flags."""
    parser = options.add_command(subparsers, "parse", run, "parse a verbose log captured anywhere")
    parser.add_argument("log", help="verbose log (plain or .gz); '-' reads standard input")
    parser.add_argument("-o", "--output", help="write the Trace as Parquet to this path")
    options.add_json(parser, "print the summary as one JSON object")
    options.add_top(parser, "how many slowest primitives to list")
    options.add_variant(parser, "what the log ran (fp32, fused, int8, bf16 ...), for the spans "
                        "and the stored trace; default: inferred from the log (the data type "
                        "of most compute time; fused when post-ops dominate)")
    group = parser.add_argument_group("layer reconstruction")
    source = group.add_mutually_exclusive_group()
    options.add_model(source, "align the log with this zoo model's layer table (e.g. resnet50)")
    source.add_argument("--layers", metavar="TABLE.json",
                        help="align the log with this layer table (JSON list of layer rows)")
    group.add_argument("--events", metavar="EVENTS.csv",
                       help="write one row per event: line, iteration, phase, kind, layer, "
                            "layer_type, fused_layers, is_reorder, reorder_class, duration_ms")
    group.add_argument("--no-layers", action="store_true",
                       help="skip the reconstruction (iterations and layers stay unknown)")
    add_export_options(parser)


def run(args: argparse.Namespace) -> int:
    """Parse, reconstruct, write what was asked for, export, then print the summary."""
    import dnnprof

    check_paths([args.log], files=[args.events, *file_outputs(args)], traces=[args.output])
    trace = dnnprof.parse(sys.stdin.buffer if args.log == "-" else args.log, name=args.log)
    # A captured log does not say what ran: what the user says names the run and its spans.
    trace.metadata.variant = args.variant or trace.metadata.variant
    trace.metadata.model = trace.metadata.model or args.model
    if not args.no_layers:
        trace = _reconstruct(trace, args)
    if args.events:
        written = dnnprof.export(trace, "events_csv", args.events)
        if not args.json:
            print(written.message, file=sys.stderr)
    if args.output:
        path = trace.save(args.output)
        if not args.json:
            print(f"trace written to {path}", file=sys.stderr)
    status = export_from_args(trace, args)
    if args.json:
        print(json_text(trace.summary()))
    else:
        from dnnprof.cli.console import print_trace_summary

        print_trace_summary(trace, top=args.top)
    return status


def _reconstruct(trace: Trace, args: argparse.Namespace) -> Trace:
    from dnnprof.cli.console import describe_reconstruction
    from dnnprof.reconstruct import LayerTableError, reconstruct

    try:
        trace = reconstruct(trace, layers=args.layers, model=args.model)
    except LayerTableError as exc:
        # an unknown --model or unusable --layers is a bad flag: exit as argparse does
        print(f"dnnprof: {exc}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE) from None
    if not args.json:
        for line in describe_reconstruction(trace):
            print(line, file=sys.stderr)
    return trace
