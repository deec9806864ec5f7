"""Reading the two sides of a check, and writing baselines small enough to commit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dnnprof import __version__
from dnnprof.check.steady import steady_state
from dnnprof.errors import InputError, LogReadError, TraceFileError
from dnnprof.loader import open_trace
from dnnprof.storage import is_stored_trace
from dnnprof.trace import Trace, normalize_events
from dnnprof.vocabulary import MEASURE


class CheckInputError(InputError):
    """A trace, run folder or log that cannot be checked; the message says what to do."""


def load_input(path: str | os.PathLike[str], role: str, model: str | None = None,
               columns: Sequence[str] | None = None) -> Trace:
    """A Trace to check from a stored trace, a run folder or a verbose log (dnnprof.open).

    With `model`, a trace without exact layer names (a log, or a heuristic reconstruction)
    is aligned with that zoo model's layer table, so findings carry module names. A log
    without a single exec line is refused: checking it would pass without measuring anything.
    With `columns` (steady.STEADY_COLUMNS for a check), only what is read is loaded.
    """
    source = Path(path)
    if not source.exists():
        hint = "; create one with `dnnprof baseline save RUN --to PATH`" if role == "baseline" else ""
        raise CheckInputError(f"{role} {source}: no such trace, run folder or log{hint}")
    try:
        # layers=False: steady_state() reconstructs what needs it and reports that it did
        trace = open_trace(source, layers=False, model=model, role=role, columns=columns)
    except (TraceFileError, LogReadError) as exc:  # their messages name the file, not its role
        raise CheckInputError(f"{role}: {exc}") from None
    if source.is_file() and not is_stored_trace(source) and trace.exec_events.empty:
        raise CheckInputError(
            f"{role} {source}: no oneDNN exec lines in this log (was ONEDNN_VERBOSE set, and "
            "did the workload reach oneDNN?)"
        )
    return trace


def baseline_trace(trace: Trace) -> Trace:
    """The steady-state exec rows only, with their iterations labelled, ready to commit."""
    state = steady_state(trace)
    rows = state.rows
    events = state.trace.events.loc[rows.index].copy()
    # label what was found, so that loading the baseline needs no guessing
    events["iteration"] = rows["iter"].to_numpy(dtype=np.int32)
    events["phase"] = pd.Categorical([MEASURE] * len(events))
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
