"""Stored traces: Parquet with the metadata in its schema, a format version, atomic writes.

Every data page carries a CRC-32 checksum, verified on reading: a flipped bit is a
TraceFileError, never a trace with changed numbers (files written before checksums have
none to verify and still load). Writes go through `dnnprof.files.atomic_path`: the old
file survives a failed or killed write, and the new one follows the umask.

Works on an events frame and a TraceMetadata (below the Trace class, which calls it from
`Trace.save`/`Trace.load`). A newer dnnprof reads every older format or says clearly why
it cannot; a trace written by a newer dnnprof is refused with the version it needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dnnprof import __version__
from dnnprof.errors import TraceFileError
from dnnprof.files import atomic_path, check_output
from dnnprof.metadata import TraceMetadata

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT_VERSION = 1
TRACE_FILE = "trace.parquet"  # the name inside a run folder
PARQUET_MAGIC = b"PAR1"

__all__ = ["FORMAT_VERSION", "TRACE_FILE", "TraceFileError", "read_parquet", "write_parquet"]


def is_stored_trace(path: Path) -> bool:
    """True when path is a Parquet file (stored traces need not end in .parquet).

    Only a regular file is looked into: reading the first bytes of a pipe or FIFO would
    take them from the log parser that reads it next.
    """
    if not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(4) == PARQUET_MAGIC
    except OSError:
        return False


ROW_GROUP_ROWS = 1 << 20  # rows per Parquet row group (pyarrow's default), converted at a time
# min/max statistics only where they can skip a row group: rows are in log order, so only
# line and iteration ranges are clustered by row group (every group holds exec rows, convs,
# the steady phase...); on all 38 columns they were a third of the write
STATISTICS_COLUMNS = ("line", "iteration")
FILTER_BATCH_ROWS = 1 << 16  # rows read at a time when only some rows are kept


def write_parquet(
    events: pd.DataFrame, metadata: TraceMetadata, path: str | os.PathLike[str]
) -> Path:
    """Write events + metadata as Parquet atomically (temp file + rename); returns the path.

    Raises OutputError (exit 2) when the file cannot be written, or when it is the log the
    trace was parsed from: never a bare OSError, which a command could mistake for its own
    verdict.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    if target.is_dir():
        target = target / TRACE_FILE
    check_output(target, inputs=[metadata.source])
    meta = metadata.to_dict()
    meta["format_version"] = FORMAT_VERSION
    meta.setdefault("dnnprof_version", __version__)
    # converted to Arrow a row group at a time: a whole ten-million-row frame converted at
    # once is a second copy of the trace in memory
    def table_of(start: int) -> pa.Table:
        part = events.iloc[start : start + ROW_GROUP_ROWS]
        return pa.Table.from_pandas(part, preserve_index=False)

    first = table_of(0)
    schema_meta = dict(first.schema.metadata or {})
    schema_meta[b"dnnprof"] = json.dumps(meta, default=_json_default).encode()
    schema_meta[b"dnnprof_format"] = str(FORMAT_VERSION).encode()
    # a column with no missing value anywhere is declared required: Parquet then writes no
    # definition levels for it (a tenth of the write of 1M rows)
    schema = pa.schema([f.with_nullable(not _required(f, events)) for f in first.schema],
                       metadata=schema_meta)
    with atomic_path(target) as temp, pq.ParquetWriter(
        temp, schema, **writer_options(schema)
    ) as writer:
        for start in range(0, max(len(events), 1), ROW_GROUP_ROWS):
            writer.write_table((first if start == 0 else table_of(start)).cast(schema))
    return target


def _required(field: pa.Field, events: pd.DataFrame) -> bool:
    """Whether a column can be stored as required: a value on every row, and a type that
    has values (an empty frame's text columns are of Arrow's null type, always optional)."""
    import pyarrow as pa

    values = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    return (not pa.types.is_null(values) and field.name in events
            and not bool(events[field.name].isna().any()))


def writer_options(schema: pa.Schema) -> dict[str, Any]:
    """How a trace's Parquet file is written: zstd, a CRC-32 per page, statistics where
    they can skip a row group, dictionary pages for the categorical columns."""
    import pyarrow as pa

    # dictionary pages for the categorical columns only: tried on a million timestamps the
    # encoder builds a hash table of distinct doubles, gives up, and writes them plain anyway
    # (1M rows: 48 MB more memory, a slower write, a larger file)
    dictionary = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    statistics = [name for name in STATISTICS_COLUMNS if name in schema.names]
    return {"compression": "zstd", "write_page_checksum": True,
            "write_statistics": statistics or False, "use_dictionary": dictionary or False}


def read_parquet(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    ops: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, TraceMetadata]:
    """Events + metadata of a stored trace (file or run folder), or TraceFileError saying why.

    With `columns`, only those event columns (of those the file has); with `ops`, only the
    rows whose `op` is one of them, filtered a batch at a time as the file is read: a
    command that reads a few columns of the exec rows holds a fraction of a long trace.
    """
    import pyarrow as pa

    source = Path(path)
    if source.is_dir():
        source = source / TRACE_FILE
    if not source.exists():
        raise TraceFileError(f"{source}: no such trace file")
    try:
        table = _read_table(source, columns, ops)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TraceFileError(
            f"{source}: not a readable dnnprof trace (corrupt or truncated Parquet: "
            f"{_one_line(exc)}); re-create it with `dnnprof parse LOG -o FILE`"
        ) from None
    schema_meta = table.schema.metadata or {}
    if b"dnnprof" not in schema_meta:
        raise TraceFileError(f"{source}: a Parquet file, but not one written by dnnprof")
    try:
        version = int(schema_meta.get(b"dnnprof_format", b"0"))
        metadata = TraceMetadata.from_dict(json.loads(schema_meta[b"dnnprof"]))
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise TraceFileError(f"{source}: damaged dnnprof metadata ({_one_line(exc)})") from None
    if version > FORMAT_VERSION:
        raise TraceFileError(
            f"{source}: written by a newer dnnprof (trace format {version}, this dnnprof "
            f"reads up to {FORMAT_VERSION}); upgrade dnnprof to read it"
        )
    if version < 1:
        raise TraceFileError(f"{source}: unknown trace format version {version}")
    try:
        # a column at a time, each freed from Arrow once converted, none consolidated with
        # others: the trace is in memory once, not twice or three times (`table` is not
        # used again: self_destruct leaves it unusable)
        events = table.to_pandas(split_blocks=True, self_destruct=True)
    # pyarrow rebuilds the frame from the pandas metadata stored in the file: a damaged one
    # fails inside it with a KeyError, TypeError or IndexError as well
    except (pa.ArrowException, ValueError, KeyError, TypeError, IndexError) as exc:
        raise TraceFileError(f"{source}: damaged trace data ({_one_line(exc)})") from None
    return events, metadata


def _read_table(source: Path, columns: Sequence[str] | None,
                ops: Sequence[str] | None) -> pa.Table:
    """The file's table: these columns, the rows of these ops. Rows are filtered a batch at a
    time, so only the rows kept are ever held (a whole read is faster when nothing is left
    out, and takes less memory)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with pq.ParquetFile(source, page_checksum_verification=True) as file:
        schema = file.schema_arrow
        names = schema.names if columns is None else [n for n in columns if n in schema.names]
        if ops is None or "op" not in schema.names:
            return pq.read_table(source, columns=names, page_checksum_verification=True)
        kept = pa.array(list(ops))
        read = list(dict.fromkeys([*names, "op"]))
        batches = [
            batch.filter(pc.is_in(batch.column("op"), value_set=kept)).select(names)
            for batch in file.iter_batches(FILTER_BATCH_ROWS, columns=read)
        ]
    return pa.Table.from_batches(
        batches, schema=pa.schema([schema.field(n) for n in names], metadata=schema.metadata))


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line: Arrow's messages span several (row 25 of issue 12)."""
    return " ".join(str(exc).split())


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
