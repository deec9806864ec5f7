"""Where the time goes, per variant: by primitive kind, layer, ResNet stage, data type, ISA,
implementation, the top primitives and one iteration's timeline.

Each function takes the variants and returns one long table (a `variant` column first);
`Comparison` computes each once. Times are per measured iteration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from dnnprof.reports.frames import concat, kinds_text, layers_text, tops
from dnnprof.reports.variants import UNATTRIBUTED, Variant, looks_like_resnet
from dnnprof.views import RESNET_STAGES, stages_of_rows
from dnnprof.vocabulary import COMPUTE_KINDS, REORDER


def by_kind(variants: Sequence[Variant]) -> pd.DataFrame:
    """Calls and ms per iteration by primitive kind and variant (Figures 4.6 and 4.9)."""
    frames = []
    for v in variants:
        if v.steady.empty:
            continue
        grouped = v.steady.groupby("kind", observed=True)
        table = pd.DataFrame({
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
        })
        total = table["ms_per_iter"].sum()
        table["share"] = table["ms_per_iter"] / total if total > 0 else 0.0
        table = table.join(tops(v.steady, ["kind"]))
        table.index = table.index.astype(str)
        frames.append(table.reset_index(names="kind").assign(variant=v.name))
    return concat(frames, ["variant", "kind", "calls_per_iter", "ms_per_iter", "share",
                           "top_layer", "top_shape"])


def by_layer(variants: Sequence[Variant]) -> pd.DataFrame:
    """Per layer and variant (with layer labels): the Trace's by_layer() per iteration,
    plus shape, post-ops and primitive mix for hover text; unlabelled rows as one row."""
    frames = [_layers_of(v) for v in variants if v.layers_known and not v.steady.empty]
    return concat(frames, ["variant", "layer", "layer_type", "position", "ms_per_iter",
                           "compute_ms_per_iter", "calls_per_iter", "reorders_per_iter",
                           "kinds", "shape", "post_ops"])


def _layers_of(v: Variant) -> pd.DataFrame:
    view = v.layer_view  # the Trace's own by_layer(), one code path
    rows = v.steady
    table = pd.DataFrame({
        "layer": view["layer"].astype(str),
        "layer_type": view["layer_type"].astype(str),
        "ms_per_iter": view["mean_ms"].astype(float),
        "compute_ms_per_iter": (view["total_ms"] - view["reorder_ms"]) / v.divisor,
        "calls_per_iter": view["calls"] / v.divisor,
        "reorders_per_iter": view["reorders"] / v.divisor,
    })
    outside = rows[rows["layer_name"] == UNATTRIBUTED]
    if not outside.empty:
        total_ms = outside["duration_ms"].sum()
        reorder_ms = outside.loc[outside["kind"] == REORDER, "duration_ms"].sum()
        table.loc[len(table)] = {
            "layer": UNATTRIBUTED, "layer_type": "",
            "ms_per_iter": total_ms / v.divisor,
            "compute_ms_per_iter": (total_ms - reorder_ms) / v.divisor,
            "calls_per_iter": len(outside) / v.divisor,
            "reorders_per_iter": float((outside["kind"] == REORDER).sum()) / v.divisor,
        }
    compute = rows[rows["kind"].isin(COMPUTE_KINDS)].groupby("layer_name", sort=False)
    grouped = rows.groupby("layer_name", sort=False)
    table["kinds"] = table["layer"].map(kinds_text(rows, "layer_name", v.divisor))
    table["shape"] = table["layer"].map(compute["shape"].first()).fillna(
        table["layer"].map(grouped["shape"].first()))
    table["post_ops"] = table["layer"].map(compute["post_ops"].first()).astype(str)
    table["post_ops"] = table["post_ops"].replace("nan", "")
    table = table.assign(order=table["layer"].map(grouped["line"].min())).sort_values("order")
    table["position"] = range(len(table))
    return table.drop(columns="order").assign(variant=v.name)


def layer_speedup(layers: pd.DataFrame, variants: Sequence[Variant],
                  baseline: Variant) -> pd.DataFrame:
    """Per-layer baseline ms / variant ms for layers present (by name) in both."""
    columns = ["variant", "layer", "layer_type", "position", "shape", "baseline_ms",
               "variant_ms", "speedup", "ratio", "baseline_compute_ms", "variant_compute_ms"]
    if layers.empty or len(variants) < 2:
        return pd.DataFrame(columns=columns)
    named = layers[layers["layer"] != UNATTRIBUTED]
    base = named[named["variant"] == baseline.name]
    frames = []
    for v in variants:
        if v is baseline:
            continue
        merged = base.merge(named[named["variant"] == v.name], on="layer", suffixes=("_base", ""))
        if merged.empty:
            continue
        frames.append(pd.DataFrame({
            "variant": v.name,
            "layer": merged["layer"],
            "layer_type": merged["layer_type"],
            "position": merged["position_base"],
            "shape": merged["shape"],
            "baseline_ms": merged["ms_per_iter_base"],
            "variant_ms": merged["ms_per_iter"],
            "speedup": merged["ms_per_iter_base"] / merged["ms_per_iter"],
            "ratio": merged["ms_per_iter"] / merged["ms_per_iter_base"],
            "baseline_compute_ms": merged["compute_ms_per_iter_base"],
            "variant_compute_ms": merged["compute_ms_per_iter"],
        }))
    return concat(frames, columns).sort_values(["variant", "position"]).reset_index(drop=True)


def by_stage(variants: Sequence[Variant]) -> pd.DataFrame:
    """ResNet stage roll-ups (conv1, conv2_x ... conv5_x, fc) per variant (Figure 4.2),
    with the Trace's stage mapping (dnnprof.views.stages_of_rows)."""
    frames = []
    for v in variants:
        if v.steady.empty or not looks_like_resnet(v):
            continue
        stage, method = stages_of_rows(v.steady)
        if stage.isna().all():
            continue
        # the stage as a categorical (a byte per row), and the few columns the table reads
        staged = v.steady[["duration_ms", "layer_name", "shape"]].assign(
            stage=pd.Categorical(stage))
        known = stage.notna().to_numpy()
        staged = staged if known.all() else staged[known]
        grouped = staged.groupby("stage", observed=True)
        table = pd.DataFrame({
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
        }).join(tops(staged, ["stage"]))
        table.index = table.index.astype(str)
        table = table.reindex([s for s in RESNET_STAGES if s in table.index])
        frames.append(table.reset_index(names="stage").assign(variant=v.name, method=method))
    return concat(frames, ["variant", "stage", "ms_per_iter", "calls_per_iter",
                           "top_layer", "top_shape", "method"])


def breakdown(variants: Sequence[Variant], keys: list[str]) -> pd.DataFrame:
    """Calls, ms per iteration and share of oneDNN time by `keys` per variant."""
    frames = []
    for v in variants:
        if v.steady.empty:
            continue
        grouped = v.steady.groupby(keys, observed=True, sort=False)
        total = float(v.steady["duration_ms"].sum())
        table = pd.DataFrame({
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
        })
        table["share"] = table["ms_per_iter"] * v.divisor / total if total > 0 else math.nan
        table = table.join(tops(v.steady, keys))
        table = table.sort_values("ms_per_iter", ascending=False).reset_index()
        for key in keys:
            table[key] = table[key].astype(str)
        frames.append(table.assign(variant=v.name))
    return concat(frames, ["variant", *keys, "calls_per_iter", "ms_per_iter", "share",
                           "top_layer", "top_shape"])


def top_primitives(variants: Sequence[Variant], n: int) -> pd.DataFrame:
    """The n distinct primitives with the most time per variant, with shape and GFLOP/s."""
    frames = []
    for v in variants:
        if v.steady.empty:
            continue
        grouped = v.steady.groupby("desc_id", sort=False)
        table = grouped.agg(
            kind=("kind", "first"), impl=("impl", "first"), shape=("shape", "first"),
            dtypes=("dtypes", "first"), post_ops=("post_ops", "first"),
            flops=("flops", "first"), calls=("duration_ms", "size"),
            total_ms=("duration_ms", "sum"), mean_ms=("duration_ms", "mean"),
        )
        table["layers"] = grouped["layer_name"].apply(layers_text)
        table["calls_per_iter"] = table.pop("calls") / v.divisor
        table["ms_per_iter"] = table.pop("total_ms") / v.divisor
        table["gflops"] = table["flops"] / (table["mean_ms"] * 1e6)
        table = table.sort_values("ms_per_iter", ascending=False).head(n)
        for column in ("kind", "impl", "post_ops"):
            table[column] = table[column].astype(str)
        frames.append(table.drop(columns="flops").reset_index(drop=True).assign(variant=v.name))
    return concat(frames, ["variant", "kind", "impl", "shape", "dtypes", "post_ops",
                           "layers", "calls_per_iter", "mean_ms", "ms_per_iter", "gflops"])


def timeline_iteration(variant: Variant) -> int | None:
    """The measured iteration whose oneDNN time is the median one (None if unknown)."""
    if not variant.iterations_known or variant.onednn_ms.empty:
        return None
    ordered = variant.onednn_ms.sort_values()
    return int(ordered.index[(len(ordered) - 1) // 2])


def timeline(variants: Sequence[Variant], max_events: int = 3000) -> pd.DataFrame:
    """Primitive calls of one steady iteration per variant, start relative to its first call."""
    frames = []
    for v in variants:
        if v.steady.empty:
            continue
        iteration = timeline_iteration(v)
        rows = v.steady if iteration is None else v.steady[v.steady["iteration"] == iteration]
        rows = rows.head(max_events)
        start = rows["start_ms"] - rows["start_ms"].min()
        frames.append(pd.DataFrame({
            "variant": v.name,
            "iteration": -1 if iteration is None else iteration,
            "start_ms": start.to_numpy(),
            "duration_ms": rows["duration_ms"].to_numpy(),
            "kind": rows["kind"].astype(str).to_numpy(),
            "layer": rows["layer_name"].astype(str).to_numpy(),
            "shape": rows["shape"].to_numpy(),
            "impl": rows["impl"].astype(str).to_numpy(),
            "timeline": v.meta.timeline or "synthetic",
        }))
    return concat(frames, ["variant", "iteration", "start_ms", "duration_ms", "kind",
                           "layer", "shape", "impl", "timeline"])
