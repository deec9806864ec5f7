"""`dnnprof store compact`: each partition's files merged into one part file.

Adding a run writes small files (one per table); an engine pays for every file it opens,
so a store of ten thousand runs reads far faster once each day's runs are one file. A
compaction writes the merged part first (its footer lists its runs) and only then deletes
the files it merged: a reader at any moment sees every run, from one file or the other
(dnnprof.store.files reads a run that is in both once). Runs added while it works are
new files it never touches. One compaction at a time: a lock file at the root says one is
running.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dnnprof.store.files import STALE_TEMP_S, StoredFile, StoreError, StoreFiles
from dnnprof.store.schema import COMPACT_LOCK, PART_RUNS_KEY, SCHEMA_VERSION, TABLES, part_file


@dataclass(frozen=True)
class Compaction:
    """What a compaction did to one table."""

    table: str
    files_before: int
    files_after: int
    runs: int


def compact_store(files: StoreFiles, model: str | None = None) -> list[Compaction]:
    """Merge every partition holding more than one file (of one model, when given)."""
    with _lock(files):
        inventory = files.inventory()
        done = []
        for table in TABLES:
            stored = [f for f in inventory.files[table] if model is None or f.model == model]
            partitions: dict[str, list[StoredFile]] = {}
            for item in stored:
                partitions.setdefault(item.partition, []).append(item)
            after = 0
            for folder, members in sorted(partitions.items()):
                after += 1
                if len(members) > 1:
                    _merge(files, folder, members)
            runs = len({(f.model, f.variant, r) for f in stored for r in f.run_ids})
            done.append(Compaction(table, len(stored), after, runs))
        return done


def _merge(files: StoreFiles, folder: str, members: list[StoredFile]) -> None:
    """One part file from a partition's files, each run once; then the inputs go."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    seen: set[str] = set()
    pieces = []
    for member in sorted(members, key=lambda f: (not f.part, f.path)):  # parts first
        table = files.read_table(member.path)
        if pc.max(table["schema_version"]).as_py() > SCHEMA_VERSION:
            raise StoreError(f"{member.path}: written with a newer store schema; upgrade "
                             "dnnprof before compacting this store")
        if seen & set(member.run_ids):  # a run already merged from a part: keep it once
            table = table.filter(pc.invert(pc.is_in(table["run_id"],
                                                    value_set=pa.array(sorted(seen)))))
        seen.update(table["run_id"].unique().to_pylist())
        pieces.append(table.replace_schema_metadata(None))
    merged = pa.concat_tables(pieces)
    runs = sorted(seen)
    schema_meta = {b"dnnprof_store_schema": str(SCHEMA_VERSION).encode(),
                   PART_RUNS_KEY: json.dumps(runs).encode()}
    buffer = io.BytesIO()
    pq.write_table(merged.replace_schema_metadata(schema_meta), buffer, compression="zstd")
    target = f"{folder}/{part_file(runs)}"
    files.write_new(target, buffer.getvalue())
    for member in members:
        if member.path != target:
            files.remove(member.path)


@contextmanager
def _lock(files: StoreFiles) -> Iterator[None]:
    """Hold the store's compaction lock (a stale one, from a compaction that died, is taken)."""
    files.read_marker()
    if files.fs is None:
        lock = Path(files.url(COMPACT_LOCK))
        try:
            if time.time() - lock.stat().st_mtime > STALE_TEMP_S:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    if not files.write_new(COMPACT_LOCK, f"{os.getpid()}\n".encode()):
        raise StoreError(f"{files.location}: another compaction is running ({COMPACT_LOCK}; "
                         "if none is, remove that file)")
    try:
        yield
    finally:
        files.remove(COMPACT_LOCK)
