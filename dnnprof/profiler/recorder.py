"""The conditions recorder: the probes of `conditions` taken around and during one run.

The runner calls it before the first child, as each child starts and ends, at each phase
marker, and after the last child; `after()` returns the judged `RunConditions`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from dnnprof.metadata import Calibration, RunConditions
from dnnprof.profiler.calibration import calibrate
from dnnprof.profiler.conditions import (
    TaskStat,
    allowed_cpus,
    cgroup_quota,
    cpu_model,
    cpu_pressure_us,
    cpu_times,
    load_average,
    others_runnable,
    session_members,
    session_tasks,
    thread_env,
)
from dnnprof.profiler.verdict import judge
from dnnprof.vocabulary import RUN

SAMPLE_INTERVAL_S = 0.25
MEMBERS_EVERY_S = 1.0  # how often the session's processes are looked for again


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
        self._members: list[str] = []
        self._members_read = -math.inf
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
        conditions.load_before, conditions.others_before, conditions.calibration_before = (
            self._machine_state())

    def child_started(self, pid: int) -> None:
        """Start sampling the child's session (its pid: the runner starts a new session)."""
        self._session, self._members, self._members_read = pid, [str(pid)], -math.inf
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
        conditions.load_after, conditions.others_after, conditions.calibration_after = (
            self._machine_state())
        with self._lock:
            self._totals.fill(conditions)
        conditions.threads = self.threads
        conditions.verdict, conditions.reasons = judge(conditions)
        return conditions

    # ------------------------------------------------------------ internals --

    def _machine_state(self) -> tuple[float | None, float | None, Calibration | None]:
        """Load average, other processes' runnable tasks, then the calibration kernel (if
        asked): in that order, so that the kernel's own load is not measured."""
        load, others = load_average(), _float(others_runnable(0))
        calibration = (calibrate(self.workers, self.conditions.cpu_model) if self.calibration
                       else None)
        return load, others, calibration

    def _read_tasks(self) -> dict[int, TaskStat]:
        if self._session is None:
            return {}
        now = time.monotonic()
        if now - self._members_read >= MEMBERS_EVERY_S:
            # every process on the machine is read to find the session's: not at every sample
            self._members, self._members_read = session_members(self._session), now
        tasks = session_tasks(self._session, self._members)
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
    times: tuple[int, int] = (0, 0)  # as _Window.times: (all CPU ticks, stolen ticks)
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
            (ticks, stolen), (ticks0, stolen0) = self.times, start.times
            ticks1, stolen1 = end.times
            self.times = (ticks + ticks1 - ticks0, stolen + stolen1 - stolen0)
        if start.pressure_us is not None and end.pressure_us is not None:
            self.pressure_us += end.pressure_us - start.pressure_us
        self.seconds += end.clock - start.clock

    def fill(self, conditions: RunConditions) -> None:
        busy = self.cpu_ns + self.wait_ns
        conditions.wait_share = round(self.wait_ns / busy, 4) if busy else None
        ticks, stolen = self.times
        conditions.steal_share = round(stolen / ticks, 4) if ticks else None
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
