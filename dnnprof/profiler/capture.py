"""Run the child (once, or once per `--repeat`) into `verbose.log`, then parse that file.

The child writes its stdout straight into `verbose.log`: no pipe, so no wake-up of this
process per line, and nothing is parsed while the workload runs. On a machine with as
many CPUs as the workload has threads, reading a pipe line by line and parsing it as it
came made the workload's threads wait for a CPU 20-27 % of their timed iterations and
stretched them up to 1.7x. This process only follows the file a few times a tenth of a
second for the markers (progress, phase windows of the conditions recorder); the log is
parsed once the children have ended, a line at a time, so memory stays bounded however
long the run. Repetitions append to the one file and make one trace (the child numbers
its iterations from `--first-iteration`). stderr goes to `stderr.log`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dnnprof import markers
from dnnprof.errors import DnnprofError
from dnnprof.parsers.stream import parse_to_trace
from dnnprof.profiler.recorder import ConditionsRecorder
from dnnprof.trace import Trace
from dnnprof.vocabulary import ExitCode

VERBOSE_LOG = "verbose.log"
STDERR_LOG = "stderr.log"
# How often the log is read for markers while a child runs: seldom enough to cost the
# workload nothing measurable, often enough for a live progress bar and phase windows.
FOLLOW_S = 0.02


class RunError(DnnprofError):
    """A run that cannot start (no interpreter, no workload); `exit_code` says how it ended."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Capture:
    """What the children printed, parsed, and how the last one ended."""

    trace: Trace
    returncode: int
    interrupted: bool
    runs: int  # children that ran (fewer than asked when one failed or Ctrl-C stopped it)


def capture(
    argvs: Sequence[list[str]],
    env: dict[str, str],
    run_dir: Path,
    on_line: Callable[[str], None] | None = None,
    recorder: ConditionsRecorder | None = None,
    cpus: Sequence[int] | None = None,
) -> Capture:
    """Run each argv in turn (stopping at the first that fails) into one log and one trace.

    `cpus`: pin each child to these CPUs (its threads inherit the affinity).
    """
    log_path = run_dir / VERBOSE_LOG
    log_path.write_bytes(b"")
    returncode, interrupted, runs = 0, False, 0
    with (run_dir / STDERR_LOG).open("wb") as err:
        for argv in argvs:
            runs += 1
            returncode, interrupted = _one_child(argv, env, log_path, err, on_line,
                                                 recorder, cpus)
            if returncode != ExitCode.OK or interrupted:
                break
    return Capture(parse_to_trace(log_path, str(log_path)), returncode, interrupted, runs)


def _one_child(
    argv: list[str], env: dict[str, str], log_path: Path, err: BinaryIO,
    on_line: Callable[[str], None] | None, recorder: ConditionsRecorder | None,
    cpus: Sequence[int] | None,
) -> tuple[int, bool]:  # fmt: skip
    offset = log_path.stat().st_size
    try:
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=err, env=env,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
    except OSError as exc:
        raise RunError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    if cpus:
        # set before the interpreter has started a thread: every thread inherits it
        os.sched_setaffinity(process.pid, cpus)
    if recorder is not None:
        recorder.child_started(process.pid)
    interrupted = False
    try:
        _follow(process, log_path, offset, on_line, recorder)
    except KeyboardInterrupt:
        interrupted = True  # stop the child, keep what it printed
        _stop(process)
    returncode = process.wait()
    if recorder is not None:
        recorder.child_ended()
    return returncode, interrupted


def _follow(process: subprocess.Popen[bytes], log_path: Path, offset: int,
            on_line: Callable[[str], None] | None,
            recorder: ConditionsRecorder | None) -> None:
    """Read what the child appends to the log, every FOLLOW_S, until it ends; hand the
    marker lines on. Only marker lines are looked at: the rest is parsed afterwards."""
    prefix = markers.PREFIX.encode()
    pending = b""
    with log_path.open("rb") as log:
        log.seek(offset)
        while True:
            ended = process.poll() is not None
            pending += log.read()
            if prefix in pending:
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    if raw.startswith(prefix):
                        line = raw.decode("utf-8", "replace") + "\n"
                        if markers.is_marker(line):
                            _marker_seen(line, on_line, recorder)
            else:
                pending = pending[pending.rfind(b"\n") + 1:]
            if ended:
                break
            time.sleep(FOLLOW_S)
    if pending.startswith(prefix):  # a last marker without its newline
        _marker_seen(pending.decode("utf-8", "replace"), on_line, recorder)


def _marker_seen(line: str, on_line: Callable[[str], None] | None,
                 recorder: ConditionsRecorder | None) -> None:
    if recorder is not None:
        marker = markers.Marker.from_line(line)
        if marker is not None and marker.event == markers.PHASE:
            recorder.on_phase(marker.field(0))
    if on_line is not None:
        on_line(line)


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
