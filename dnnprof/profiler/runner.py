"""The runner (parent side): launch a workload with verbose on into its log, then parse it.

The child is `dnnprof/profiler/workload.py` (or any command after `--`), run by
`capture` (once, or once per `--repeat`) while `conditions` records what the machine was
doing. The measured trace is saved before layer reconstruction and again after it, so a
failure there never loses a run.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnprof import markers
from dnnprof.errors import DnnprofError
from dnnprof.files import cache_dir
from dnnprof.metadata import RunConditions
from dnnprof.profiler.capture import STDERR_LOG, VERBOSE_LOG, RunError, capture
from dnnprof.profiler.child import REFUSED
from dnnprof.profiler.conditions import allowed_cpus, wait_for_quiet
from dnnprof.profiler.evidence import check_evidence, coverage
from dnnprof.profiler.recorder import ConditionsRecorder
from dnnprof.reconstruct import LayerTableError, reconstruct
from dnnprof.storage import TRACE_FILE
from dnnprof.store.context import RunContext
from dnnprof.trace import Trace
from dnnprof.vocabulary import DEFAULT_VARIANT, ExitCode

WORKLOAD = Path(__file__).resolve().with_name("workload.py")
REPO_ROOT = WORKLOAD.parents[2]
SUMMARY_FILE = "summary.json"

# Every name oneDNN has read its switches under: MKL-DNN 0.x, DNNL 1.x-2.x (MXNet 1.9's
# oneDNN 2.4 ignores ONEDNN_*), oneDNN 2.5+.
VERBOSE_ENV = {
    "ONEDNN_VERBOSE": "1",
    "DNNL_VERBOSE": "1",
    "MKLDNN_VERBOSE": "1",
    "ONEDNN_VERBOSE_TIMESTAMP": "1",
    "DNNL_VERBOSE_TIMESTAMP": "1",
    "PYTHONUNBUFFERED": "1",
}

FRAMEWORK_PYTHON_ENV = {"mxnet": "DNNPROF_MXNET_PYTHON", "ipex": "DNNPROF_IPEX_PYTHON"}
FRAMEWORK_WORKLOAD = {
    "torch": WORKLOAD,
    "ipex": WORKLOAD.with_name("workload_ipex.py"),
    "mxnet": WORKLOAD.with_name("workload_mxnet.py"),
}
INSTALL_HINT = {
    "torch": "pip install 'dnnprof[torch]'  (or pass --python PATH of an interpreter with torch)",
    "ipex": "bash .ci/backends.sh  (builds ~/.cache/dnnprof/venvs/ipex with torch 2.8 + IPEX 2.8), "
    "or pass --python PATH",
    "mxnet": "bash .ci/backends.sh  (builds ~/.cache/dnnprof/venvs/mxnet with mxnet 1.9.1 and "
    "numpy<1.24), or pass --python PATH",
}


__all__ = ["STDERR_LOG", "SUMMARY_FILE", "VERBOSE_LOG", "RunConfig", "RunError", "RunResult",
           "run"]


@dataclass
class RunConfig:
    """What to run and how."""

    model: str | None = None
    variants: list[str] = field(default_factory=lambda: [DEFAULT_VARIANT])
    framework: str = "torch"
    python: str | None = None
    batch: int = 1
    warmup: int = 1
    iters: int = 5
    threads: int | None = None
    input_size: int | None = None
    width: float | None = None
    pruned: float | None = None
    prune_mode: str = "unstructured"
    markers: bool = True
    command: list[str] | None = None  # `dnnprof trace -- CMD ...`
    out: Path | None = None
    runs_dir: Path = Path("runs")
    extra_args: list[str] = field(default_factory=list)
    # noise reduction (docs/conditions.md)
    pin: bool = False  # the child on `threads` CPUs, one OpenMP thread per CPU
    repeat: int = 1  # run the child this many times; every run's iterations are kept
    wait_quiet: float | None = None  # wait up to this many seconds for a quiet machine
    conditions: bool = True  # record the run conditions (and time the calibration kernel)

    @property
    def variant_label(self) -> str:
        """A short name for the run folder (`int8`, `pruned+int8`)."""
        if self.command:
            return "command"
        return "+".join(self.variants) or DEFAULT_VARIANT


@dataclass
class RunResult:
    """What a run produced."""

    trace: Trace
    run_dir: Path
    exit_code: int  # vocabulary.ExitCode: 0 ok, 1 evidence missing, 2 refused, 3 failed, 130
    child_returncode: int | None
    stderr_tail: str
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)


def resolve_python(config: RunConfig) -> str:
    """The interpreter for the child: --python, else the framework's virtualenv, else ours."""
    if config.python:
        return config.python
    env_name = FRAMEWORK_PYTHON_ENV.get(config.framework)
    if env_name:
        candidate = os.environ.get(env_name)
        default = cache_dir() / "venvs" / config.framework / "bin" / "python"
        for path in (candidate, str(default)):
            if path and Path(path).exists():
                return path
        raise RunError(
            f"no Python with {config.framework} found (looked at ${env_name} and {default}); "
            f"install it: {INSTALL_HINT[config.framework]}",
            exit_code=ExitCode.USAGE,
        )
    return sys.executable


def child_command(config: RunConfig, first_iteration: int = 0) -> list[str]:
    """The argv of the child process (its iterations numbered from `first_iteration`)."""
    if config.command:
        return list(config.command)
    workload = FRAMEWORK_WORKLOAD[config.framework]
    if not workload.exists():
        raise RunError(
            f"the {config.framework} workload ({workload.name}) is not part of this dnnprof yet",
            exit_code=ExitCode.USAGE,
        )
    argv = [resolve_python(config), str(workload), "--model", str(config.model)]
    argv += ["--variant", ",".join(config.variants)]
    argv += ["--batch", str(config.batch), "--warmup", str(config.warmup), "--iters", str(config.iters)]
    if config.threads:
        argv += ["--threads", str(config.threads)]
    if config.input_size:
        argv += ["--input-size", str(config.input_size)]
    if config.width:
        argv += ["--width", str(config.width)]
    if config.pruned is not None:
        argv += ["--pruned", str(config.pruned), "--prune-mode", config.prune_mode]
    if not config.markers:
        argv += ["--no-markers"]
    if first_iteration:
        argv += ["--first-iteration", str(first_iteration)]
    return argv + list(config.extra_args)


def child_env(config: RunConfig) -> dict[str, str]:
    """The child's environment: verbose switches set before the framework is imported."""
    env = dict(os.environ)
    env.update(VERBOSE_ENV)
    if config.threads:
        env["OMP_NUM_THREADS"] = str(config.threads)
    if config.pin:
        # one OpenMP thread per CPU of the child's affinity, never migrating
        env.update({"OMP_PROC_BIND": "close", "OMP_PLACES": "threads",
                    "OMP_NUM_THREADS": str(len(pinned_cpus(config)))})
    # the workload imports dnnprof.profiler.models from this checkout, under any interpreter
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def pinned_cpus(config: RunConfig) -> list[int]:
    """The CPUs `--pin` gives the child: the first `threads` this process may use."""
    cpus = allowed_cpus()
    return cpus[: config.threads] if config.threads else cpus


def make_run_dir(config: RunConfig) -> Path:
    """`--out`, or runs/<model>-<variant>-<time>/ (never reusing an existing folder)."""
    if config.out:
        run_dir = Path(config.out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{config.model or Path(config.command[0]).name}-{config.variant_label}-{stamp}"
        run_dir = config.runs_dir / name
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = config.runs_dir / f"{name}-{suffix}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def run(
    config: RunConfig,
    on_line: Callable[[str], None] | None = None,
    on_wait: Callable[[float, float], None] | None = None,
) -> RunResult:
    """Run the workload, stream and parse its output, save the run folder; never loses output.

    `on_line` gets every marker line as the child prints it (`markers.Marker.from_line`
    decodes it): a progress bar follows the `phase` and `iter_end` markers. `on_wait`
    (seconds waited, other runnable tasks) is called while `wait_quiet` waits.
    """
    repeat = max(1, config.repeat)
    per_run = config.warmup + config.iters
    argvs = [child_command(config, k * per_run) for k in range(repeat)]
    run_dir = make_run_dir(config)
    env = child_env(config)
    recorder = _recorder(config, env, on_wait)
    started = time.time()
    captured = capture(argvs, env, run_dir, on_line, recorder,
                       pinned_cpus(config) if config.pin else None)
    trace, returncode, interrupted = captured.trace, captured.returncode, captured.interrupted
    stderr_tail = _tail(run_dir / STDERR_LOG)
    _annotate(trace, config, argvs[0], run_dir, returncode, started, interrupted)
    trace.metadata.conditions = _conditions(recorder, trace, captured.runs)
    exit_code, ending = _ending(returncode, interrupted, stderr_tail)
    _save(trace, run_dir, ending)  # the measured run is kept, whatever reconstruction does
    trace = _reconstruct(trace)
    problems = ending + check_evidence(trace, config.variants, bool(config.command))
    if exit_code == ExitCode.OK and problems:
        exit_code = ExitCode.REGRESSION  # 1: the log does not show the variant asked for
    _save(trace, run_dir, problems)
    return RunResult(trace, run_dir, exit_code, returncode, stderr_tail, interrupted, problems)


def _recorder(config: RunConfig, env: dict[str, str],
              on_wait: Callable[[float, float], None] | None) -> ConditionsRecorder | None:
    """The conditions recorder, after waiting for a quiet machine when asked to."""
    if not config.conditions:
        return None
    threads = config.threads or (len(pinned_cpus(config)) if config.pin else None)
    recorder = ConditionsRecorder(threads, env, pinned=config.pin, repeat=max(1, config.repeat))
    if config.wait_quiet:
        waited, quiet = wait_for_quiet(config.wait_quiet, recorder.workers, on_wait=on_wait)
        recorder.conditions.waited_s = waited
        recorder.conditions.became_quiet = quiet
    recorder.before()
    return recorder


def _conditions(recorder: ConditionsRecorder | None, trace: Trace, runs: int
                ) -> RunConditions | None:
    """The recorded conditions, judged with the threads the workload said it used."""
    if recorder is None:
        return None
    recorder.threads = recorder.threads or trace.metadata.threads
    conditions = recorder.after()
    conditions.repeat = runs
    return conditions


def _ending(returncode: int, interrupted: bool, stderr_tail: str) -> tuple[ExitCode, list[str]]:
    """The run's exit status from how the child ended, and the problem that says why."""
    if interrupted:
        return ExitCode.INTERRUPTED, []
    if returncode == REFUSED:
        # the workload refused before running (unknown model, impossible variant mix,
        # no bf16 on this CPU): a usage error, and its own words say why
        reason = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no reason given"
        return ExitCode.USAGE, [f"the workload refused to run: {reason}"]
    if returncode != ExitCode.OK:
        # 3, the child's own status for "the workload raised" (vocabulary: UNREACHABLE)
        return ExitCode.UNREACHABLE, [_crash_message(returncode, stderr_tail)]
    return ExitCode.OK, []


def _save(trace: Trace, run_dir: Path, problems: list[str]) -> None:
    """Write trace.parquet and summary.json (the summary carries coverage and problems)."""
    trace.metadata.problems = problems
    trace.save(run_dir / TRACE_FILE)
    summary = trace.summary()
    summary["coverage"] = trace.metadata.coverage
    summary["problems"] = problems
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _crash_message(returncode: int, stderr_tail: str) -> str:
    if "No module named 'torch'" in stderr_tail:
        return f"the workload's Python has no PyTorch: {INSTALL_HINT['torch']}"
    if "No module named 'mxnet'" in stderr_tail:
        return f"the workload's Python has no MXNet: {INSTALL_HINT['mxnet']}"
    if "No module named 'intel_extension_for_pytorch'" in stderr_tail:
        return f"the workload's Python has no IPEX: {INSTALL_HINT['ipex']}"
    how = f"signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    return f"the workload failed ({how}); what it printed before is kept in the run folder"


def _run_meta(trace: Trace) -> dict[str, Any]:
    """What the child said in `meta` markers, by key; a repeated key keeps its last value.

    `wall_ms` is the exception: with `--repeat` each run says its own, and the runs' lists
    follow each other as their iteration numbers do.
    """
    events = trace.events
    rows = events[(events["op"] == "marker") & (events["kind"] == markers.META)]
    values: dict[str, Any] = {}
    wall_ms: list[float] = []
    for message in rows["message"].astype(str):
        key, value = markers.Marker.from_row(markers.META, message).meta
        values[key] = value
        if key == "wall_ms" and isinstance(value, list):
            wall_ms += value
    if wall_ms:
        values["wall_ms"] = wall_ms
    return values


def _annotate(
    trace: Trace, config: RunConfig, argv: Sequence[str], run_dir: Path, returncode: int,
    started: float, interrupted: bool,
) -> None:  # fmt: skip
    """The run's metadata: what the child said it ran (else what was asked), how it ended."""
    run_meta = _run_meta(trace)
    metadata = trace.metadata
    metadata.model = run_meta.get("model", config.model)
    metadata.variant = run_meta.get("variant", config.variant_label)
    metadata.variants = run_meta.get("variants", config.variants)
    metadata.framework = run_meta.get("framework", config.framework)
    metadata.framework_version = run_meta.get("framework_version")
    metadata.route = run_meta.get("route")
    metadata.batch = run_meta.get("batch", config.batch)
    metadata.threads = metadata.threads or run_meta.get("threads") or config.threads
    metadata.input_shape = run_meta.get("input_shape")
    metadata.width = config.width
    metadata.pruned = config.pruned
    metadata.prune_mode = config.prune_mode if config.pruned is not None else None
    metadata.warmup = config.warmup
    metadata.iters = config.iters
    metadata.wall_ms = run_meta.get("wall_ms")
    metadata.layer_table = run_meta.get("layer_table")
    metadata.notes = run_meta.get("notes", [])
    metadata.bf16_supported = run_meta.get("bf16_supported")
    metadata.command = shlex.join(argv)
    metadata.run_dir = str(run_dir)
    context = RunContext.from_environment()  # host, and the commit when CI or git says it
    metadata.host = context.host or None
    metadata.git_commit = context.commit or None
    metadata.child_returncode = returncode
    metadata.interrupted = interrupted
    metadata.started = started
    metadata.source = str(run_dir / VERBOSE_LOG)


def _reconstruct(trace: Trace) -> Trace:
    """Iterations and layers attributed; a layer table that cannot be used leaves a warning."""
    try:
        trace = reconstruct(trace, layers=trace.metadata.layer_table or None)
    except (LayerTableError, DnnprofError) as exc:
        trace.metadata.warnings.append(f"layer reconstruction failed: {exc}")
    trace.metadata.coverage = coverage(trace)
    return trace
