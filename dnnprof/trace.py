"""The Trace: metadata plus one typed events DataFrame; what every consumer reads."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import storage, views
from dnnprof.errors import TraceFileError
from dnnprof.memory import release_freed_memory
from dnnprof.metadata import TraceMetadata
from dnnprof.vocabulary import COMPUTE_KINDS, REORDER, STEADY_PHASES, TIMED_OPS

# Columns that hold repeated strings: stored as categoricals so a million-row trace
# keeps one copy of each distinct string.
CATEGORICAL_COLUMNS = (
    "op", "cache", "api", "engine", "kind", "impl", "isa", "prop",
    "src_dt", "wei_dt", "dst_dt", "src_fmt", "wei_fmt", "dst_fmt",
    "mds", "attrs", "post_ops", "fpmath", "alg", "aux", "problem", "message",
    "phase", "layer", "layer_type", "fused_layers", "reorder_class", "attribution",
)
EVENT_COLUMNS = (
    "line", "op", "cache", "api", "ts_ms", "start_ms", "duration_ms", "engine", "kind",
    "impl", "isa", "prop", "src_dt", "wei_dt", "dst_dt", "src_fmt", "wei_fmt", "dst_fmt",
    "mds", "attrs", "post_ops", "has_scales", "has_zero_points", "fpmath", "alg", "aux",
    "problem", "flops", "message", "desc_id", "iteration", "phase", "layer", "layer_type",
    "fused_layers", "is_reorder", "reorder_class", "attribution",
)
# Columns a stored trace must have to be a trace at all (the rest have defaults)
REQUIRED_COLUMNS = ("op", "kind", "duration_ms")
_FLOAT_COLUMNS = ("ts_ms", "start_ms", "duration_ms", "flops")
# A duration a sum may take is finite, not negative and at most a day: no oneDNN primitive
# runs longer, and one absurd value would dominate (or overflow) every total it enters.
MAX_DURATION_MS = 86_400_000.0
# re-exported: where older code and notebooks import them from
FORMAT_VERSION = storage.FORMAT_VERSION
TRACE_FILE = storage.TRACE_FILE
__all__ = ["COMPUTE_KINDS", "FORMAT_VERSION", "TRACE_FILE", "Trace", "TraceFileError",
           "TraceMetadata", "normalize_events"]


class Trace:
    """Metadata plus one events DataFrame (see docs/trace-schema.md)."""

    def __init__(self, events: pd.DataFrame, metadata: TraceMetadata | dict[str, Any]) -> None:
        self.events = events
        # a plain dict (older code, notebooks) is read into the typed form once, here
        self.metadata = (
            metadata if isinstance(metadata, TraceMetadata) else TraceMetadata.from_dict(metadata)
        )

    # ------------------------------------------------------------ selection --

    @property
    def exec_events(self) -> pd.DataFrame:
        """Primitive `exec` rows (graph partitions excluded: their primitives are logged too)."""
        ev = self.events
        return ev[(ev["op"] == "exec") & (ev["api"] != "graph")]

    def steady(self) -> pd.DataFrame:
        """Exec rows of steady-state iterations when known, else every exec row.

        The one steady-state rule: a row is steady when it belongs to an iteration whose
        phase is a steady phase (vocabulary.STEADY_PHASES: measure, run, steady).
        """
        return self.events.iloc[self.steady_rows()]

    def steady_rows(self) -> np.ndarray:
        """Positions in `events` of the rows `steady()` returns, ascending (a reader that
        takes a few columns, or a contiguous range, need not copy every column)."""
        mask = self._exec_mask()
        in_steady = mask & self.steady_mask(self.events)
        return np.flatnonzero(in_steady if in_steady.any() else mask)

    @staticmethod
    def steady_mask(rows: pd.DataFrame) -> np.ndarray:
        """Which of these rows are in a steady-state iteration (see `steady`)."""
        # isin on the categorical compares each distinct phase once, not a string per row
        return (rows["phase"].isin(STEADY_PHASES) & (rows["iteration"] >= 0)).to_numpy()

    def steady_exec(self) -> pd.DataFrame:
        """Same as `steady()` (the name older code and notebooks use)."""
        return self.steady()

    @property
    def has_steady_state(self) -> bool:
        """True when iterations and their phases are known."""
        return bool((self._exec_mask() & self.steady_mask(self.events)).any())

    def _exec_mask(self) -> np.ndarray:
        """`exec_events` as a mask over `events`."""
        ev = self.events
        return ((ev["op"] == "exec") & (ev["api"] != "graph")).to_numpy()

    def _exec_columns(self, steady: bool, columns: list[str]) -> pd.DataFrame:
        """Some columns of `steady()` (or of `exec_events`): the views read a few columns,
        and a copy of every column of every exec row is most of a big trace again."""
        mask = self._exec_mask()
        if steady:
            in_steady = mask & self.steady_mask(self.events)
            mask = in_steady if in_steady.any() else mask
        return self.events.loc[mask, columns]

    @property
    def iterations(self) -> list[int]:
        """Iteration numbers present (empty before reconstruction)."""
        its = self.events["iteration"]
        return sorted(int(i) for i in its[its >= 0].unique())

    # ----------------------------------------------------------------- views --

    def by_kind(self, steady: bool = True) -> pd.DataFrame:
        """Calls, total/mean ms and time share per primitive kind."""
        ex = self._exec_columns(steady, ["kind", "duration_ms"])
        grouped = ex.groupby("kind", observed=True)["duration_ms"]
        table = pd.DataFrame(
            {"calls": grouped.size(), "total_ms": grouped.sum(), "mean_ms": grouped.mean()}
        )
        total = table["total_ms"].sum()
        table["share"] = table["total_ms"] / total if total > 0 else 0.0
        return table.sort_values("total_ms", ascending=False)

    def top(self, n: int = 10, steady: bool = True) -> pd.DataFrame:
        """The n distinct primitives with the most total time, with shape and GFLOP/s."""
        ex = self.steady() if steady else self.exec_events
        if ex.empty:
            return pd.DataFrame(
                columns=["kind", "impl", "problem", "calls", "total_ms", "mean_ms", "gflops"]
            )
        grouped = ex.groupby("desc_id", observed=True)
        table = grouped.agg(
            kind=("kind", "first"),
            impl=("impl", "first"),
            prop=("prop", "first"),
            src_dt=("src_dt", "first"),
            post_ops=("post_ops", "first"),
            problem=("problem", "first"),
            flops=("flops", "first"),
            calls=("duration_ms", "size"),
            total_ms=("duration_ms", "sum"),
            mean_ms=("duration_ms", "mean"),
        )
        with np.errstate(divide="ignore", invalid="ignore"):  # a 0 ms mean has no rate
            gflops = table["flops"] / (table["mean_ms"] * 1e6)
        table["gflops"] = gflops.where(np.isfinite(gflops))
        table = table.sort_values("total_ms", ascending=False).head(n)
        return table.drop(columns=["flops"]).reset_index(drop=True)

    @property
    def unknown_durations(self) -> int:
        """Timed rows (exec, create, compile) whose duration is unknown: not printed, not a
        number, or unusable (infinite, negative, over a day); every sum leaves them out."""
        ev = self.events
        timed = ev["op"].isin(TIMED_OPS).to_numpy()
        return int((timed & np.isnan(ev["duration_ms"].to_numpy())).sum())

    def summary(self) -> dict[str, Any]:
        """Counts, versions and per-kind totals as one JSON-serialisable dict (no NaN, no inf)."""
        meta = self.metadata
        counts = meta.counts
        ex = self._exec_columns(False, ["kind", "duration_ms", "src_dt", "post_ops"])
        by_kind = self.by_kind(steady=False)
        total_ms = float(ex["duration_ms"].sum())
        reorder_ms = float(ex.loc[ex["kind"] == REORDER, "duration_ms"].sum())
        dtypes = _value_counts(ex["src_dt"], empty="none")
        graph = self.events[(self.events["op"] == "exec") & (self.events["api"] == "graph")]
        return {
            "source": meta.source,
            "onednn_version": meta.onednn_version,
            "onednn_commit": meta.onednn_commit,
            "dialect": meta.dialect,
            "isa": meta.isa,
            "runtime": meta.runtime,
            "threads": meta.threads,
            "timeline": meta.timeline,
            "lines": counts.lines,
            "exec": counts.exec,
            "create": counts.create,
            "graph": counts.graph,
            "messages": counts.messages,
            "info": counts.info,
            "markers": counts.markers,
            "foreign": counts.foreign,
            "unparsed": counts.unparsed,
            "blank": counts.blank,
            "unknown_durations": self.unknown_durations,
            "total_exec_ms": total_ms,
            "reorder_ms": reorder_ms,
            "reorder_share": reorder_ms / total_ms if total_ms > 0 else 0.0,
            "graph_exec_ms": float(graph["duration_ms"].sum()),
            "with_post_ops": int((ex["post_ops"] != "").sum()),
            "data_types": dtypes,
            "kinds": _kinds_dict(by_kind),
            # steady state (measured iterations) when the reconstructor found them
            "steady": self._steady_summary(),
            # quiet | busy | unreliable | unknown, and why: how far to trust the times above
            "conditions": meta.run_conditions.to_dict(),
            "warnings": list(meta.warnings),
        }

    def _steady_summary(self) -> dict[str, Any] | None:
        if not self.has_steady_state:
            return None
        steady = self._exec_columns(True, ["iteration", "kind", "duration_ms"])
        iterations = sorted(int(i) for i in steady["iteration"].unique() if i >= 0)
        total = float(steady["duration_ms"].sum())
        reorder = float(steady.loc[steady["kind"] == REORDER, "duration_ms"].sum())
        return {
            "iterations": iterations,
            "exec": len(steady),
            "total_exec_ms": total,
            "per_iteration_ms": finite_or_none(total / len(iterations)) if iterations else None,
            "reorder_share": reorder / total if total > 0 else 0.0,
            "kinds": _kinds_dict(self.by_kind(steady=True)),
        }

    # --------------------------------------------------------------- storage --

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace as Parquet atomically (see dnnprof.storage); returns the path."""
        written = storage.write_parquet(self.events, self.metadata, path)
        release_freed_memory(len(self.events))  # the Arrow copy and the pages, now freed
        return written

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, columns: Sequence[str] | None = None,
             ops: Sequence[str] | None = None) -> Trace:
        """Read a stored trace (file or run folder), or raise TraceFileError saying why.

        With `columns` and `ops`, only those columns of the rows of those ops (see
        storage.read_parquet): such a Trace answers only what reads nothing else.
        """
        events, metadata = storage.read_parquet(path, columns, ops)
        release_freed_memory(len(events))  # the Arrow table the frame was converted from
        wanted = REQUIRED_COLUMNS if columns is None else set(REQUIRED_COLUMNS) & set(columns)
        missing = [name for name in REQUIRED_COLUMNS if name in wanted and name not in events]
        if missing:
            raise TraceFileError(
                f"{path}: not a usable dnnprof trace (no {', '.join(missing)} column); "
                "re-create it with `dnnprof parse LOG -o FILE`"
            )
        try:  # whatever the file holds, a damaged column is this error, never a traceback
            events = normalize_events(events, metadata.warnings)
        except (ValueError, TypeError, OverflowError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise TraceFileError(f"{path}: damaged trace data ({reason})") from None
        if columns is not None:  # the defaults normalize_events gave the others are dropped
            keep = set(columns)
            events = events[[name for name in events.columns if name in keep]]
        return cls(events, metadata)

    def __repr__(self) -> str:
        meta = self.metadata
        return (
            f"<Trace {meta.source!s}: {len(self.events)} events, "
            f"oneDNN {meta.onednn_version}, {meta.dialect}>"
        )

    # ------------------------------------------------- reconstructed views --
    # Filled by dnnprof.reconstruct; on a trace that was not reconstructed they are empty.

    def by_layer(self, steady: bool = True) -> pd.DataFrame:
        """Per layer in execution order: calls, total/mean ms, share, fused layers, reorder ms, FLOPs."""
        return views.by_layer(self.steady() if steady else self.exec_events)

    def by_iteration(self) -> pd.DataFrame:
        """Per iteration: phase, exec count, exec and reorder time, span, Python wall time."""
        return views.by_iteration(self.exec_events, self.metadata.wall_ms_by_iteration())

    def by_stage(self, steady: bool = True, stages: Any = None) -> pd.DataFrame:
        """Per ResNet stage (conv1, conv2_x ... conv5_x, fc), or per a {layer: stage} mapping."""
        return views.by_stage(self.steady() if steady else self.exec_events, stages)


def _usable_numbers(events: pd.DataFrame, notes: list[str] | None) -> None:
    for column in _FLOAT_COLUMNS:
        values = events[column]
        if values.dtype != np.float64:
            values = events[column] = values.astype(np.float64)
        array = values.to_numpy()
        bad = unusable_durations(array) if column == "duration_ms" else np.isinf(array)
        count = int(bad.sum())
        if count:
            events[column] = np.where(bad, np.nan, array)
            if notes is not None:
                notes.append(f"{count} {column} values were infinite"
                             + (", negative or over a day" if column == "duration_ms" else "")
                             + ": read as unknown (NaN), left out of every sum")


def finite_or_none(value: float) -> float | None:
    """A float for JSON: None where it is NaN or infinite (JSON has neither)."""
    return value if math.isfinite(value) else None


def _value_counts(column: pd.Series, empty: str) -> dict[str, int]:
    """Rows per distinct text, most first ("" counted as `empty`), once per distinct value."""
    codes, names = views.coded(column)
    counts: dict[str, int] = {}
    for code, count in enumerate(np.bincount(codes, minlength=len(names)).tolist()):
        if count:
            name = str(names[code]) or empty
            counts[name] = counts.get(name, 0) + count
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _kinds_dict(by_kind: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    return {
        str(kind): {
            "calls": int(row.calls),
            "total_ms": float(row.total_ms),
            "mean_ms": finite_or_none(float(row.mean_ms)),
            "share": float(row.share),
        }
        for kind, row in by_kind.iterrows()
    }


def unusable_durations(durations: np.ndarray) -> np.ndarray:
    """Which durations no sum may take: infinite, negative or over MAX_DURATION_MS (not NaN)."""
    with np.errstate(invalid="ignore"):
        usable = (durations >= 0) & (durations <= MAX_DURATION_MS)
    return ~usable & ~np.isnan(durations)


def normalize_events(events: pd.DataFrame, notes: list[str] | None = None) -> pd.DataFrame:
    """Give an events frame every schema column with its dtype (for traces from older writers).

    Numbers no consumer can use become NaN (unknown): a duration that is infinite, negative
    or over a day, a non-finite time or FLOP count; `notes` is told how many. Raises
    ValueError/TypeError for a column that cannot hold its type (text where numbers belong).
    """
    n = len(events)
    # made only for the columns that are missing (a million-row trace has most of them)
    defaults: dict[str, Any] = {
        "iteration": lambda: np.full(n, -1, dtype=np.int32),
        "ts_ms": lambda: np.full(n, np.nan),
        "start_ms": lambda: np.full(n, np.nan),
        "duration_ms": lambda: np.full(n, np.nan),
        "flops": lambda: np.full(n, np.nan),
        "has_scales": lambda: np.zeros(n, dtype=bool),
        "has_zero_points": lambda: np.zeros(n, dtype=bool),
        "desc_id": lambda: np.full(n, -1, dtype=np.int32),
        "line": lambda: np.zeros(n, dtype=np.int32),
        # derived, so that an unreconstructed trace still flags its reorders
        "is_reorder": lambda: (events["kind"] == "reorder").to_numpy(dtype=bool)
        if "kind" in events else np.zeros(n, dtype=bool),
    }
    for column in EVENT_COLUMNS:
        if column in events:
            continue
        if column in defaults:
            events[column] = defaults[column]()
        else:  # an empty text column: one category, one byte per row
            events[column] = pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[""])
    for column in CATEGORICAL_COLUMNS:
        if not isinstance(events[column].dtype, pd.CategoricalDtype):
            events[column] = events[column].fillna("").astype(str).astype("category")
    for column in ("line", "desc_id", "iteration"):
        if events[column].dtype != np.int32:
            events[column] = events[column].astype(np.int32)
    _usable_numbers(events, notes)
    order = list(EVENT_COLUMNS) + [c for c in events.columns if c not in EVENT_COLUMNS]
    if list(events.columns) == order:
        return events
    return events[order]
