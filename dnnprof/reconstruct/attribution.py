"""The three ways of giving every exec row its layer, pass by pass (see the package doc).

Each mode fills an `Attribution` (per events row: layer, layer type, fused layers and how
the row got them). Passes with the same descriptor sequence get the same answer, so each
distinct sequence is worked out once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.reconstruct import reorders
from dnnprof.reconstruct.align import (
    align,
    covered_layers,
    match_quality,
    table_coverage,
    weight_layers,
)
from dnnprof.reconstruct.columns import EventColumns, Labels
from dnnprof.reconstruct.heuristic import group
from dnnprof.reconstruct.iterations import Pass
from dnnprof.reconstruct.layers import PASSIVE_CATEGORIES, LayerSpec
from dnnprof.reconstruct.markers import MarkerInfo
from dnnprof.reconstruct.primitives import PrimitiveShape
from dnnprof.vocabulary import REORDER


class Attribution:
    """Per events row, what the reconstruction says about its layer (filled in by a mode)."""

    def __init__(self, n: int) -> None:
        self.layer = Labels.empty(n)
        self.layer_type = Labels.empty(n)
        self.fused = Labels.empty(n)  # "bn1+relu": table layers the row covers
        self.how = Labels.empty(n)  # marker | aligned | nearest | charged | heuristic
        self.unmatched_layers: Counter[str] = Counter()  # table layer types no primitive ran

    def codes_of_pass(self, names: Sequence[str], types: Sequence[str], how: Sequence[str],
                      fused: Sequence[str]) -> tuple[np.ndarray, ...]:
        """The label codes of one pass's rows, worked out once per distinct pass."""
        return (self.layer.codes_of(names), self.layer_type.codes_of(types),
                self.how.codes_of(how), self.fused.codes_of(fused))

    def set_rows(self, rows: np.ndarray, codes: tuple[np.ndarray, ...]) -> None:
        """Give rows the codes `codes_of_pass` made (layer, type, how[, fused])."""
        targets = (self.layer, self.layer_type, self.how, self.fused)[: len(codes)]
        for labels, values in zip(targets, codes, strict=True):
            labels.codes[rows] = values


@dataclass(frozen=True)
class AlignmentFit:
    """How well a layer table fits the log's passes."""

    score: float  # mean match quality over steady passes (else all), weighted by primitives
    pass_scores: dict[str, float]  # min/max over the aligned passes, and their number
    table_coverage: float | None  # share of the table's convolutions found in the log

    def details(self) -> dict[str, Any]:
        """The fit as `Reconstruction.extra` records it."""
        return {"pass_scores": self.pass_scores, "table_coverage": self.table_coverage}


def pass_shapes(columns: EventColumns, rows: np.ndarray) -> list[PrimitiveShape]:
    """The shape of each of a pass's exec rows."""
    return [columns.shape(int(r)) for r in rows]


def by_alignment(columns: EventColumns, passes: Sequence[Pass], specs: list[LayerSpec],
                 out: Attribution, steady: np.ndarray) -> AlignmentFit | None:
    """Mode 2: align every pass with the table; None when no pass has a primitive to align."""
    quality_cache: dict = {}
    by_signature: dict[tuple, tuple] = {}
    scored: list[tuple[float, int, bool]] = []  # (score, anchors, steady)
    unmatched_per_pass: list[Counter[str]] = []
    coverages: list[float | None] = []
    for p in passes:
        rows = p.exec_rows
        if not len(rows):
            continue
        is_steady = bool(steady[rows[0]])
        signature = tuple(columns.desc_id[rows].tolist())
        cached = by_signature.get(signature)
        if cached is None:
            result = _align_pass(columns, rows, specs, quality_cache)
            cached = by_signature[signature] = (result, _aligned_codes(out, specs, *result[:3]))
        (_, _, _, alignment, n_anchors, unmatched), (where, codes, fused_at, fused) = cached
        if is_steady or not coverages:
            coverages.append(table_coverage(specs, alignment.layer_of))
        out.set_rows(rows[where], codes)  # rows without a layer keep what they had
        out.fused.codes[rows[fused_at]] = fused
        if n_anchors:
            scored.append((alignment.score, n_anchors, is_steady))
            unmatched_per_pass.append(unmatched)
    if not scored:
        return None
    counted = [s for s in scored if s[2]] or scored
    weight = sum(n for _, n, _ in counted)
    score = sum(s * n for s, n, _ in counted) / weight if weight else 0.0
    out.unmatched_layers = unmatched_per_pass[-1]
    covered = coverages[-1] if coverages else None
    values = [s for s, _, _ in scored]
    pass_scores = {"min": round(min(values), 4), "max": round(max(values), 4),
                   "passes": len(values)}
    return AlignmentFit(score, pass_scores, None if covered is None else round(covered, 4))


def _aligned_codes(out: Attribution, specs: list[LayerSpec], layer_idx: list[int],
                   fused: list[tuple[int, ...]], how: list[str]) -> tuple:
    """(positions with a layer, their label codes, positions with fused layers, their codes)."""
    where = np.array([k for k, j in enumerate(layer_idx) if j >= 0], dtype=np.int64)
    layers = [specs[layer_idx[k]] for k in where]
    codes = (out.layer.codes_of([layer.name for layer in layers]),
             out.layer_type.codes_of([layer.type for layer in layers]),
             out.how.codes_of([how[k] for k in where]))
    fused_at = np.array([k for k in where if fused[k]], dtype=np.int64)
    fused_names = ["+".join(specs[f].name for f in fused[k]) for k in fused_at]
    return where, codes, fused_at, out.fused.codes_of(fused_names)


def _align_pass(columns: EventColumns, rows: np.ndarray, specs: list[LayerSpec],
                quality_cache: dict) -> tuple:
    """(layer index, fused layers, how) per row of one pass, its alignment, its number of
    aligned primitives and the table layer types no primitive matched."""
    shapes = pass_shapes(columns, rows)
    targets, _ = reorders.charge(shapes)
    anchor_pos = [k for k, s in enumerate(shapes) if s.category != REORDER]
    anchor_shapes = [shapes[k] for k in anchor_pos]
    keys = [int(columns.desc_id[rows[k]]) for k in anchor_pos]
    alignment = align(anchor_shapes, specs, quality_cache, keys)
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
        if s.category == REORDER and targets[k] >= 0 and layer_idx[targets[k]] >= 0:
            layer_idx[k], how[k] = layer_idx[targets[k]], "charged"
    used = {j for j in layer_idx if j >= 0} | {f for fs in fused for f in fs}
    unmatched = Counter(layer.type for layer in specs
                        if layer.index not in used and layer.category not in PASSIVE_CATEGORIES)
    return layer_idx, fused, how, alignment, len(anchor_pos), unmatched


def by_heuristic(columns: EventColumns, passes: Sequence[Pass], out: Attribution) -> None:
    """Mode 3: the thesis grouping, pass by pass."""
    cache: dict[tuple, tuple] = {}
    for p in passes:
        rows = p.exec_rows
        if not len(rows):
            continue
        signature = tuple(columns.desc_id[rows].tolist())
        codes = cache.get(signature)
        if codes is None:  # once per distinct pass
            codes = cache[signature] = out.codes_of_pass(*_group_pass(pass_shapes(columns, rows)))
        out.set_rows(rows, codes)


def _group_pass(shapes: list[PrimitiveShape]) -> tuple[list[str], ...]:
    """(names, types, how, fused post-ops) per row of one pass, by the thesis grouping."""
    names = [""] * len(shapes)
    types = [""] * len(shapes)
    how = [""] * len(shapes)
    fused = [""] * len(shapes)
    for g in group(shapes):
        for k in g.rows:
            names[k], types[k], how[k] = g.name, g.type, "heuristic"
            fused[k] = shapes[k].post_ops
    targets, _ = reorders.charge(shapes)
    for k, s in enumerate(shapes):
        if s.category == REORDER and targets[k] >= 0:
            names[k], types[k], how[k] = names[targets[k]], types[targets[k]], "charged"
    return names, types, how, fused


@dataclass(frozen=True)
class _MarkedTable:
    """A layer table next to module markers: which of its layers the markers already name."""

    specs: list[LayerSpec]
    by_name: dict[str, LayerSpec]
    marked: set[str]  # layer names some module marker carries
    taken: set[int]  # their table indices


def by_markers(columns: EventColumns, info: MarkerInfo, passes: Sequence[Pass],
               out: Attribution, specs: list[LayerSpec] | None, steady: np.ndarray) -> float:
    """Mode 1: the innermost open module; rows outside any module go to their consumer.

    Returns the share of exec rows (in iterations, if any) inside a module."""
    codes = info.module_code
    names = np.array([name for name, _ in info.modules] + [""], dtype=object)
    types = np.array([kind for _, kind in info.modules] + [""], dtype=object)
    labelled = codes >= 0
    out.layer.codes[:] = out.layer.codes_of(names)[codes]  # code -1: the last name, ""
    out.layer_type.codes[:] = out.layer_type.codes_of(types)[codes]
    out.how[labelled] = "marker"
    exec_rows = columns.exec_rows
    in_iterations = exec_rows[info.iteration[exec_rows] >= 0]
    in_scope = in_iterations if len(in_iterations) else exec_rows
    score = float(labelled[in_scope].mean()) if len(in_scope) else 0.0
    table = None
    if specs:
        marked = {out.layer.names[code]
                  for code in np.unique(out.layer.codes[exec_rows[labelled[exec_rows]]])}
        table = _MarkedTable(specs, {layer.name: layer for layer in specs}, marked,
                             {layer.index for layer in specs if layer.name in marked})
    unlabelled_passes: list[Pass] = []
    for p in passes:
        rows = p.exec_rows
        if not len(rows):
            continue
        if not labelled[rows].any():
            unlabelled_passes.append(p)
        elif not labelled[rows].all():
            _charge_unlabelled(columns, rows, labelled[rows].copy(), out, table)
    if table is not None:
        _marked_fusion(columns, codes, names, exec_rows[labelled[exec_rows]], out, table)
        if unlabelled_passes:  # e.g. calibration passes run before the hooks were installed
            by_alignment(columns, unlabelled_passes, table.specs, out, steady)
    return score


def _charge_unlabelled(columns: EventColumns, rows: np.ndarray, has_layer: np.ndarray,
                       out: Attribution, table: _MarkedTable | None) -> None:
    """Give a pass's rows outside every module a layer: the table row that fits them, else
    the layer their reorder is charged to, else the next (or previous) attributed row's."""
    shapes = pass_shapes(columns, rows)
    targets, _ = reorders.charge(shapes)
    if table is not None:  # a primitive outside every module (FX's functional fc): its table row
        for k in np.flatnonzero(~has_layer):
            if shapes[k].category != REORDER and _outside_row(shapes, rows, k, has_layer, out,
                                                               table):
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


def _outside_row(shapes: list[PrimitiveShape], rows: np.ndarray, k: int, has_layer: np.ndarray,
                 out: Attribution, table: _MarkedTable) -> bool:
    """Give an outside-module primitive the table row between its neighbours that fits it."""
    def table_index(positions: np.ndarray) -> list[int]:
        return [table.by_name[out.layer[rows[i]]].index for i in positions
                if out.layer[rows[i]] in table.by_name]

    before = table_index(np.flatnonzero(has_layer[:k]))
    after = table_index(k + 1 + np.flatnonzero(has_layer[k + 1 :]))
    low = max(before) + 1 if before else 0
    high = min(after) if after else len(table.specs)
    best: tuple[float, int] | None = None
    for j in range(low, high):
        if table.specs[j].name in table.marked:
            continue
        quality = match_quality(shapes[k], table.specs[j])
        if quality is not None and quality >= 0.75 and (best is None or quality > best[0]):
            best = (quality, j)
    if best is None:
        return False
    layer = table.specs[best[1]]
    row = rows[k]
    out.layer[row], out.layer_type[row], out.how[row] = layer.name, layer.type, "aligned"
    return True


def _marked_fusion(columns: EventColumns, codes: np.ndarray, names: np.ndarray,
                   rows: np.ndarray, out: Attribution, table: _MarkedTable) -> None:
    """What each module's primitive covers in the (float) layer table, once per distinct
    (module, descriptor) pair of the module-labelled exec rows."""
    pairs = pd.DataFrame({"code": codes[rows], "desc": columns.desc_id[rows], "row": rows})
    for (code, desc), group_rows in pairs.groupby(["code", "desc"])["row"]:
        layer = table.by_name.get(names[code])
        shape = columns.shapes.get(int(desc))
        if layer is None or shape is None or not shape.is_compute:
            continue
        covered = covered_layers(shape, table.specs, layer.index, table.taken)
        if covered:
            out.fused[group_rows.to_numpy()] = "+".join(table.specs[j].name for j in covered)
