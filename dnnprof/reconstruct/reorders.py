"""Reorders: which layer needs each one, and what kind of conversion it is.

Within one pass (an iteration, a calibration pass...), every reorder is charged to a
non-reorder primitive of the same pass:

* a weight reorder (its dims are some compute primitive's weights) to the next compute
  primitive with those weights, or the one its chain partner went to;
* an activation reorder to the primitive that consumes it, except the conversion of a
  layer's own output back to a user layout that no oneDNN primitive consumes: that is the
  producer's (PyTorch eager does it inside the conv call, as marker runs show).

Classes (the `reorder_class` column):

``weight_prepack``     weight reorder done once (warm-up, build, calibration), not in steady state
``weight_per_call``    weight reorder repeated in every steady iteration (eager PyTorch, MXNet fused)
``activation_layout``  activation conversion between two oneDNN primitives
``boundary``           user <-> blocked conversion where oneDNN meets the framework or the
                       model's input/output (no oneDNN primitive on one side)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dnnprof.reconstruct.columns import EventColumns, Labels
from dnnprof.reconstruct.primitives import PrimitiveShape, same_layout
from dnnprof.vocabulary import REORDER

WEIGHT = "weight"  # refined to weight_prepack / weight_per_call once phases are known
ACTIVATION_LAYOUT = "activation_layout"
BOUNDARY = "boundary"
WEIGHT_PREPACK = "weight_prepack"
WEIGHT_PER_CALL = "weight_per_call"


def _same(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Same tensor: equal dims, or the same batch and element count (`1x2048x1x1` ~ `1x2048`)."""
    if not a or not b:
        return False
    if a == b:
        return True
    count_a = count_b = 1
    for d in a:
        count_a *= d
    for d in b:
        count_b *= d
    return a[0] == b[0] and count_a == count_b and count_a > 0


def _weight_match(reorder: PrimitiveShape, prim: PrimitiveShape) -> bool:
    dims = reorder.src or reorder.dst
    return bool(dims) and prim.is_compute and any(_same_weights(dims, w) for w in prim.weights)


def _same_weights(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    # weights are compared exactly (after dropping size-1 dims), never by element count
    return tuple(d for d in a if d != 1) == tuple(d for d in b if d != 1)


def _next_weight_user(reorder: PrimitiveShape, shapes: Sequence[PrimitiveShape],
                      anchors: list[int], start: int) -> int:
    """The first compute primitive at or after `start` whose weights the reorder converts."""
    return next((k for k in anchors if k >= start and _weight_match(reorder, shapes[k])), -1)


def _round_trip(first: PrimitiveShape, second: PrimitiveShape) -> bool:
    """blocked -> plain -> blocked again: the framework worked on the plain tensor in between
    (eager PyTorch runs batch-norm and ReLU there), so these are two tensors, not a chain."""
    return first.src_fmt == second.dst_fmt and first.src == second.dst


def charge(shapes: Sequence[PrimitiveShape]) -> tuple[list[int], list[str]]:
    """Per row of one pass: the index of the non-reorder row it is charged to, and its class.

    Non-reorder rows are charged to themselves with class ''. A reorder with no non-reorder
    primitive in the pass gets -1.
    """
    n = len(shapes)
    is_reorder = [s.category == REORDER for s in shapes]
    anchors = [i for i in range(n) if not is_reorder[i]]
    target = [i if not is_reorder[i] else -1 for i in range(n)]
    if not anchors:
        return target, [WEIGHT if is_reorder[i] else "" for i in range(n)]
    klass = ["" for _ in range(n)]
    flow = _DataFlow(shapes, is_reorder)
    weight_target = _weight_targets(flow, anchors)
    for i in range(n):
        if weight_target[i] >= 0:
            target[i], klass[i] = weight_target[i], WEIGHT
    _charge_activations(flow, weight_target, target, klass)
    return target, klass


class _DataFlow:
    """One pass's shapes with, per row, the nearest non-reorder row before and after it."""

    def __init__(self, shapes: Sequence[PrimitiveShape], is_reorder: list[bool]) -> None:
        n = len(shapes)
        self.shapes, self.is_reorder, self.n = shapes, is_reorder, n
        self.prev_anchor = [-1] * n
        self.next_anchor = [-1] * n
        last = -1
        for i in range(n):
            self.prev_anchor[i] = last
            if not is_reorder[i]:
                last = i
        last = -1
        for i in range(n - 1, -1, -1):
            self.next_anchor[i] = last
            if not is_reorder[i]:
                last = i


def _weight_targets(flow: _DataFlow, anchors: list[int]) -> list[int]:
    """Per row, the compute row whose weights a reorder converts (-1: not a weight reorder)."""
    shapes = flow.shapes
    weight_target = [-1] * flow.n
    last_target = -1
    for i in range(flow.n):
        if not flow.is_reorder[i]:
            continue
        r = shapes[i]
        nxt, prv = flow.next_anchor[i], flow.prev_anchor[i]
        if (nxt >= 0 and _same(r.dst, shapes[nxt].src)) or (prv >= 0 and _same(r.src, shapes[prv].dst)):
            continue  # an activation: it fits the data flow around it
        if i > 0 and weight_target[i - 1] >= 0 and shapes[i - 1].dst == r.src \
                and shapes[i - 1].dst_fmt == r.src_fmt:
            weight_target[i] = weight_target[i - 1]  # second half of a two-step conversion
            continue
        found = -1
        if last_target >= i:  # inside a block of prepacks ahead of their primitives
            found = _next_weight_user(r, shapes, anchors, last_target + 1)
        if found < 0:
            found = _next_weight_user(r, shapes, anchors, i)
        if found >= 0:
            weight_target[i] = found
            last_target = found
    return weight_target


def _charge_activations(flow: _DataFlow, weight_target: list[int], target: list[int],
                        klass: list[str]) -> None:
    """Activation reorders, in chains of consecutive conversions of one tensor: to their
    consumer, or to their producer when no oneDNN primitive consumes the result."""
    shapes, is_reorder, n = flow.shapes, flow.is_reorder, flow.n

    def loose_reorder(k: int) -> bool:
        return k < n and is_reorder[k] and weight_target[k] < 0

    i = 0
    while i < n:
        if not loose_reorder(i):
            i += 1
            continue
        j = i
        while (loose_reorder(j + 1) and _same(shapes[j].dst, shapes[j + 1].src)
               and same_layout(shapes[j].dst_fmt, shapes[j + 1].src_fmt)
               and not _round_trip(shapes[j], shapes[j + 1])):
            j += 1
        first, chain_last = shapes[i], shapes[j]
        prv, nxt = flow.prev_anchor[i], flow.next_anchor[j]
        produced = prv >= 0 and _same(shapes[prv].dst, first.src) and \
            same_layout(shapes[prv].dst_fmt, first.src_fmt)
        consumed = nxt >= 0 and _same(chain_last.dst, shapes[nxt].src) and \
            same_layout(chain_last.dst_fmt, shapes[nxt].src_fmt)
        if loose_reorder(j + 1) and _round_trip(chain_last, shapes[j + 1]):
            consumed = False  # converted back right away: the framework works on it first
        if consumed or (not produced and nxt >= 0):
            owner = nxt
        else:
            owner = prv if prv >= 0 else nxt
        kind = ACTIVATION_LAYOUT if (produced and consumed) else BOUNDARY
        for k in range(i, j + 1):
            target[k], klass[k] = owner, kind
        i = j + 1


def row_classes(columns: EventColumns, pass_rows: Sequence[np.ndarray],
                steady: np.ndarray) -> Labels:
    """`reorder_class` per events row, given each pass's exec rows and the steady-state rows."""
    klass = Labels.empty(len(columns))
    cache: dict[tuple, np.ndarray] = {}
    for rows in pass_rows:
        if not len(rows) or not columns.is_reorder[rows].any():
            continue
        signature = tuple(columns.desc_id[rows].tolist())
        classes = cache.get(signature)
        if classes is None:  # once per distinct pass
            classes = klass.codes_of(charge([columns.shape(int(r)) for r in rows])[1])
            cache[signature] = classes
        klass.codes[rows] = classes
    # reorders outside every pass (none expected): judged on their own
    klass.codes[columns.is_reorder & ~klass.labelled()] = klass.code(BOUNDARY)
    weight = np.flatnonzero(klass.codes == klass.code(WEIGHT))
    if len(weight):
        per_call = _paid_per_call(columns, pass_rows, steady, weight)
        klass.codes[weight[per_call]] = klass.code(WEIGHT_PER_CALL)
        klass.codes[weight[~per_call]] = klass.code(WEIGHT_PREPACK)
    return klass


def _paid_per_call(columns: EventColumns, pass_rows: Sequence[np.ndarray], steady: np.ndarray,
                   rows: np.ndarray) -> np.ndarray:
    """Which weight-reorder rows are paid per call: their descriptor is seen in steady state or
    in several passes (one seen in a single warm-up/build pass is a one-time prepack)."""
    pass_of = np.full(len(columns), -1, np.int32)
    for number, exec_rows in enumerate(pass_rows):
        pass_of[exec_rows] = number
    frame = pd.DataFrame({"desc": columns.desc_id[rows], "pass": pass_of[rows],
                          "steady": steady[rows]})
    per_desc = frame.groupby("desc").agg(passes=("pass", "nunique"), steady=("steady", "any"))
    repeated = per_desc.index[(per_desc["passes"] > 1) | per_desc["steady"]]
    return np.isin(columns.desc_id[rows], repeated.to_numpy())
