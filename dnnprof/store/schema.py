"""The store's layout and schema: tables, columns, partitions, versions (docs/store.md).

A store is a directory (or an fsspec URL) holding one Hive-partitioned Parquet dataset per
table, one file per run in each:

    STORE/dnnprof-store.json                                   {"schema_version": 1, ...}
    STORE/runs/model=M/variant=V/run_date=D/run-<id>.parquet   one row: the run
    STORE/layers/model=M/variant=V/run_date=D/run-<id>.parquet one row per layer
    STORE/events/model=M/variant=V/run_date=D/run-<id>.parquet steady exec events (optional)

`dnnprof store compact` merges a partition's run files into one `part-<digest>.parquet`
whose footer lists its run ids (PART_RUNS_KEY): thousands of small files cost an engine
far more to open than one large one. A run in a part file and in a run file (a compaction
caught half-way, or a run added again) is read once.

The columns are declared once, here, with their Arrow type (what the writer writes) and
their SQL type (what Spark is told to read); DuckDB reads the files' own schema. Column
names avoid SQL keywords of either engine (`run_time`, not `time`; `git_commit`, not
`commit`) so that one SQL text runs on both.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

SCHEMA_VERSION = 1
MARKER = "dnnprof-store.json"
TABLES = ("runs", "layers", "events")
PARTITIONS = ("model", "variant", "run_date")
COMPACT_LOCK = ".dnnprof-compact.lock"  # at the root while a compaction runs
RUN_FILE = re.compile(r"^run-(?P<run_id>[A-Za-z0-9._-]+)\.parquet$")
PART_FILE = re.compile(r"^part-[0-9a-f]{16}\.parquet$")
PART_RUNS_KEY = b"dnnprof_runs"  # a part file's footer: the JSON list of its run ids
# a file being written: hidden from both engines (dot prefix, .tmp suffix)
TEMP_FILE = re.compile(r"^\.(run|part)-[A-Za-z0-9._-]+\.parquet\.[0-9a-f-]+\.tmp$")
# partition values become directory names that both engines parse back unchanged
PARTITION_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Column:
    """One stored column: its name, SQL type (Spark DDL) and what it holds."""

    name: str
    sql: str  # STRING | DOUBLE | INT | BIGINT | BOOLEAN | TIMESTAMP | ARRAY<DOUBLE>
    doc: str


SCHEMA_VERSION_COLUMN = Column("schema_version", "INT", "store schema the row was written with")
# the layers and events tables: each row starts with the run it belongs to
RUN_KEY_COLUMNS = (Column("run_id", "STRING", "the run"), SCHEMA_VERSION_COLUMN)
RUN_COLUMNS = (
    Column("run_id", "STRING", "the run's identity (a hash of its events unless given)"),
    SCHEMA_VERSION_COLUMN,
    Column("run_time", "TIMESTAMP", "when the run was measured (UTC)"),
    Column("added_time", "TIMESTAMP", "when it was added to the store (UTC)"),
    Column("git_commit", "STRING", "commit measured ('' when unknown)"),
    Column("git_branch", "STRING", "branch ('' when unknown)"),
    Column("runner", "STRING", "runner class: runs are compared within one runner class"),
    Column("host", "STRING", "host name"),
    Column("cpu_model", "STRING", "CPU model name"),
    Column("isa", "STRING", "oneDNN's ISA line"),
    Column("threads", "INT", "oneDNN threads (-1 when unknown)"),
    Column("framework", "STRING", "framework that ran the model"),
    Column("framework_version", "STRING", "its version"),
    Column("route", "STRING", "how the variant was built"),
    Column("onednn_version", "STRING", "oneDNN version from the log"),
    Column("dnnprof_version", "STRING", "dnnprof that stored the run"),
    Column("conditions", "STRING", "run-condition verdict: quiet, busy, unreliable, unknown"),
    Column("source", "STRING", "the log, trace or run folder it came from"),
    Column("reconstruction", "STRING", "how layers were found: markers, align, heuristic"),
    Column("iterations", "INT", "steady-state iterations measured"),
    Column("median_ms", "DOUBLE", "median over steady iterations of oneDNN time per iteration"),
    Column("samples", "ARRAY<DOUBLE>", "oneDNN time of each steady iteration (ms)"),
    Column("layer_count", "INT", "layers in the layers table"),
    Column("structure", "STRING", "fingerprint of every layer's structure, in order"),
    Column("has_events", "BOOLEAN", "steady exec events stored in events/"),
    Column("metadata", "STRING", "the trace's metadata (JSON, without its layer table)"),
)
LAYER_COLUMNS = (
    *RUN_KEY_COLUMNS,
    Column("layer", "STRING", "layer (module) name"),
    Column("layer_index", "INT", "execution order within the iteration"),
    Column("layer_type", "STRING", "module type"),
    Column("kinds", "STRING", "primitive kinds, reorders excluded, joined with +"),
    Column("calls", "INT", "primitive executions per iteration, reorders included"),
    Column("median_ms", "DOUBLE", "median over steady iterations of the layer's time"),
    Column("samples", "ARRAY<DOUBLE>", "the layer's time in each steady iteration (ms)"),
    Column("src_dt", "STRING", "source data type of its first compute primitive"),
    Column("wei_dt", "STRING", "weights data type"),
    Column("dst_dt", "STRING", "destination data type"),
    Column("post_ops", "STRING", "post-ops of its primitives, joined with +"),
    Column("impl", "STRING", "implementation of its first compute primitive"),
    Column("isa", "STRING", "ISA of that implementation"),
    Column("reorders", "INT", "reorders per iteration"),
    Column("fused_layers", "STRING", "layers folded into it, joined with +"),
    Column("signature", "STRING", "all of the above structure as one string"),
)
# the events table: RUN_KEY_COLUMNS, then the trace's event columns (types from dnnprof.trace)
EVENT_NUMERIC = {
    "line": "INT", "desc_id": "INT", "iteration": "INT", "ts_ms": "DOUBLE",
    "start_ms": "DOUBLE", "duration_ms": "DOUBLE", "flops": "DOUBLE",
    "has_scales": "BOOLEAN", "has_zero_points": "BOOLEAN", "is_reorder": "BOOLEAN",
}


def event_columns() -> tuple[Column, ...]:
    """The events table's columns: run_id, schema_version, then every trace event column."""
    from dnnprof.trace import EVENT_COLUMNS

    return RUN_KEY_COLUMNS + tuple(
        Column(name, EVENT_NUMERIC.get(name, "STRING"), "see docs/trace-schema.md")
        for name in EVENT_COLUMNS
    )


def columns_of(table: str) -> tuple[Column, ...]:
    """The stored (non-partition) columns of a table."""
    if table == "runs":
        return RUN_COLUMNS
    if table == "layers":
        return LAYER_COLUMNS
    return event_columns()


def spark_ddl(table: str) -> str:
    """The table's schema as Spark DDL, partition columns last (always read as strings)."""
    stored = [f"{c.name} {c.sql}" for c in columns_of(table)]
    return ", ".join(stored + [f"{p} STRING" for p in PARTITIONS])


def arrow_schema(table: str) -> pa.Schema:
    """The table's file schema as Arrow types (partition columns are in the path, not here)."""
    import pyarrow as pa

    types = {
        "STRING": pa.string(), "DOUBLE": pa.float64(), "INT": pa.int32(),
        "BIGINT": pa.int64(), "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "ARRAY<DOUBLE>": pa.list_(pa.float64()),
    }
    schema = pa.schema([pa.field(c.name, types[c.sql]) for c in columns_of(table)])
    return schema.with_metadata({b"dnnprof_store_schema": str(SCHEMA_VERSION).encode()})


def partition_path(table: str, model: str, variant: str, run_date: str) -> str:
    """`table/model=M/variant=V/run_date=D`, relative to the store root."""
    return f"{table}/model={model}/variant={variant}/run_date={run_date}"


def run_file(run_id: str) -> str:
    """The file name of one run's rows in a partition."""
    return f"run-{run_id}.parquet"


def part_file(run_ids: list[str]) -> str:
    """The file name of a compacted part holding these runs."""
    digest = hashlib.sha256("\n".join(sorted(run_ids)).encode()).hexdigest()[:16]
    return f"part-{digest}.parquet"
