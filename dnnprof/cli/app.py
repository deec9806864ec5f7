"""The argument parser built from the command modules, and `main`, the console script."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from collections.abc import Sequence

from dnnprof import __version__
from dnnprof.cli import (
    baseline,
    check,
    compare,
    export,
    history,
    models,
    parse,
    report,
    store,
    study,
    trace,
)
from dnnprof.display import safe_text
from dnnprof.errors import DnnprofError
from dnnprof.vocabulary import ExitCode

# In the order `dnnprof --help` lists them. Each module has `register(subparsers)`, which
# adds its subcommand and sets `handler`, a function of the parsed arguments returning the
# exit status.
COMMANDS = (parse, trace, models, study, export, report, compare, check, baseline, store,
            history)
WRAPPING_COMMAND = "trace"  # the one command that takes a command after `--`


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (imports no analyzer module)."""
    parser = argparse.ArgumentParser(
        prog="dnnprof",
        description="oneDNN verbose profiler: where does a model's CPU time go?",
        epilog="Exit status: 0 ok, 1 regression (check), 2 usage or input error, "
        "3 export or workload failed, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"dnnprof {__version__}")
    parser.set_defaults(handler=None, error_prefix="dnnprof", wrapped_command=[])
    subparsers = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dnnprof` console script: parse the flags, run the command."""
    _tolerant_output()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `dnnprof trace [opts] -- CMD ...`: everything after `--` is the wrapped command,
    # untouched by our own option parsing
    wrapped: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, wrapped = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    if wrapped:
        if args.subcommand != WRAPPING_COMMAND:
            parser.error("only `dnnprof trace` takes a command after --")
        args.wrapped_command = wrapped
    if args.handler is None:
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(args.handler(args))
    except DnnprofError as exc:
        # the message may quote a file's contents (a layer name, a key): no control characters
        print(f"{args.error_prefix}: {safe_text(exc, lines=True)}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("dnnprof: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # the reader went away (`dnnprof parse x.log | head`)
        _discard_stdout()
        return ExitCode.OK
    except Exception:  # noqa: BLE001 - the process boundary, not error handling: see below
        # A bug in dnnprof. Python would exit 1, which `check` uses for "regression": CI
        # would read our crash as the user's slowdown. Keep the traceback, exit 2.
        traceback.print_exc()
        print(f"{args.error_prefix}: internal error in dnnprof {__version__} (a bug; the "
              "traceback above says where): no verdict", file=sys.stderr)
        return ExitCode.USAGE


def console_main() -> int:
    """The `dnnprof` console script and `python -m dnnprof`: `main()`, then a prompt exit."""
    status = main()
    # The process ends next, and the interpreter's shutdown collects every object once more
    # (0.15-0.2 s with pandas loaded, a tenth of parsing a 1M-line log). Nothing left needs
    # a collection to finish its work (outputs are closed and renamed already): frozen
    # objects are skipped. Not in main(), which tests and notebooks call in a living process.
    gc.freeze()
    return status


def _tolerant_output() -> None:
    """Let stdout/stderr replace what their encoding cannot show: under LC_ALL=C (ASCII) a
    dash or × in a table would otherwise end the command with a UnicodeEncodeError after
    the work was done."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def _discard_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it at exit, and into the closed pipe that
    would fail again (status 120)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a file descriptor (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
