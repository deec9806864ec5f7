"""What changed in a layer's structure between two stored runs, named as `check` names it.

Input: one row of `queries.structure_changes` (a layer after and before, either side
missing when the layer appeared or vanished). Output: (code, detail) pairs with the codes
of `dnnprof check` (fusion_lost, reorders_added, dtype_fallback, isa_downgrade, ...), so a
change reads the same in a history and in a failed check.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dnnprof.vocabulary import dtype_change, impl_change, post_op_changes

# the codes that make a structural change a regression (the rest are reported as news)
REGRESSIONS = frozenset({"fusion_lost", "reorders_added", "dtype_fallback", "isa_downgrade",
                         "impl_ref_fallback", "layer_added"})


def layer_changes(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, detail) for every way the layer differs from the run before."""
    if row["previous_kinds"] is None:
        return [("layer_added", f"new layer: runs {_kinds(row['kinds'])}" + _fused(row))]
    if row["kinds"] is None:
        return [("layer_removed", f"no longer runs: was {_kinds(row['previous_kinds'])}")]
    out: list[tuple[str, str]] = []
    out += _fusion(row)
    before, after = int(row["previous_reorders"]), int(row["reorders"])
    if before != after:
        code = "reorders_added" if after > before else "reorders_removed"
        out.append((code, f"{before} → {after} reorders per iteration"))
    old_kinds = Counter(k for k in row["previous_kinds"].split("+") if k)
    new_kinds = Counter(k for k in row["kinds"].split("+") if k)
    if new_kinds - old_kinds:
        out.append(("kind_added", "new primitives: " + _counted(new_kinds - old_kinds)))
    if old_kinds - new_kinds:
        out.append(("kind_removed", "primitives gone: " + _counted(old_kinds - new_kinds)))
    old_types = tuple(row[f"previous_{t}"] for t in ("src_dt", "wei_dt", "dst_dt"))
    new_types = tuple(row[t] for t in ("src_dt", "wei_dt", "dst_dt"))
    if old_types != new_types:
        out.append((dtype_change(old_types, new_types),
                    f"{_types(old_types)} → {_types(new_types)}"))
    if (row["previous_impl"], row["previous_isa"]) != (row["impl"], row["isa"]):
        code = impl_change(row["previous_impl"], row["previous_isa"], row["impl"], row["isa"])
        out.append((code, f"{row['previous_impl']} → {row['impl']}"))
    if not out and row["previous_layer_type"] != row["layer_type"]:
        out.append(("layer_type_changed", f"{row['previous_layer_type']} → {row['layer_type']}"))
    return out


def _fusion(row: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    lost, gained = post_op_changes(row["previous_post_ops"], row["post_ops"])
    old_fused = [f for f in row["previous_fused_layers"].split("+") if f]
    new_fused = [f for f in row["fused_layers"].split("+") if f]
    unfused = [f for f in old_fused if f not in new_fused]
    newly_fused = [f for f in new_fused if f not in old_fused]
    change = f"post-ops {row['previous_post_ops'] or 'none'} → {row['post_ops'] or 'none'}"
    if lost or unfused:
        parts = [f"lost {', '.join(lost)}"] if lost else []
        parts += [f"{', '.join(unfused)} no longer fused"] if unfused else []
        out.append(("fusion_lost", f"{change} ({'; '.join(parts)})"))
    if gained or newly_fused:
        parts = [f"gained {', '.join(gained)}"] if gained else []
        parts += [f"{', '.join(newly_fused)} now fused"] if newly_fused else []
        out.append(("fusion_gained", f"{change} ({'; '.join(parts)})"))
    return out


def _kinds(kinds: str | None) -> str:
    return _counted(Counter(k for k in (kinds or "").split("+") if k)) or "reorders only"


def _fused(row: dict[str, Any]) -> str:
    return f" (fusing {row['fused_layers']})" if row.get("fused_layers") else ""


def _counted(kinds: Counter[str]) -> str:
    return ", ".join(k if n == 1 else f"{n}x {k}" for k, n in sorted(kinds.items()))


def _types(types: tuple[str, ...]) -> str:
    return "/".join(t or "-" for t in types)
