"""`dnnprof.open`: whatever the user points at — a log, a stored trace, a run folder — as a Trace.

Every command reads its inputs through here, so a path means the same thing everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from dnnprof.errors import InputError
from dnnprof.parsers.stream import parse_to_trace
from dnnprof.reconstruct import LayerTableError, reconstruct
from dnnprof.storage import TRACE_FILE, is_stored_trace
from dnnprof.trace import Trace

EXACT_MODES = frozenset({"markers", "align"})  # reconstructions that name layers exactly


def open_trace(
    path: str | os.PathLike[str],
    *,
    layers: bool = True,
    model: str | None = None,
    role: str = "input",
) -> Trace:
    """A Trace from a verbose log (plain or compressed), a stored trace or a run folder.

    With `layers` (the default), a trace without iterations is reconstructed; with `model`,
    one without exact layer names is aligned to that zoo model's layer table. `role` names
    the input in error messages ("baseline", "new"). Raises InputError saying what to do.
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
        trace = Trace.load(source)
    elif is_stored_trace(source) or source.suffix == ".parquet":
        # a .parquet file is meant as a trace: a broken one says so (TraceFileError)
        # instead of being parsed as a log without a single oneDNN line
        trace = Trace.load(source)
    else:
        trace = parse_to_trace(source)
    if model is not None and trace.metadata.reconstruction_mode not in EXACT_MODES:
        return _reconstruct(trace, role, model)
    if layers and not (trace.events["iteration"] >= 0).any():
        return _reconstruct(trace, role, None)
    return trace


def _reconstruct(trace: Trace, role: str, model: str | None) -> Trace:
    try:
        return reconstruct(trace, model=model)
    except LayerTableError as exc:
        raise InputError(f"{role}: {exc}") from None
