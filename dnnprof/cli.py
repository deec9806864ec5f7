"""The `dnnprof` command: parses flags and calls the API; no analysis lives here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dnnprof import __version__

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_INPUT = 2

# Subcommands contributed by other modules: (module, function registering them).
# Each is imported lazily so that a missing optional part never breaks `dnnprof parse`.
_PLUGINS: tuple[tuple[str, str], ...] = (
    ("dnnprof.profiler.cli_support", "add_trace_commands"),
    ("dnnprof.exporters.cli_support", "add_export_commands"),
    ("dnnprof.reports.cli_support", "add_report_commands"),
    ("dnnprof.check", "add_check_commands"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="dnnprof",
        description="oneDNN verbose profiler: where does a model's CPU time go?",
    )
    parser.add_argument("--version", action="version", version=f"dnnprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parse = sub.add_parser("parse", help="parse a verbose log captured anywhere")
    parse.add_argument("log", help="verbose log (plain or .gz); '-' reads standard input")
    parse.add_argument("-o", "--output", help="write the Trace as Parquet to this path")
    parse.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parse.add_argument("--top", type=int, default=10, help="how many slowest primitives to list")
    _add_reconstruction_options(parse)
    add_export = _optional("dnnprof.exporters.cli_support", "add_export_options")
    if add_export is not None:
        add_export(parse)
    parse.set_defaults(handler=run_parse)
    for module_name, function_name in _PLUGINS:
        register = _optional(module_name, function_name)
        if register is not None:
            register(sub)
    return parser


def _optional(module_name: str, function_name: str) -> Callable[..., Any] | None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None  # that part of dnnprof is not there (yet)
        raise
    return getattr(module, function_name, None)


def _add_reconstruction_options(parser: argparse.ArgumentParser) -> None:
    add = _optional("dnnprof.reconstruct.cli_support", "add_parse_options")
    if add is not None:
        add(parser)


def run_parse(args: argparse.Namespace) -> int:
    """`dnnprof parse LOG`: parse, optionally reconstruct and save, then summarise."""
    from dnnprof.errors import LogReadError
    from dnnprof.parsers.stream import parse_to_trace

    source: Any = sys.stdin.buffer if args.log == "-" else args.log
    try:
        trace = parse_to_trace(source, name=args.log)
    except LogReadError as exc:
        print(f"dnnprof: {exc}", file=sys.stderr)
        return EXIT_INPUT
    apply = _optional("dnnprof.reconstruct.cli_support", "apply_reconstruction")
    if apply is not None:
        trace = apply(trace, args)
    if args.output:
        path = trace.save(args.output)
        if not args.json:
            print(f"trace written to {path}", file=sys.stderr)
    export = _optional("dnnprof.exporters.cli_support", "export_from_args")
    status = export(trace, args) if export is not None else EXIT_OK
    if args.json:
        print(json.dumps(trace.summary(), indent=2, default=str))
    else:
        from dnnprof.summary import print_trace_summary

        print_trace_summary(trace, top=args.top)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dnnprof` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `dnnprof trace [opts] -- CMD ...`: everything after `--` is the wrapped command,
    # untouched by our own option parsing
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    if command:
        if getattr(args, "command", None) is None:
            parser.error("only `dnnprof trace` takes a command after --")
        args.command = command
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_INPUT
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("dnnprof: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
