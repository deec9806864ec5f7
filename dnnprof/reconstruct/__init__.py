"""Layer reconstruction: events -> iterations -> layers, fused groups and reorders.

`reconstruct(trace, layers=None, model=None)` returns a new Trace whose events carry
`iteration`, `phase`, `layer`, `layer_type`, `fused_layers`, `is_reorder`,
`reorder_class` and `attribution`, choosing the mode from what is available:

1. ``markers``   the log has dnnprof's begin/end module markers: exact attribution;
2. ``align``     a layer table is known (``layers=``, ``model=``, or a ``meta,layer_table``
                 marker): the primitive stream is aligned with it by kind and shape;
3. ``heuristic`` neither: the thesis' grouping (conv + following element-wise = one layer).

Iterations come from ``iter_begin/iter_end`` markers when present, else from the periodic
structure of the exec stream. `trace.metadata["reconstruction"]` records the mode, a score,
the coverage and any warnings (a layer table that does not fit the log says so, with its
alignment score, and the heuristic grouping is used instead).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.metadata import Reconstruction, TraceMetadata
from dnnprof.reconstruct import reorders as reorder_classes
from dnnprof.reconstruct.align import (
    align,
    covered_layers,
    match_quality,
    table_coverage,
    weight_layers,
)
from dnnprof.reconstruct.context import Context, build_context
from dnnprof.reconstruct.heuristic import group
from dnnprof.reconstruct.iterations import IterationResult, Pass, detect, from_markers
from dnnprof.reconstruct.layers import (
    PASSIVE_CATEGORIES,
    LayerSpec,
    LayerTableError,
    available_models,
    load_table,
    model_table,
    normalize_table,
)
from dnnprof.reconstruct.markers import MarkerInfo, read_markers
from dnnprof.trace import Trace, normalize_events

__all__ = [
    "LayerTableError",
    "MIN_ALIGNMENT_SCORE",
    "GOOD_ALIGNMENT_SCORE",
    "available_models",
    "load_table",
    "model_table",
    "reconstruct",
]

# Below this mean match quality a layer table is taken not to describe the log.
MIN_ALIGNMENT_SCORE = 0.6
# Below this the attribution is kept but flagged as a partial fit.
GOOD_ALIGNMENT_SCORE = 0.9
# Below this share of the table's convolutions found in the log, say so.
MIN_TABLE_COVERAGE = 0.75
STEADY = "measure"


def reconstruct(trace: Trace, layers: Any = None, model: str | None = None) -> Trace:
    """A new Trace with iterations, layers, fusion and reorders attributed (see module doc)."""
    events = trace.events.copy()
    ctx = build_context(events)
    info = read_markers(events)
    warnings: list[str] = [f"marker: {p}" for p in info.problems[:20]]
    rows_needed = len(events)

    table_rows, table_source = _choose_table(layers, model, info, trace.metadata)
    specs = normalize_table(table_rows) if table_rows else None

    truncated = any("truncated" in str(w) for w in trace.metadata.warnings)
    if info.has_iterations:
        found = from_markers(ctx, info)
        iteration = info.iteration.copy()
        phase = info.phase.copy()
    else:
        found = detect(ctx, truncated=truncated)
        iteration = np.full(rows_needed, -1, np.int32)
        phase = np.full(rows_needed, "", dtype=object)
        for p in found.passes:
            iteration[p.first_row : p.last_row + 1] = p.iteration
            phase[p.first_row : p.last_row + 1] = p.phase
        if info.phase.any():  # phase markers without iteration markers
            marked = info.phase != ""
            phase[marked & (iteration < 0)] = info.phase[marked & (iteration < 0)]
    passes = found.passes
    for p in passes:  # the steady/warm-up label a pass carries is what its rows say
        if len(p.exec_rows):
            p.phase = str(phase[p.exec_rows[0]])

    out = _Attribution(rows_needed)
    mode, score, details = "heuristic", None, {}
    if info.has_modules:
        mode = "markers"
        score = _from_markers(ctx, info, passes, out, specs)
    elif specs is not None:
        score, details = _aligned(ctx, passes, specs, out)
        if score is None:
            warnings.append(f"layer table {table_source} not used: the log has no oneDNN "
                            "primitives other than reorders to align with it")
            _heuristic(ctx, passes, out)
        elif score < MIN_ALIGNMENT_SCORE:
            warnings.append(
                f"layer table {table_source} does not fit this log: alignment score {score:.2f} "
                f"(1.0 = every primitive matches a layer in kind and shape; below "
                f"{MIN_ALIGNMENT_SCORE} it is not used). Layers were grouped heuristically "
                "instead: check the model name (--model) or pass the right table (--layers)."
            )
            out = _Attribution(rows_needed)
            _heuristic(ctx, passes, out)
            details["rejected_alignment_score"] = score
        else:
            mode = "align"
            if score < GOOD_ALIGNMENT_SCORE:
                warnings.append(
                    f"layer table {table_source} fits this log only partly: alignment score "
                    f"{score:.2f}; layers without a good match are left unattributed")
            covered = details.get("table_coverage")
            if covered is not None and covered < MIN_TABLE_COVERAGE:
                warnings.append(
                    f"only {covered:.0%} of the convolutions in layer table {table_source} "
                    f"were found in this log (alignment score {score:.2f}): either the log is "
                    "of a different depth or variant of the model, or the framework ran the "
                    "missing convolutions itself (ATen keeps small 1x1 convs with "
                    "OMP_NUM_THREADS=1)")
    else:
        _heuristic(ctx, passes, out)

    reorder_class = _reorder_classes(ctx, passes, phase)
    _write_columns(events, ctx, iteration, phase, out, reorder_class)
    events = normalize_events(events)
    steady_rows = ctx.is_exec & (phase == STEADY)
    scope = steady_rows if steady_rows.any() else (
        ctx.is_exec & (iteration >= 0) if (ctx.is_exec & (iteration >= 0)).any() else ctx.is_exec)
    coverage = float((out.layer[scope] != "").mean()) if scope.any() else None
    all_exec = ctx.is_exec
    metadata = trace.metadata.copy()
    metadata.reconstruction = Reconstruction(
        mode=mode,
        score=None if score is None else round(float(score), 4),
        coverage=None if coverage is None else round(coverage, 4),
        coverage_all=round(float((out.layer[all_exec] != "").mean()), 4) if all_exec.any() else None,
        warnings=warnings + found.notes,
        layer_table={"source": table_source, "layers": len(specs) if specs else 0},
        iterations=_iteration_summary(found, iteration, phase, ctx),
        fusion=_fusion_summary(out, specs),
        extra=details,
    )
    if specs is not None:
        metadata.layer_table = table_rows
    return Trace(events, metadata)


# ----------------------------------------------------------------- helpers --


class _Attribution:
    """Per-row outputs being filled in."""

    def __init__(self, n: int) -> None:
        self.layer = np.full(n, "", dtype=object)
        self.layer_type = np.full(n, "", dtype=object)
        self.fused = np.full(n, "", dtype=object)
        self.how = np.full(n, "", dtype=object)
        self.fused_types: Counter[str] = Counter()
        self.unmatched_layers: Counter[str] = Counter()


def _choose_table(layers: Any, model: str | None, info: MarkerInfo,
                  metadata: TraceMetadata) -> tuple[list[dict] | None, str]:
    if layers is not None:
        source = f"'{layers}'" if isinstance(layers, str) else "(given)"
        return load_table(layers), source
    if model:
        return model_table(model), f"'{model}'"
    if isinstance(info.meta.get("layer_table"), list):
        return info.meta["layer_table"], "(from the log's meta marker)"
    if isinstance(metadata.layer_table, list):
        return metadata.layer_table, "(from the trace metadata)"
    return None, ""


def _pass_shapes(ctx: Context, p: Pass) -> tuple[np.ndarray, list]:
    rows = p.exec_rows
    return rows, [ctx.shape(int(r)) for r in rows]


def _aligned(ctx: Context, passes: Sequence[Pass], specs: list[LayerSpec],
             out: _Attribution) -> tuple[float | None, dict[str, Any]]:
    """Mode 2: align every pass; returns the score over steady passes (else all)."""
    qcache: dict = {}
    by_signature: dict[tuple, tuple] = {}
    scored: list[tuple[float, int, bool]] = []  # (score, anchors, steady)
    unmatched_per_pass: list[Counter[str]] = []
    coverages: list[float | None] = []
    for p in passes:
        rows, shapes = _pass_shapes(ctx, p)
        if not len(rows):
            continue
        signature = tuple(ctx.desc_id[rows].tolist())
        result = by_signature.get(signature)
        if result is None:
            result = _align_pass(ctx, rows, shapes, specs, qcache)
            by_signature[signature] = result
        layer_idx, fused, how, alignment, n_anchors, unmatched = result
        if p.phase == STEADY or not coverages:
            coverages.append(table_coverage(specs, alignment.layer_of))
        for k, row in enumerate(rows):
            j = layer_idx[k]
            if j >= 0:
                out.layer[row] = specs[j].name
                out.layer_type[row] = specs[j].type
                out.how[row] = how[k]
                if fused[k]:
                    out.fused[row] = "+".join(specs[f].name for f in fused[k])
        if n_anchors:
            scored.append((alignment.score, n_anchors, p.phase == STEADY))
            unmatched_per_pass.append(unmatched)
    if not scored:
        return None, {}
    steady = [s for s in scored if s[2]] or scored
    weight = sum(n for _, n, _ in steady)
    score = sum(s * n for s, n, _ in steady) / weight if weight else 0.0
    last = unmatched_per_pass[-1] if unmatched_per_pass else Counter()
    out.unmatched_layers = last
    covered = coverages[-1] if coverages else None
    return score, {"pass_scores": _score_range(scored),
                   "table_coverage": None if covered is None else round(covered, 4)}


def _score_range(scored: list[tuple[float, int, bool]]) -> dict[str, float]:
    values = [s for s, _, _ in scored]
    return {"min": round(min(values), 4), "max": round(max(values), 4), "passes": len(values)}


def _align_pass(ctx: Context, rows: np.ndarray, shapes: list, specs: list[LayerSpec],
                qcache: dict) -> tuple:
    targets, _ = reorder_classes.charge(shapes)
    anchor_pos = [k for k, s in enumerate(shapes) if s.category != "reorder"]
    anchor_shapes = [shapes[k] for k in anchor_pos]
    keys = [int(ctx.desc_id[rows[k]]) for k in anchor_pos]
    alignment = align(anchor_shapes, specs, qcache, keys)
    if not anchor_pos:  # reorders only (weight quantisation in the build): by weight shape
        layer_idx = weight_layers(shapes, specs)
        how = ["charged" if j >= 0 else "" for j in layer_idx]
        return layer_idx, [()] * len(rows), how, alignment, 0, Counter()
    layer_idx = [-1] * len(rows)
    fused: list[tuple[int, ...]] = [()] * len(rows)
    how = [""] * len(rows)
    for a, k in enumerate(anchor_pos):
        layer_idx[k] = alignment.layer_of[a]
        fused[k] = alignment.fused[a]
        how[k] = "aligned" if alignment.layer_of[a] >= 0 else ""
    # a non-compute primitive with no layer (a residual sum, an attention matmul: functional
    # ops the table has no row for) belongs with the layer it follows
    previous = -1
    for k in anchor_pos:
        if layer_idx[k] >= 0:
            previous = layer_idx[k]
        elif (not shapes[k].is_compute or shapes[k].category == "bmm") and previous >= 0:
            layer_idx[k], how[k] = previous, "nearest"
    for k, s in enumerate(shapes):
        if s.category == "reorder" and targets[k] >= 0 and layer_idx[targets[k]] >= 0:
            layer_idx[k], how[k] = layer_idx[targets[k]], "charged"
    used = {j for j in layer_idx if j >= 0} | {f for fs in fused for f in fs}
    unmatched = Counter(layer.type for layer in specs
                        if layer.index not in used and layer.category not in PASSIVE_CATEGORIES)
    return layer_idx, fused, how, alignment, len(anchor_pos), unmatched


def _heuristic(ctx: Context, passes: Sequence[Pass], out: _Attribution) -> None:
    """Mode 3: the thesis grouping, pass by pass."""
    cache: dict[tuple, tuple] = {}
    for p in passes:
        rows, shapes = _pass_shapes(ctx, p)
        if not len(rows):
            continue
        signature = tuple(ctx.desc_id[rows].tolist())
        result = cache.get(signature)
        if result is None:
            names = [""] * len(rows)
            types = [""] * len(rows)
            how = [""] * len(rows)
            fused = [""] * len(rows)
            for g in group(shapes):
                for k in g.rows:
                    names[k], types[k], how[k] = g.name, g.type, "heuristic"
                    fused[k] = shapes[k].post_ops
            targets, _ = reorder_classes.charge(shapes)
            for k, s in enumerate(shapes):
                if s.category == "reorder" and targets[k] >= 0:
                    names[k], types[k], how[k] = names[targets[k]], types[targets[k]], "charged"
            result = (names, types, how, fused)
            cache[signature] = result
        names, types, how, fused = result
        out.layer[rows] = names
        out.layer_type[rows] = types
        out.how[rows] = how
        out.fused[rows] = fused


def _from_markers(ctx: Context, info: MarkerInfo, passes: Sequence[Pass], out: _Attribution,
                  specs: list[LayerSpec] | None) -> float:
    """Mode 1: the innermost open module; rows outside any module go to their consumer."""
    codes = info.module_code
    names = np.array([name for name, _ in info.modules] + [""], dtype=object)
    types = np.array([kind for _, kind in info.modules] + [""], dtype=object)
    labelled = codes >= 0
    out.layer[:] = names[codes]
    out.layer_type[:] = types[codes]
    out.how[labelled] = "marker"
    exec_rows = ctx.exec_rows
    in_scope = exec_rows[info.iteration[exec_rows] >= 0] if (info.iteration[exec_rows] >= 0).any() \
        else exec_rows
    score = float(labelled[in_scope].mean()) if len(in_scope) else 0.0
    by_name = {layer.name: layer for layer in specs} if specs else {}
    taken: set[int] = set()
    marked_names: set[str] = set()
    if specs:
        marked_names = set(out.layer[exec_rows][labelled[exec_rows]].tolist())
        taken = {layer.index for layer in specs if layer.name in marked_names}
    unlabelled_passes: list[Pass] = []
    for p in passes:
        rows = p.exec_rows
        if not len(rows):
            continue
        if not labelled[rows].any():
            unlabelled_passes.append(p)
            continue
        missing = rows[~labelled[rows]]
        if not len(missing):
            continue
        shapes = [ctx.shape(int(r)) for r in rows]
        targets, _ = reorder_classes.charge(shapes)
        has_layer = labelled[rows].copy()
        if by_name:  # a primitive outside every module (FX's functional fc): its table row
            for k in np.flatnonzero(~has_layer):
                if shapes[k].category != "reorder" and _outside_row(
                        shapes, rows, k, has_layer, out, by_name, specs, marked_names):
                    has_layer[k] = True
        for k in np.flatnonzero(~has_layer):
            row, target = rows[k], targets[k]
            donor = rows[target] if target >= 0 and has_layer[target] else None
            if donor is None:  # the next attributed row of the pass, else the previous one
                later = np.flatnonzero(has_layer[k + 1 :])
                earlier = np.flatnonzero(has_layer[:k])
                donor = rows[k + 1 + later[0]] if len(later) else (
                    rows[earlier[-1]] if len(earlier) else None)
            if donor is not None:
                out.layer[row], out.layer_type[row] = out.layer[donor], out.layer_type[donor]
                out.how[row] = "charged"
    if specs:
        # fusion: what each module's primitive covers in the (float) layer table, once per
        # distinct (module, descriptor) pair
        rows = exec_rows[labelled[exec_rows]]
        pairs = pd.DataFrame({"code": codes[rows], "desc": ctx.desc_id[rows], "row": rows})
        for (code, desc), group_rows in pairs.groupby(["code", "desc"])["row"]:
            layer = by_name.get(names[code])
            shape = ctx.shapes.get(int(desc))
            if layer is None or shape is None or not shape.is_compute:
                continue
            covered = covered_layers(shape, specs, layer.index, taken)
            if covered:
                out.fused[group_rows.to_numpy()] = "+".join(specs[j].name for j in covered)
        if unlabelled_passes:  # e.g. calibration passes run before the hooks were installed
            _aligned(ctx, unlabelled_passes, specs, out)
    return score


def _outside_row(shapes: list, rows: np.ndarray, k: int, has_layer: np.ndarray,
                 out: _Attribution, by_name: dict[str, LayerSpec], specs: list[LayerSpec],
                 marked_names: set[str]) -> bool:
    """Give an outside-module primitive the table row between its neighbours that fits it."""
    def table_index(positions: np.ndarray) -> list[int]:
        return [by_name[out.layer[rows[i]]].index for i in positions
                if out.layer[rows[i]] in by_name]

    before = table_index(np.flatnonzero(has_layer[:k]))
    after = table_index(k + 1 + np.flatnonzero(has_layer[k + 1 :]))
    low = max(before) + 1 if before else 0
    high = min(after) if after else len(specs)
    best: tuple[float, int] | None = None
    for j in range(low, high):
        if specs[j].name in marked_names:
            continue
        quality = match_quality(shapes[k], specs[j])
        if quality is not None and quality >= 0.75 and (best is None or quality > best[0]):
            best = (quality, j)
    if best is None:
        return False
    layer = specs[best[1]]
    row = rows[k]
    out.layer[row], out.layer_type[row], out.how[row] = layer.name, layer.type, "aligned"
    return True


def _reorder_classes(ctx: Context, passes: Sequence[Pass], phase: np.ndarray) -> np.ndarray:
    """`reorder_class` per row: weight_prepack / weight_per_call / activation_layout / boundary."""
    klass = np.full(len(ctx.events), "", dtype=object)
    cache: dict[tuple, list[str]] = {}
    for p in passes:
        rows = p.exec_rows
        if not len(rows) or not ctx.is_reorder[rows].any():
            continue
        signature = tuple(ctx.desc_id[rows].tolist())
        classes = cache.get(signature)
        if classes is None:
            classes = reorder_classes.charge([ctx.shape(int(r)) for r in rows])[1]
            cache[signature] = classes
        klass[rows] = classes
    # reorders outside every pass (none expected): judged on their own
    loose = np.flatnonzero(ctx.is_reorder & (klass == ""))
    klass[loose] = reorder_classes.BOUNDARY
    weight = klass == reorder_classes.WEIGHT
    if weight.any():
        # a weight conversion seen in steady state, or in several passes, is paid per call;
        # one seen in a single warm-up/build pass is a one-time prepack
        pass_of = np.full(len(ctx.events), -1, np.int64)
        for number, p in enumerate(passes):
            pass_of[p.exec_rows] = number
        rows = np.flatnonzero(weight)
        frame = pd.DataFrame({"desc": ctx.desc_id[rows], "pass": pass_of[rows],
                              "steady": phase[rows] == STEADY})
        per_desc = frame.groupby("desc").agg(passes=("pass", "nunique"), steady=("steady", "any"))
        repeated = per_desc.index[(per_desc["passes"] > 1) | per_desc["steady"]]
        per_call = np.isin(ctx.desc_id[rows], repeated.to_numpy())
        klass[rows[per_call]] = reorder_classes.WEIGHT_PER_CALL
        klass[rows[~per_call]] = reorder_classes.WEIGHT_PREPACK
    return klass


def _write_columns(events: pd.DataFrame, ctx: Context, iteration: np.ndarray, phase: np.ndarray,
                   out: _Attribution, reorder_class: np.ndarray) -> None:
    events["iteration"] = iteration.astype(np.int32)
    events["phase"] = pd.Categorical(phase)
    events["layer"] = pd.Categorical(out.layer)
    events["layer_type"] = pd.Categorical(out.layer_type)
    events["fused_layers"] = pd.Categorical(out.fused)
    events["is_reorder"] = ctx.is_reorder | (ctx.kind == "reorder")
    events["reorder_class"] = pd.Categorical(reorder_class)
    events["attribution"] = pd.Categorical(out.how)


def _iteration_summary(found: IterationResult, iteration: np.ndarray, phase: np.ndarray,
                       ctx: Context) -> dict[str, Any]:
    numbers = sorted(int(i) for i in np.unique(iteration) if i >= 0)
    by_phase: dict[str, list[int]] = {}
    for number in numbers:
        rows = np.flatnonzero(iteration == number)
        values = [str(v) for v in phase[rows] if v]
        name = max(set(values), key=values.count) if values else ""
        by_phase.setdefault(name, []).append(number)
    wall = {int(p.iteration): p.wall_ms for p in found.passes
            if p.iteration >= 0 and p.wall_ms is not None}
    return {
        "source": found.source,
        "period": found.period,
        "count": len(numbers),
        "warmup": by_phase.get("warmup", []),
        "measure": by_phase.get("measure", []),
        "other_phases": sorted(str(v) for v in set(phase[ctx.is_exec & (iteration < 0)]) if v),
        "wall_ms": wall,
    }


def _fusion_summary(out: _Attribution, specs: list[LayerSpec] | None) -> dict[str, Any]:
    if not specs:  # heuristic: no layer names, only what the post-ops fused
        fused = out.fused[out.fused != ""]
        return {"fused_primitives_by_post_ops": dict(Counter(fused.tolist()))}
    names: set[str] = set()
    for value in set(out.fused.tolist()):
        if value:
            names.update(value.split("+"))
    types = {layer.name: layer.type for layer in specs}
    return {
        "fused_layers": len(names),
        "fused_by_type": dict(Counter(types.get(name, "") for name in names)),
        "layers_without_primitives": dict(out.unmatched_layers),
    }
