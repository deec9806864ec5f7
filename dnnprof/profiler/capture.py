"""Run the child (once, or once per `--repeat`) and stream its stdout into the parser.

Each line goes to `verbose.log` and to one TraceBuilder, so memory stays bounded however
long the run; the repetitions' logs follow each other in that one file and one trace
(the child numbers its iterations from `--first-iteration`). stderr goes to `stderr.log`.
The conditions recorder samples each child while it runs and sees its phase markers.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnnprof import markers
from dnnprof.errors import DnnprofError
from dnnprof.parsers.stream import TraceBuilder
from dnnprof.profiler.recorder import ConditionsRecorder
from dnnprof.trace import Trace
from dnnprof.vocabulary import ExitCode

VERBOSE_LOG = "verbose.log"
STDERR_LOG = "stderr.log"


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
    builder = TraceBuilder(str(run_dir / VERBOSE_LOG))
    returncode, interrupted, runs = 0, False, 0
    with (
        (run_dir / VERBOSE_LOG).open("w", encoding="utf-8") as log,
        (run_dir / STDERR_LOG).open("wb") as err,
    ):
        for argv in argvs:
            runs += 1
            returncode, interrupted = _one_child(argv, env, log, err, builder, on_line,
                                                 recorder, cpus)
            if returncode != ExitCode.OK or interrupted:
                break
    return Capture(builder.finish(), returncode, interrupted, runs)


def _one_child(
    argv: list[str], env: dict[str, str], log: object, err: object, builder: TraceBuilder,
    on_line: Callable[[str], None] | None, recorder: ConditionsRecorder | None,
    cpus: Sequence[int] | None,
) -> tuple[int, bool]:  # fmt: skip
    try:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, env=env,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise RunError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    assert process.stdout is not None
    if cpus:
        # set before the interpreter has started a thread: every thread inherits it
        os.sched_setaffinity(process.pid, cpus)
    if recorder is not None:
        recorder.child_started(process.pid)

    def lines() -> Iterator[str]:
        # every line goes to verbose.log as it comes, then to the parser's own loop
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            log.write(line)  # type: ignore[attr-defined]
            if markers.is_marker(line):
                _marker_seen(line, on_line, recorder)
            yield line

    interrupted = False
    try:
        builder.feed_lines(lines())
    except KeyboardInterrupt:
        interrupted = True  # stop the child, keep what it printed
        _stop(process)
    returncode = process.wait()
    if recorder is not None:
        recorder.child_ended()
    return returncode, interrupted


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
