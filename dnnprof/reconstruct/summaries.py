"""What `Reconstruction` records about a reconstruction: coverage, iterations and fusion."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from dnnprof.reconstruct.attribution import Attribution
from dnnprof.reconstruct.columns import EventColumns, Labels, distinct_in_order, pair_counts
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
    labelled = out.layer.labelled()
    share = round(float(labelled[scope].mean()), 4) if scope.any() else None
    share_all = round(float(labelled[is_exec].mean()), 4) if is_exec.any() else None
    return share, share_all


def iteration_phases(iteration: np.ndarray, phase: Labels) -> tuple[np.ndarray, list[str]]:
    """The iteration numbers, and the phase most of each one's rows have ("" when none
    has one), counted a block of rows at a time."""
    votes: dict[int, Counter[int]] = {}
    for (number, code), count in pair_counts(iteration, phase.codes).items():
        if number >= 0:
            ballot = votes.setdefault(number, Counter())
            if code:  # rows without a phase do not vote
                ballot[code] += count
    numbers = sorted(votes)
    # ties: the phase named first in the log (the lowest code)
    best = [min(ballot, key=lambda code, b=ballot: (-b[code], code)) if ballot else 0
            for ballot in (votes[n] for n in numbers)]
    return np.array(numbers, dtype=np.int64), [phase.names[code] for code in best]


def iteration_summary(found: IterationResult, iteration: np.ndarray, phase: Labels,
                      columns: EventColumns) -> dict[str, Any]:
    """Where the iterations came from, which are warm-up or measured, and their wall ms."""
    numbers, names = iteration_phases(iteration, phase)
    by_phase: dict[str, list[int]] = {}
    for number, name in zip(numbers.tolist(), names, strict=True):
        by_phase.setdefault(name, []).append(number)
    wall = {int(p.iteration): p.wall_ms for p in found.passes
            if p.iteration >= 0 and p.wall_ms is not None}
    return {
        "source": found.source,
        "period": found.period,
        "count": len(numbers),
        "warmup": by_phase.get(WARMUP, []),  # the keys trace-schema.md documents
        "measure": by_phase.get(MEASURE, []),
        "other_phases": sorted(phase.names[code] for code in
                               np.unique(phase.codes[columns.is_exec & (iteration < 0)]) if code),
        "wall_ms": wall,  # int keys: `Reconstruction.wall_ms` reads them back as ints
    }


def fusion_summary(out: Attribution, specs: list[LayerSpec] | None) -> dict[str, Any]:
    """Fused layers by type (with a table), else the fused primitives by their post-ops."""
    counts = np.bincount(out.fused.codes, minlength=len(out.fused.names))
    if not specs:  # heuristic: no layer names, only what the post-ops fused
        # in order of first appearance, as a count over the rows would give them
        first = [c for c in distinct_in_order(out.fused.codes) if c]
        return {"fused_primitives_by_post_ops": {out.fused.names[c]: int(counts[c]) for c in first}}
    names: set[str] = set()
    for code in np.flatnonzero(counts[1:]) + 1:
        names.update(out.fused.names[code].split("+"))
    types = {layer.name: layer.type for layer in specs}
    return {
        "fused_layers": len(names),
        "fused_by_type": dict(Counter(types.get(name, "") for name in names)),
        "layers_without_primitives": dict(out.unmatched_layers),
    }
