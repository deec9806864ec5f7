"""A Trace as store rows: one `runs` row, one `layers` row per layer, its steady exec events.

Every number comes from the trace's steady-state iterations (`Trace.steady()`); per-layer
tables from `views.by_layer`. A layer's structure (kinds, data types, post-ops,
implementation, reorders, fused layers) is read from one steady iteration, the last: in
steady state every iteration runs the same primitives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import __version__, views
from dnnprof.errors import InputError
from dnnprof.store.context import RunContext
from dnnprof.store.schema import PARTITION_VALUE, RUN_ID, SCHEMA_VERSION
from dnnprof.trace import EVENT_COLUMNS, Trace
from dnnprof.vocabulary import UNKNOWN

STRUCTURE_FIELDS = ("layer_type", "kinds", "src_dt", "wei_dt", "dst_dt", "post_ops", "impl",
                    "isa", "reorders", "fused_layers")


@dataclass
class RunRows:
    """What one run adds to the store: its partition, its runs row, layer rows, events."""

    run_id: str
    model: str
    variant: str
    run_date: str
    run: dict[str, Any]
    layers: pd.DataFrame
    events: pd.DataFrame | None


def run_rows(trace: Trace, context: RunContext, model: str | None = None,
             variant: str | None = None, run_id: str | None = None,
             events: bool = True) -> RunRows:
    """The rows a trace adds to the store; InputError when it cannot be stored."""
    meta = trace.metadata
    model = _partition_value("model", model or meta.model)
    variant = _partition_value("variant", variant or meta.variant)
    if not trace.has_steady_state:
        raise InputError(f"{meta.source}: no steady-state iterations found, nothing to store "
                         "(a run needs measured iterations; see `dnnprof parse --model`)")
    steady = trace.steady()
    run_id = run_id or run_identity(trace)
    if not RUN_ID.match(run_id):
        raise InputError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-' only")
    when = context.time or _started(trace) or datetime.now(timezone.utc)
    totals = steady.groupby("iteration", observed=True)["duration_ms"].sum().to_numpy(float)
    layers = layer_rows(steady)
    layers.insert(0, "run_id", run_id)
    layers.insert(1, "schema_version", SCHEMA_VERSION)
    conditions = meta.conditions
    run = {
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
        "run_time": when.astimezone(timezone.utc),
        "added_time": datetime.now(timezone.utc),
        "git_commit": context.commit,
        "git_branch": context.branch,
        "runner": context.runner or runner_class(trace),
        "host": context.host,
        "cpu_model": (conditions.cpu_model if conditions else None) or "",
        "isa": meta.isa or "",
        "threads": meta.threads if meta.threads is not None else -1,
        "framework": meta.framework or "",
        "framework_version": meta.framework_version or "",
        "route": meta.route or "",
        "onednn_version": meta.onednn_version or "",
        "dnnprof_version": __version__,
        "conditions": conditions.verdict if conditions else UNKNOWN,
        "source": str(meta.source or ""),
        "reconstruction": meta.reconstruction_mode or "",
        "iterations": len(totals),
        "median_ms": float(np.median(totals)),
        "samples": [float(t) for t in totals],
        "layer_count": len(layers),
        "structure": _digest("\n".join(layers["signature"])),
        "has_events": events,
        "metadata": _metadata_json(trace),
    }
    stored_events = _event_rows(steady, run_id) if events else None
    return RunRows(run_id, model, variant, when.astimezone(timezone.utc).date().isoformat(),
                   run, layers, stored_events)


def runner_class(trace: Trace) -> str:
    """The default runner class: the recorded CPU model and thread count, else 'unknown'."""
    conditions = trace.metadata.conditions
    cpu = conditions.cpu_model if conditions else None
    if not cpu:
        return UNKNOWN
    threads = trace.metadata.threads or (conditions.threads if conditions else None)
    return f"{cpu} x{threads}" if threads else cpu


def run_identity(trace: Trace) -> str:
    """A run's id: a digest of its exec events and start, the same however often it is read."""
    ex = trace.exec_events
    digest = hashlib.sha256()
    digest.update(ex["line"].to_numpy(np.int64).tobytes())
    digest.update(ex["duration_ms"].to_numpy(np.float64).tobytes())
    digest.update("\n".join(ex["kind"].astype(str)).encode())
    digest.update(repr(trace.metadata.started).encode())
    return digest.hexdigest()[:20]


def layer_rows(steady: pd.DataFrame) -> pd.DataFrame:
    """One row per layer of these steady exec rows: time per iteration and structure."""
    labelled = steady[steady["layer"].astype(str) != ""]
    columns = ["layer", "layer_index", *[c for c in _LAYER_OUTPUT if c != "layer"]]
    if labelled.empty:
        return pd.DataFrame(columns=columns)
    last = labelled[labelled["iteration"] == labelled["iteration"].max()]
    table = views.by_layer(last)  # one iteration: calls and reorders are per iteration
    table["layer_index"] = np.arange(len(table), dtype=np.int32)
    compute = last[~last["is_reorder"].to_numpy(dtype=bool)]
    first = compute.drop_duplicates("layer")  # a layer's first compute primitive
    first.index = first["layer"].astype(str)
    per_layer = compute.groupby(compute["layer"].astype(str), observed=True)
    kinds = per_layer["kind"].agg(lambda s: "+".join(s.astype(str)))
    post_ops = per_layer["post_ops"].agg(lambda s: "+".join(p for p in s.astype(str) if p))
    samples = _layer_samples(labelled)
    rows = pd.DataFrame({"layer": table["layer"].astype(str)})
    rows["layer_index"] = table["layer_index"].to_numpy()
    rows["layer_type"] = table["layer_type"].astype(str).to_numpy()
    rows["kinds"] = rows["layer"].map(kinds).fillna("")
    rows["calls"] = table["calls"].to_numpy(dtype=np.int32)
    rows["samples"] = rows["layer"].map(samples)
    rows["median_ms"] = [float(np.median(s)) for s in rows["samples"]]
    for column in ("src_dt", "wei_dt", "dst_dt", "impl", "isa"):
        rows[column] = rows["layer"].map(first[column].astype(str)).fillna("")
    rows["post_ops"] = rows["layer"].map(post_ops).fillna("")
    rows["reorders"] = table["reorders"].to_numpy(dtype=np.int32)
    rows["fused_layers"] = table["fused_layers"].astype(str).to_numpy()
    rows["signature"] = [
        "|".join(f"{name}={row[name]}" for name in ("layer", *STRUCTURE_FIELDS))
        for row in rows.to_dict("records")
    ]
    return rows[columns].reset_index(drop=True)


_LAYER_OUTPUT = ("layer", "layer_type", "kinds", "calls", "median_ms", "samples", "src_dt",
                 "wei_dt", "dst_dt", "post_ops", "impl", "isa", "reorders", "fused_layers",
                 "signature")


def _layer_samples(labelled: pd.DataFrame) -> dict[str, list[float]]:
    """Each layer's time in every steady iteration (0 where it ran nothing in one)."""
    sums = labelled.groupby([labelled["layer"].astype(str), "iteration"],
                            observed=True)["duration_ms"].sum()
    grid = sums.unstack(fill_value=0.0)
    return {str(layer): [float(v) for v in values] for layer, values in
            zip(grid.index, grid.to_numpy(), strict=True)}


def _event_rows(steady: pd.DataFrame, run_id: str) -> pd.DataFrame:
    events = steady[list(EVENT_COLUMNS)].reset_index(drop=True)
    for column in events.columns:
        if isinstance(events[column].dtype, pd.CategoricalDtype):
            events[column] = events[column].astype(str)
    events.insert(0, "run_id", run_id)
    events.insert(1, "schema_version", SCHEMA_VERSION)
    return events


def _partition_value(what: str, value: str | None) -> str:
    if not value:
        raise InputError(f"the trace does not say which {what} it ran; pass --{what}")
    if not PARTITION_VALUE.match(value):
        raise InputError(f"{what} {value!r}: a store {what} name uses letters, digits and "
                         "'_', '.', '+', '-' (and starts with a letter or digit)")
    return value


def _started(trace: Trace) -> datetime | None:
    started = trace.metadata.started
    return datetime.fromtimestamp(started, tz=timezone.utc) if started else None


def _metadata_json(trace: Trace) -> str:
    meta = trace.metadata.copy()
    meta.layer_table = None
    meta.templates = {}
    meta.unparsed_samples = []
    meta.foreign_samples = []
    if meta.reconstruction is not None:
        meta.reconstruction.layer_table = {}
    return json.dumps(meta.to_dict(), default=str, sort_keys=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
