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

LAYER_COLUMNS = ["layer", "layer_type", "calls", "total_ms", "mean_ms", "share", "fused_layers",
                 "reorder_ms", "reorders", "flops", "gflops"]
ITERATION_COLUMNS = ["iteration", "phase", "exec", "reorders", "total_ms", "reorder_ms",
                     "start_ms", "end_ms", "wall_ms"]
STAGE_COLUMNS = ["stage", "layers", "calls", "total_ms", "mean_ms", "share", "reorder_ms"]
RESNET_STAGES = ("conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "fc")


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


def _stage_by_size(ex: pd.DataFrame) -> Callable[[str], str | None] | None:
    """Stages from output spatial sizes, for names that say nothing (heuristic mode):
    ResNet halves the resolution once per stage, so five distinct conv output sizes."""
    kinds_all = ex["kind"].astype(str)
    sized = ex[kinds_all.isin(["convolution", "pooling", "pooling_v2"])]
    sizes: dict[str, int] = {}
    conv_sizes: set[int] = set()
    for layer, kind, problem in zip(sized["layer"].astype(str), sized["kind"].astype(str),
                                    sized["problem"].astype(str), strict=True):
        match = re.search(r"oh(\d+)", problem)
        if match and layer not in sizes:
            sizes[layer] = int(match.group(1))
            if kind == "convolution":
                conv_sizes.add(int(match.group(1)))
    distinct = sorted(conv_sizes, reverse=True)
    if len(distinct) != 5:
        return None
    names = dict(zip(distinct, RESNET_STAGES[:5], strict=True))
    kinds = dict(zip(ex["layer"].astype(str), kinds_all, strict=False))

    def stage(layer: str) -> str | None:
        if layer in sizes:  # a pool smaller than every conv output is the global pool
            return names.get(sizes[layer], "fc" if sizes[layer] < distinct[-1] else None)
        if kinds.get(layer) in ("inner_product", "matmul") or layer.startswith("fc"):
            return "fc"
        return None

    return stage


def by_stage(ex: pd.DataFrame,
             stages: dict[str, str] | Callable[[str], str | None] | None = None) -> pd.DataFrame:
    """Time per ResNet stage (conv1, conv2_x ... conv5_x, fc), or per a given mapping."""
    ex = ex[ex["layer"].astype(str) != ""]
    if ex.empty:
        return pd.DataFrame(columns=STAGE_COLUMNS)
    layers = ex["layer"].astype(str).to_numpy()
    if stages is None:
        mapper: Callable[[str], str | None] = resnet_stage
        named = [resnet_stage(layer) for layer in pd.unique(layers)]
        if sum(s is not None for s in named) < len(named) / 2:
            sized = _stage_by_size(ex)
            if sized is None:
                return pd.DataFrame(columns=STAGE_COLUMNS)  # not a model with ResNet stages
            mapper = sized
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
