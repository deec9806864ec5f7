"""`dnnprof report TRACE`: the HTML report and terminal tables of one run."""

from __future__ import annotations

import argparse

from dnnprof.cli.compare import show

DEFAULT_OUTPUT = "report.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `report` and its flags."""
    parser = subparsers.add_parser(
        "report",
        help="HTML report and terminal tables for one trace",
        description="Write one self-contained HTML report (opens offline) for a run folder, "
        "stored trace or verbose log, and print the main tables.",
    )
    parser.add_argument("trace", help="run folder, trace.parquet or verbose log")
    parser.add_argument("-o", "--output", default=None,
                        help=f"HTML file to write (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--json", action="store_true",
                        help="print the numbers as JSON instead of tables (HTML only with -o)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """One variant: the comparison of a single run with itself as the baseline."""
    return show([args.trace], None, args.output, args.json, DEFAULT_OUTPUT)
