"""Run conditions: what the machine was doing before, while and after a workload ran.

Read from Linux's /proc and /sys (elsewhere every figure stays None and the verdict says
so). The central figure is the workload's own: how long its threads were runnable but
waiting for a CPU (`/proc/<pid>/task/<tid>/schedstat`), summed over every process of the
child's session and over the timed iterations only (phase `run`). That is what an
oversubscribed machine costs an OpenMP workload, whose threads wait for each other at
every barrier. Around it: load average, other processes' runnable tasks (sampled), CPU
steal, CPU pressure (PSI), the cgroup quota, the CPU, the thread settings, and the
calibration kernel before and after (dnnprof.profiler.calibration). The recorder
(dnnprof.profiler.recorder) takes them around and during a run, and `verdict.judge` turns
them into quiet / busy / unreliable with the reasons in words.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# Environment variables that decide how many threads run where (the verbose switches are not).
THREAD_ENV = re.compile(r"^(OMP_|KMP_|GOMP_|MKL_NUM_THREADS|OPENBLAS_NUM_THREADS|"
                        r"(ONEDNN|DNNL)_(MAX_CPU_ISA|CPU_ISA_HINTS)|TORCH_NUM_THREADS)")


def _read(path: Path | str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # not Linux, a process that just ended, or a restricted /proc
        return None


# ---------------------------------------------------------------------- machine-wide --


def load_average() -> float | None:
    """The 1-minute load average."""
    text = _read(PROC / "loadavg")
    return float(text.split()[0]) if text else None


def procs_running() -> int | None:
    """Runnable tasks on the whole machine right now (this reader included)."""
    text = _read(PROC / "stat") or ""
    match = re.search(r"^procs_running (\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def cpu_times() -> tuple[int, int] | None:
    """(all CPU time, stolen time) in clock ticks since boot, from /proc/stat."""
    text = _read(PROC / "stat") or ""
    match = re.search(r"^cpu\s+(.*)$", text, re.MULTILINE)
    if not match:
        return None
    values = [int(v) for v in match.group(1).split()]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    return sum(values[:8]), (values[7] if len(values) > 7 else 0)


def cpu_pressure_us() -> int | None:
    """Total microseconds some task waited for a CPU (PSI), when the kernel provides it."""
    match = re.search(r"^some .*total=(\d+)", _read(PROC / "pressure" / "cpu") or "", re.M)
    return int(match.group(1)) if match else None


def cgroup_quota() -> float | None:
    """How many CPUs this process's cgroup may use (the tightest on its path); None: no limit."""
    v2 = re.search(r"^0::(\S*)", _read(PROC / "self" / "cgroup") or "", re.MULTILINE)
    quotas = []
    if v2:
        folder = Path("/sys/fs/cgroup") / v2.group(1).lstrip("/")
        for path in [folder, *folder.parents]:
            fields = (_read(path / "cpu.max") or "").split()
            if len(fields) == 2 and fields[0] != "max":
                quotas.append(int(fields[0]) / int(fields[1]))
            if path == Path("/sys/fs/cgroup"):
                break
    for v1 in ("cpu,cpuacct", "cpu"):
        quota = (_read(f"/sys/fs/cgroup/{v1}/cpu.cfs_quota_us") or "").strip()
        period = (_read(f"/sys/fs/cgroup/{v1}/cpu.cfs_period_us") or "").strip()
        if quota.lstrip("-").isdigit() and int(quota) > 0 and period.isdigit():
            quotas.append(int(quota) / int(period))
    return round(min(quotas), 3) if quotas else None


def cpu_model() -> tuple[str | None, float | None]:
    """The CPU's model name and its mean current frequency (MHz), where readable."""
    text = _read(PROC / "cpuinfo") or ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", text, re.MULTILINE)]
    if not mhz:
        khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
        mhz = [int(khz) / 1000.0] if khz and khz.strip().isdigit() else []
    return (model.group(1).strip() if model else None,
            round(sum(mhz) / len(mhz), 1) if mhz else None)


def allowed_cpus(pid: int | str = "self") -> list[int]:
    """The CPUs a process may run on (its affinity)."""
    match = re.search(r"^Cpus_allowed_list:\s*(\S+)", _read(PROC / str(pid) / "status") or "",
                      re.MULTILINE)
    if not match:
        return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpus: list[int] = []
    for part in match.group(1).split(","):
        low, _, high = part.partition("-")
        cpus += range(int(low), int(high or low) + 1)
    return cpus


def thread_env(env: Mapping[str, str]) -> dict[str, str]:
    """The thread and ISA settings in an environment (OMP_*, KMP_*, MKL_NUM_THREADS ...)."""
    return {key: value for key, value in sorted(env.items()) if THREAD_ENV.match(key)}


# ------------------------------------------------------------------- the workload --


@dataclass(frozen=True)
class TaskStat:
    """One thread: nanoseconds on a CPU, nanoseconds runnable but waiting, running now."""

    cpu_ns: int
    wait_ns: int
    running: bool


def _stat_fields(text: str | None) -> list[str]:
    # the command name may hold spaces and parentheses: the fields start after the last ')'
    return text[text.rfind(")") + 2:].split() if text else []


def session_members(session: int) -> list[str]:
    """The pids of every process in this session (the runner starts the child as one)."""
    members = []
    for entry in PROC.glob("[0-9]*"):
        fields = _stat_fields(_read(entry / "stat"))
        if len(fields) > 3 and fields[3] == str(session):
            members.append(entry.name)
    return members


def session_tasks(session: int, members: list[str] | None = None) -> dict[int, TaskStat]:
    """Every thread of every process in this session (`members`: its pids, if known)."""
    tasks: dict[int, TaskStat] = {}
    for pid in session_members(session) if members is None else members:
        tasks.update(process_tasks(pid))
    return tasks


def process_tasks(pid: int | str) -> dict[int, TaskStat]:
    """Every thread of one process, with its scheduler statistics."""
    tasks: dict[int, TaskStat] = {}
    for task in (PROC / str(pid) / "task").glob("[0-9]*"):
        sched = (_read(task / "schedstat") or "").split()
        state = _stat_fields(_read(task / "stat"))[:1]
        if len(sched) >= 2 and state:
            tasks[int(task.name)] = TaskStat(int(sched[0]), int(sched[1]), state[0] == "R")
    return tasks


def others_runnable(own_running: int) -> int | None:
    """Runnable tasks that are neither the workload's nor dnnprof's own."""
    total = procs_running()
    if total is None:
        return None
    mine = sum(task.running for task in process_tasks(os.getpid()).values())
    return max(0, total - own_running - mine)


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)


def wait_for_quiet(
    timeout_s: float, threads: int, *, window_s: float = 3.0, poll_s: float = 0.5,
    on_wait: Callable[[float, float], None] | None = None,
) -> tuple[float, bool]:
    """Wait until other processes leave `threads` CPUs free for `window_s` seconds in a row.

    Returns (seconds waited, whether it became quiet). `on_wait(waited, others)` is called
    at every poll (a progress line).
    """
    cpus = len(allowed_cpus()) or os.cpu_count() or 1
    room = max(0, cpus - threads) + 0.5
    started = time.monotonic()
    recent: list[tuple[float, int]] = []
    while True:
        now = time.monotonic()
        others = others_runnable(0)
        if others is None:
            return 0.0, False  # nothing to read: do not wait for what cannot be seen
        recent = [(t, n) for t, n in recent if now - t < window_s] + [(now, others)]
        waited = now - started
        spans_window = now - recent[0][0] >= window_s - poll_s
        if spans_window and sum(n for _, n in recent) / len(recent) <= room:
            return round(waited, 1), True
        if waited >= timeout_s:
            return round(waited, 1), False
        if on_wait is not None:
            on_wait(waited, sum(n for _, n in recent) / len(recent))
        time.sleep(poll_s)
