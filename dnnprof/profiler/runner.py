"""The runner (parent side): launch a workload with verbose on, stream its stdout into the parser.

The child is `dnnprof/profiler/workload.py` (or any command after `--`). Its stdout
is read line by line: each line goes to `verbose.log` and to the TraceBuilder, so
memory stays bounded however long the run. stderr goes to `stderr.log`.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnprof.parsers.stream import TraceBuilder
from dnnprof.trace import Trace

WORKLOAD = Path(__file__).resolve().with_name("workload.py")
REPO_ROOT = WORKLOAD.parents[2]

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


class RunError(Exception):
    """A run that cannot start or did not show what was asked; `exit_code` says how it ended."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RunConfig:
    """What to run and how."""

    model: str | None = None
    variants: list[str] = field(default_factory=lambda: ["fp32"])
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

    @property
    def variant_label(self) -> str:
        """A short name for the run folder (`int8`, `pruned+int8`)."""
        if self.command:
            return "command"
        return "+".join(self.variants) or "fp32"


@dataclass
class RunResult:
    """What a run produced."""

    trace: Trace
    run_dir: Path
    exit_code: int
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
        cache = Path(os.environ.get("DNNPROF_CACHE", Path.home() / ".cache" / "dnnprof"))
        default = cache / "venvs" / config.framework / "bin" / "python"
        for path in (candidate, str(default)):
            if path and Path(path).exists():
                return path
        raise RunError(
            f"no Python with {config.framework} found (looked at ${env_name} and {default}); "
            f"install it: {INSTALL_HINT[config.framework]}",
            exit_code=2,
        )
    return sys.executable


def child_command(config: RunConfig) -> list[str]:
    """The argv of the child process."""
    if config.command:
        return list(config.command)
    workload = FRAMEWORK_WORKLOAD[config.framework]
    if not workload.exists():
        raise RunError(
            f"the {config.framework} workload ({workload.name}) is not part of this dnnprof yet",
            exit_code=2,
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
    return argv + list(config.extra_args)


def child_env(config: RunConfig) -> dict[str, str]:
    """The child's environment: verbose switches set before the framework is imported."""
    env = dict(os.environ)
    env.update(VERBOSE_ENV)
    if config.threads:
        env["OMP_NUM_THREADS"] = str(config.threads)
    # the workload imports dnnprof.profiler.models from this checkout, under any interpreter
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


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
) -> RunResult:
    """Run the workload, stream and parse its output, save the run folder; never loses output."""
    argv = child_command(config)
    run_dir = make_run_dir(config)
    builder = TraceBuilder(str(run_dir / "verbose.log"))
    stderr_path = run_dir / "stderr.log"
    interrupted = False
    started = time.time()
    with (run_dir / "verbose.log").open("w", encoding="utf-8") as log, stderr_path.open("wb") as err:
        try:
            child = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, env=child_env(config),
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            raise RunError(f"cannot start {argv[0]}: {exc.strerror or exc}", exit_code=2) from None
        assert child.stdout is not None

        def lines() -> Iterator[str]:
            # every line goes to verbose.log as it comes, then to the parser's own loop
            for raw in child.stdout:
                line = raw.decode("utf-8", "replace")
                log.write(line)
                if on_line is not None and line.startswith("#DNNPROF"):
                    on_line(line)
                yield line

        try:
            builder.feed_lines(lines())
        except KeyboardInterrupt:
            interrupted = True  # stop the child, keep what it printed
            _stop(child)
        returncode = child.wait()
    trace = builder.finish()
    stderr_tail = _tail(stderr_path)
    _annotate(trace, config, argv, run_dir, returncode, started, interrupted)
    trace = _reconstruct(trace)
    problems = check_evidence(trace, config)
    exit_code = 0
    if interrupted:
        exit_code = 130
    elif returncode == 2:
        # the workload refused before running (unknown model, impossible variant mix,
        # no bf16 on this CPU): a usage error, and its own words say why
        exit_code = 2
        reason = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no reason given"
        problems.insert(0, f"the workload refused to run: {reason}")
    elif returncode != 0:
        exit_code = 3
        problems.insert(0, _crash_message(returncode, stderr_tail))
    elif problems:
        exit_code = 1
    trace.metadata.problems = problems
    trace.save(run_dir / "trace.parquet")
    summary = trace.summary()
    summary["coverage"] = trace.metadata.coverage
    summary["problems"] = problems
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return RunResult(trace, run_dir, exit_code, returncode, stderr_tail, interrupted, problems)


def _stop(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGINT)
        child.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


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


def _meta_markers(trace: Trace) -> dict[str, Any]:
    """`#DNNPROF,meta,<key>,<json>` values; a repeated key keeps its last value."""
    ev = trace.events
    meta: dict[str, Any] = {}
    for message in ev.loc[(ev["op"] == "marker") & (ev["kind"] == "meta"), "message"].astype(str):
        key, _, value = message.partition(",")
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            meta[key] = value
    return meta


def _annotate(
    trace: Trace, config: RunConfig, argv: Sequence[str], run_dir: Path, returncode: int,
    started: float, interrupted: bool,
) -> None:
    meta = _meta_markers(trace)
    md = trace.metadata
    md.model = meta.get("model", config.model)
    md.variant = meta.get("variant", config.variant_label)
    md.variants = meta.get("variants", config.variants)
    md.framework = meta.get("framework", config.framework)
    md.framework_version = meta.get("framework_version")
    md.route = meta.get("route")
    md.batch = meta.get("batch", config.batch)
    md.threads = md.threads or meta.get("threads") or config.threads
    md.input_shape = meta.get("input_shape")
    md.width = config.width
    md.pruned = config.pruned
    md.prune_mode = config.prune_mode if config.pruned is not None else None
    md.warmup = config.warmup
    md.iters = config.iters
    md.wall_ms = meta.get("wall_ms")
    md.layer_table = meta.get("layer_table")
    md.notes = meta.get("notes", [])
    md.bf16_supported = meta.get("bf16_supported")
    md.command = shlex.join(argv)
    md.run_dir = str(run_dir)
    md.child_returncode = returncode
    md.interrupted = interrupted
    md.started = started
    md.source = str(run_dir / "verbose.log")


def _reconstruct(trace: Trace) -> Trace:
    try:
        from dnnprof.reconstruct import reconstruct
    except ImportError:  # the reconstructor is optional for a run to be kept
        return trace
    layers = trace.metadata.layer_table
    try:
        trace = reconstruct(trace, layers=layers) if layers else reconstruct(trace)
    except Exception as exc:  # a failed attribution must not lose the measured run
        trace.metadata.warnings.append(f"layer reconstruction failed: {exc}")
    trace.metadata.coverage = coverage(trace)
    return trace


def coverage(trace: Trace) -> dict[str, Any] | None:
    """Share of each measured iteration's wall time spent inside oneDNN primitives."""
    wall = trace.metadata.wall_ms
    ev = trace.exec_events
    if not wall or (ev["iteration"] < 0).all():
        return None
    per_iter = ev[ev["iteration"] >= 0].groupby("iteration")["duration_ms"].sum()
    rows = []
    for iteration, onednn_ms in per_iter.items():
        if 0 <= iteration < len(wall) and wall[iteration]:
            rows.append(
                {"iteration": int(iteration), "onednn_ms": float(onednn_ms),
                 "wall_ms": float(wall[iteration]), "share": float(onednn_ms / wall[iteration])}
            )
    warmup = trace.metadata.warmup or 0
    steady = [r["share"] for r in rows if r["iteration"] >= warmup] or [r["share"] for r in rows]
    if not steady:
        return None
    steady.sort()
    return {"per_iteration": rows, "median_share": steady[len(steady) // 2]}


def check_evidence(trace: Trace, config: RunConfig) -> list[str]:
    """What the log must show for the variants asked for; each miss is one sentence."""
    ex = trace.exec_events
    problems: list[str] = []
    if "bf16" in config.variants and trace.metadata.get("bf16_supported") is False:
        problems.append(
            "BF16 was asked for, but this CPU has no oneDNN bf16 support (it needs AVX512BW/VL/DQ "
            "or AVX-NE-CONVERT): ATen ran bf16 itself, so there is nothing of oneDNN to profile"
        )
        return problems
    if ex.empty:
        problems.append(
            "oneDNN executed nothing: no primitive exec line in the log "
            "(the framework ran every op itself, or verbose output was not enabled)"
        )
        return problems
    if config.command:
        return problems
    steady = trace.steady_exec()
    dtypes = set(steady["src_dt"].astype(str)) | set(steady["wei_dt"].astype(str))
    variants = set(config.variants)
    if "int8" in variants and not dtypes & {"u8", "s8"}:
        problems.append(
            "INT8 was asked for, but no u8/s8 primitive ran in the measured iterations: "
            "the model ran in floating point"
        )
    if "bf16" in variants and "bf16" not in dtypes:
        problems.append(
            "BF16 was asked for, but no bf16 primitive ran (this CPU may lack oneDNN bf16 "
            "support, so ATen ran bf16 itself)"
        )
    if "fused" in variants and not (steady["post_ops"].astype(str) != "").any():
        problems.append("fusion was asked for, but no primitive carries post-ops")
    return problems
