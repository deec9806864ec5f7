"""Iteration samples of both runs and their statistical comparison.

Two samples per iteration, each tested with a one-sided rank test at alpha/2 (so the
pair keeps the false-alarm rate at alpha):

* total: the oneDNN time of the iteration, every primitive clipped at `spike_clip`
  times its median over both runs pooled (a preempted thread adds ~1 ms to whatever
  primitive is running);
* typical speed: the time-weighted median, over the iteration's primitives, of each
  primitive's time divided by its pooled median. A contention episode that doubles a
  third of an iteration (seen in the corpus: a busy neighbour on a 2-vCPU runner)
  moves the total by 30 % but this median hardly at all, so a uniform slowdown stays
  detectable on a noisy runner. A slowdown confined to a few layers shows in the total
  and in the per-layer tests instead.

Both transformations use statistics of the two runs pooled, applied identically to
every iteration: under "no change" the iterations stay exchangeable, so the rank test
remains exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnprof.check.config import CheckConfig
from dnnprof.check.stats import TimingComparison, compare_samples
from dnnprof.check.steady import SteadyState
from dnnprof.check.structure import UnitPair
from dnnprof.views import coded

TOTAL = "(total)"
SPEED = "(typical speed)"
# Below this share of time in identical primitives, "typical speed" compares too little.
MIN_SPEED_COVERAGE = 0.5


@dataclass
class Samples:
    """Per-iteration values of both runs: totals, typical speed, and per-layer times."""

    total_base: np.ndarray
    total_new: np.ndarray
    speed_base: np.ndarray
    speed_new: np.ndarray
    layers: dict[str, tuple[np.ndarray, np.ndarray]]
    clipped_base: int
    clipped_new: int
    speed_coverage: float  # share of each run's time in primitives both run identically


@dataclass
class TimingResult:
    """Verdicts on the whole iteration and on each layer big enough to judge."""

    total: TimingComparison
    speed: TimingComparison
    layers: list[TimingComparison]


def iteration_samples(
    base: SteadyState, new: SteadyState, pairs: list[UnitPair], spike_clip: float
) -> Samples:
    """Spike-clipped per-iteration totals, typical speeds and per-layer times of both runs."""
    base_names = {p.base.name: p.name for p in pairs if p.base is not None}
    new_names = {p.new.name: p.name for p in pairs if p.new is not None}
    rows = (base.rows, new.rows)
    side = np.repeat(np.arange(2, dtype=np.int64), [len(base.rows), len(new.rows)])
    layer_codes, layer_names = _shared_codes([r["unit"] for r in rows], (base_names, new_names))
    kind_codes = _shared_codes([r["kind"] for r in rows])[0]
    signature_codes = _shared_codes([r["signature"] for r in rows])[0]
    duration = np.concatenate([r["duration_ms"].to_numpy(dtype=float) for r in rows])
    # one sample per (run, iteration), numbered densely
    sample, sample_keys = _dense(
        side, np.concatenate([r["iter"].to_numpy(dtype=np.int64) for r in rows]))
    sample_side = sample_keys[0]
    # the k-th primitive of a kind within a layer is the same slot in every iteration of
    # both runs, as long as it computes the same thing the same way (a conv that gained a
    # fused post-op does more work: its time is a different quantity)
    slot = _dense(layer_codes, kind_codes, _occurrence(sample, layer_codes, kind_codes),
                  signature_codes)[0]
    del kind_codes, signature_codes  # a long run's rows: each array is 8 bytes a row
    pooled = _group_median(slot, duration)
    on_both_sides = np.bincount(slot * 2 + side, minlength=2 * (slot.max() + 1)).reshape(-1, 2)
    shared = (on_both_sides > 0).all(axis=1)[slot]
    del slot
    clipped = np.zeros(len(duration), dtype=bool)
    time = duration
    if spike_clip > 0:
        clipped = duration > spike_clip * pooled
        time = np.where(clipped, spike_clip * pooled, duration)
    n_samples = len(sample_side)
    totals = np.bincount(sample, weights=time, minlength=n_samples)
    # typical speed compares like with like: only primitives both runs execute identically
    speeds = _weighted_median(sample, duration, pooled, shared, n_samples)
    coverage = min(
        float(time[shared & (side == s)].sum() / max(time[side == s].sum(), 1e-300))
        for s in (0, 1)
    )
    del pooled
    cell = layer_codes * n_samples + sample  # (layer, sample) as one number
    per_layer = np.bincount(cell, weights=time,
                            minlength=len(layer_names) * n_samples).reshape(-1, n_samples)
    present = np.bincount(cell, minlength=len(layer_names) * n_samples).reshape(-1, n_samples) > 0
    is_new = sample_side == 1
    layers = {
        str(name): (per_layer[i][present[i] & ~is_new], per_layer[i][present[i] & is_new])
        for i, name in enumerate(layer_names)
    }
    return Samples(
        totals[~is_new], totals[is_new], speeds[~is_new], speeds[is_new], layers,
        int(clipped[side == 0].sum()), int(clipped[side == 1].sum()), coverage,
    )


def _shared_codes(
    columns: list[pd.Series], renames: tuple[dict[str, str], ...] = ({}, {})
) -> tuple[np.ndarray, np.ndarray]:
    """Both runs' values of a text column as codes into one array of names, numbered in
    order of first row (as pd.factorize): each distinct value named, and renamed, once,
    never a string per row."""
    index: dict[str, int] = {}
    parts = []
    for column, rename in zip(columns, renames, strict=True):
        codes, names = coded(column)
        shared = np.array([index.setdefault(rename.get(n, n), len(index)) for n in names],
                          dtype=np.int64)
        parts.append(shared[codes] if len(names) else np.zeros(len(codes), np.int64))
    codes, present = pd.factorize(np.concatenate(parts))
    return codes, np.array(list(index), dtype=object)[present]


def _dense(*keys: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Dense codes of the key tuples (in sorted order), and each component's distinct values."""
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for key in keys:
        # mixed-radix: every component is a small non-negative integer
        combined = combined * (int(key.max(initial=0)) + 1) + key
    distinct, first, codes = np.unique(combined, return_index=True, return_inverse=True)
    return codes.reshape(-1), tuple(key[first] for key in keys)


def _occurrence(*keys: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows share its key tuple."""
    codes = _dense(*keys)[0]
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    nth = np.empty(len(codes), dtype=np.int64)
    nth[order] = np.arange(len(codes)) - run_start
    return nth


def _group_median(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row's group median of `values`."""
    order = np.lexsort((values, groups))
    sorted_groups, sorted_values = groups[order], values[order]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(values)])
    lower = sorted_values[starts + (sizes - 1) // 2]
    upper = sorted_values[starts + sizes // 2]
    medians = np.empty(groups.max() + 1 if len(groups) else 0)
    medians[sorted_groups[starts]] = (lower + upper) / 2.0
    return medians[groups]


def _weighted_median(
    sample: np.ndarray, duration: np.ndarray, pooled: np.ndarray, rows: np.ndarray,
    n_samples: int,
) -> np.ndarray:
    """Per sample: median of duration/pooled over the `rows` (a mask) primitives, weighted
    by pooled time. Selected here, so that no per-row argument outlives its use."""
    result = np.full(n_samples, np.nan)
    valid = rows & (pooled > 0)
    sample, ratio, weight = sample[valid], duration[valid] / pooled[valid], pooled[valid]
    if not len(sample):
        return result
    order = np.lexsort((ratio, sample))
    sample, ratio, weight = sample[order], ratio[order], weight[order]
    del order, valid
    starts = np.r_[0, np.flatnonzero(sample[1:] != sample[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(sample)])
    group_of = np.repeat(np.arange(len(starts)), sizes)
    cumulative = np.cumsum(weight)
    before = np.r_[0.0, cumulative][starts]
    group_total = np.add.reduceat(weight, starts)
    cumulative -= before[group_of]  # the weight reached within the row's own sample
    reached = cumulative >= group_total[group_of] / 2.0
    # the first row of each sample at which half of its weight is reached
    hits = np.flatnonzero(reached)
    groups_hit, first = np.unique(group_of[hits], return_index=True)
    result[sample[starts[groups_hit]]] = ratio[hits[first]]
    return result


def compare_timing(samples: Samples, pairs: list[UnitPair], config: CheckConfig) -> TimingResult:
    """Total and typical-speed verdicts (each at alpha/2), and per-layer verdicts."""
    half_alpha = config.alpha / 2.0
    total = compare_samples(TOTAL, samples.total_base, samples.total_new,
                            config.tolerance, half_alpha)
    speed = _compare_speed(samples, config.tolerance, half_alpha)
    layers: list[TimingComparison] = []
    if not config.layer_timing:
        return TimingResult(total, speed, layers)
    base_total = float(np.median(samples.total_base)) if len(samples.total_base) else 0.0
    for pair in pairs:
        if pair.base is None or pair.new is None or config.ignores(pair.name):
            continue
        base_times, new_times = samples.layers.get(pair.name, (np.zeros(0), np.zeros(0)))
        if not len(base_times) or not len(new_times):
            continue
        if base_total > 0 and np.median(base_times) < config.min_layer_share * base_total:
            continue  # tiny layers: their noise is large and their effect on the total small
        layers.append(compare_samples(pair.name, base_times, new_times,
                                      config.layer_tolerance, config.alpha))
    return TimingResult(total, speed, layers)


def _compare_speed(samples: Samples, tolerance: float, alpha: float) -> TimingComparison:
    if samples.speed_coverage < MIN_SPEED_COVERAGE:
        return TimingComparison(
            SPEED, len(samples.speed_base), len(samples.speed_new), math.nan, math.nan,
            math.nan, math.nan, math.nan, "skipped",
            f"only {samples.speed_coverage:.0%} of the time is in primitives both runs execute "
            "the same way: the structure changed, so only the total is compared",
        )
    # relative to the baseline's median, so that the baseline reads 1.00x (a constant
    # factor changes no rank)
    scale = float(np.median(samples.speed_base))
    scale = scale if scale > 0 else 1.0
    return compare_samples(SPEED, samples.speed_base / scale, samples.speed_new / scale,
                           tolerance, alpha)


def spread(totals: np.ndarray) -> float | None:
    """(max - min) / median of iteration totals: how noisy a run was."""
    if len(totals) < 2:
        return None
    median = float(np.median(totals))
    return float((totals.max() - totals.min()) / median) if median > 0 else None
