"""The Trace: metadata plus one typed events DataFrame; what every consumer reads."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import __version__

FORMAT_VERSION = 1
TRACE_FILE = "trace.parquet"  # the name inside a run folder

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
COMPUTE_KINDS = frozenset({"convolution", "deconvolution", "inner_product", "matmul", "rnn", "gemm_api"})


class TraceFileError(Exception):
    """A stored trace that cannot be read; the message says why and what to do."""


class Trace:
    """Metadata plus one events DataFrame (see docs/trace-schema.md)."""

    def __init__(self, events: pd.DataFrame, metadata: dict[str, Any]) -> None:
        self.events = events
        self.metadata = metadata

    # ------------------------------------------------------------ selection --

    @property
    def exec_events(self) -> pd.DataFrame:
        """Primitive `exec` rows (graph partitions excluded: their primitives are logged too)."""
        ev = self.events
        return ev[(ev["op"] == "exec") & (ev["api"] != "graph")]

    def steady_exec(self) -> pd.DataFrame:
        """Exec rows of steady-state (measured) iterations when known, else every exec row."""
        ex = self.exec_events
        if "phase" in ex and (ex["phase"] == "measure").any():
            return ex[ex["phase"] == "measure"]
        return ex

    @property
    def iterations(self) -> list[int]:
        """Iteration numbers present (empty before reconstruction)."""
        its = self.events["iteration"]
        return sorted(int(i) for i in its[its >= 0].unique())

    # ----------------------------------------------------------------- views --

    def by_kind(self, steady: bool = True) -> pd.DataFrame:
        """Calls, total/mean ms and time share per primitive kind."""
        ex = self.steady_exec() if steady else self.exec_events
        grouped = ex.groupby("kind", observed=True)["duration_ms"]
        table = pd.DataFrame(
            {"calls": grouped.size(), "total_ms": grouped.sum(), "mean_ms": grouped.mean()}
        )
        total = table["total_ms"].sum()
        table["share"] = table["total_ms"] / total if total > 0 else 0.0
        return table.sort_values("total_ms", ascending=False)

    def top(self, n: int = 10, steady: bool = True) -> pd.DataFrame:
        """The n distinct primitives with the most total time, with shape and GFLOP/s."""
        ex = self.steady_exec() if steady else self.exec_events
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
        table["gflops"] = table["flops"] / (table["mean_ms"] * 1e6)
        table = table.sort_values("total_ms", ascending=False).head(n)
        return table.drop(columns=["flops"]).reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """Counts, versions and per-kind totals as one JSON-serialisable dict."""
        meta = self.metadata
        counts = meta.get("counts", {})
        ex = self.exec_events
        by_kind = self.by_kind(steady=False)
        total_ms = float(ex["duration_ms"].sum())
        reorder_ms = float(ex.loc[ex["kind"] == "reorder", "duration_ms"].sum())
        dtypes = ex["src_dt"].astype(str).replace("", "none").value_counts()
        graph = self.events[(self.events["op"] == "exec") & (self.events["api"] == "graph")]
        return {
            "source": meta.get("source"),
            "onednn_version": meta.get("onednn_version"),
            "onednn_commit": meta.get("onednn_commit"),
            "dialect": meta.get("dialect"),
            "isa": meta.get("isa"),
            "runtime": meta.get("runtime"),
            "threads": meta.get("threads"),
            "timeline": meta.get("timeline"),
            "lines": counts.get("lines", 0),
            "exec": counts.get("exec", 0),
            "create": counts.get("create", 0),
            "graph": counts.get("graph", 0),
            "messages": counts.get("messages", 0),
            "info": counts.get("info", 0),
            "markers": counts.get("markers", 0),
            "foreign": counts.get("foreign", 0),
            "unparsed": counts.get("unparsed", 0),
            "blank": counts.get("blank", 0),
            "total_exec_ms": total_ms,
            "reorder_ms": reorder_ms,
            "reorder_share": reorder_ms / total_ms if total_ms > 0 else 0.0,
            "graph_exec_ms": float(graph["duration_ms"].sum()),
            "with_post_ops": int((ex["post_ops"].astype(str) != "").sum()),
            "data_types": {str(k): int(v) for k, v in dtypes.items()},
            "kinds": _kinds_dict(by_kind),
            # steady state (measured iterations) when the reconstructor found them
            "steady": self._steady_summary(),
            "warnings": list(meta.get("warnings", [])),
        }

    def _steady_summary(self) -> dict[str, Any] | None:
        steady = self.steady_exec()
        if len(steady) == len(self.exec_events):
            return None
        iterations = sorted(int(i) for i in steady["iteration"].unique() if i >= 0)
        total = float(steady["duration_ms"].sum())
        reorder = float(steady.loc[steady["kind"] == "reorder", "duration_ms"].sum())
        return {
            "iterations": iterations,
            "exec": len(steady),
            "total_exec_ms": total,
            "per_iteration_ms": total / len(iterations) if iterations else None,
            "reorder_share": reorder / total if total > 0 else 0.0,
            "kinds": _kinds_dict(self.by_kind(steady=True)),
        }

    # --------------------------------------------------------------- storage --

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace as Parquet atomically (temp file + rename); returns the path."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = Path(path)
        if target.is_dir():
            target = target / TRACE_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.metadata)
        meta["format_version"] = FORMAT_VERSION
        meta.setdefault("dnnprof_version", __version__)
        table = pa.Table.from_pandas(self.events, preserve_index=False)
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[b"dnnprof"] = json.dumps(meta, default=_json_default).encode()
        schema_meta[b"dnnprof_format"] = str(FORMAT_VERSION).encode()
        table = table.replace_schema_metadata(schema_meta)
        fd, tmp = tempfile.mkstemp(prefix=".trace-", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a stored trace (file or run folder), or raise TraceFileError saying why."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = Path(path)
        if source.is_dir():
            source = source / TRACE_FILE
        if not source.exists():
            raise TraceFileError(f"{source}: no such trace file")
        try:
            table = pq.read_table(source)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise TraceFileError(
                f"{source}: not a readable dnnprof trace (corrupt or truncated Parquet: {exc}); "
                "re-create it with `dnnprof parse LOG -o FILE`"
            ) from None
        schema_meta = table.schema.metadata or {}
        if b"dnnprof" not in schema_meta:
            raise TraceFileError(f"{source}: a Parquet file, but not one written by dnnprof")
        try:
            version = int(schema_meta.get(b"dnnprof_format", b"0"))
            metadata = json.loads(schema_meta[b"dnnprof"])
        except (ValueError, json.JSONDecodeError) as exc:
            raise TraceFileError(f"{source}: damaged dnnprof metadata ({exc})") from None
        if version > FORMAT_VERSION:
            raise TraceFileError(
                f"{source}: written by a newer dnnprof (trace format {version}, this dnnprof "
                f"reads up to {FORMAT_VERSION}); upgrade dnnprof to read it"
            )
        if version < 1:
            raise TraceFileError(f"{source}: unknown trace format version {version}")
        events = table.to_pandas()
        return cls(normalize_events(events), metadata)

    def __repr__(self) -> str:
        meta = self.metadata
        return (
            f"<Trace {meta.get('source')!s}: {len(self.events)} events, "
            f"oneDNN {meta.get('onednn_version')}, {meta.get('dialect')}>"
        )

    # ------------------------------------------------- reconstructed views --
    # Filled by dnnprof.reconstruct; on a trace that was not reconstructed they are empty.

    def by_layer(self, steady: bool = True) -> pd.DataFrame:
        """Per layer in execution order: calls, total/mean ms, share, fused layers, reorder ms, FLOPs."""
        from dnnprof.reconstruct.views import by_layer

        return by_layer(self, steady)

    def by_iteration(self) -> pd.DataFrame:
        """Per iteration: phase, exec count, exec and reorder time, span, Python wall time."""
        from dnnprof.reconstruct.views import by_iteration

        return by_iteration(self)

    def by_stage(self, steady: bool = True, stages: Any = None) -> pd.DataFrame:
        """Per ResNet stage (conv1, conv2_x ... conv5_x, fc), or per a {layer: stage} mapping."""
        from dnnprof.reconstruct.views import by_stage

        return by_stage(self, steady, stages)


def _kinds_dict(by_kind: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {
        str(kind): {
            "calls": int(row.calls),
            "total_ms": float(row.total_ms),
            "mean_ms": float(row.mean_ms),
            "share": float(row.share),
        }
        for kind, row in by_kind.iterrows()
    }


def normalize_events(events: pd.DataFrame) -> pd.DataFrame:
    """Give an events frame every schema column with its dtype (for traces from older writers)."""
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
    order = list(EVENT_COLUMNS) + [c for c in events.columns if c not in EVENT_COLUMNS]
    if list(events.columns) == order:
        return events
    return events[order]


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
