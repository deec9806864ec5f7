"""Per-layer, per-iteration and per-stage tables of exec rows, and the one ResNet stage mapping.

`Trace.by_layer()`, `Trace.by_iteration()` and `Trace.by_stage()` call these with the rows
in scope (steady-state iterations by default). They work on the events frame alone and
import nothing above it. "mean" columns are per iteration, so a layer's `mean_ms` is what
it costs in one forward pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from dnnprof.markers import BEGIN, END, Marker
from dnnprof.vocabulary import PRIMITIVE_KINDS

LAYER_COLUMNS = ["layer", "layer_type", "calls", "total_ms", "mean_ms", "share", "fused_layers",
                 "reorder_ms", "reorders", "flops", "gflops"]
WALL_COLUMNS = ["layer", "layer_type", "calls", "wall_ms"]
OUTSIDE_COLUMNS = ["layer", "layer_type", "calls", "wall_ms", "share", "row"]
ITERATION_COLUMNS = ["iteration", "phase", "exec", "reorders", "total_ms", "reorder_ms",
                     "start_ms", "end_ms", "wall_ms"]
STAGE_COLUMNS = ["stage", "layers", "calls", "total_ms", "mean_ms", "share", "reorder_ms"]
RESNET_STAGES = ("conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "fc")


def coded(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A text column as (codes, names), `names[codes]` being its values as strings ("" for a
    missing one): a categorical's own codes, so nothing is converted row by row."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        names = np.asarray([str(c) for c in column.cat.categories], dtype=object)
    else:
        codes, uniques = pd.factorize(column)
        names = np.asarray([str(u) for u in uniques], dtype=object)
    if len(codes) and codes.min() < 0:  # missing values read as ""
        empty = np.flatnonzero(names == "")
        if not len(empty):
            names = np.append(names, "")
            empty = [len(names) - 1]
        codes = np.where(codes < 0, empty[0], codes)
    return codes, names


def _iterations_in(ex: pd.DataFrame) -> int:
    its = ex["iteration"].to_numpy()
    count = len(np.unique(its[its >= 0]))
    return max(count, 1)


def by_layer(ex: pd.DataFrame) -> pd.DataFrame:
    """One row per layer in execution order: calls, time, share, fusion, reorders, FLOPs."""
    ex = ex[ex["layer"].astype(str) != ""]
    if ex.empty:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    iterations = _iterations_in(ex)
    frame = pd.DataFrame({
        "layer": ex["layer"].astype(str).to_numpy(),
        "layer_type": ex["layer_type"].astype(str).to_numpy(),
        "duration": ex["duration_ms"].to_numpy(dtype=float),
        "reorder": ex["is_reorder"].to_numpy(dtype=bool),
        "flops": ex["flops"].to_numpy(dtype=float),
        "fused": ex["fused_layers"].astype(str).to_numpy(),
        "line": ex["line"].to_numpy(),
    })
    frame["reorder_ms"] = np.where(frame["reorder"], frame["duration"], 0.0)
    frame["flops"] = np.where(frame["reorder"], 0.0, np.nan_to_num(frame["flops"]))
    grouped = frame.groupby("layer", sort=False)
    table = grouped.agg(
        layer_type=("layer_type", "first"),
        first_line=("line", "min"),
        calls=("duration", "size"),
        total_ms=("duration", "sum"),
        reorder_ms=("reorder_ms", "sum"),
        reorders=("reorder", "sum"),
        flops=("flops", "sum"),
        fused_layers=("fused", _joined),
    ).sort_values("first_line")
    table["mean_ms"] = table["total_ms"] / iterations
    total = table["total_ms"].sum()
    table["share"] = table["total_ms"] / total if total > 0 else 0.0
    table["flops"] = table["flops"] / iterations
    compute_ms = (table["total_ms"] - table["reorder_ms"]) / iterations
    table["gflops"] = np.where(compute_ms > 0, table["flops"] / (compute_ms * 1e6), np.nan)
    table["reorders"] = table["reorders"].astype(int)
    return table.reset_index()[LAYER_COLUMNS]


def _joined(values: pd.Series) -> str:
    seen: list[str] = []
    for value in values:
        for part in str(value).split("+"):
            if part and part not in seen:
                seen.append(part)
    return "+".join(seen)


def layer_wall(marker_rows: pd.DataFrame) -> pd.DataFrame:
    """Wall ms per iteration of each layer, from its begin/end markers (dnnprof's hooks).

    Pass the marker rows of the iterations in scope. A layer's begin and end markers pair
    in log order (a module called twice has two spans); the time includes what ran outside
    oneDNN, and the hooks' own few microseconds.
    """
    rows = marker_rows[marker_rows["kind"].astype(str).isin((BEGIN, END))]
    if rows.empty:
        return pd.DataFrame(columns=WALL_COLUMNS)
    kinds = rows["kind"].astype(str).to_numpy()
    decoded = [Marker.from_row(kind, message) for kind, message
               in zip(kinds, rows["message"].astype(str), strict=True)]
    frame = pd.DataFrame({
        "layer": [m.field(0) for m in decoded], "layer_type": [m.field(1) for m in decoded],
        "kind": kinds, "ts": rows["ts_ms"].to_numpy(dtype=float),
        "iteration": rows["iteration"].to_numpy(), "line": rows["line"].to_numpy(),
    }).sort_values("line", kind="stable")
    frame["n"] = frame.groupby(["layer", "kind"], sort=False).cumcount()
    begins, ends = frame[frame["kind"] == BEGIN], frame[frame["kind"] == END]
    spans = begins.merge(ends[["layer", "n", "ts"]], on=["layer", "n"], suffixes=("", "_end"))
    spans["wall"] = spans["ts_end"] - spans["ts"]
    table = spans.groupby("layer", sort=False).agg(
        layer_type=("layer_type", "first"), calls=("wall", "size"), wall_ms=("wall", "sum"))
    iterations = max(1, len(np.unique(spans["iteration"].to_numpy())))
    table["wall_ms"] = table["wall_ms"] / iterations
    table["calls"] = table["calls"] // iterations
    return table.reset_index()[WALL_COLUMNS]


def outside_onednn(layer_table: list[dict] | None, attributed: set[str],
                   wall: pd.DataFrame, iteration_wall_ms: float | None) -> pd.DataFrame:
    """Layers of the layer table that no oneDNN primitive was attributed to.

    They ran in the framework's own kernels. `wall` (from `layer_wall`) gives each its wall
    ms per iteration and `share` of `iteration_wall_ms`; NaN when unknown (no markers).
    `row` is the layer-table row, for its shape.
    """
    rows: dict[str, dict] = {}
    for row in layer_table or []:
        name = str(row.get("name", "")) if isinstance(row, dict) else ""
        if name and name not in attributed and name not in rows:
            rows[name] = row
    if not rows:
        return pd.DataFrame(columns=OUTSIDE_COLUMNS)
    spans = wall.set_index("layer") if not wall.empty else pd.DataFrame(columns=WALL_COLUMNS)
    table = pd.DataFrame({
        "layer": list(rows),
        "layer_type": [str(row.get("type", "")) for row in rows.values()],
        "calls": [int(spans["calls"].get(name, 0)) if name in spans.index else 0
                  for name in rows],
        "wall_ms": [float(spans["wall_ms"][name]) if name in spans.index else np.nan
                    for name in rows],
        "row": list(rows.values()),
    })
    table["share"] = table["wall_ms"] / iteration_wall_ms if iteration_wall_ms else np.nan
    return table[OUTSIDE_COLUMNS]


def by_iteration(ex: pd.DataFrame, wall_ms: dict[int, float]) -> pd.DataFrame:
    """One row per iteration: phase, exec count, exec time, reorder time, span, Python wall."""
    ex = ex[ex["iteration"] >= 0]
    if ex.empty:
        return pd.DataFrame(columns=ITERATION_COLUMNS)
    frame = pd.DataFrame({
        "iteration": ex["iteration"].to_numpy(),
        "phase": ex["phase"].astype(str).to_numpy(),
        "duration": ex["duration_ms"].to_numpy(dtype=float),
        "reorder": ex["is_reorder"].to_numpy(dtype=bool),
        "start": ex["start_ms"].to_numpy(dtype=float),
    })
    frame["end"] = frame["start"] + np.nan_to_num(frame["duration"])
    frame["reorder_ms"] = np.where(frame["reorder"], frame["duration"], 0.0)
    table = frame.groupby("iteration").agg(
        phase=("phase", lambda s: s.mode().iloc[0] if len(s) else ""),
        exec=("duration", "size"),
        reorders=("reorder", "sum"),
        total_ms=("duration", "sum"),
        reorder_ms=("reorder_ms", "sum"),
        start_ms=("start", "min"),
        end_ms=("end", "max"),
    ).reset_index()
    table["wall_ms"] = [wall_ms.get(int(i)) for i in table["iteration"]]
    table["wall_ms"] = table["wall_ms"].astype(float)
    table["reorders"] = table["reorders"].astype(int)
    return table[ITERATION_COLUMNS]


_TORCH_STAGE = re.compile(r"^layer(\d+)\.")
_MXNET_STAGE = re.compile(r"stage(\d+)_")
_OUTPUT_HEIGHT = re.compile(r"oh(\d+)")
_SIZED_KINDS = frozenset({"convolution", "pooling", "pooling_v2"})
_HEAD_KINDS = frozenset(k.name for k in PRIMITIVE_KINDS.values() if k.category == "linear")
# How stages were found (the reports show it next to each stage)
BY_LAYER_NAMES = "layer names"
BY_OUTPUT_SIZES = "convolution output sizes"
StageMapper = Callable[[str], str | None]


def resnet_stage(layer: str, layer_type: str = "") -> str | None:
    """ResNet stage of a layer name (torchvision/zoo or Gluon naming), or None if unknown."""
    match = _TORCH_STAGE.match(layer) or _MXNET_STAGE.search(layer)
    if match:
        return f"conv{int(match.group(1)) + 1}_x"
    base = layer.split(".")[-1]
    if layer in ("conv1", "bn1", "relu") or re.search(r"_(conv0|batchnorm0|relu0)_fwd$", layer):
        return "conv1"
    if base == "maxpool" or layer.endswith("_pool0_fwd"):
        return "conv2_x"  # He et al. put the 3x3 max pool at the head of conv2_x
    if base in ("avgpool", "fc", "flatten") or re.search(r"_(pool1|dense0|flatten0)_fwd$", layer):
        return "fc"
    return None


def _output_heights(ex: pd.DataFrame) -> np.ndarray:
    """Output height of each convolution and pooling row (-1 for every other row)."""
    sized = ex["kind"].astype(str).isin(_SIZED_KINDS).to_numpy()
    codes, problems = pd.factorize(ex["problem"].astype(str))  # a few hundred distinct shapes
    by_problem = np.array([int(m.group(1)) if (m := _OUTPUT_HEIGHT.search(p)) else -1
                           for p in problems] + [-1], dtype=np.int64)  # [-1]: no problem
    return np.where(sized, by_problem[codes], -1)


def _size_rule(ex: pd.DataFrame) -> Callable[[str, int], str | None] | None:
    """Stage of a (primitive kind, output height): ResNet halves the resolution once per
    stage, so its convolutions have five distinct output sizes. None for other models."""
    heights = _output_heights(ex)
    is_conv = (ex["kind"].astype(str) == "convolution").to_numpy()
    distinct = sorted({int(h) for h in heights[is_conv] if h >= 0}, reverse=True)
    if len(distinct) != 5:
        return None
    names = dict(zip(distinct, RESNET_STAGES[:5], strict=True))

    def stage(kind: str, height: int) -> str | None:
        if kind in _HEAD_KINDS:
            return "fc"
        if height < 0:
            return None
        # a pool smaller than every convolution output is the global pool before fc
        return names.get(height, "fc" if height < distinct[-1] else None)

    return stage


def _stage_by_size(ex: pd.DataFrame) -> StageMapper | None:
    """Stages of layers whose names say nothing (heuristic mode), from output sizes."""
    rule = _size_rule(ex)
    if rule is None:
        return None
    frame = pd.DataFrame({"layer": ex["layer"].astype(str).to_numpy(),
                          "kind": ex["kind"].astype(str).to_numpy(),
                          "height": _output_heights(ex)})
    first_sized = frame[frame["height"] >= 0].drop_duplicates("layer")
    sized = {layer: rule(kind, int(height)) for layer, kind, height
             in first_sized.itertuples(index=False)}
    last_kind = dict(zip(frame["layer"], frame["kind"], strict=True))

    def stage(layer: str) -> str | None:
        if layer in sized:
            return sized[layer]
        if layer.startswith("fc"):
            return "fc"
        return rule(last_kind.get(layer, ""), -1)

    return stage


def stage_mapper(ex: pd.DataFrame) -> tuple[StageMapper, str] | None:
    """The one layer -> ResNet stage mapping of these labelled rows, and how it was found:
    by layer name when most names say, else by output size; None when neither works."""
    layers = pd.unique(ex["layer"].astype(str).to_numpy())
    named = [resnet_stage(layer) for layer in layers]
    if len(layers) and sum(s is not None for s in named) >= len(named) / 2:
        return resnet_stage, BY_LAYER_NAMES
    sized = _stage_by_size(ex)
    return None if sized is None else (sized, BY_OUTPUT_SIZES)


def stages_of_rows(ex: pd.DataFrame) -> tuple[pd.Series, str]:
    """The ResNet stage of every exec row (None where unknown) and how it was found.

    Labelled rows take their layer's stage (`stage_mapper`); rows outside any layer (framework
    glue, or a log without layers) are staged by output size, and the kinds that have no size
    (reorders, element-wise) join the compute primitive they feed.
    """
    layers = ex["layer"].astype(str)
    labelled = (layers != "").to_numpy()
    stage = pd.Series([None] * len(ex), index=ex.index, dtype=object)
    method = BY_OUTPUT_SIZES
    chosen = stage_mapper(ex[labelled]) if labelled.any() else None
    if chosen is not None:
        mapper, method = chosen
        lookup = {layer: mapper(layer) for layer in pd.unique(layers[labelled])}
        stage[labelled] = layers[labelled].map(lookup)
    if not labelled.all():
        rule = _size_rule(ex)
        if rule is not None:
            pairs = pd.MultiIndex.from_arrays([ex["kind"].astype(str), _output_heights(ex)])
            codes, distinct = pairs.factorize()  # the rule once per (kind, size)
            staged = np.array([rule(kind, int(height)) for kind, height in distinct],
                              dtype=object)
            by_size = pd.Series(staged[codes], index=ex.index, dtype=object)
            stage[~labelled] = by_size.bfill().ffill()[~labelled]
    return stage, method


def by_stage(ex: pd.DataFrame,
             stages: dict[str, str] | StageMapper | None = None) -> pd.DataFrame:
    """Time per ResNet stage (conv1, conv2_x ... conv5_x, fc), or per a given mapping."""
    ex = ex[ex["layer"].astype(str) != ""]
    if ex.empty:
        return pd.DataFrame(columns=STAGE_COLUMNS)
    layers = ex["layer"].astype(str).to_numpy()
    if stages is None:
        chosen = stage_mapper(ex)
        if chosen is None:
            return pd.DataFrame(columns=STAGE_COLUMNS)  # not a model with ResNet stages
        mapper: StageMapper = chosen[0]
    elif isinstance(stages, dict):
        mapper = stages.get
    else:
        mapper = stages
    lookup = {layer: mapper(layer) or "other" for layer in pd.unique(layers)}
    frame = pd.DataFrame({
        "stage": [lookup[layer] for layer in layers],
        "layer": layers,
        "duration": ex["duration_ms"].to_numpy(dtype=float),
        "reorder_ms": np.where(ex["is_reorder"].to_numpy(dtype=bool),
                               ex["duration_ms"].to_numpy(dtype=float), 0.0),
    })
    iterations = _iterations_in(ex)
    table = frame.groupby("stage", sort=False).agg(
        layers=("layer", "nunique"),
        calls=("duration", "size"),
        total_ms=("duration", "sum"),
        reorder_ms=("reorder_ms", "sum"),
    )
    order = {name: i for i, name in enumerate(RESNET_STAGES)}
    table = table.loc[sorted(table.index, key=lambda s: (order.get(s, len(order)), s))]
    table["mean_ms"] = table["total_ms"] / iterations
    total = table["total_ms"].sum()
    table["share"] = table["total_ms"] / total if total > 0 else 0.0
    return table.reset_index()[STAGE_COLUMNS]
