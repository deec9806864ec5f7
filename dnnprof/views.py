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


def labelled_rows(ex: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions of the rows with a layer, their layer codes, the layer names)."""
    codes, names = coded(ex["layer"])
    rows = np.flatnonzero((names != "")[codes]) if len(names) else np.zeros(0, np.int64)
    return rows, codes[rows], names


def _iterations_in(iterations: np.ndarray) -> int:
    return max(len(np.unique(iterations[iterations >= 0])), 1)


def by_layer(ex: pd.DataFrame) -> pd.DataFrame:
    """One row per layer in execution order: calls, time, share, fusion, reorders, FLOPs."""
    rows, layer, names = labelled_rows(ex)
    if not len(rows):
        return pd.DataFrame(columns=LAYER_COLUMNS)
    iterations = _iterations_in(ex["iteration"].to_numpy()[rows])
    types, type_names = coded(ex["layer_type"])
    reorder = ex["is_reorder"].to_numpy(dtype=bool)[rows]
    duration = ex["duration_ms"].to_numpy(dtype=float)[rows]
    frame = pd.DataFrame({  # integer codes: pandas groups them without a string per row
        "layer": layer, "type": types[rows], "line": ex["line"].to_numpy()[rows],
        "duration": duration, "reorder": reorder,
        "reorder_ms": np.where(reorder, duration, 0.0),
        "flops": np.where(reorder, 0.0, np.nan_to_num(ex["flops"].to_numpy(dtype=float)[rows])),
    })
    table = _time_totals(
        frame, "layer", type=("type", "first"), first_line=("line", "min"),
        reorders=("reorder", "sum"), flops=("flops", "sum"),
    ).sort_values("first_line")  # fmt: skip
    fused = _joined(layer, *coded(ex["fused_layers"].iloc[rows]))
    table["fused_layers"] = [fused.get(code, "") for code in table.index]
    table["layer_type"] = type_names[table["type"].to_numpy()]
    table.index = names[table.index.to_numpy()]
    table.index.name = "layer"
    table["mean_ms"] = table["total_ms"] / iterations
    total = table["total_ms"].sum()
    table["share"] = table["total_ms"] / total if total > 0 else 0.0
    table["flops"] = table["flops"] / iterations
    compute_ms = (table["total_ms"] - table["reorder_ms"]) / iterations
    table["gflops"] = np.where(compute_ms > 0, table["flops"] / (compute_ms * 1e6), np.nan)
    table["reorders"] = table["reorders"].astype(int)
    return table.reset_index()[LAYER_COLUMNS]


def _time_totals(frame: pd.DataFrame, key: str, **more: tuple[str, str]) -> pd.DataFrame:
    """Per `key` (in order of first row): calls, total_ms and reorder_ms of the frame's
    `duration` and `reorder_ms` columns, and the named aggregations `more`."""
    return frame.groupby(key, sort=False).agg(
        calls=("duration", "size"),
        total_ms=("duration", "sum"),
        reorder_ms=("reorder_ms", "sum"),
        **more,
    )


def _joined(groups: np.ndarray, codes: np.ndarray, names: np.ndarray) -> dict[int, str]:
    """Per group, the "+"-separated parts of its values, each once in order of first row:
    worked out over the distinct (group, value) pairs, not over every row."""
    pairs = pd.unique(groups.astype(np.int64) * max(len(names), 1) + codes)
    seen: dict[int, list[str]] = {}
    for pair in pairs.tolist():
        group, code = divmod(pair, max(len(names), 1))
        parts = seen.setdefault(group, [])
        parts += [p for p in str(names[code]).split("+") if p and p not in parts]
    return {group: "+".join(parts) for group, parts in seen.items()}


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
    rows = np.flatnonzero(ex["iteration"].to_numpy() >= 0)
    if not len(rows):
        return pd.DataFrame(columns=ITERATION_COLUMNS)
    phase, phase_names = coded(ex["phase"])
    frame = pd.DataFrame({
        "iteration": ex["iteration"].to_numpy()[rows],
        "phase": phase[rows],
        "duration": ex["duration_ms"].to_numpy(dtype=float)[rows],
        "reorder": ex["is_reorder"].to_numpy(dtype=bool)[rows],
        "start": ex["start_ms"].to_numpy(dtype=float)[rows],
    })
    frame["end"] = frame["start"] + np.nan_to_num(frame["duration"])
    frame["reorder_ms"] = np.where(frame["reorder"], frame["duration"], 0.0)
    # each iteration's most common phase (ties: the first name in sort order, as `mode`)
    votes = frame.groupby(["iteration", "phase"]).size().rename("n").reset_index()
    votes["name"] = phase_names[votes["phase"].to_numpy()]
    votes = votes.sort_values(["iteration", "n", "name"], ascending=[True, False, True])
    first = votes.drop_duplicates("iteration")
    phase_of = dict(zip(first["iteration"].tolist(), first["name"].tolist(), strict=True))
    table = _time_totals(
        frame, "iteration", reorders=("reorder", "sum"), start_ms=("start", "min"),
        end_ms=("end", "max"),
    ).sort_index().rename(columns={"calls": "exec"}).reset_index()  # fmt: skip
    table["phase"] = [phase_of[i] for i in table["iteration"]]
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
    kind, kinds = coded(ex["kind"])
    problem, problems = coded(ex["problem"])  # a few hundred distinct shapes
    by_problem = np.array([int(m.group(1)) if (m := _OUTPUT_HEIGHT.search(p)) else -1
                           for p in problems] + [-1], dtype=np.int64)  # [-1]: no problem
    sized = np.isin(kinds, list(_SIZED_KINDS)) if len(kinds) else np.zeros(1, bool)
    return np.where(sized[kind], by_problem[problem], -1)


def _size_rule(ex: pd.DataFrame, rows: np.ndarray | None = None
               ) -> Callable[[str, int], str | None] | None:
    """Stage of a (primitive kind, output height): ResNet halves the resolution once per
    stage, so its convolutions have five distinct output sizes. None for other models."""
    heights = _output_heights(ex)
    kind, kinds = coded(ex["kind"])
    is_conv = (kinds == "convolution")[kind] & (heights >= 0)
    if rows is not None:
        heights, is_conv = heights[rows], is_conv[rows]
    distinct = sorted(np.unique(heights[is_conv]).tolist(), reverse=True)
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


def _stage_by_size(ex: pd.DataFrame, rows: np.ndarray) -> StageMapper | None:
    """Stages of layers whose names say nothing (heuristic mode), from output sizes."""
    rule = _size_rule(ex, rows)
    if rule is None:
        return None
    (layer, layers), (kind, kinds) = coded(ex["layer"]), coded(ex["kind"])
    layer, kind, heights = layer[rows], kind[rows], _output_heights(ex)[rows]
    sized_at = np.flatnonzero(heights >= 0)
    first = sized_at[np.unique(layer[sized_at], return_index=True)[1]]  # each layer's first
    sized = {layers[layer[r]]: rule(kinds[kind[r]], int(heights[r])) for r in first.tolist()}
    codes, from_end = np.unique(layer[::-1], return_index=True)  # each layer's last row
    last_kind = {layers[c]: kinds[kind[len(layer) - 1 - i]]
                 for c, i in zip(codes.tolist(), from_end.tolist(), strict=True)}

    def stage(layer: str) -> str | None:
        if layer in sized:
            return sized[layer]
        if layer.startswith("fc"):
            return "fc"
        return rule(last_kind.get(layer, ""), -1)

    return stage


def stage_mapper(ex: pd.DataFrame, rows: np.ndarray | None = None
                 ) -> tuple[StageMapper, str] | None:
    """The one layer -> ResNet stage mapping of these labelled rows (or of the `rows`
    positions), and how it was found: by layer name when most names say, else by output
    size; None when neither works."""
    rows = np.arange(len(ex)) if rows is None else rows
    layer, names = coded(ex["layer"])
    layers = names[pd.unique(layer[rows])]
    named = [resnet_stage(name) for name in layers]
    if len(layers) and sum(s is not None for s in named) >= len(named) / 2:
        return resnet_stage, BY_LAYER_NAMES
    sized = _stage_by_size(ex, rows)
    return None if sized is None else (sized, BY_OUTPUT_SIZES)


def stages_of_rows(ex: pd.DataFrame) -> tuple[pd.Series, str]:
    """The ResNet stage of every exec row (None where unknown) and how it was found.

    Labelled rows take their layer's stage (`stage_mapper`); rows outside any layer (framework
    glue, or a log without layers) are staged by output size, and the kinds that have no size
    (reorders, element-wise) join the compute primitive they feed.
    """
    rows, layer, names = labelled_rows(ex)
    labelled = np.zeros(len(ex), bool)
    labelled[rows] = True
    stage = np.full(len(ex), None, dtype=object)
    method = BY_OUTPUT_SIZES
    chosen = stage_mapper(ex, rows) if len(rows) else None
    if chosen is not None:
        mapper, method = chosen
        present = pd.unique(layer)  # the mapping once per layer
        by_code = np.full(len(names), None, dtype=object)
        by_code[present] = [mapper(name) for name in names[present]]
        stage[rows] = by_code[layer]
    if not labelled.all():
        rule = _size_rule(ex)
        if rule is not None:
            kind, kinds = coded(ex["kind"])
            heights = _output_heights(ex)
            codes, pairs = pd.MultiIndex.from_arrays([kind, heights]).factorize()
            staged = np.array([rule(kinds[k], int(h)) for k, h in pairs],  # once per (kind, size)
                              dtype=object)
            by_size = pd.Series(staged[codes], dtype=object).bfill().ffill().to_numpy()
            stage[~labelled] = by_size[~labelled]
    return pd.Series(stage, index=ex.index, dtype=object), method


def by_stage(ex: pd.DataFrame,
             stages: dict[str, str] | StageMapper | None = None) -> pd.DataFrame:
    """Time per ResNet stage (conv1, conv2_x ... conv5_x, fc), or per a given mapping."""
    rows, layer, names = labelled_rows(ex)
    if not len(rows):
        return pd.DataFrame(columns=STAGE_COLUMNS)
    if stages is None:
        chosen = stage_mapper(ex, rows)
        if chosen is None:
            return pd.DataFrame(columns=STAGE_COLUMNS)  # not a model with ResNet stages
        mapper: StageMapper = chosen[0]
    elif isinstance(stages, dict):
        mapper = stages.get
    else:
        mapper = stages
    present = pd.unique(layer)  # the mapping once per layer
    stage_codes, stage_names = pd.factorize(
        np.array([mapper(name) or "other" for name in names[present]], dtype=object))
    stage_of = np.zeros(len(names), np.int64)
    stage_of[present] = stage_codes
    duration = ex["duration_ms"].to_numpy(dtype=float)[rows]
    frame = pd.DataFrame({
        "stage": stage_of[layer],
        "layer": layer,
        "duration": duration,
        "reorder_ms": np.where(ex["is_reorder"].to_numpy(dtype=bool)[rows], duration, 0.0),
    })
    iterations = _iterations_in(ex["iteration"].to_numpy()[rows])
    table = _time_totals(frame, "stage", layers=("layer", "nunique"))
    table.index = np.asarray(stage_names, dtype=object)[table.index.to_numpy()]
    table.index.name = "stage"
    order = {name: i for i, name in enumerate(RESNET_STAGES)}
    table = table.loc[sorted(table.index, key=lambda s: (order.get(s, len(order)), s))]
    table["mean_ms"] = table["total_ms"] / iterations
    total = table["total_ms"].sum()
    table["share"] = table["total_ms"] / total if total > 0 else 0.0
    return table.reset_index()[STAGE_COLUMNS]
