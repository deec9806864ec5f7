"""`dnnprof compare A B ...`: several variants side by side, in one HTML page and tables."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dnnprof.cli import options
from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.reports.compare import Comparison

DEFAULT_OUTPUT = "compare.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `compare` and its flags."""
    parser = options.add_command(
        subparsers, "compare", run, "compare variants side by side (HTML + tables)",
        "Compare several runs (FP32 / INT8 / fused / pruned ...): speedup with bootstrap "
        "intervals, time per primitive kind, per layer and stage, fusion, reorders, data types "
        "and ISA, and a timeline, in one HTML page and at the terminal.")
    parser.add_argument("inputs", nargs="+", metavar="TRACE_OR_RUN_DIR",
                        help="run folders, trace.parquet files or verbose logs")
    parser.add_argument("--baseline", default=None, metavar="NAME",
                        help="variant name (or path) to compare against (default: the first)")
    options.add_page(parser, DEFAULT_OUTPUT)


def run(args: argparse.Namespace) -> int:
    """Compare the inputs against the baseline variant, then show the comparison."""
    return show(args.inputs, args.baseline, args.output, args.json, DEFAULT_OUTPUT)


def show(inputs: list[str], baseline: str | None, output: str | None, as_json: bool,
         default_output: str) -> int:
    """Compare, write the HTML page (unless only JSON is asked for) and print the tables."""
    import dnnprof
    from dnnprof.cli.outputs import check_paths
    from dnnprof.files import writing

    html = output or (None if as_json else default_output)
    check_paths(inputs, files=[html])
    started = time.perf_counter()
    comparison = dnnprof.compare(inputs, baseline=baseline)
    written = None
    if html:
        from dnnprof.reports.html import write_html

        with writing(html):  # an unwritable page is exit 2 naming it, not a traceback
            written = write_html(comparison, Path(html))
    if as_json:
        from dnnprof.reports.console import comparison_json

        print(comparison_json(comparison))
    else:
        _print_tables(comparison)
    if written is not None:
        size_mb = written.stat().st_size / 1e6
        print(f"wrote {written} ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
    return ExitCode.OK


def _print_tables(comparison: Comparison) -> None:
    from dnnprof.cli.console import Terminal
    from dnnprof.reports.console import print_comparison

    print_comparison(comparison, Terminal())
