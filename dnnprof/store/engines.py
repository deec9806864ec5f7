"""Two engines behind one query layer: DuckDB in-process (the default) and Apache Spark.

An engine does two things: `load` a table (a set of the store's Parquet files, read in
place) under its name, and run one SQL text (dnnprof.store.queries) over the loaded
tables. Parameters are written `:name` in that text; Spark takes them as they are, DuckDB
as `$name`. Results come back as pandas frames in one normal form (UTC timestamps,
tuples for arrays, Python strings), built from each engine's Arrow answer, so both
engines' answers compare equal.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dnnprof.store.files import StoreError
from dnnprof.store.schema import PARTITIONS, columns_of, spark_ddl

ENGINES = ("duckdb", "spark")
DEFAULT_ENGINE = "duckdb"
DEFAULT_SPARK_MASTER = "local[*]"
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_DUCKDB_TYPES = {"STRING": "VARCHAR", "TIMESTAMP": "TIMESTAMPTZ", "ARRAY<DOUBLE>": "DOUBLE[]"}
_EXTRAS = {"duckdb": "store", "pyspark": "spark"}


@dataclass(frozen=True)
class TableSource:
    """One table's files for an engine to read, and the columns to keep."""

    table: str
    files: tuple[str, ...]  # every run file (path or URL): what DuckDB reads
    directories: tuple[str, ...]  # the partition folders holding them: what Spark lists
    base: str  # the table's root folder: partition columns are named from there
    columns: tuple[str, ...]  # stored and partition columns to keep
    run_ids: tuple[str, ...] | None = None  # only these runs' rows (a part holds many)


class Engine(ABC):
    """Loads the store's tables and answers SQL over them."""

    name: str

    @abstractmethod
    def load(self, source: TableSource) -> None:
        """Make `source.table` queryable (read once, kept for the queries that follow)."""

    @abstractmethod
    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        """The engine's answer to the SQL as an Arrow table."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """One SQL text of dnnprof.store.queries, answered in the normal form."""
        return normalize(self._run(sql, params or {}))

    @abstractmethod
    def close(self) -> None:
        """Release what the engine holds (Spark's session outlives it: it is shared)."""


def open_engine(name: str = DEFAULT_ENGINE, *, spark_master: str | None = None,
                filesystem: Any = None) -> Engine:
    """An engine by name; StoreError when its package is not installed."""
    if name == "duckdb":
        _require("duckdb")
        return DuckDBEngine(filesystem)
    if name == "spark":
        _require("pyspark")
        if filesystem is not None and getattr(filesystem, "protocol", "") in ("memory",):
            raise StoreError("Spark cannot read an in-memory fsspec store; use --engine duckdb")
        return SparkEngine(spark_master or os.environ.get("DNNPROF_SPARK_MASTER")
                           or DEFAULT_SPARK_MASTER)
    raise StoreError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def _require(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise StoreError(f"the {package} engine is not installed: "
                         f"pip install 'dnnprof[{_EXTRAS[package]}]'")


class DuckDBEngine(Engine):
    """DuckDB in this process: SQL over the Parquet files in place, no server."""

    name = "duckdb"

    def __init__(self, filesystem: Any = None) -> None:
        import duckdb

        self._duckdb = duckdb
        self.connection = duckdb.connect(":memory:")
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute("SET enable_progress_bar = false")  # stdout is the command's
        # every query says its order; keeping the files' row order while reading thousands of
        # them in parallel costs several times the memory (measured: 610 MB against 140 MB)
        self.connection.execute("SET preserve_insertion_order = false")
        if filesystem is not None:  # an fsspec store (object storage): read through it
            self.connection.register_filesystem(filesystem)

    def load(self, source: TableSource) -> None:
        """A temporary table with the source's columns (empty, typed, when it has no file)."""
        columns = ", ".join(source.columns)
        if not source.files:
            types = {c.name: c.sql for c in columns_of(source.table)}
            types.update(dict.fromkeys(PARTITIONS, "STRING"))
            ddl = ", ".join(f"{c} {_DUCKDB_TYPES.get(types[c], types[c])}"
                            for c in source.columns)
            self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {source.table} ({ddl})")
            return
        hive_types = "{" + ", ".join(f"'{p}': 'VARCHAR'" for p in PARTITIONS) + "}"
        params: dict[str, Any] = {"files": list(source.files)}
        only = ""
        if source.run_ids is not None:
            only, params["run_ids"] = " WHERE list_contains($run_ids, run_id)", list(source.run_ids)
        try:
            self.connection.execute(
                f"CREATE OR REPLACE TEMP TABLE {source.table} AS SELECT {columns} FROM "
                f"read_parquet($files, hive_partitioning = true, hive_types = {hive_types})"
                f"{only}", params,
            )
        except self._duckdb.Error as exc:  # a damaged or foreign file under a run's name
            raise StoreError(f"cannot read the store's {source.table} table: {exc}") from None

    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        relation = self.connection.sql(_PARAMETER.sub(r"$\1", sql), params=params)
        # DuckDB 2 names it to_arrow_table; 1.x, arrow
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        return fetch()

    def close(self) -> None:
        """Close the in-memory database."""
        self.connection.close()


class SparkEngine(Engine):
    """Apache Spark (pyspark): the same SQL, on a local or remote Spark master."""

    name = "spark"

    def __init__(self, master: str) -> None:
        self.master = master
        self.spark = spark_session(master)
        self._cached: list[Any] = []

    def load(self, source: TableSource) -> None:
        """A cached temporary view over the source's partition folders."""
        if source.directories:
            frame = (self.spark.read.schema(spark_ddl(source.table))
                     .option("basePath", source.base).parquet(*source.directories))
        else:
            frame = self.spark.createDataFrame([], spark_ddl(source.table))
        if source.run_ids is not None:
            frame = frame.where(frame["run_id"].isin(list(source.run_ids)))
        frame = frame.select(*source.columns).cache()
        self._cached.append(frame)
        frame.createOrReplaceTempView(source.table)

    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        from pyspark.errors import PySparkException

        try:
            return self.spark.sql(sql, args=params).toArrow()
        except PySparkException as exc:
            if "FAILED_READ_FILE" in str(exc) or "PARQUET" in str(exc).upper():
                raise StoreError(f"Spark cannot read the store: {_first_line(exc)}") from None
            raise

    def close(self) -> None:
        """Drop the cached tables (the session stays for the next engine)."""
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()


_SESSIONS: dict[str, Any] = {}


def spark_session(master: str) -> Any:
    """One SparkSession per master for the whole process (starting one takes seconds)."""
    if master in _SESSIONS:
        return _SESSIONS[master]
    # results leave Spark as Arrow (toArrow), never through its pandas conversion, so its
    # warning about the pandas version does not concern us
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master).appName("dnnprof")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # partition values are names: never guess they are numbers or dates
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("DNNPROF_SPARK_PARTITIONS", "8"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    try:
        session = builder.getOrCreate()
    except PySparkRuntimeError as exc:
        raise StoreError(f"Spark did not start ({_first_line(exc)}); Spark 4 needs Java 17 "
                         "or newer (Debian: apt-get install openjdk-17-jre-headless)") from None
    session.sparkContext.setLogLevel("ERROR")
    _SESSIONS[master] = session
    return session


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def normalize(table: Any) -> pd.DataFrame:
    """An Arrow answer in the one form both engines share: UTC timestamps, int64 and float64
    (Python ints or None where a join left a gap), tuples for arrays, Python str/None."""
    import pyarrow as pa
    import pyarrow.types as types

    out: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if types.is_timestamp(kind):
            stamps = column.cast(pa.timestamp("us", tz="UTC")).to_pandas()
            out[name] = pd.Series(stamps, dtype="datetime64[us, UTC]")
        elif types.is_floating(kind):
            out[name] = pd.Series(column.to_numpy(zero_copy_only=False), dtype="float64")
        elif (types.is_integer(kind) or types.is_boolean(kind)) and column.null_count == 0:
            out[name] = pd.Series(column.to_numpy(zero_copy_only=False),
                                  dtype="bool" if types.is_boolean(kind) else "int64")
        elif types.is_list(kind) or types.is_large_list(kind):
            out[name] = pd.Series([None if v is None else tuple(float(x) for x in v)
                                   for v in column.to_pylist()], dtype=object)
        else:  # text, and integers with gaps: Python values, None for NULL
            out[name] = pd.Series(column.to_pylist(), dtype=object)
    return pd.DataFrame(out, index=pd.RangeIndex(table.num_rows))
