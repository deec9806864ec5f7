"""A baseline from the store: the last K comparable runs (same model, variant, runner class).

`check --baseline-store` judges timing against all K runs' steady iterations pooled (one
trace whose iterations are theirs, renumbered) and structure against the latest of them.
Runs marked unreliable are never part of a baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.metadata import TraceMetadata
from dnnprof.store.files import StoreError
from dnnprof.store.queries import lookback_runs, run_events
from dnnprof.store.schema import PARTITIONS, RUN_KEY_COLUMNS
from dnnprof.trace import Trace, normalize_events

DEFAULT_LOOKBACK = 10


@dataclass
class Lookback:
    """The runs a new run is checked against."""

    runs: pd.DataFrame  # run_id, run_time, git_commit, conditions; newest first
    latest: Trace  # the newest run: structure is compared with it
    pooled: Trace  # every run's steady iterations in one trace: timing is judged on them

    def describe(self) -> str:
        """`store PATH: 10 runs, 2025-03-01 .. 2025-03-09 (latest abc1234)`."""
        times = self.runs["run_time"]
        commit = str(self.runs["git_commit"].iloc[0])[:12] or "unknown commit"
        return (f"{len(self.runs)} stored runs, {times.min():%Y-%m-%d %H:%M} .. "
                f"{times.max():%Y-%m-%d %H:%M} (latest {self.runs['run_id'].iloc[0]}, "
                f"{commit})")


def build_lookback(reader: Any, model: str, variant: str, runner: str,
                   count: int | None = None, exclude: str = "") -> Lookback:
    """The last `count` comparable runs (default 10) from a store Reader, as two traces."""
    count = DEFAULT_LOOKBACK if count is None else count
    if count < 1:
        raise StoreError(f"--lookback {count}: at least one earlier run is needed")
    where = f"model {model!r}, variant {variant!r}, runner class {runner!r}"
    if model not in reader.models():
        raise StoreError(f"no runs of model {model!r} in {reader.store.location} "
                         f"(models there: {', '.join(sorted(reader.models())) or 'none yet'})")
    reader.load("runs", model, variant)
    runs = reader.query(lookback_runs(count), model=model, variant=variant, runner=runner,
                        exclude=exclude)
    if runs.empty:
        raise StoreError(f"no earlier runs with {where} in {reader.store.location}; add some "
                         "with `dnnprof store add` (the runner class comes from --runner, "
                         "$DNNPROF_RUNNER or the recorded CPU)")
    runs = runs[runs["has_events"]].reset_index(drop=True)
    if runs.empty:
        raise StoreError(f"the stored runs with {where} were added without events "
                         "(--no-events): a check needs them; add runs with events")
    reader.load("events", model, variant, run_ids=runs["run_id"])
    events = reader.query(run_events())
    metadata = [TraceMetadata.from_dict(json.loads(text)) for text in runs["metadata"]]
    traces = {run_id: group for run_id, group in events.groupby("run_id", sort=False)}
    latest_id = runs["run_id"].iloc[0]
    latest = Trace(_trace_events(traces[latest_id]), metadata[0])
    pooled_meta = metadata[0].copy()
    pooled_meta.source = f"{reader.store.location} ({len(runs)} runs)"
    pooled = Trace(_pooled_events([traces[r] for r in runs["run_id"]]), pooled_meta)
    return Lookback(runs.drop(columns=["metadata"]), latest, pooled)


def _trace_events(rows: pd.DataFrame) -> pd.DataFrame:
    """A stored run's events as a trace's events frame."""
    extra = [c.name for c in RUN_KEY_COLUMNS] + list(PARTITIONS)
    frame = rows.drop(columns=[c for c in extra if c in rows]).reset_index(drop=True)
    return normalize_events(frame)


def _pooled_events(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """Every run's events one after the other, iterations numbered apart run by run."""
    parts = []
    offset = 0
    for rows in reversed(runs):  # oldest first, like a log of them all
        frame = rows.copy()
        iterations = frame["iteration"].to_numpy(dtype=np.int64)
        codes, _ = pd.factorize(iterations, sort=True)
        frame["iteration"] = codes + offset
        offset += int(codes.max()) + 1 if len(codes) else 0
        parts.append(frame)
    return _trace_events(pd.concat(parts, ignore_index=True))
