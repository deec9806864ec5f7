"""`main(argv)`: run the thesis' chapter-4 experiments here (or read runs already made),
then write findings.md and report.html. `dnnprof study ARGS` calls `main(ARGS)`.

    dnnprof study -o study --warmup 2 --iters 8            # run everything, then write
    dnnprof study --only resnet50 -o study                 # only the experiments named so
    python -m studies.thesis2020 RUN... -o DIR --no-html   # read existing runs / traces / logs
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dnnprof.errors import DnnprofError
from dnnprof.vocabulary import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from dnnprof.profiler.runner import RunResult

DEFAULT_WARMUP, DEFAULT_ITERS = 1, 5
_RUN_OPTIONS = ("runs_dir", "warmup", "iters", "only", "wait_quiet", "repeat")


def parser(prog: str) -> argparse.ArgumentParser:
    """The study's arguments (`dnnprof study --help` shows these)."""
    out = argparse.ArgumentParser(
        prog=prog, description="Re-measure the 2020 thesis' chapter-4 findings on this machine: "
        "run the experiments (or read RUN folders already made), then write findings.md and "
        "report.html.")
    out.add_argument("runs", nargs="*", metavar="RUN",
                     help="run folders, stored traces or logs to read instead of running")
    out.add_argument("-o", "--output", default="study", help="output folder (default: study)")
    out.add_argument("--runs-dir", help="where the run folders go (default OUTPUT/runs)")
    out.add_argument("--warmup", type=int, help=f"warm-up iterations (default {DEFAULT_WARMUP})")
    out.add_argument("--iters", type=int, help=f"measured iterations (default {DEFAULT_ITERS})")
    out.add_argument("--only", nargs="*", metavar="WORD",
                     help="run only experiments whose name contains a word")
    out.add_argument("--wait-quiet", type=float, metavar="SECONDS",
                     help="before each run, wait up to SECONDS for a quiet machine "
                          "(docs/conditions.md)")
    out.add_argument("--repeat", type=int, metavar="K",
                     help="run each experiment K times, keeping every run's iterations")
    out.add_argument("--no-html", action="store_true", help="write findings.md only")
    return out


def main(argv: Sequence[str] | None = None, prog: str = "python -m studies.thesis2020") -> int:
    """Run (or read) the study's runs and write its findings; the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    cli = parser(prog)
    args = cli.parse_args(args_list)
    if args.runs and any(getattr(args, name) is not None for name in _RUN_OPTIONS):
        cli.error("--runs-dir, --warmup, --iters, --only, --wait-quiet and --repeat make "
                  "new runs; they do not apply to RUN folders already made")
    command = " ".join([prog, *map(shlex.quote, args_list)])
    # imported only now: `dnnprof study --help` must not load the analyzer
    from studies.thesis2020.findings import write_study

    try:
        runs = args.runs or _run_all(args)
        markdown, report = write_study(runs, args.output, command, html=not args.no_html)
    except DnnprofError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(markdown.read_text(encoding="utf-8"))
    print(f"wrote {markdown}" + (f" and {report}" if report else ""), file=sys.stderr)
    return ExitCode.OK


def _run_all(args: argparse.Namespace) -> list[Path]:
    from studies.thesis2020.experiments import run_experiments

    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(args.output) / "runs"
    warmup = DEFAULT_WARMUP if args.warmup is None else args.warmup
    iters = DEFAULT_ITERS if args.iters is None else args.iters
    return run_experiments(runs_dir, warmup, iters, args.only, _progress,
                           wait_quiet=args.wait_quiet, repeat=args.repeat or 1)


def _progress(name: str, result: RunResult) -> None:
    status = "ok" if result.exit_code == 0 else "; ".join(result.problems) or "failed"
    status += f", {result.trace.metadata.run_conditions.verdict} run"
    print(f"{name}: {status}  ({result.run_dir})", file=sys.stderr)
