"""The Store: add runs (atomic, idempotent, safe under concurrent writers) and read them back.

Adding writes a run's events, then its layers, then its `runs` row, each as one new file
(dnnprof.store.files). The `runs` row is written last and every query starts from it, so a
run whose writer died half-way is invisible until the same run is added again.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dnnprof.store.context import RunContext
from dnnprof.store.engines import DEFAULT_ENGINE, Engine, TableSource, open_engine
from dnnprof.store.files import Inventory, StoreError, StoreFiles
from dnnprof.store.queries import newest_schema, runs_in_store
from dnnprof.store.rows import RunRows, run_rows
from dnnprof.store.schema import (
    PARTITIONS,
    SCHEMA_VERSION,
    TABLES,
    arrow_schema,
    columns_of,
    partition_path,
    run_file,
)
from dnnprof.trace import Trace

FOREIGN_SHOWN = 5


@dataclass(frozen=True)
class AddResult:
    """One run added (or found already there)."""

    run_id: str
    model: str
    variant: str
    added: bool  # False: the run was already in the store, nothing written
    path: str  # its runs/ file


class Store:
    """A trace store at a directory or fsspec URL (see docs/store.md)."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.files = StoreFiles(location)
        self.location = self.files.location

    # ------------------------------------------------------------- writing --

    def add(self, trace: Trace, context: RunContext | None = None, *, model: str | None = None,
            variant: str | None = None, run_id: str | None = None,
            events: bool = True) -> AddResult:
        """Add one run; adding a run that is already there changes nothing."""
        rows = run_rows(trace, context or RunContext.from_environment(), model, variant,
                        run_id, events)
        return self.add_rows(rows)

    def add_rows(self, rows: RunRows) -> AddResult:
        """Write one run's files, the `runs` row last (it is what makes the run visible)."""
        self.files.ensure_marker()
        existing = self._find_run(rows)
        if existing is not None:
            return AddResult(rows.run_id, rows.model, rows.variant, False, existing)
        name = run_file(rows.run_id)
        tables: list[tuple[str, Any]] = [("layers", rows.layers), ("runs", [rows.run])]
        if rows.events is not None:
            tables.insert(0, ("events", rows.events))
        path = ""
        for table, data in tables:
            folder = partition_path(table, rows.model, rows.variant, rows.run_date)
            self.files.sweep_unfinished(folder)
            path = f"{folder}/{name}"
            added = self.files.write_new(path, parquet_bytes(table, data))
        return AddResult(rows.run_id, rows.model, rows.variant, added, path)

    def _find_run(self, rows: RunRows) -> str | None:
        """The run's runs/ file when it is in the store already (under any date)."""
        folder = f"runs/model={rows.model}/variant={rows.variant}"
        return self.files.find_run(folder, rows.run_id)

    # ------------------------------------------------------------- reading --

    def reader(self, engine: str | None = None, spark_master: str | None = None) -> Reader:
        """A Reader over the store's current files (DuckDB unless told); a context manager."""
        return Reader(self, engine or DEFAULT_ENGINE, spark_master)

    def runs_table(self, engine: str | None = None,
                   spark_master: str | None = None) -> pd.DataFrame:
        """Per model, variant and runner class: run counts and time span (`store ls`)."""
        with self.reader(engine, spark_master) as reader:
            reader.load("runs", columns=("model", "variant", "runner", "run_time",
                                         "conditions", "has_events", "run_id"))
            return reader.query(runs_in_store())


class Reader:
    """An engine over one inventory of the store: load tables, then query them."""

    def __init__(self, store: Store, engine: str, spark_master: str | None) -> None:
        self.store = store
        self.inventory: Inventory = store.files.inventory()
        if self.inventory.foreign:
            shown = ", ".join(self.inventory.foreign[:FOREIGN_SHOWN])
            more = len(self.inventory.foreign) - FOREIGN_SHOWN
            raise StoreError(
                f"{store.location}: files that are not the store's ({shown}"
                f"{f' and {more} more' if more > 0 else ''}); a store holds only "
                "<table>/model=M/variant=V/run_date=D/run-<id>.parquet files: move them out"
            )
        self.engine: Engine = open_engine(engine, spark_master=spark_master,
                                          filesystem=store.files.fs)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.close()

    def models(self) -> dict[str, set[str]]:
        """Every model in the store, with its variants."""
        found: dict[str, set[str]] = {}
        for stored in self.inventory.files["runs"]:
            found.setdefault(stored.model, set()).add(stored.variant)
        return found

    def load(self, table: str, model: str | None = None, variant: str | None = None,
             run_ids: Iterable[str] | None = None,
             columns: Iterable[str] | None = None) -> int:
        """Load a table's files (of one model, variant, set of runs); returns how many."""
        files = self.inventory.of(table, model, variant)
        shadowed = len(self.inventory.of(table, model, variant, shadowed=True)) > len(files)
        wanted = None if run_ids is None else tuple(sorted(set(run_ids)))
        if wanted is not None:
            files = [f for f in files if set(f.run_ids) & set(wanted)]
        urls = tuple(self.store.files.url(f.path) for f in files)
        if run_ids is not None or shadowed:  # Spark must not list a run's file twice
            folders = urls
        elif model is None:
            folders = (self.store.files.url(table),) if files else ()
        else:
            scope = f"{table}/model={model}" + (f"/variant={variant}" if variant else "")
            folders = (self.store.files.url(scope),) if files else ()
        kept = tuple(columns) if columns else (
            tuple(c.name for c in columns_of(table)) + PARTITIONS)
        self.engine.load(TableSource(table, urls, folders, self.store.files.url(table), kept,
                                     wanted))
        if files and "schema_version" in kept:
            self._check_schema(table)
        return len(files)

    def _check_schema(self, table: str) -> None:
        newest = self.engine.query(newest_schema(table))
        if not newest.empty and int(newest["schema_version"][0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.store.location}: run {newest['run_id'][0]} in {table}/ was written "
                f"with store schema {int(newest['schema_version'][0])}; this dnnprof reads up "
                f"to {SCHEMA_VERSION}: upgrade dnnprof to read this store"
            )

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        """One query of dnnprof.store.queries over the loaded tables."""
        return self.engine.query(sql, params)


def parquet_bytes(table: str, data: pd.DataFrame | list[dict[str, Any]]) -> bytes:
    """Rows of a table as one Parquet file, in the table's declared schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    if isinstance(data, pd.DataFrame):  # column by column: no pandas metadata in the file
        arrow = pa.Table.from_pydict({name: data[name].tolist() for name in schema.names},
                                     schema=schema)
    else:
        arrow = pa.Table.from_pylist(data, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd")
    return buffer.getvalue()


__all__ = ["TABLES", "AddResult", "Reader", "Store", "parquet_bytes"]
