"""`dnnprof study`: run the thesis' chapter-4 experiments here, then write the findings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.profiler.runner import RunResult


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `study` and its flags."""
    parser = subparsers.add_parser(
        "study",
        help="run the thesis' chapter-4 experiments here and write findings.md + report.html",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("study"),
                        help="output folder")
    parser.add_argument("--runs-dir", type=Path,
                        help="where the run folders go (default OUTPUT/runs)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--only", nargs="*",
                        help="run only experiments whose name contains a word")
    parser.set_defaults(handler=run, error_prefix="dnnprof study")


def run(args: argparse.Namespace) -> int:
    """Run the experiments one by one (progress on stderr), print findings.md."""
    from dnnprof.profiler.study import run_study

    def progress(name: str, result: RunResult) -> None:
        status = "ok" if result.exit_code == 0 else "; ".join(result.problems) or "failed"
        print(f"{name}: {status}  ({result.run_dir})", file=sys.stderr)

    command = "dnnprof study " + " ".join(sys.argv[2:])  # recorded in the findings
    runs_dir = args.runs_dir or args.output / "runs"
    markdown, report = run_study(
        runs_dir, args.output, args.warmup, args.iters, args.only, command, progress
    )
    print(markdown.read_text())
    print(f"wrote {markdown}" + (f" and {report}" if report else ""), file=sys.stderr)
    return ExitCode.OK
