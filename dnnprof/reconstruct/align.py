"""Align one forward pass of primitives with a model's ordered layer table.

A global sequence alignment (Needleman-Wunsch) between the pass's non-reorder primitives
and the table's layers. A match scores by kind and dimensions; a primitive may stay without
a layer (a framework-inserted op, a residual `sum` the table has no row for) and a layer
may stay without a primitive (batch-norm or ReLU run by the framework, a conv ATen kept).
Matches that fit better crossed are swapped (graph optimisers reorder independent branches).
Afterwards each matched compute primitive absorbs the unmatched layers its post-ops and
folded bias account for (conv + bn + relu + add): that is fusion.

Reorders are not aligned: `reorders.charge` gives them to the layer that needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnnprof.reconstruct.layers import PASSIVE_CATEGORIES, LayerSpec
from dnnprof.reconstruct.primitives import PrimitiveShape

_NEG = -1e9
# Cost of a layer with no primitive, by category: cheap where frameworks commonly run
# the op themselves (eager batch-norm, ReLU, pooling, Linear in MKL), dearer for convs.
_LAYER_GAP = {"conv": -0.5, "deconv": -0.5, "linear": -0.3, "rnn": -0.5}
_LAYER_GAP_DEFAULT = -0.1
# A primitive with no layer: a compute primitive should have one, an element-wise op may not.
_PRIM_GAP_COMPUTE = -2.0
_PRIM_GAP_OTHER = -1.0

# Fields compared per category (primitive dims key, layer dims key).
_CONV_FIELDS = ("oc", "ic", "g", "kh", "kw", "sh", "sw", "ph", "pw", "oh", "ow", "ih", "iw")
_POOL_FIELDS = ("c", "kh", "kw", "sh", "sw", "ph", "pw", "oh", "ow", "ih", "iw")
_TENSOR_FIELDS = ("c", "oh", "ow", "numel_per_mb")


@dataclass(frozen=True)
class Alignment:
    """Result for one pass: per primitive the layer index (-1: none), quality and fused layers."""

    layer_of: tuple[int, ...]
    quality: tuple[float, ...]
    fused: tuple[tuple[int, ...], ...]  # per primitive: indices of the layers it absorbed
    score: float  # mean quality over matched primitives and unmatched compute ones (as 0)


def match_quality(prim: PrimitiveShape, layer: LayerSpec) -> float | None:
    """How well one primitive fits one layer: None if the kinds differ, else 0..1."""
    pc, lc = prim.category, layer.category
    if pc != lc:
        return None
    if pc in ("conv", "deconv"):
        fields = _CONV_FIELDS
    elif pc == "linear":
        fields = ("ic", "oc")
    elif pc == "pool":
        fields = _POOL_FIELDS
    else:
        fields = _TENSOR_FIELDS
    if pc == "bmm":
        return 1.0  # a model has few of these and their shapes are not in the table
    compared = agreed = 0
    pdims, ldims = prim.dims, layer.dims
    for key in fields:
        lkey = key
        if pc == "pool" and key == "ic":
            lkey = "ic"
        if key in pdims and lkey in ldims:
            compared += 1
            agreed += pdims[key] == ldims[lkey]
    if layer.alg and prim.alg and pc in ("pool", "act"):
        compared += 1
        agreed += layer.alg in prim.alg.replace("_", "") or (
            layer.alg == "avg" and "avg" in prim.alg)
    if compared == 0:
        return 0.5
    return agreed / compared


def _layer_gap(layer: LayerSpec) -> float:
    if layer.category in PASSIVE_CATEGORIES:
        return 0.0
    return _LAYER_GAP.get(layer.category, _LAYER_GAP_DEFAULT)


def align(prims: Sequence[PrimitiveShape], layers: Sequence[LayerSpec],
          quality_cache: dict | None = None, prim_keys: Sequence[int] | None = None) -> Alignment:
    """Globally align a pass's non-reorder primitives with the layer table."""
    n, m = len(prims), len(layers)
    if n == 0:
        return Alignment((), (), (), 0.0)
    cache = quality_cache if quality_cache is not None else {}
    keys = list(prim_keys) if prim_keys is not None else list(range(n))
    quality = np.full((n, m), np.nan)
    for i, prim in enumerate(prims):
        row = cache.get(keys[i])
        if row is None:
            row = np.array([np.nan if (q := match_quality(prim, layer)) is None else q
                            for layer in layers])
            cache[keys[i]] = row
        quality[i] = row
    match = np.where(np.isnan(quality), _NEG, 4.0 * np.nan_to_num(quality) - 1.0)
    prim_gap = np.array([_PRIM_GAP_COMPUTE if p.is_compute and p.category != "bmm"
                         else _PRIM_GAP_OTHER for p in prims])
    layer_gap = np.array([_layer_gap(layer) for layer in layers])
    cum_gap = np.concatenate(([0.0], np.cumsum(layer_gap)))  # C[j]: cost of skipping layers < j

    table = np.empty((n + 1, m + 1))
    table[0] = cum_gap
    for i in range(1, n + 1):
        prev = table[i - 1]
        best = np.empty(m + 1)
        best[0] = prev[0] + prim_gap[i - 1]
        best[1:] = np.maximum(prev[:-1] + match[i - 1], prev[1:] + prim_gap[i - 1])
        # a run of skipped layers to the left: D[j] = C[j] + max_{k<=j}(best[k] - C[k])
        table[i] = cum_gap + np.maximum.accumulate(best - cum_gap)

    layer_of = [-1] * n
    i, j = n, m
    while i > 0 and j > 0:
        here = table[i, j]
        if match[i - 1, j - 1] > _NEG / 2 and np.isclose(here, table[i - 1, j - 1] + match[i - 1, j - 1]):
            layer_of[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif np.isclose(here, table[i - 1, j] + prim_gap[i - 1]):
            i -= 1
        else:
            j -= 1
    fix_swaps(prims, quality, layer_of)
    qualities = tuple(float(quality[k, layer_of[k]]) if layer_of[k] >= 0 else 0.0 for k in range(n))
    fused = absorb_fused(prims, layers, layer_of)
    # an element-wise primitive without a layer is normal (a functional residual add in
    # PyTorch has no table row); a compute primitive without one counts as a miss
    counted = [q for k, q in enumerate(qualities)
               if layer_of[k] >= 0 or (prims[k].is_compute and prims[k].category != "bmm")]
    score = float(np.mean(counted)) if counted else 0.0
    return Alignment(tuple(layer_of), qualities, fused, score)


def table_coverage(layers: Sequence[LayerSpec], layer_of: Sequence[int]) -> float | None:
    """Share of the table's convolutions (else its linear layers) that a primitive matched."""
    matched = set(layer_of)
    for categories in (("conv", "deconv"), ("linear",)):
        wanted = [layer.index for layer in layers if layer.category in categories]
        if wanted:
            return sum(j in matched for j in wanted) / len(wanted)
    return None


def absorb_fused(prims: Sequence[PrimitiveShape], layers: Sequence[LayerSpec],
                 layer_of: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Per primitive, the unmatched layers its fusion accounts for (see `covered_layers`)."""
    taken = {j for j in layer_of if j >= 0}
    computes = [k for k, (prim, j) in enumerate(zip(prims, layer_of, strict=True))
                if j >= 0 and prim.is_compute]
    folded: dict[int, tuple[int, ...]] = {k: folded_norm(prims[k], layers, layer_of[k], taken)
                                          for k in computes}
    absorbed = taken | {j for js in folded.values() for j in js}
    result: list[tuple[int, ...]] = [()] * len(prims)
    for k in computes:
        result[k] = folded[k] + post_op_layers(prims[k], layers, layer_of[k], absorbed,
                                               folded[k])
        absorbed.update(result[k])
    return tuple(result)


def covered_layers(prim: PrimitiveShape, layers: Sequence[LayerSpec], j: int,
                   taken: set[int]) -> tuple[int, ...]:
    """Layers one primitive covers on its own: its folded batch-norm, then its post-ops."""
    folded = folded_norm(prim, layers, j, taken)
    return folded + post_op_layers(prim, layers, j, taken | set(folded), folded)


def folded_norm(prim: PrimitiveShape, layers: Sequence[LayerSpec], j: int,
                taken: set[int]) -> tuple[int, ...]:
    """The batch-norm right after layer `j`, if the primitive absorbed it: a bias the layer
    does not have (folded at freezing/quantisation), or post-ops (a fused graph)."""
    folded_bias = prim.has_bias and layers[j].bias is False
    if not (folded_bias or prim.post_ops):
        return ()
    for k in range(j + 1, len(layers)):
        if k in taken:
            return ()
        if layers[k].category in PASSIVE_CATEGORIES:
            continue
        return (k,) if layers[k].category == "bn" else ()
    return ()


def post_op_layers(prim: PrimitiveShape, layers: Sequence[LayerSpec], j: int,
                   absorbed: set[int], folded: tuple[int, ...]) -> tuple[int, ...]:
    """The add and activation layers a primitive's `sum`/`eltwise` post-ops stand for.

    Walking on from layer `j`, a pending `sum` lets the walk pass the other branch of a
    residual block (layers other primitives ran or folded) to reach the add."""
    post = [op for op in prim.post_ops.split("+") if op]
    eltwise = [op for op in post if op.startswith("eltwise") or op.startswith("prelu")]
    adds = [op for op in post if op == "sum" or op == "binary_add"]
    found: list[int] = []
    for k in range(j + 1, len(layers)):
        layer = layers[k]
        if k in folded or layer.category in PASSIVE_CATEGORIES:
            continue
        if k in absorbed:
            if adds:
                continue  # the residual branch, run by its own primitives
            break
        if layer.category == "add" and adds:
            adds.pop(0)
            found.append(k)
        elif layer.category == "act" and eltwise:
            eltwise.pop(0)
            found.append(k)
            adds.clear()  # an activation closes the block
        else:
            break
        if not eltwise and not adds:
            break
    return tuple(found)


def fix_swaps(prims: Sequence[PrimitiveShape], quality: np.ndarray, layer_of: list[int],
              window: int = 4) -> None:
    """Swap nearby matches that fit better crossed: graph optimisers reorder independent
    branches (MXNet runs a block's shortcut conv before its expand conv), which an
    order-keeping alignment cannot follow."""
    n = len(layer_of)
    for a in range(n):
        ja = layer_of[a]
        if ja < 0 or quality[a, ja] >= 1.0:
            continue
        for b in range(a + 1, min(n, a + 1 + window)):
            jb = layer_of[b]
            if jb < 0 or prims[b].category != prims[a].category:
                continue
            crossed = np.nan_to_num(quality[a, jb]) + np.nan_to_num(quality[b, ja])
            if crossed > quality[a, ja] + quality[b, jb] + 1e-9:
                layer_of[a], layer_of[b] = jb, ja
                break


def layer_weights(layer: LayerSpec) -> tuple[tuple[int, ...], ...]:
    """Weight dims a reorder of this layer's weights may print (conv OIHW, Linear OI / IO)."""
    d = layer.dims
    if layer.category in ("conv", "deconv") and "oc" in d and "ic" in d and "kh" in d:
        groups = d.get("g", 1) or 1
        oc, ic, kh, kw = d["oc"], d["ic"], d["kh"], d.get("kw", d["kh"])
        shapes = [(oc, ic // groups, kh, kw), (ic, oc // groups, kh, kw)]
        if groups > 1:
            shapes.append((groups, oc // groups, ic // groups, kh, kw))
        return tuple(shapes)
    if layer.category == "linear" and "oc" in d and "ic" in d:
        return ((d["oc"], d["ic"]), (d["ic"], d["oc"]))
    return ()


def _squeeze(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in dims if d != 1)


def weight_layers(reorders: Sequence[PrimitiveShape], layers: Sequence[LayerSpec]) -> list[int]:
    """Table layer of each weight reorder in a pass without other primitives, in order.

    Walks the table once: each reorder goes to the next layer whose weights it converts; a
    run of reorders of the same tensor (quantise, then prepack) stays with one layer.
    """
    candidates = [(layer.index, {_squeeze(w) for w in layer_weights(layer)}) for layer in layers]
    candidates = [(j, shapes) for j, shapes in candidates if shapes]
    result: list[int] = []
    cursor = 0  # position in candidates
    previous: tuple[tuple[int, ...], int] | None = None
    for reorder in reorders:
        dims = _squeeze(reorder.src or reorder.dst)
        if previous is not None and previous[0] == dims:
            result.append(previous[1])
            continue
        found = -1
        for pos in range(cursor, len(candidates)):
            if dims in candidates[pos][1]:
                found, cursor = candidates[pos][0], pos + 1
                break
        result.append(found)
        previous = (dims, found) if found >= 0 else None
    return result
