"""What every workload child shares: marker writers, command line, timed loop, guarded main.

Standard library only, with dnnprof's stdlib-only `vocabulary` and `markers`: the MXNet child
imports it under an interpreter that has neither torch nor pandas (dnnprof/__init__.py
imports nothing heavy). The runner reads the exit statuses defined here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from dnnprof import markers
from dnnprof.vocabulary import BUILD, MEASURE, RUN, WARMUP, ExitCode

# The child's exit statuses, as the runner reads them: 2 the child refused to run (bad
# arguments, unknown model, a variant this build or CPU cannot run), 3 the workload raised.
REFUSED = ExitCode.USAGE
FAILED = ExitCode.UNREACHABLE


class UsageError(Exception):
    """Bad arguments found after parsing, or a variant this build/CPU cannot run: exit 2."""


# ---------------------------------------------------------------------------- markers


def epoch_ms() -> str:
    """Unix-epoch milliseconds: the clock of ONEDNN_VERBOSE_TIMESTAMP / DNNL_VERBOSE_TIMESTAMP."""
    return f"{time.time() * 1000.0:.3f}"


def _write_line(line: str) -> None:
    # oneDNN writes and flushes its own lines on fd 1: flushing Python's buffer first and
    # writing unbuffered keeps markers and verbose lines in true order
    sys.stdout.flush()
    data = (line + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def emit(event: str, *fields: object) -> None:
    """Write one marker line (see dnnprof.markers) straight to fd 1."""
    _write_line(markers.encode(event, *fields))


def emit_meta(key: str, value: Any) -> None:
    """A `meta` marker: the value as compact JSON."""
    _write_line(markers.encode_meta(key, value))


def emit_metas(values: Mapping[str, Any]) -> None:
    """One `meta` marker per key, in the mapping's order."""
    for key, value in values.items():
        emit_meta(key, value)


def emit_phase(name: str) -> None:
    """A `phase` marker: the phase lasts until the next one."""
    emit(markers.PHASE, name, epoch_ms())


def module_begin(name: str, type_name: str) -> None:
    """A `begin` marker: a module (layer) starts its forward."""
    emit(markers.BEGIN, name, type_name, epoch_ms())


def module_end(name: str, type_name: str) -> None:
    """An `end` marker: a module (layer) finished its forward."""
    emit(markers.END, name, type_name, epoch_ms())


def module_hooks(
    name: str, type_name: str, on_end: Callable[[Any, Any, Any], None] | None = None
) -> tuple[Callable[[Any, Any], None], Callable[[Any, Any, Any], None]]:
    """A forward pre-hook and a forward hook that mark one module's begin and end.

    The signatures are torch's and Gluon's alike; `on_end(module, inputs, output)` runs
    after the `end` marker.
    """

    def before(module: Any, inputs: Any) -> None:
        module_begin(name, type_name)

    def after(module: Any, inputs: Any, output: Any) -> None:
        module_end(name, type_name)
        if on_end is not None:
            on_end(module, inputs, output)

    return before, after


def emit_run_meta(
    args: argparse.Namespace, *, model: str, description: str, variants: list[str],
    threads: int | None, input_shape: Any,
) -> None:  # fmt: skip
    """The meta lines that say what runs: model, variant, batch, threads, input, iterations."""
    emit_metas(
        {
            "model": model,
            "model_description": description,
            "variant": args.variant,
            "variants": variants,
            "batch": args.batch,
            "threads": threads,
            "input_shape": input_shape,
            "warmup": args.warmup,
            "iters": args.iters,
            "argv": sys.argv,
            "pid": os.getpid(),
        }
    )


@contextlib.contextmanager
def build_phase() -> Iterator[None]:
    """Phase `build` around the block; once it succeeds, its duration as `build_seconds`."""
    emit_phase(BUILD)
    started = time.perf_counter()
    yield
    emit_meta("build_seconds", round(time.perf_counter() - started, 4))


# ---------------------------------------------------------------------------- iterations


def iterations(warmup: int, iters: int, first: int = 0) -> Iterator[tuple[int, str]]:
    """(index, 'warmup' | 'measure') for every iteration, warm-ups first, numbered from `first`."""
    for position in range(warmup + iters):
        yield first + position, (WARMUP if position < warmup else MEASURE)


def timed_iterations(
    warmup: int,
    iters: int,
    forward: Callable[[], object],
    crash_after: int | None = None,
    before: Callable[[int], None] | None = None,
    after: Callable[[int], None] | None = None,
    first: int = 0,
) -> list[float]:
    """Run warm-up + measured forwards between iter markers; returns each one's wall ms.

    `first` numbers the iterations from there: the runner's `--repeat` gives each run its
    own numbers, so that the runs' logs follow each other in one trace.
    """
    wall_ms: list[float] = []
    for index, phase in iterations(warmup, iters, first):
        if before is not None:
            before(index - first)
        emit(markers.ITER_BEGIN, index, phase, epoch_ms())
        started = time.perf_counter()
        forward()
        elapsed = (time.perf_counter() - started) * 1000.0
        if crash_after is not None and index - first == crash_after:
            # the hidden --crash-after: lets tests see how the parent copes with a failing child
            raise RuntimeError(f"--crash-after {crash_after}: deliberate crash in iteration {index}")
        emit(markers.ITER_END, index, phase, epoch_ms(), f"{elapsed:.3f}")
        wall_ms.append(round(elapsed, 3))
        if after is not None:
            after(index - first)
    emit_meta("wall_ms", wall_ms)
    return wall_ms


def measure(
    args: argparse.Namespace,
    forward: Callable[[], object],
    before: Callable[[int], None] | None = None,
    after: Callable[[int], None] | None = None,
) -> list[float]:
    """Phase `run`: the --warmup and --iters iterations of `forward`, timed between markers."""
    emit_phase(RUN)
    return timed_iterations(args.warmup, args.iters, forward, args.crash_after, before, after,
                            args.first_iteration)


# ---------------------------------------------------------------------------- command line


def base_parser(
    prog: str, description: str, *, variant: tuple[str, str], threads: str, input_size: str,
    markers_help: str, layer_table: str,
) -> argparse.ArgumentParser:  # fmt: skip
    """The arguments every child takes (`variant` is its (metavar, help)); each adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--model", help="zoo model name (see --list-models)")
    parser.add_argument(
        "--variant", "--variants", dest="variants", action="append", default=[],
        metavar=variant[0], help=variant[1],
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up iterations (default 1)")
    parser.add_argument("--iters", type=int, default=5, help="measured iterations (default 5)")
    parser.add_argument("--threads", type=int, default=None, help=threads)
    parser.add_argument("--input-size", type=int, default=None, help=input_size)
    parser.add_argument("--width", type=float, default=None, help="MobileNet width multiplier")
    parser.add_argument(
        "--markers", action=argparse.BooleanOptionalAction, default=True, help=markers_help
    )
    parser.add_argument("--calib", type=int, default=2, help="int8 calibration batches")
    parser.add_argument("--first-iteration", type=int, default=0, metavar="N",
                        help="number the iterations from N (the runner's --repeat)")
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    parser.add_argument(
        "--layer-table", action=argparse.BooleanOptionalAction, default=True, help=layer_table
    )
    parser.add_argument("--list-models", action="store_true", help="print the zoo and exit")
    # Debug: raise inside iteration N, to test how the parent copes with a crash.
    parser.add_argument("--crash-after", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def parse_checked(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    check: Callable[[argparse.Namespace], None],
) -> argparse.Namespace:
    """Parse `argv`, then `check` it (deriving the child's own fields); a UsageError from
    `check` exits as argparse's own errors do (usage, status 2)."""
    args = parser.parse_args(argv)
    try:
        check(args)
    except UsageError as exc:
        parser.error(str(exc))
    return args


def check_counts(args: argparse.Namespace) -> None:
    """--batch and --iters must be at least 1 (UsageError otherwise)."""
    for name in ("batch", "iters"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")


def variant_names(values: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(as given, lower-cased) for each name in --variant values: repeated, ',' or '+' joined."""
    for value in values:
        for raw in re.split(r"[,+]", value):
            name = raw.strip().lower()
            if name:
                yield raw, name


# ---------------------------------------------------------------------------- main


def guarded_main(script: str, body: Callable[[], int]) -> int:
    """Run a child's body: exit 2 on UsageError, 3 with the traceback on anything else."""
    try:
        return body()
    except UsageError as exc:
        sys.stdout.flush()
        print(f"{script}: error: {exc}", file=sys.stderr)
        return REFUSED
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:  # report anything, then exit 3: the parent keeps what was printed
        sys.stdout.flush()
        traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(Exception):
            emit_meta("error", f"{type(exc).__name__}: {exc}")
        return FAILED


def child_main(
    script: str,
    parse_args: Callable[[], argparse.Namespace],
    list_models: Callable[[], int],
    run: Callable[[argparse.Namespace], int],
) -> int:
    """A child's entry point: parse, then list the zoo or run, inside `guarded_main`."""

    def body() -> int:
        args = parse_args()
        return list_models() if args.list_models else run(args)

    return guarded_main(script, body)
