"""`dnnprof.open`: whatever the user points at — a log, a stored trace, a run folder — as a Trace.

Every command reads its inputs through here, so a path means the same thing everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dnnprof.errors import InputError
from dnnprof.parsers.stream import parse_to_trace
from dnnprof.reconstruct import LayerTableError, reconstruct
from dnnprof.storage import TRACE_FILE, is_stored_trace
from dnnprof.trace import Trace

EXACT_MODES = frozenset({"markers", "align"})  # reconstructions that name layers exactly
# Rows a narrowed trace keeps: every exec line (Trace.exec_events then leaves out graph
# partitions, as on a whole trace)
EXEC_OPS = ("exec",)
# What a narrowed Trace needs for exec_events and steady(), whatever else it is asked for
SELECTION_COLUMNS = ("op", "api", "iteration", "phase")


def open_trace(
    path: str | os.PathLike[str],
    *,
    layers: bool = True,
    model: str | None = None,
    role: str = "input",
    columns: Sequence[str] | None = None,
) -> Trace:
    """A Trace from a verbose log (plain or compressed), a stored trace or a run folder.

    With `layers` (the default), a trace without iterations is reconstructed; with `model`,
    one without exact layer names is aligned to that zoo model's layer table. `role` names
    the input in error messages ("baseline", "new"). With `columns`, the Trace holds only
    the exec lines' rows and those event columns once its iterations are known (what the
    report and the check read: a fraction of a long trace); a stored trace is then read
    that way from the file. Raises InputError saying what to do.
    """
    source = Path(path)
    if not source.exists():
        raise InputError(f"{role} {source}: no such log, trace file or run folder")
    if source.is_dir():
        if not (source / TRACE_FILE).is_file():
            raise InputError(
                f"{role} {source}: a folder without {TRACE_FILE}; pass a run folder written "
                "by `dnnprof trace`, a stored trace or a verbose log"
            )
        stored = True
    else:
        # a .parquet file is meant as a trace: a broken one says so (TraceFileError)
        # instead of being parsed as a log without a single oneDNN line
        stored = is_stored_trace(source) or source.suffix == ".parquet"
    if columns is not None:
        columns = list(dict.fromkeys([*SELECTION_COLUMNS, *columns]))
    if stored and columns is not None and model is None:
        narrow = Trace.load(source, columns=columns, ops=EXEC_OPS)
        if (narrow.events["iteration"] >= 0).any():
            return narrow
        # finding the iterations reads every row (markers, creations): the whole trace
    trace = Trace.load(source) if stored else parse_to_trace(source)
    if model is not None and trace.metadata.reconstruction_mode not in EXACT_MODES:
        trace = _reconstruct(trace, role, model)
    elif layers and not (trace.events["iteration"] >= 0).any():
        trace = _reconstruct(trace, role, None)
    if columns is None or not (layers or (trace.events["iteration"] >= 0).any()):
        return trace  # unlabelled and left so: the caller reconstructs it from every row
    return narrowed(trace, columns)


def narrowed(trace: Trace, columns: Sequence[str]) -> Trace:
    """The trace's exec lines' rows and these columns only (as `open_trace(columns=...)`)."""
    events = trace.events
    keep = {*SELECTION_COLUMNS, *columns}
    rows = events["op"].isin(EXEC_OPS).to_numpy()
    subset = events.loc[rows, [name for name in events.columns if name in keep]]
    return Trace(subset.reset_index(drop=True), trace.metadata)


def _reconstruct(trace: Trace, role: str, model: str | None) -> Trace:
    try:
        return reconstruct(trace, model=model)
    except LayerTableError as exc:
        raise InputError(f"{role}: {exc}") from None
