"""`dnnprof trace` and `dnnprof models`: flags to RunConfig, a progress bar, the summary."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from dnnprof.exporters.cli_support import add_export_options, export_from_args
from dnnprof.profiler.runner import RunConfig, RunError, child_env, resolve_python, run

VARIANT_FLAGS = ("fp32", "fused", "int8", "bf16")


def add_trace_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `trace` and `models`."""
    trace = subparsers.add_parser(
        "trace",
        help="run a zoo model (or any command after --) with oneDNN verbose on and profile it",
        description="Run MODEL with oneDNN verbose on, parse the log as it streams, attribute "
        "primitives to layers and leave a run folder (verbose.log, trace.parquet, summary.json, "
        "report.html). `dnnprof trace -- python my_script.py` wraps any command.",
    )
    trace.add_argument("model", nargs="?", help="zoo model (see `dnnprof models`)")
    precision = trace.add_mutually_exclusive_group()
    for name in VARIANT_FLAGS:
        precision.add_argument(f"--{name}", action="store_true", help=f"{name} variant")
    trace.add_argument("--pruned", type=float, metavar="SPARSITY", help="prune this fraction")
    trace.add_argument("--prune-mode", choices=("unstructured", "structured"), default="unstructured")
    trace.add_argument("--mlp-reduced", action="store_true", help="narrower/fewer MLP layers")
    trace.add_argument("--framework", choices=("torch", "ipex", "mxnet"), default="torch")
    trace.add_argument("--python", help="interpreter for the workload (another virtualenv)")
    trace.add_argument("--batch", type=int, default=1)
    trace.add_argument("--warmup", type=int, default=1)
    trace.add_argument("--iters", type=int, default=5)
    trace.add_argument("--threads", type=int, help="sets OMP_NUM_THREADS")
    trace.add_argument("--input-size", type=int)
    trace.add_argument("--width", type=float, help="MobileNet width multiplier")
    trace.add_argument("--no-markers", action="store_true", help="no layer markers")
    trace.add_argument("--out", type=Path, help="run folder (default runs/<model>-<variant>-<time>)")
    trace.add_argument("--runs-dir", type=Path, default=Path("runs"))
    trace.add_argument("--json", action="store_true", help="print the summary as JSON")
    trace.add_argument("--no-report", action="store_true", help="skip the HTML report")
    trace.add_argument("--top", type=int, default=10)
    add_export_options(trace)
    trace.set_defaults(command=[])
    trace.set_defaults(handler=run_trace)
    study = subparsers.add_parser(
        "study",
        help="run the thesis' chapter-4 experiments here and write findings.md + report.html",
    )
    study.add_argument("-o", "--output", type=Path, default=Path("study"), help="output folder")
    study.add_argument("--runs-dir", type=Path, help="where the run folders go (default OUTPUT/runs)")
    study.add_argument("--warmup", type=int, default=1)
    study.add_argument("--iters", type=int, default=5)
    study.add_argument("--only", nargs="*", help="run only experiments whose name contains a word")
    study.set_defaults(handler=run_study_command)
    models = subparsers.add_parser("models", help="list the model zoo")
    models.add_argument("--python", help="interpreter with torch")
    models.set_defaults(handler=run_models)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Translate the flags into a RunConfig."""
    command = list(args.command or [])
    if not args.model and not command:
        raise RunError("name a model (`dnnprof models` lists them) or a command after --", 2)
    if args.model and command:
        raise RunError(f"unexpected arguments after the model: {' '.join(command)}", 2)
    precision = next((name for name in VARIANT_FLAGS if getattr(args, name)), None)
    variants = [precision] if precision else []
    if args.pruned is not None:
        variants.append("pruned")
    if args.mlp_reduced:
        variants.append("mlp_reduced")
    return RunConfig(
        model=args.model,
        variants=variants or ["fp32"],
        framework=args.framework,
        python=args.python,
        batch=args.batch,
        warmup=args.warmup,
        iters=args.iters,
        threads=args.threads,
        input_size=args.input_size,
        width=args.width,
        pruned=args.pruned,
        prune_mode=args.prune_mode,
        markers=not args.no_markers,
        command=command or None,
        out=args.out,
        runs_dir=args.runs_dir,
    )


def run_trace(args: argparse.Namespace) -> int:
    """`dnnprof trace`: run, show progress, print where the time went."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = Console(stderr=True)
    try:
        config = config_from_args(args)
        total = config.warmup + config.iters
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[phase]}"), console=err, transient=True,
            disable=not err.is_terminal,
        ) as progress:
            label = config.model or config.command[0]
            task = progress.add_task(f"{label} {config.variant_label}", total=total, phase="starting")

            def on_marker(line: str) -> None:
                fields = line.rstrip().split(",")
                if fields[1] == "phase":
                    progress.update(task, phase=fields[2])
                elif fields[1] == "iter_end":
                    progress.advance(task)

            result = run(config, on_line=on_marker)
    except RunError as exc:
        err.print(f"[red]dnnprof trace:[/] {exc}", highlight=False)
        return exc.exit_code
    trace = result.trace
    report = None
    if not args.no_report:
        report = _write_report(trace, result.run_dir, err)
    if args.json:
        summary = json.loads((result.run_dir / "summary.json").read_text())
        summary["run_dir"] = str(result.run_dir)
        print(json.dumps(summary, indent=2))
    else:
        from dnnprof.summary import print_trace_summary

        out = Console()
        print_trace_summary(trace, top=args.top, console=out)
        _print_run_facts(trace, out)
    if result.interrupted:
        err.print("[yellow]interrupted:[/] what was captured is kept", highlight=False)
    if result.child_returncode not in (0, None):
        err.print("[red]the workload's last stderr lines:[/]", highlight=False)
        err.print(result.stderr_tail, markup=False, highlight=False)
    for problem in result.problems:
        err.print(f"[red]problem:[/] {problem}", highlight=False)
    export_status = 0
    if not result.interrupted:  # Ctrl-C means stop now; `dnnprof export` can send it later
        # The run folder is already saved, so a failed export costs nothing but its exit status.
        export_status = export_from_args(trace, args)
    err.print(f"run folder: {result.run_dir}" + (f"  (report: {report})" if report else ""))
    return result.exit_code or export_status


def _print_run_facts(trace, console) -> None:
    md = trace.metadata
    console.print(
        f"model {md.get('model')} · variant {md.get('variant')} · route {md.get('route')} · "
        f"{md.get('framework')} {md.get('framework_version')} · batch {md.get('batch')}",
        highlight=False,
    )
    cov = md.get("coverage")
    if cov:
        console.print(
            f"oneDNN coverage: {cov['median_share']:.0%} of each measured iteration's wall time "
            "is spent inside oneDNN primitives (the rest runs in the framework's own kernels)",
            highlight=False,
        )
    for note in md.get("notes") or []:
        console.print(f"note: {note}", highlight=False)


def _write_report(trace, run_dir: Path, err) -> Path | None:
    try:
        from dnnprof.reports.html import write_report
    except ImportError:
        return None
    try:
        return write_report(trace, run_dir / "report.html")
    except Exception as exc:  # the run itself is saved; a report failure is only reported
        err.print(f"[yellow]report not written:[/] {exc}", highlight=False)
        return None


def run_study_command(args: argparse.Namespace) -> int:
    """`dnnprof study`: run the experiments one by one, then write the findings."""
    from dnnprof.profiler.study import run_study

    def progress(name: str, result) -> None:
        status = "ok" if result.exit_code == 0 else "; ".join(result.problems) or "failed"
        print(f"{name}: {status}  ({result.run_dir})", file=sys.stderr)

    command = "dnnprof study " + " ".join(sys.argv[2:])
    runs_dir = args.runs_dir or args.output / "runs"
    markdown, report = run_study(
        runs_dir, args.output, args.warmup, args.iters, args.only, command, progress
    )
    print(markdown.read_text())
    print(f"wrote {markdown}" + (f" and {report}" if report else ""), file=sys.stderr)
    return 0


def run_models(args: argparse.Namespace) -> int:
    """`dnnprof models`: the zoo, listed by the workload under an interpreter with torch."""
    from dnnprof.profiler.runner import WORKLOAD, RunConfig

    python = resolve_python(RunConfig(python=args.python))
    out = subprocess.run(
        [python, str(WORKLOAD), "--list-models"], env=child_env(RunConfig()), check=False
    )
    if out.returncode != 0:
        print("dnnprof models: listing needs PyTorch: pip install 'dnnprof[torch]'", file=sys.stderr)
    return out.returncode
