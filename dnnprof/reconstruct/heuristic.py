"""Layers without markers or a model: the thesis' grouping of primitives into layers.

A compute primitive (convolution, deconvolution, inner product, matmul, rnn) opens a
layer, and the element-wise, binary, sum and normalisation primitives that follow it join
that layer; a pooling (or any other primitive) is a layer by itself. Reorders go to the
layer that needs them (see `reorders`). Names count per kind within a pass, so every
iteration has the same `conv1`, `pool1`, `fc1`...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dnnprof.reconstruct.primitives import PrimitiveShape
from dnnprof.vocabulary import REORDER

# Categories that join the compute layer before them.
JOINING = frozenset({"act", "add", "binary", "bn", "lrn", "layernorm", "groupnorm"})
_PREFIX = {
    "conv": "conv", "deconv": "deconv", "linear": "fc", "bmm": "matmul", "rnn": "rnn",
    "pool": "pool",
    "softmax": "softmax", "concat": "concat", "bn": "bn", "act": "eltwise", "add": "sum",
    "binary": "binary", "lrn": "lrn", "layernorm": "layernorm", "shuffle": "shuffle",
    "resample": "resampling", "reduce": "reduction",
}


@dataclass(frozen=True)
class Group:
    """One heuristic layer: its name, type (the opening primitive's kind) and member rows."""

    name: str
    type: str
    rows: tuple[int, ...]


def group(shapes: Sequence[PrimitiveShape]) -> list[Group]:
    """Group the non-reorder rows of one pass into named layers (reorders are left out)."""
    counters: dict[str, int] = {}
    groups: list[tuple[str, str, list[int]]] = []
    open_compute = False
    for i, shape in enumerate(shapes):
        if shape.category == REORDER:
            continue
        if shape.category in JOINING and open_compute and groups:
            groups[-1][2].append(i)
            continue
        prefix = _prefix(shape)
        counters[prefix] = counters.get(prefix, 0) + 1
        groups.append((f"{prefix}{counters[prefix]}", shape.kind, [i]))
        open_compute = shape.is_compute
    return [Group(name, kind, tuple(rows)) for name, kind, rows in groups]


def _prefix(shape: PrimitiveShape) -> str:
    # a batched matmul (attention, DLRM's interaction) is named `matmul`, not `fc`
    return _PREFIX.get(shape.category, shape.kind or "op")
