"""What `Reconstruction` records about a reconstruction: coverage, iterations and fusion."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from dnnprof.reconstruct.attribution import Attribution
from dnnprof.reconstruct.columns import EventColumns
from dnnprof.reconstruct.iterations import IterationResult
from dnnprof.reconstruct.layers import LayerSpec
from dnnprof.vocabulary import MEASURE, WARMUP


def coverage(columns: EventColumns, out: Attribution, iteration: np.ndarray,
             steady: np.ndarray) -> tuple[float | None, float | None]:
    """Share of exec rows given a layer: over the steady rows (else the rows in iterations,
    else all), and over every exec row."""
    is_exec = columns.is_exec
    scope = is_exec & steady
    if not scope.any():
        in_iterations = is_exec & (iteration >= 0)
        scope = in_iterations if in_iterations.any() else is_exec
    share = round(float((out.layer[scope] != "").mean()), 4) if scope.any() else None
    share_all = round(float((out.layer[is_exec] != "").mean()), 4) if is_exec.any() else None
    return share, share_all


def iteration_summary(found: IterationResult, iteration: np.ndarray, phase: np.ndarray,
                      columns: EventColumns) -> dict[str, Any]:
    """Where the iterations came from, which are warm-up or measured, and their wall ms."""
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
        "warmup": by_phase.get(WARMUP, []),  # the keys trace-schema.md documents
        "measure": by_phase.get(MEASURE, []),
        "other_phases": sorted(str(v) for v in set(phase[columns.is_exec & (iteration < 0)]) if v),
        "wall_ms": wall,  # int keys: `Reconstruction.wall_ms` reads them back as ints
    }


def fusion_summary(out: Attribution, specs: list[LayerSpec] | None) -> dict[str, Any]:
    """Fused layers by type (with a table), else the fused primitives by their post-ops."""
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
