"""Run conditions: what the machine was doing before, while and after a workload ran.

Read from Linux's /proc and /sys (elsewhere every figure stays None and the verdict says
so). The central figure is the workload's own: how long its threads were runnable but
waiting for a CPU (`/proc/<pid>/task/<tid>/schedstat`), summed over every process of the
child's session and over the timed iterations only (phase `run`). That is what an
oversubscribed machine costs an OpenMP workload, whose threads wait for each other at
every barrier. Around it: load average, other processes' runnable tasks (sampled), CPU
steal, CPU pressure (PSI), the cgroup quota, the CPU, the thread settings, and the
calibration kernel before and after (dnnprof.profiler.calibration). `verdict.judge`
turns them into quiet / busy / unreliable with the reasons in words.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dnnprof.metadata import RunConditions
from dnnprof.profiler.calibration import calibrate
from dnnprof.profiler.verdict import judge
from dnnprof.vocabulary import RUN

PROC = Path("/proc")
SAMPLE_INTERVAL_S = 0.25
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


def session_tasks(session: int) -> dict[int, TaskStat]:
    """Every thread of every process in this session (the runner starts the child as one)."""
    tasks: dict[int, TaskStat] = {}
    for entry in PROC.glob("[0-9]*"):
        fields = _stat_fields(_read(entry / "stat"))
        if len(fields) > 3 and fields[3] == str(session):
            tasks.update(process_tasks(entry.name))
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


# ------------------------------------------------------------------- the recorder --


class ConditionsRecorder:
    """Measures one run's conditions; the runner calls it around and during the child.

    `before()` and `after()` bracket the whole run (load, calibration); `child_started`
    and `child_ended` bracket each child (the sampler thread); `on_phase` sees the
    workload's phase markers, so that "during" means the timed iterations. A child that
    prints no phase marker (`dnnprof trace -- CMD`) is measured over its whole life.
    """

    def __init__(self, threads: int | None, env: Mapping[str, str], *, pinned: bool = False,
                 repeat: int = 1, calibration: bool = True) -> None:
        conditions = RunConditions(pinned=pinned, repeat=repeat, thread_env=thread_env(env))
        conditions.cpu_model, conditions.cpu_mhz = cpu_model()
        conditions.cpus_online = os.cpu_count()
        conditions.cgroup_quota = cgroup_quota()
        conditions.cpus_allowed = allowed_cpus()
        self.conditions = conditions
        self.threads = threads
        self.calibration = calibration
        self._lock = threading.Lock()
        self._session: int | None = None
        self._latest: dict[int, TaskStat] = {}  # last seen value of every workload thread
        self._window: _Window | None = None  # open while the workload is timed
        self._windows = 0  # windows opened in the current child
        self._child_start: _Window | None = None
        self._totals = _Totals()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @property
    def workers(self) -> int:
        """How many calibration workers: the workload's threads, else the usable CPUs."""
        return self.threads or len(self.conditions.cpus_allowed) or 1

    def before(self) -> None:
        """Load and calibration before the first child starts."""
        conditions = self.conditions
        conditions.load_before = load_average()
        conditions.others_before = _float(others_runnable(0))
        if self.calibration:
            conditions.calibration_before = calibrate(self.workers, conditions.cpu_model)

    def child_started(self, pid: int) -> None:
        """Start sampling the child's session (its pid: the runner starts a new session)."""
        self._session = pid
        self._latest, self._windows = {}, 0
        self._child_start = _Window.now({})
        self.conditions.cpus_allowed = allowed_cpus(pid) or self.conditions.cpus_allowed
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample_loop, name="dnnprof-conditions",
                                         daemon=True)
        self._sampler.start()

    def on_phase(self, phase: str) -> None:
        """A phase marker from the workload: phase `run` opens the timed window."""
        if phase == RUN:
            window = _Window.now(self._read_tasks())
            with self._lock:
                window.known = set(self._latest)
                self._window, self._windows = window, self._windows + 1
        elif self._window is not None:
            self._close(self._read_tasks())

    def child_ended(self) -> None:
        """Stop sampling; a window still open closes on the last values seen."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None
        if self._window is None and not self._windows:
            self._window = self._child_start  # no phase markers: the child's whole life
        if self._window is not None:
            self._close({})

    def after(self) -> RunConditions:
        """Load and calibration after the last child, then the verdict."""
        conditions = self.conditions
        conditions.load_after = load_average()
        conditions.others_after = _float(others_runnable(0))
        if self.calibration:
            conditions.calibration_after = calibrate(self.workers, conditions.cpu_model)
        with self._lock:
            self._totals.fill(conditions)
        conditions.threads = self.threads
        conditions.verdict, conditions.reasons = judge(conditions)
        return conditions

    # ------------------------------------------------------------ internals --

    def _read_tasks(self) -> dict[int, TaskStat]:
        if self._session is None:
            return {}
        tasks = session_tasks(self._session)
        with self._lock:
            self._latest.update(tasks)
        return tasks

    def _close(self, tasks: dict[int, TaskStat]) -> None:
        end = _Window.now({})
        with self._lock:
            if self._window is not None:
                self._totals.add(self._window, end, {**self._latest, **tasks})
            self._window = None

    def _sample_loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            tasks = self._read_tasks()
            others = others_runnable(sum(task.running for task in tasks.values()))
            with self._lock:
                if others is not None:
                    timed = self._window is not None
                    (self._totals.others_timed if timed else self._totals.others_untimed
                     ).append(others)
                if self._window is not None:
                    self._totals.tasks = max(self._totals.tasks, len(tasks))


@dataclass
class _Window:
    """The machine's counters, and the workload's threads, when a timed window opened."""

    tasks: dict[int, TaskStat]
    times: tuple[int, int] | None
    pressure_us: int | None
    clock: float
    known: set[int] = field(default_factory=set)  # threads seen before, alive or not

    @classmethod
    def now(cls, tasks: dict[int, TaskStat]) -> _Window:
        return cls(dict(tasks), cpu_times(), cpu_pressure_us(), time.monotonic())


@dataclass
class _Totals:
    """What the timed windows add up to, over every child of the run."""

    cpu_ns: int = 0
    wait_ns: int = 0
    stolen: int = 0
    ticks: int = 0
    pressure_us: int = 0
    seconds: float = 0.0
    tasks: int = 0
    others_timed: list[int] = field(default_factory=list)
    others_untimed: list[int] = field(default_factory=list)

    def add(self, start: _Window, end: _Window, tasks: dict[int, TaskStat]) -> None:
        for tid, last in tasks.items():
            if tid in start.known and tid not in start.tasks:
                continue  # a thread that ended before the window opened
            first = start.tasks.get(tid, TaskStat(0, 0, False))
            self.cpu_ns += max(0, last.cpu_ns - first.cpu_ns)
            self.wait_ns += max(0, last.wait_ns - first.wait_ns)
        if start.times and end.times:
            self.ticks += end.times[0] - start.times[0]
            self.stolen += end.times[1] - start.times[1]
        if start.pressure_us is not None and end.pressure_us is not None:
            self.pressure_us += end.pressure_us - start.pressure_us
        self.seconds += end.clock - start.clock

    def fill(self, conditions: RunConditions) -> None:
        busy = self.cpu_ns + self.wait_ns
        conditions.wait_share = round(self.wait_ns / busy, 4) if busy else None
        conditions.steal_share = round(self.stolen / self.ticks, 4) if self.ticks else None
        if self.seconds > 0 and self.pressure_us:
            conditions.cpu_pressure = round(min(1.0, self.pressure_us / 1e6 / self.seconds), 4)
        others = self.others_timed or self.others_untimed
        if others:
            conditions.others_during = round(sum(others) / len(others), 2)
            conditions.others_during_max = float(max(others))
        conditions.samples = len(others)
        conditions.tasks = self.tasks or None


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
