"""What the command modules share: a command's parser and handler, the options of several.

A command of actions (`store add`, `baseline save`), the options more than one command
takes and their argparse types are each defined once (flag, type, metavar); the help, given
by each command where it differs, says what the option means there."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from dnnprof.vocabulary import ExitCode

Handler = Callable[[argparse.Namespace], int]
# an ArgumentParser or a group of one (argument groups, mutually exclusive groups)
Options = argparse._ActionsContainer


def fraction(flag: str) -> Callable[[str], float]:
    """An argparse type for a fraction ("5%" or 0.05); imports the check package only when used."""

    def convert(text: str) -> float:
        from dnnprof.check.config import ConfigError, parse_fraction

        try:
            return parse_fraction(text, flag)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def add_command(subparsers: argparse._SubParsersAction, name: str, handler: Handler,
                summary: str, description: str | None = None,
                error_prefix: str | None = None) -> argparse.ArgumentParser:
    """Subcommand `name`'s parser: `summary` in `dnnprof --help`, `handler` runs it, and
    its errors start with `error_prefix:` (default `dnnprof:`)."""
    parser = subparsers.add_parser(name, help=summary, description=description)
    parser.set_defaults(handler=handler)
    if error_prefix:
        parser.set_defaults(error_prefix=error_prefix)
    return parser


def add_action_command(subparsers: argparse._SubParsersAction, name: str, summary: str,
                       description: str | None = None) -> argparse._SubParsersAction:
    """A command of actions (`dnnprof NAME ACTION`); its actions are added to what this
    returns. Without an action it prints its help and exits 2."""
    parser = subparsers.add_parser(name, help=summary, description=description)

    def usage(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE

    parser.set_defaults(handler=usage, error_prefix=f"dnnprof {name}")
    return parser.add_subparsers(dest=f"{name}_action", metavar="ACTION")


def add_json(parser: Options, text: str) -> None:
    """--json: print JSON instead of tables; `text` says what is printed."""
    parser.add_argument("--json", action="store_true", help=text)


def add_model(parser: Options, text: str) -> None:
    """--model NAME: a zoo model (`dnnprof models`), or the model a run is stored under."""
    parser.add_argument("--model", metavar="NAME", help=text)


def add_variant(parser: Options, text: str) -> None:
    """--variant NAME: what a run ran (fp32, int8, fused ...), when its trace does not say."""
    parser.add_argument("--variant", metavar="NAME", help=text)


def add_runner(parser: Options, text: str) -> None:
    """--runner NAME: the runner class a store compares runs within."""
    parser.add_argument("--runner", metavar="NAME", help=text)


def add_page(parser: Options, default_output: str) -> None:
    """-o (the HTML page) and --json, as `compare.show` takes them (`compare`, `report`)."""
    parser.add_argument("-o", "--output", default=None,
                        help=f"HTML file to write (default: {default_output})")
    add_json(parser, "print the numbers as JSON instead of tables (HTML only with -o)")


def add_store(parser: Options) -> None:
    """--store PATH (required)."""
    parser.add_argument("--store", required=True, metavar="PATH",
                        help="the store: a directory, or an fsspec URL (s3://bucket/prefix)")


def add_engine(parser: Options) -> None:
    """--engine duckdb|spark and --spark-master URL: what runs a store's queries."""
    parser.add_argument("--engine", default=None, metavar="ENGINE",
                        help="duckdb (default, in this process) or spark")
    parser.add_argument("--spark-master", metavar="URL",
                        help="Spark master (default local[*], or $DNNPROF_SPARK_MASTER)")


def add_top(parser: Options, text: str | None = None) -> None:
    """--top N: how many of the slowest primitives the summary lists (default 10)."""
    parser.add_argument("--top", type=int, default=10, help=text)
