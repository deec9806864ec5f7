"""`dnnprof report TRACE`: the HTML report and terminal tables of one run."""

from __future__ import annotations

import argparse

from dnnprof.cli import options
from dnnprof.cli.compare import show

DEFAULT_OUTPUT = "report.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `report` and its flags."""
    parser = options.add_command(
        subparsers, "report", run, "HTML report and terminal tables for one trace",
        "Write one self-contained HTML report (opens offline) for a run folder, stored trace "
        "or verbose log, and print the main tables.")
    parser.add_argument("trace", help="run folder, trace.parquet or verbose log")
    options.add_page(parser, DEFAULT_OUTPUT)


def run(args: argparse.Namespace) -> int:
    """One variant: the comparison of a single run with itself as the baseline."""
    return show([args.trace], None, args.output, args.json, DEFAULT_OUTPUT)
