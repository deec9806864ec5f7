"""The store's files: the version marker, atomic no-clobber writes, and the inventory.

A run's file appears whole or not at all: it is written under a hidden temporary name in
its partition and then hard-linked to its final name, which fails when that name exists.
So a killed writer leaves at most a hidden `.tmp` file (invisible to both engines and
swept by a later add), and two writers adding the same run leave one file. On an object
store (an fsspec URL) an object appears whole when its upload completes.
"""

from __future__ import annotations

import errno
import json
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dnnprof import __version__
from dnnprof.errors import InputError, OutputError
from dnnprof.store.schema import (
    COMPACT_LOCK,
    MARKER,
    PART_FILE,
    PART_RUNS_KEY,
    PARTITIONS,
    RUN_FILE,
    SCHEMA_VERSION,
    TABLES,
    TEMP_FILE,
    run_file,
)

STALE_TEMP_S = 3600.0  # a temporary file this old belongs to a writer that died


class StoreError(InputError):
    """A store that cannot be read or used as asked; the message says what to do (exit 2)."""


@dataclass(frozen=True)
class StoredFile:
    """One data file of one table: a run's file, or a compacted part holding many runs."""

    table: str
    path: str  # relative to the store root, '/'-separated
    model: str
    variant: str
    run_date: str
    run_ids: tuple[str, ...]
    part: bool = False

    @property
    def partition(self) -> str:
        """The folder it is in, relative to the store root."""
        return self.path.rsplit("/", 1)[0]


@dataclass
class Inventory:
    """Every file of the store, sorted: data files per table, unfinished writes, foreign files."""

    files: dict[str, list[StoredFile]] = field(default_factory=dict)
    unfinished: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def of(self, table: str, model: str | None = None, variant: str | None = None,
           shadowed: bool = False) -> list[StoredFile]:
        """The files to read for a table (one model, variant): a run file whose run is in a
        part file too (a compaction caught half-way, a run added again) is left out, unless
        `shadowed` asks for every file."""
        chosen = [f for f in self.files.get(table, [])
                  if (model is None or f.model == model)
                  and (variant is None or f.variant == variant)]
        if shadowed:
            return chosen
        in_parts = {(f.model, f.variant, run) for f in chosen if f.part for run in f.run_ids}
        return [f for f in chosen
                if f.part or (f.model, f.variant, f.run_ids[0]) not in in_parts]

    def runs(self, table: str = "runs", model: str | None = None,
             variant: str | None = None) -> dict[str, StoredFile]:
        """Run id -> the file holding it."""
        return {run: f for f in self.of(table, model, variant) for run in f.run_ids}


class StoreFiles:
    """File access to one store: a local directory or an fsspec URL."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.location = str(location)
        self.fs: Any = None  # an fsspec filesystem for URLs; None for a local directory
        if "://" in self.location and not self.location.startswith("file://"):
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(self.location)
            self.root = self.root.rstrip("/")
        else:
            self.root = str(Path(self.location.removeprefix("file://")).absolute())

    # ------------------------------------------------------------- paths --

    def url(self, relative: str) -> str:
        """A path or URL an engine can open."""
        if self.fs is None:
            return os.path.join(self.root, *relative.split("/"))
        # the scheme as given: Spark reads s3a://, which fsspec also knows as s3://
        scheme = self.location.split("://", 1)[0]
        return f"{scheme}://{self.root}/{relative}"

    def _full(self, relative: str) -> str:
        return self.url(relative) if self.fs is None else f"{self.root}/{relative}"

    def exists(self, relative: str = "") -> bool:
        """True when the file (or, with '', the store's directory) exists."""
        full = self._full(relative) if relative else self.root
        return os.path.exists(full) if self.fs is None else bool(self.fs.exists(full))

    def find_run(self, folder: str, run_id: str) -> str | None:
        """The file below `folder/<partition>/` holding a run (its own or a part), or None."""
        hits = self._glob(f"{folder}/*/{run_file(run_id)}")
        if hits:
            return hits[0]
        for part in self._glob(f"{folder}/*/part-*.parquet"):
            if run_id in self.part_runs(part):
                return part
        return None

    def _glob(self, pattern: str) -> list[str]:
        if self.fs is not None:
            return sorted(p[len(self.root) + 1:] for p in self.fs.glob(f"{self.root}/{pattern}"))
        return sorted(str(p.relative_to(self.root)).replace(os.sep, "/")
                      for p in Path(self.root).glob(pattern))

    def part_runs(self, relative: str) -> tuple[str, ...]:
        """The run ids a part file's footer lists."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self.fs is None:
                footer = pq.read_metadata(self._full(relative)).metadata or {}
            else:
                with self.fs.open(self._full(relative), "rb") as handle:
                    footer = pq.read_metadata(handle).metadata or {}
            return tuple(json.loads(footer[PART_RUNS_KEY]))
        except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
            raise StoreError(f"{self.url(relative)}: not a readable part file of a dnnprof "
                             f"store ({exc}); move it out") from None

    def remove(self, relative: str) -> None:
        """Delete a file (a compaction's merged inputs)."""
        if self.fs is not None:
            self.fs.rm(self._full(relative))
        else:
            Path(self._full(relative)).unlink(missing_ok=True)

    def read_table(self, relative: str) -> Any:
        """A data file as an Arrow table."""
        import pyarrow.parquet as pq

        # ParquetFile, not read_table: the dataset machinery costs 3x more per small file
        if self.fs is None:
            return pq.ParquetFile(self._full(relative)).read()
        with self.fs.open(self._full(relative), "rb") as handle:
            return pq.ParquetFile(handle).read()

    # ------------------------------------------------------------ marker --

    def read_marker(self) -> dict[str, Any]:
        """The store's marker, or StoreError saying why this is not a usable store."""
        if not self.exists():
            raise StoreError(f"no store at {self.location}; create one with "
                             f"`dnnprof store add RUN --store {self.location}`")
        if not self.exists(MARKER):
            raise StoreError(f"{self.location} is not a dnnprof store (no {MARKER}); "
                             "point --store at a store made by `dnnprof store add`")
        try:
            marker = json.loads(self._read_bytes(MARKER))
            version = int(marker["schema_version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.location}: damaged {MARKER} ({exc})") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.location}: written by a newer dnnprof (store schema "
                             f"{version}; this dnnprof reads up to {SCHEMA_VERSION}); "
                             "upgrade dnnprof to use this store")
        return marker

    def ensure_marker(self) -> None:
        """Create the store (its marker) unless it exists; check its version if it does."""
        if self.exists(MARKER):
            self.read_marker()
            return
        if self.fs is None and os.path.isdir(self.root) and any(
            not _ours(entry.name) for entry in os.scandir(self.root)
        ):
            raise StoreError(f"{self.location}: a folder that is neither empty nor a dnnprof "
                             f"store (no {MARKER}); choose an empty or new folder")
        marker = {"schema_version": SCHEMA_VERSION, "created": _now(),
                  "created_by": f"dnnprof {__version__}", "layout": "docs/store.md"}
        self.write_new(MARKER, (json.dumps(marker, indent=2) + "\n").encode())

    # ------------------------------------------------------------ writes --

    def write_new(self, relative: str, data: bytes) -> bool:
        """Write a new file atomically; False (and nothing written) when it already exists."""
        try:
            return self._write_new(relative, data)
        except OSError as exc:
            raise OutputError(f"cannot write {self.url(relative)}: {exc.strerror or exc}") \
                from None

    def _write_new(self, relative: str, data: bytes) -> bool:
        if self.fs is not None:
            full = self._full(relative)
            if self.fs.exists(full):
                return False
            self.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(full, "wb") as handle:  # an object appears when complete
                handle.write(data)
            return True
        target = Path(self._full(relative))
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())  # the name must never point at unwritten blocks
            return _link_no_clobber(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def sweep_unfinished(self, directory: str) -> int:
        """Remove temporary files older than STALE_TEMP_S in a partition (dead writers')."""
        if self.fs is not None:
            return 0  # an object store has no half-written objects
        folder = Path(self._full(directory))
        removed = 0
        if not folder.is_dir():
            return 0
        for entry in os.scandir(folder):
            if not TEMP_FILE.match(entry.name):
                continue
            try:
                age = time.time() - entry.stat().st_mtime
            except FileNotFoundError:  # its writer just finished with it
                continue
            if age > STALE_TEMP_S:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed

    # --------------------------------------------------------- inventory --

    def inventory(self) -> Inventory:
        """Every file below the root, classified; StoreError when the store is missing."""
        self.read_marker()
        found = Inventory(files={table: [] for table in TABLES})
        for relative in sorted(self._walk()):
            parts = relative.split("/")
            if parts in ([MARKER], [COMPACT_LOCK]):
                continue
            stored = _classify(parts)
            if isinstance(stored, StoredFile):
                if stored.part:
                    stored = replace(stored, run_ids=self.part_runs(relative))
                found.files[stored.table].append(stored)
            elif stored == "unfinished":
                found.unfinished.append(relative)
            else:
                found.foreign.append(relative)
        return found

    def _walk(self) -> list[str]:
        if self.fs is not None:
            return [path[len(self.root) + 1:] for path in self.fs.find(self.root)]
        out: list[str] = []
        for folder, _dirs, names in os.walk(self.root):
            prefix = os.path.relpath(folder, self.root).replace(os.sep, "/")
            out += [name if prefix == "." else f"{prefix}/{name}" for name in names]
        return out

    def _read_bytes(self, relative: str) -> bytes:
        if self.fs is None:
            return Path(self._full(relative)).read_bytes()
        with self.fs.open(self._full(relative), "rb") as handle:
            return handle.read()


def _classify(parts: list[str]) -> StoredFile | str:
    """A run file, 'unfinished' (a writer's temporary file), or 'foreign'."""
    if len(parts) != 5 or parts[0] not in TABLES:
        return "foreign"
    values = []
    for part, key in zip(parts[1:4], PARTITIONS, strict=True):
        name, _, value = part.partition("=")
        if name != key or not value:
            return "foreign"
        values.append(value)
    if TEMP_FILE.match(parts[4]):
        return "unfinished"
    if PART_FILE.match(parts[4]):
        return StoredFile(parts[0], "/".join(parts), *values, (), part=True)
    match = RUN_FILE.match(parts[4])
    if not match:
        return "foreign"
    return StoredFile(parts[0], "/".join(parts), *values, (match["run_id"],))


def _ours(name: str) -> bool:
    """A name a store's root holds (another writer may be creating the store right now)."""
    return name in (MARKER, COMPACT_LOCK) or name in TABLES or (
        name.startswith(f".{MARKER}.") and name.endswith(".tmp"))


def _link_no_clobber(temp: Path, target: Path) -> bool:
    try:
        os.link(temp, target)  # atomic, and fails if the name exists
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
    # a file system without hard links: rename (same content when two writers race)
    if target.exists():
        return False
    os.replace(temp, target)
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
