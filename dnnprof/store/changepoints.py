"""Where a series of per-run times stepped: Pettitt's rank test by binary segmentation.

Pettitt's statistic is the Mann-Whitney U of "runs before t" against "runs after t",
maximised over t: ranks, not values, so one run ten times slower than the rest moves it
by one rank, not by its size. The split that maximises it is the estimated change point;
its p-value (Pettitt 1979, two-sided approximation) says whether the step is real. Each
side is then searched again for further steps.

A step must also be large enough to matter (`min_shift`, the relative change of the
median) and leave `min_segment` runs on each side: a single slow run is noise, not a
change, and a step in the last few runs is reported once enough runs confirm it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_SEGMENT = 5  # runs on each side of a step
ALPHA = 1e-3  # significance of each split (many series and splits are tested)
MIN_SHIFT = 0.05  # relative change of the median that counts as a step


@dataclass(frozen=True)
class Step:
    """A step in a series: the first position after it, the medians around it, its p-value."""

    index: int
    before_ms: float
    after_ms: float
    p_value: float

    @property
    def shift(self) -> float:
        """after / before - 1 (+0.15: 15 % slower)."""
        return self.after_ms / self.before_ms - 1.0 if self.before_ms > 0 else math.inf


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def pettitt(values: np.ndarray, min_segment: int = MIN_SEGMENT) -> tuple[int, float]:
    """The best split (runs before it) with at least min_segment runs a side, and its p-value."""
    n = len(values)
    if n < 2 * min_segment:
        return 0, 1.0
    ranks = midranks(values)
    before = np.arange(1, n)  # split after 1 .. n-1 runs
    statistic = np.abs(2.0 * np.cumsum(ranks)[:-1] - before * (n + 1.0))
    allowed = statistic[min_segment - 1 : n - min_segment]
    split = int(np.argmax(allowed)) + min_segment
    largest = float(allowed.max())
    p_value = min(1.0, 2.0 * math.exp(-6.0 * largest**2 / (n**3 + n**2)))
    return split, p_value


def find_steps(values: np.ndarray, min_segment: int = MIN_SEGMENT, alpha: float = ALPHA,
               min_shift: float = MIN_SHIFT) -> list[Step]:
    """Every step in the series, in order, with medians of the segments between steps."""
    values = np.asarray(values, dtype=float)
    splits: list[tuple[int, float]] = []
    pending = [(0, len(values))]
    while pending:
        lo, hi = pending.pop()
        split, p_value = pettitt(values[lo:hi], min_segment)
        if p_value > alpha:
            continue
        split = _without_outliers(values[lo:hi], split, min_segment)
        before = float(np.median(values[lo : lo + split]))
        after = float(np.median(values[lo + split : hi]))
        if before <= 0 or abs(after / before - 1.0) < min_shift:
            continue
        splits.append((lo + split, p_value))
        pending += [(lo, lo + split), (lo + split, hi)]
    splits.sort()
    bounds = [0, *(index for index, _ in splits), len(values)]
    return [
        Step(index, float(np.median(values[bounds[i] : index])),
             float(np.median(values[index : bounds[i + 2]])), p_value)
        for i, (index, p_value) in enumerate(splits)
    ]


OUTLIER_SCALES = 6.0  # robust standard deviations from both levels: a run of neither level


def _without_outliers(segment: np.ndarray, split: int, min_segment: int) -> int:
    """The split again, ignoring runs far from both levels around it.

    Ranks place a very slow run next to a step on the slower side, so the step would be
    named one run early (or late). Such a run belongs to neither level: the split is
    searched again without it, and the step's first run is the first run of the new level.
    """
    levels = np.array([np.median(segment[:split]), np.median(segment[split:])])
    residual = np.r_[segment[:split] - levels[0], segment[split:] - levels[1]]
    scale = 1.4826 * float(np.median(np.abs(residual)))
    if scale <= 0:
        return split
    distance = np.abs(segment[:, None] - levels[None, :]).min(axis=1)
    kept = np.flatnonzero(distance <= OUTLIER_SCALES * scale)
    if len(kept) == len(segment) or len(kept) < 2 * min_segment:
        return split
    inner, _ = pettitt(segment[kept], min_segment)
    return int(kept[inner])
