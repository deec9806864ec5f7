"""What every workload child shares: the #DNNPROF marker writers, exit codes, the guarded main.

Standard library only: the MXNet child imports it under an interpreter that has neither
torch nor pandas (dnnprof/__init__.py imports nothing heavy).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

EXIT_OK, EXIT_USAGE, EXIT_FAILED = 0, 2, 3


class UsageError(Exception):
    """Bad arguments found after parsing, or a variant this build/CPU cannot run: exit 2."""


def epoch_ms() -> str:
    """Unix-epoch milliseconds: the clock of ONEDNN_VERBOSE_TIMESTAMP / DNNL_VERBOSE_TIMESTAMP."""
    return f"{time.time() * 1000.0:.3f}"


def emit(*fields: object) -> None:
    """Write one ``#DNNPROF,...`` line straight to fd 1, after anything Python buffered."""
    # oneDNN writes and flushes its own lines on fd 1: flushing Python's buffer first and
    # writing unbuffered keeps markers and verbose lines in true order
    sys.stdout.flush()
    data = ("#DNNPROF," + ",".join(str(field) for field in fields) + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def emit_meta(key: str, value: Any) -> None:
    """``#DNNPROF,meta,<key>,<json>``: the value is everything after the third comma."""
    emit("meta", key, json.dumps(value, separators=(",", ":"), default=str))


def emit_phase(name: str) -> None:
    """``#DNNPROF,phase,<name>,<epoch_ms>``: the phase lasts until the next one."""
    emit("phase", name, epoch_ms())


def iterations(warmup: int, iters: int) -> Iterator[tuple[int, str]]:
    """(index, 'warmup' | 'measure') for every iteration, warm-ups first."""
    for index in range(warmup + iters):
        yield index, ("warmup" if index < warmup else "measure")


def timed_iterations(
    warmup: int,
    iters: int,
    forward: Callable[[], object],
    crash_after: int | None = None,
    before: Callable[[int], None] | None = None,
    after: Callable[[int], None] | None = None,
) -> list[float]:
    """Run warm-up + measured forwards between iter markers; returns each one's wall ms."""
    wall_ms: list[float] = []
    for index, kind in iterations(warmup, iters):
        if before is not None:
            before(index)
        emit("iter_begin", index, kind, epoch_ms())
        started = time.perf_counter()
        forward()
        elapsed = (time.perf_counter() - started) * 1000.0
        if crash_after is not None and index == crash_after:
            # the hidden --crash-after: lets tests see how the parent copes with a failing child
            raise RuntimeError(f"--crash-after {crash_after}: deliberate crash in iteration {index}")
        emit("iter_end", index, kind, epoch_ms(), f"{elapsed:.3f}")
        wall_ms.append(round(elapsed, 3))
        if after is not None:
            after(index)
    emit_meta("wall_ms", wall_ms)
    return wall_ms


def guarded_main(script: str, body: Callable[[], int]) -> int:
    """Run a child's body: exit 2 on UsageError, 3 with the traceback on anything else."""
    try:
        return body()
    except UsageError as exc:
        sys.stdout.flush()
        print(f"{script}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # report anything, then exit 3: the parent keeps what was printed
        sys.stdout.flush()
        traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(Exception):
            emit_meta("error", f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
