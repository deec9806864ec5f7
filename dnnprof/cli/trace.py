"""`dnnprof trace MODEL` (or `dnnprof trace -- CMD ...`): run with verbose on, show progress,
print where the time went, leave a run folder.

Run MODEL with oneDNN verbose on into the run folder's log, parse it once the run has
ended (nothing competes with the workload for CPUs), attribute primitives to layers and
leave a run folder (verbose.log, trace.parquet, summary.json, report.html).
`dnnprof trace -- python my_script.py` wraps any command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from dnnprof.cli import options
from dnnprof.cli.outputs import add_export_options, export_from_args
from dnnprof.display import json_text, markup_text, safe_text
from dnnprof.errors import DnnprofError
from dnnprof.vocabulary import DEFAULT_VARIANT, FRAMEWORKS, VARIANTS, ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from dnnprof.profiler.runner import RunConfig, RunResult
    from dnnprof.trace import Trace

REPORT_FILE = "report.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `trace` and its flags."""
    parser = options.add_command(
        subparsers, "trace", run,
        "run a zoo model (or any command after --) with oneDNN verbose on and profile it",
        __doc__, error_prefix="dnnprof trace")
    parser.add_argument("model", nargs="?", help="zoo model (see `dnnprof models`)")
    precision = parser.add_mutually_exclusive_group()
    for name in VARIANTS:
        precision.add_argument(f"--{name}", action="store_true", help=f"{name} variant")
    parser.add_argument("--pruned", type=float, metavar="SPARSITY", help="prune this fraction")
    parser.add_argument("--prune-mode", choices=("unstructured", "structured"),
                        default="unstructured")
    parser.add_argument("--mlp-reduced", action="store_true", help="narrower/fewer MLP layers")
    parser.add_argument("--framework", choices=FRAMEWORKS, default="torch")
    parser.add_argument("--python", help="interpreter for the workload (another virtualenv)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, help="sets OMP_NUM_THREADS")
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--width", type=float, help="MobileNet width multiplier")
    parser.add_argument("--no-markers", action="store_true", help="no layer markers")
    parser.add_argument("--out", type=Path,
                        help="run folder (default runs/<model>-<variant>-<time>)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    options.add_json(parser, "print the summary as JSON")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    options.add_top(parser)
    noise = parser.add_argument_group(
        "run conditions", "Every run records the load, CPU steal, cgroup quota, threads and a "
        "calibration kernel timed before and after, and is judged quiet, busy or unreliable "
        "(docs/conditions.md). These options reduce the noise:")
    noise.add_argument("--pin", action="store_true",
                       help="pin the workload to THREADS CPUs (all usable CPUs without "
                            "--threads), one OpenMP thread per CPU (OMP_PROC_BIND=close, "
                            "OMP_PLACES=threads): no thread migrates; other processes may "
                            "still run on those CPUs")
    noise.add_argument("--repeat", type=int, default=1, metavar="K",
                       help="run the workload K times in fresh processes and keep the "
                            "measured iterations of all K (each run has its own warm-up)")
    noise.add_argument("--wait-quiet", type=float, nargs="?", const=120.0, metavar="SECONDS",
                       help="before starting, wait up to SECONDS (default 120) until other "
                            "processes leave the workload's CPUs free for 3 s; runs anyway "
                            "after that, and the run conditions say so")
    noise.add_argument("--no-conditions", action="store_true",
                       help="do not record run conditions (saves the calibration kernel's "
                            "half second; the run's verdict is then unknown)")
    add_export_options(parser)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Translate the flags into a RunConfig."""
    from dnnprof.profiler.runner import RunConfig, RunError

    command = list(args.wrapped_command)
    if not args.model and not command:
        raise RunError("name a model (`dnnprof models` lists them) or a command after --",
                       ExitCode.USAGE)
    if args.model and command:
        raise RunError(f"unexpected arguments after the model: {' '.join(command)}",
                       ExitCode.USAGE)
    precision = next((name for name in VARIANTS if getattr(args, name)), None)
    variants = [precision] if precision else []
    if args.pruned is not None:
        variants.append("pruned")
    if args.mlp_reduced:
        variants.append("mlp_reduced")
    if args.repeat < 1:
        raise RunError("--repeat must be at least 1", ExitCode.USAGE)
    return RunConfig(
        model=args.model, variants=variants or [DEFAULT_VARIANT], framework=args.framework,
        python=args.python, batch=args.batch, warmup=args.warmup, iters=args.iters,
        threads=args.threads, input_size=args.input_size, width=args.width,
        pruned=args.pruned, prune_mode=args.prune_mode, markers=not args.no_markers,
        command=command or None, out=args.out, runs_dir=args.runs_dir,
        pin=args.pin, repeat=args.repeat, wait_quiet=args.wait_quiet,
        conditions=not args.no_conditions,
    )


def run(args: argparse.Namespace) -> int:
    """Run with a progress bar, print where the time went, write the report and exports."""
    from dnnprof.cli.console import Terminal

    err = Terminal(stderr=True)
    result = _run_with_progress(config_from_args(args), err)
    trace = result.trace
    report = None if args.no_report else _write_report(trace, result.run_dir, err)
    if args.json:
        from dnnprof.profiler.runner import SUMMARY_FILE

        summary = json.loads((result.run_dir / SUMMARY_FILE).read_text())
        summary["run_dir"] = str(result.run_dir)
        print(json_text(summary))
    else:
        from dnnprof.cli.console import print_run_facts, print_trace_summary

        out = Terminal()
        print_trace_summary(trace, top=args.top, console=out)
        print_run_facts(trace, out)
    _print_run_problems(result, err)
    export_status = ExitCode.OK
    if not result.interrupted:  # Ctrl-C means stop now; `dnnprof export` can send it later
        # The run folder is already saved, so a failed export costs nothing but its exit status.
        export_status = export_from_args(trace, args)
    err.print(safe_text(f"run folder: {result.run_dir}" + (f"  (report: {report})" if report else "")),
              markup=False)
    return result.exit_code or export_status


def _run_with_progress(config: RunConfig, err: Console) -> RunResult:
    """The run, with a progress bar on a terminal driven by the workload's markers."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from dnnprof.markers import ITER_END, PHASE, Marker
    from dnnprof.profiler.runner import run

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[phase]}"), console=err, transient=True,
        disable=not err.is_terminal,
    ) as progress:
        label = config.model or config.command[0]
        task = progress.add_task(f"{label} {config.variant_label}",
                                 total=(config.warmup + config.iters) * max(1, config.repeat),
                                 phase="starting")

        def on_marker(line: str) -> None:
            marker = Marker.from_line(line)
            if marker is None:
                return
            if marker.event == PHASE:
                progress.update(task, phase=marker.field(0))
            elif marker.event == ITER_END:
                progress.advance(task)

        def on_wait(waited: float, others: float) -> None:
            progress.update(task, phase=f"waiting for a quiet machine: {waited:.0f} s, "
                                        f"{others:.1f} other tasks runnable")

        return run(config, on_line=on_marker, on_wait=on_wait)


def _print_run_problems(result: RunResult, err: Console) -> None:
    if result.interrupted:
        err.print("[yellow]interrupted:[/] what was captured is kept", highlight=False)
    if result.child_returncode not in (0, None):
        err.print("[red]the workload's last stderr lines:[/]", highlight=False)
        err.print(safe_text(result.stderr_tail, lines=True), markup=False, highlight=False)
    for problem in result.problems:
        err.print(f"[red]problem:[/] {markup_text(problem)}", highlight=False)


def _write_report(trace: Trace, run_dir: Path, err: Console) -> Path | None:
    from dnnprof.reports.html import write_report

    try:
        return write_report(trace, run_dir / REPORT_FILE)
    except (DnnprofError, OSError) as exc:  # the run itself is saved: only say so
        err.print(f"[yellow]report not written:[/] {markup_text(exc)}", highlight=False)
        return None
