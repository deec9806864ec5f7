"""A model's history in the store: per-run times, and the runs where something changed.

One series per (variant, runner class). In each: the whole model's steady median per run
and each layer's; timing steps (dnnprof.store.changepoints) on the whole model and on
every layer; and every run whose structure differs from the run before it
(dnnprof.store.changes). Runs marked unreliable never take part in finding a step; busy
runs neither, as long as enough other runs remain. The SQL is in dnnprof.store.queries;
this module only turns its answers into change points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.store.changepoints import ALPHA, MIN_SEGMENT, MIN_SHIFT, Step, find_steps
from dnnprof.store.changes import layer_changes
from dnnprof.store.files import StoreError
from dnnprof.store.queries import changed_runs, layer_series, run_series, structure_changes
from dnnprof.store.rows import STRUCTURE_FIELDS
from dnnprof.store.schema import PARTITIONS
from dnnprof.vocabulary import BUSY, UNRELIABLE

TOTAL = "(total)"
RUN_COLUMNS = ("run_id", "run_time", "git_commit", "git_branch", "runner", "conditions",
               "iterations", "median_ms", "layer_count", "structure", "schema_version")
# every run's layer times; the structure of only the runs where it changed (and the runs
# before them) is read afterwards
SERIES_COLUMNS = ("run_id", "layer", "layer_index", "median_ms", "schema_version")
LAYER_COLUMNS = ("run_id", "layer", "layer_index", "median_ms", "signature",
                 *STRUCTURE_FIELDS, "schema_version")


@dataclass(frozen=True)
class Settings:
    """How a step is found: runs a side, significance, smallest relative change."""

    min_segment: int = MIN_SEGMENT
    alpha: float = ALPHA
    min_shift: float = MIN_SHIFT


@dataclass
class ChangePoint:
    """A run where timing stepped or structure changed, and the layers concerned."""

    kind: str  # "timing" | "structure"
    variant: str
    runner: str
    run_id: str
    position: int  # the run's place in its series, from 1
    run_time: pd.Timestamp
    git_commit: str
    previous_run: str
    layers: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = dict(self.__dict__)
        out["run_time"] = self.run_time.isoformat()
        return out


@dataclass
class Series:
    """The runs of one variant on one runner class, in order, and their change points."""

    variant: str
    runner: str
    runs: pd.DataFrame  # position, run_id, run_time, git_commit, ..., median_ms, used
    layers: pd.DataFrame  # position, run_id, layer, layer_index, median_ms
    changes: list[ChangePoint]
    notes: list[str]

    def to_dict(self, with_layers: bool = False) -> dict[str, Any]:
        """JSON-ready form: every run (and, asked for, every layer's series)."""
        runs = self.runs.assign(run_time=self.runs["run_time"].map(pd.Timestamp.isoformat))
        out: dict[str, Any] = {
            "variant": self.variant, "runner": self.runner, "runs": len(self.runs),
            "change_points": [c.to_dict() for c in self.changes], "notes": self.notes,
            "series": runs.drop(columns=["structure"]).to_dict("records"),
        }
        if with_layers:
            out["layers"] = self.layers.to_dict("records")
        return out


@dataclass
class History:
    """Every series of a model (or of one variant, runner class, layer) in a store."""

    store: str
    model: str
    engine: str
    layer: str | None
    series: list[Series]

    @property
    def changes(self) -> list[ChangePoint]:
        """Every change point, series by series, in run order."""
        return [change for series in self.series for change in series.changes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"store": self.store, "model": self.model, "engine": self.engine,
                "layer": self.layer,
                "series": [s.to_dict(with_layers=self.layer is not None) for s in self.series]}


def build_history(reader: Any, model: str, variant: str | None = None,
                  layer: str | None = None, runner: str | None = None,
                  settings: Settings | None = None) -> History:
    """The history of a model from a store Reader (DuckDB or Spark: the same answer)."""
    settings = settings or Settings()
    models = reader.models()
    if model not in models:
        known = ", ".join(sorted(models)) or "none yet"
        raise StoreError(f"model {model!r} has no runs in {reader.store.location} "
                         f"(models there: {known})")
    if variant is not None and variant not in models[model]:
        raise StoreError(f"model {model!r} has no {variant!r} runs "
                         f"(variants: {', '.join(sorted(models[model]))})")
    reader.load("runs", model, variant, columns=RUN_COLUMNS + PARTITIONS)
    reader.load("layers", model, variant, columns=SERIES_COLUMNS + PARTITIONS)
    params: dict[str, Any] = {"model": model}
    params.update({k: v for k, v in (("variant", variant), ("runner", runner)) if v})
    scope = (variant is not None, runner is not None)
    runs = reader.query(run_series(*scope), **params)
    if runs.empty:
        raise StoreError(f"model {model!r} has no runs on runner class {runner!r}")
    layers = reader.query(layer_series(*scope, layer is not None), **params, **_only(layer))
    if layer is not None and layers.empty:
        raise StoreError(f"layer {layer!r} is in no stored run of {model!r}")
    changed = reader.query(changed_runs(*scope), **params)
    reader.load("layers", model, variant, columns=LAYER_COLUMNS + PARTITIONS,
                run_ids={*changed["run_id"], *changed["previous_run"]})
    structure = reader.query(structure_changes(*scope), **params)
    if layer is not None:
        structure = structure[structure["layer"] == layer]
    series = [
        _series(key, group, layers, structure, settings)
        for key, group in runs.groupby(["variant", "runner"], sort=True)
    ]
    return History(reader.store.location, model, reader.engine.name, layer, series)


def _only(layer: str | None) -> dict[str, str]:
    return {"layer": layer} if layer is not None else {}


def _series(key: tuple[str, str], runs: pd.DataFrame, layers: pd.DataFrame,
            structure: pd.DataFrame, settings: Settings) -> Series:
    variant, runner = key
    runs = runs.reset_index(drop=True)
    runs.insert(0, "position", np.arange(1, len(runs) + 1))
    used, notes = _used_runs(runs["conditions"], settings)
    runs["used"] = used
    mine = layers[(layers["variant"] == variant) & (layers["runner"] == runner)]
    position = dict(zip(runs["run_id"], runs["position"], strict=True))
    mine = mine.assign(position=mine["run_id"].map(position))[
        ["position", "run_id", "layer", "layer_index", "median_ms"]].reset_index(drop=True)
    changes = _timing_changes(runs, mine, settings, key)
    changes += _structure_changes(runs, structure[(structure["variant"] == variant)
                                                  & (structure["runner"] == runner)], key)
    changes.sort(key=lambda c: (c.position, c.kind))
    return Series(variant, runner, runs, mine, changes, notes)


def _used_runs(conditions: pd.Series, settings: Settings) -> tuple[np.ndarray, list[str]]:
    """Which runs a step is searched in: never unreliable ones; busy ones only if needed."""
    verdicts = conditions.to_numpy(dtype=object)
    usable = verdicts != UNRELIABLE
    calm = usable & (verdicts != BUSY)
    notes = []
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} runs marked unreliable: shown, never used to "
                     "find a timing step")
    if calm.sum() >= 2 * settings.min_segment:
        if (usable & ~calm).any():
            notes.append(f"{int((usable & ~calm).sum())} busy runs: shown, not used to find "
                         "a timing step")
        return calm, notes
    if (usable & ~calm).any():
        notes.append("too few quiet runs: busy runs are used to find timing steps")
    return usable, notes


def _timing_changes(runs: pd.DataFrame, layers: pd.DataFrame, settings: Settings,
                    key: tuple[str, str]) -> list[ChangePoint]:
    """Steps of the whole model and of every layer, one change point per run."""
    used = runs["used"].to_numpy(dtype=bool)
    quantities = [(TOTAL, runs["position"].to_numpy()[used],
                   runs["median_ms"].to_numpy(dtype=float)[used])]
    used_positions = set(runs["position"].to_numpy()[used].tolist())
    kept = layers[layers["position"].isin(used_positions)]
    for name, group in kept.groupby("layer", sort=False):
        quantities.append((str(name), group["position"].to_numpy(),
                           group["median_ms"].to_numpy(dtype=float)))
    by_position: dict[int, ChangePoint] = {}
    for name, positions, values in quantities:
        for step in find_steps(values, settings.min_segment, settings.alpha, settings.min_shift):
            at = int(positions[step.index])
            change = by_position.get(at)
            if change is None:
                change = by_position[at] = _change("timing", runs, at, key,
                                                   int(positions[step.index - 1]))
            change.layers.append(name)
            change.codes.append("slower" if step.shift > 0 else "faster")
            change.details.append(_describe_step(name, step))
    return list(by_position.values())


def _describe_step(name: str, step: Step) -> str:
    return (f"{name}: {step.before_ms:.4g} → {step.after_ms:.4g} ms per iteration "
            f"({step.shift:+.1%}, p={step.p_value:.1g})")


def _structure_changes(runs: pd.DataFrame, rows: pd.DataFrame,
                       key: tuple[str, str]) -> list[ChangePoint]:
    position = dict(zip(runs["run_id"], runs["position"], strict=True))
    out = []
    for run_id, group in rows.groupby("run_id", sort=False):
        at = position[run_id]
        change = _change("structure", runs, at, key, at - 1)
        for row in group.to_dict("records"):
            for code, detail in layer_changes(row):
                if row["layer"] not in change.layers:
                    change.layers.append(row["layer"])
                change.codes.append(code)
                change.details.append(f"{row['layer']}: {detail}")
        out.append(change)
    return out


def _change(kind: str, runs: pd.DataFrame, position: int, key: tuple[str, str],
            previous: int) -> ChangePoint:
    run = runs.iloc[position - 1]
    before = runs.iloc[previous - 1]["run_id"] if previous >= 1 else ""
    return ChangePoint(kind, key[0], key[1], run["run_id"], position, run["run_time"],
                       run["git_commit"], before)
