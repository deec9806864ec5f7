"""The calibration kernel: a fixed piece of work timed before and after a run.

Each worker is a fresh interpreter running the same pure-Python loop (no framework, no
memory traffic worth the name), so its time depends on one thing: how much CPU it got.
As many workers run at once as the workload has threads, so that a machine with one busy
core out of two shows up for a two-thread workload. The fastest repetition this machine
has ever shown is its quiet-machine figure, kept in $DNNPROF_CACHE/calibration.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dnnprof.files import cache_dir
from dnnprof.metadata import Calibration

REPETITIONS = 30
# Bump when the kernel changes: its quiet figure is no longer comparable.
KERNEL_VERSION = 1
# Each worker sleeps until this far ahead, so that all of them run the loop together
# (interpreter start-up takes tens of milliseconds).
START_AHEAD_S = 0.25
_KERNEL = """
import json, sys, time
def thread_schedstat():
    try:
        with open("/proc/thread-self/schedstat") as f:
            cpu, wait = f.read().split()[:2]
        return int(cpu), int(wait)
    except (OSError, ValueError):
        return None
def kernel():
    x = 0
    for i in range(60000):
        x = (x * 31 + i) & 0xFFFFF
    return x
reps, start_at = int(sys.argv[1]), float(sys.argv[2])
while time.time() < start_at:
    time.sleep(0.002)
first = thread_schedstat()
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    kernel()
    times.append((time.perf_counter() - t0) * 1000.0)
last = thread_schedstat()
delta = [b - a for a, b in zip(first, last)] if first and last else None
print(json.dumps({"ms": times, "cpu_ns": delta and delta[0], "wait_ns": delta and delta[1]}))
"""


def cache_file() -> Path:
    """Where the quiet-machine figures are kept (one per CPU model and interpreter)."""
    return cache_dir() / "calibration.json"


def calibrate(workers: int, cpu_model: str | None, repetitions: int = REPETITIONS) -> Calibration:
    """Run the kernel on `workers` interpreters at once; its time against the quiet figure."""
    workers = max(1, workers)
    start_at = f"{time.time() + START_AHEAD_S:.6f}"
    argv = [sys.executable, "-I", "-S", "-c", _KERNEL, str(repetitions), start_at]
    processes = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
        for _ in range(workers)
    ]  # fmt: skip
    results = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode == 0:
            results.append(json.loads(out))
    times = [ms for result in results for ms in result["ms"]]
    if not times:
        return Calibration(workers=workers)
    median = statistics.median(times)
    quiet = _quiet_figure(cpu_model, min(times))
    cpu = sum(r["cpu_ns"] or 0 for r in results)
    wait = sum(r["wait_ns"] or 0 for r in results)
    return Calibration(
        workers=workers, median_ms=round(median, 4), quiet_ms=round(quiet, 4),
        slowdown=round(median / quiet, 3) if quiet > 0 else None,
        wait_share=round(wait / (cpu + wait), 4) if cpu + wait > 0 else None,
    )  # fmt: skip


def _quiet_figure(cpu_model: str | None, fastest_now: float) -> float:
    """The fastest repetition ever seen here (this one included); remembered when possible."""
    key = f"{cpu_model or platform.machine()}|{platform.python_implementation()} " \
          f"{platform.python_version()}|kernel {KERNEL_VERSION}"
    path = cache_file()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    best = known.get(key)
    if isinstance(best, int | float) and 0 < best <= fastest_now:
        return float(best)
    known[key] = round(fastest_now, 4)
    try:  # a read-only home only means the figure is not remembered
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(known, indent=1))
        temporary.replace(path)
    except OSError:
        pass
    return fastest_now
