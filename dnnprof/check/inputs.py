"""Reading the two sides of a check, and writing baselines small enough to commit."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnnprof import __version__
from dnnprof.check.steady import SteadyStateError, steady_state
from dnnprof.trace import TRACE_FILE, Trace, TraceFileError, normalize_events

PARQUET_MAGIC = b"PAR1"
LOG_SUFFIXES = (".log", ".txt", ".gz", ".out")


class CheckInputError(Exception):
    """A trace, run folder or log that cannot be used; the message says what to do."""


def load_input(path: str | os.PathLike[str], role: str, model: str | None = None) -> Trace:
    """A Trace from a stored trace, a run folder or a raw verbose log; CheckInputError if not.

    With `model`, a trace without exact layer names (a log, or a heuristic reconstruction)
    is aligned with that zoo model's layer table, so findings carry module names.
    """
    trace = _load(Path(path), role)
    if model is None:
        return trace
    mode = (trace.metadata.get("reconstruction") or {}).get("mode")
    if mode in ("markers", "align"):
        return trace
    from dnnprof.reconstruct import LayerTableError, reconstruct

    try:
        return reconstruct(trace, model=model)
    except LayerTableError as exc:
        raise CheckInputError(f"{role}: {exc}") from None


def _load(source: Path, role: str) -> Trace:
    if not source.exists():
        hint = (
            "; create one with `dnnprof baseline save RUN --to PATH`"
            if role == "baseline" else ""
        )
        raise CheckInputError(f"{role} {source}: no such trace, run folder or log{hint}")
    if source.is_dir() and not (source / TRACE_FILE).is_file():
        raise CheckInputError(
            f"{role} {source}: a folder without {TRACE_FILE}; pass a run folder written by "
            "`dnnprof trace` or a trace file"
        )
    if source.is_file() and _looks_like_log(source):
        return _parse_log(source, role)
    try:
        return Trace.load(source)
    except TraceFileError as exc:
        raise CheckInputError(f"{role}: {exc}") from None


def _looks_like_log(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CheckInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == PARQUET_MAGIC:
        return False
    return path.name.endswith(LOG_SUFFIXES)


def _parse_log(path: Path, role: str) -> Trace:
    from dnnprof.errors import LogReadError
    from dnnprof.parsers.stream import parse_to_trace

    try:
        trace = parse_to_trace(path)
    except LogReadError as exc:
        raise CheckInputError(f"{role}: {exc}") from None
    if trace.exec_events.empty:
        raise CheckInputError(
            f"{role} {path}: no oneDNN exec lines in this log (was ONEDNN_VERBOSE set, and did "
            "the workload reach oneDNN?)"
        )
    return trace


def baseline_trace(trace: Trace) -> Trace:
    """The steady-state exec rows only, with their iterations labelled, ready to commit."""
    try:
        state = steady_state(trace)
    except SteadyStateError as exc:
        raise CheckInputError(str(exc)) from None
    rows = state.rows
    events = state.trace.events.loc[rows.index].copy()
    # label what was found, so that loading the baseline needs no guessing
    events["iteration"] = rows["iter"].to_numpy(dtype=np.int32)
    events["phase"] = pd.Categorical(["measure"] * len(events))
    events = normalize_events(events.reset_index(drop=True))
    for column in events.columns:
        if isinstance(events[column].dtype, pd.CategoricalDtype):
            events[column] = events[column].cat.remove_unused_categories()
    metadata = state.trace.metadata.copy()
    metadata.baseline = {
        "from": str(trace.metadata.source),
        "iterations": len(state.iterations),
        "iterations_found_by": state.method,
        "notes": state.notes,
        "written_by": f"dnnprof {__version__}",
    }
    metadata.unparsed_samples = []  # a baseline is not where a parse problem is studied
    return Trace(events, metadata)


def save_baseline(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write `baseline_trace(trace)` to path (a file, or a folder to hold trace.parquet)."""
    return baseline_trace(trace).save(path)
