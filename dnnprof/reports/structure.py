"""What a variant runs, rather than how long: fusion (post-ops), reorders, and the
deterministic structural changes against the baseline.

Each function takes the variants and returns one long table (a `variant` column first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.reports.frames import concat, layers_text, top_row, tops
from dnnprof.reports.variants import (
    FUSABLE_KINDS,
    ROLES,
    Variant,
    joined_category,
    primitive_roles,
    text_category,
)
from dnnprof.views import coded
from dnnprof.vocabulary import COMPUTE_KINDS, REORDER

FUSED = ROLES[0]  # "compute with post-ops"


def fused_primitives(variants: Sequence[Variant]) -> pd.DataFrame:
    """Compute primitives carrying post-ops: the layers that became one primitive."""
    frames = []
    for v in variants:
        steady = v.steady
        merged = steady["fused_layers"].str.contains("+", regex=False).to_numpy(dtype=bool)
        keep = steady["kind"].isin(COMPUTE_KINDS).to_numpy() & (
            (steady["post_ops"] != "").to_numpy() | merged)
        if not keep.any():
            continue
        rows = steady.loc[keep, ["layer_name", "kind", "shape", "post_ops", "layer_type",
                                 "line", "duration_ms"]]
        # the layers merged into one ('a + b'), named once per distinct value
        rows["fused"] = text_category(steady["fused_layers"][keep],
                                      rename=lambda name: name.replace("+", " + ")
                                      if "+" in name else "")
        grouped = rows.groupby(["layer_name", "kind", "shape", "post_ops", "fused"],
                               observed=True, sort=False)
        table = pd.DataFrame({
            "layer_type": grouped["layer_type"].first().astype(str),
            "order": grouped["line"].min(),
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
        }).sort_values("order").drop(columns="order").reset_index()
        table["layer"] = table.pop("layer_name").astype(str)
        table["kind"] = table["kind"].astype(str)
        table["post_ops"] = table["post_ops"].astype(str)
        post = table["post_ops"].str.replace("+", " + ")
        table["became"] = table["kind"] + (" + " + post).where(post != "", "")
        table["fused_layers"] = table.pop("fused").astype(str)
        frames.append(table.assign(variant=v.name))
    return concat(frames, ["variant", "layer", "layer_type", "kind", "shape", "post_ops",
                           "became", "fused_layers", "calls_per_iter", "ms_per_iter"])


def fusion_roles(variants: Sequence[Variant]) -> pd.DataFrame:
    """Primitives per iteration by role (see ROLES) per variant, with an example each."""
    frames = []
    for v in variants:
        if v.steady.empty:
            continue
        rows = v.steady.assign(role=primitive_roles(v.steady))
        grouped = rows.groupby("role", observed=True, sort=False)
        table = pd.DataFrame({
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
        }).join(tops(rows, ["role"]))
        table.index = table.index.astype(str)
        table = table.reindex([r for r in ROLES if r in table.index])
        frames.append(table.reset_index(names="role").assign(variant=v.name))
    return concat(frames, ["variant", "role", "calls_per_iter", "ms_per_iter",
                           "top_layer", "top_shape"])


def fusion_summary(variants: Sequence[Variant], roles_table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: primitives per iteration by role and by fusable kind, post-ops."""
    roles = roles_table.pivot_table(
        index="variant", columns="role", values="calls_per_iter", aggfunc="sum"
    )
    rows = []
    for v in variants:
        kind, kinds = coded(v.steady["kind"])
        calls = np.bincount(kind, minlength=len(kinds))
        row: dict[str, Any] = {"variant": v.name}
        for role in ROLES:
            value = roles.at[v.name, role] if v.name in roles.index and role in roles else 0
            row[role] = 0.0 if pd.isna(value) else float(value)
        for name in FUSABLE_KINDS:
            row[name] = float(calls[kinds == name].sum()) / v.divisor
        row["post_ops"] = ", ".join(
            f"{name} x{count / v.divisor:g}" for name, count in post_op_counts(v).items()
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=["variant", *ROLES, *FUSABLE_KINDS, "post_ops"])


def post_op_counts(v: Variant) -> pd.Series:
    """Post-ops of the fused compute primitives by name ('eltwise_relu', 'sum'), counted
    and ordered as a value_counts over every row's parts, worked out per distinct post-ops."""
    codes, texts = coded(v.steady["post_ops"])
    codes = codes[(primitive_roles(v.steady) == FUSED).to_numpy()]
    per_code = np.bincount(codes, minlength=len(texts))
    counts: dict[str, int] = {}
    for code in pd.unique(codes).tolist():  # in order of first row, as value_counts
        for part in str(texts[code]).split("+"):
            name = part.split(":")[0]
            counts[name] = counts.get(name, 0) + int(per_code[code])
    return pd.Series(counts, dtype=np.int64).sort_values(ascending=False, kind="stable")


def structural_changes(variants: Sequence[Variant], baseline: Variant,
                       summary: pd.DataFrame) -> list[str]:
    """Deterministic differences against the baseline, as sentences (plain text)."""
    if len(variants) < 2:
        return []
    by_variant = summary.set_index("variant")
    base = by_variant.loc[baseline.name]
    changes = []
    for v in variants:
        if v is not baseline:
            changes += _fusion_changes(v.name, base, by_variant.loc[v.name])
            changes += _type_changes(v, baseline)
    return changes


def _fusion_changes(name: str, base: pd.Series, mine: pd.Series) -> list[str]:
    changes = [
        f"{name}: standalone {kind} primitives {base[kind]:g} -> {mine[kind]:g} per iteration "
        "(folded into post-ops or left to the framework)"
        for kind in FUSABLE_KINDS if base[kind] > 0 and mine[kind] < base[kind]
    ]
    if mine[FUSED] != base[FUSED]:
        changes.append(f"{name}: compute primitives with post-ops {base[FUSED]:g} -> "
                       f"{mine[FUSED]:g} per iteration")
    if mine[REORDER] != base[REORDER]:
        changes.append(f"{name}: reorders {base[REORDER]:g} -> {mine[REORDER]:g} per iteration")
    return changes


def _type_changes(v: Variant, baseline: Variant) -> list[str]:
    changes = []
    for column, what in (("src_dt", "source data types"), ("isa", "ISAs")):
        # the distinct values, not a string per row
        before = {str(value) for value in baseline.steady[column].unique()} - {""}
        after = {str(value) for value in v.steady[column].unique()} - {""}
        if after != before:
            changes.append(f"{v.name}: {what} {sorted(before)} -> {sorted(after)}")
    return changes


def reorders(variants: Sequence[Variant]) -> pd.DataFrame:
    """Reorder count, ms per iteration and share of oneDNN time per variant."""
    rows = []
    for v in variants:
        reorder = v.steady[v.steady["kind"] == REORDER]
        total = float(v.steady["duration_ms"].sum())
        reorder_ms = float(reorder["duration_ms"].sum())
        top_layer, top_shape = top_row(reorder)
        rows.append({
            "variant": v.name,
            "reorders_per_iter": len(reorder) / v.divisor,
            "reorder_ms_per_iter": reorder_ms / v.divisor,
            "share": reorder_ms / total if total > 0 else math.nan,
            "top_layer": top_layer,
            "top_shape": top_shape,
        })
    return pd.DataFrame(rows)


def reorder_detail(variants: Sequence[Variant]) -> pd.DataFrame:
    """Reorders by (source format -> destination format, data types) per variant."""
    frames = []
    for v in variants:
        rows = v.steady[v.steady["kind"] == REORDER]
        if rows.empty:
            continue
        rows = rows.assign(  # texts made once per distinct pair, not once per row
            formats=joined_category([rows["src_fmt"], rows["dst_fmt"]], " -> ", empty=""),
            types=joined_category([rows["src_dt"], rows["dst_dt"]], " -> ", empty=""),
        )
        grouped = rows.groupby(["reorder_class", "formats", "types"], observed=True, sort=False)
        table = pd.DataFrame({
            "calls_per_iter": grouped.size().astype(float) / v.divisor,
            "ms_per_iter": grouped["duration_ms"].sum() / v.divisor,
            "layers": grouped["layer_name"].apply(layers_text),
            "shape": grouped["shape"].first(),
        }).sort_values("ms_per_iter", ascending=False).reset_index()
        for column in ("formats", "types"):
            table[column] = table[column].astype(str)
        frames.append(table.assign(variant=v.name))
    return concat(frames, ["variant", "reorder_class", "formats", "types",
                           "calls_per_iter", "ms_per_iter", "layers", "shape"])
