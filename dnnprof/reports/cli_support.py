"""`dnnprof report` and `dnnprof compare`: argparse wiring for the CLI.

`add_report_commands(subparsers)` registers both; each sets `handler`, a callable taking the
parsed arguments and returning the exit status (0 ok, 2 unusable input).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INPUT = 0, 2


def add_report_commands(subparsers: Any) -> None:
    """Register `report` and `compare` on an argparse subparsers object."""
    report = subparsers.add_parser(
        "report",
        help="HTML report and terminal tables for one trace",
        description="Write one self-contained HTML report (opens offline) for a run folder, "
        "stored trace or verbose log, and print the main tables.",
    )
    report.add_argument("trace", help="run folder, trace.parquet or verbose log")
    report.add_argument("-o", "--output", default=None,
                        help="HTML file to write (default: report.html)")
    report.add_argument("--json", action="store_true",
                        help="print the numbers as JSON instead of tables (HTML only with -o)")
    report.set_defaults(handler=run_report)

    compare = subparsers.add_parser(
        "compare",
        help="compare variants side by side (HTML + tables)",
        description="Compare several runs (FP32 / INT8 / fused / pruned ...): speedup with "
        "bootstrap intervals, time per primitive kind, per layer and stage, fusion, reorders, "
        "data types and ISA, and a timeline, in one HTML page and at the terminal.",
    )
    compare.add_argument("inputs", nargs="+", metavar="TRACE_OR_RUN_DIR",
                         help="run folders, trace.parquet files or verbose logs")
    compare.add_argument("--baseline", default=None, metavar="NAME",
                         help="variant name (or path) to compare against (default: the first)")
    compare.add_argument("-o", "--output", default=None,
                         help="HTML file to write (default: compare.html)")
    compare.add_argument("--json", action="store_true",
                         help="print the numbers as JSON instead of tables (HTML only with -o)")
    compare.set_defaults(handler=run_compare)


def run_report(args: argparse.Namespace) -> int:
    """`dnnprof report TRACE`: one variant."""
    return _run([args.trace], None, args.output, args.json, "report.html")


def run_compare(args: argparse.Namespace) -> int:
    """`dnnprof compare A B ...`: several variants against a baseline."""
    return _run(args.inputs, args.baseline, args.output, args.json, "compare.html")


def _run(inputs: list[str], baseline: str | None, output: str | None, as_json: bool,
         default_output: str) -> int:
    from dnnprof.reports.compare import Comparison, ReportInputError
    from dnnprof.trace import TraceFileError

    started = time.perf_counter()
    try:
        comp = Comparison.from_paths(inputs, baseline=baseline)
    except (ReportInputError, TraceFileError, OSError) as exc:
        print(f"dnnprof: {exc}", file=sys.stderr)
        return EXIT_INPUT
    written = None
    if output or not as_json:
        from dnnprof.reports.html import write_html

        written = write_html(comp, Path(output or default_output))
    if as_json:
        from dnnprof.reports.console import comparison_json

        print(comparison_json(comp))
    else:
        from rich.console import Console

        from dnnprof.reports.console import print_comparison

        console = Console()
        print_comparison(comp, console)
    if written is not None:
        size_mb = written.stat().st_size / 1e6
        print(f"wrote {written} ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
    return EXIT_OK
