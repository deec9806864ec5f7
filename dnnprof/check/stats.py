"""Mann-Whitney U on iteration samples, exact for CI-sized samples, and the slowdown verdict.

Own implementation rather than scipy: the analyzer's dependencies stay small, and the
exact null distribution is computed with ties (iteration times are rounded in the log,
so ties are common), which scipy's exact mode does not do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Above this many pooled samples the normal approximation is accurate to far better
# than the alpha levels used here, and the exact table would cost O(N^3) memory-time.
EXACT_LIMIT = 80
# Up to this many samples 1/C(n, k) is computed exactly (C(1000, 500) ~ 2.7e299 still fits)
_EXACT_MIN_P_LIMIT = 1000


@dataclass(frozen=True)
class RankTest:
    """One-sided p-values of a two-sample rank test (new against baseline)."""

    p_slower: float  # P(U at least this large | same distribution): new stochastically larger
    p_faster: float
    exact: bool


def min_p_value(n_base: int, n_new: int) -> float:
    """The smallest one-sided p-value the rank test can give for these sample sizes."""
    if n_base < 1 or n_new < 1:
        return 1.0
    if n_base + n_new > _EXACT_MIN_P_LIMIT:
        # in log space: C(n, k) overflows a float past ~1030 samples (it underflows to 0.0)
        log_comb = (math.lgamma(n_base + n_new + 1) - math.lgamma(n_base + 1)
                    - math.lgamma(n_new + 1))
        return math.exp(-log_comb)
    return 1.0 / math.comb(n_base + n_new, n_new)


def min_iterations(alpha: float) -> int:
    """The fewest iterations per side (equal sizes) that can reach p <= alpha."""
    n = 1
    while min_p_value(n, n) > alpha:
        n += 1
    return n


def mann_whitney(base: np.ndarray, new: np.ndarray) -> RankTest:
    """One-sided Mann-Whitney U p-values for `new` slower and `new` faster than `base`."""
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    n_base, n_new = len(base), len(new)
    if n_base == 0 or n_new == 0:
        return RankTest(1.0, 1.0, True)
    pooled = np.concatenate([base, new])
    # doubled mid-ranks are integers, so tied values can be counted exactly
    ranks2 = _doubled_midranks(pooled)
    observed = int(ranks2[n_base:].sum())
    if len(pooled) <= EXACT_LIMIT:
        # the null distribution depends only on the multiset of ranks and the group size
        counts = _cached_rank_sum_counts(tuple(sorted(ranks2.tolist())), n_new)
        total = counts.sum()
        p_slower = counts[observed:].sum() / total
        p_faster = counts[: observed + 1].sum() / total
        return RankTest(float(min(1.0, p_slower)), float(min(1.0, p_faster)), True)
    return _normal_approximation(ranks2, n_base, n_new, observed)


def _doubled_midranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks2 = np.empty(len(values), dtype=np.int64)
    start = 0
    n = len(values)
    while start < n:
        end = start
        while end + 1 < n and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        # ranks start+1 .. end+1 share their mean; doubled: (start+1)+(end+1)
        ranks2[order[start : end + 1]] = start + end + 2
        start = end + 1
    return ranks2


@lru_cache(maxsize=1024)
def _cached_rank_sum_counts(ranks2: tuple[int, ...], size: int) -> np.ndarray:
    return _rank_sum_counts(np.asarray(ranks2, dtype=np.int64), size)


def _rank_sum_counts(ranks2: np.ndarray, size: int) -> np.ndarray:
    """How many size-subsets of the pooled sample have each doubled rank sum."""
    total = int(ranks2.sum())
    # ways[k, s]: subsets of k items seen so far with doubled rank sum s; float64 holds
    # C(80, 40) ~ 1e23 with relative error 1e-16, plenty for a p-value
    ways = np.zeros((size + 1, total + 1))
    ways[0, 0] = 1.0
    for rank in ranks2:
        rank = int(rank)
        ways[1:, rank:] += ways[:-1, : total + 1 - rank].copy()
    return ways[size]


def _normal_approximation(
    ranks2: np.ndarray, n_base: int, n_new: int, observed2: int
) -> RankTest:
    n = n_base + n_new
    ranks = ranks2 / 2.0
    mean = n_new * (n + 1) / 2.0
    # tie-corrected variance of the rank sum of the `new` group
    variance = n_base * n_new / (n * (n - 1)) * float(((ranks - (n + 1) / 2.0) ** 2).sum())
    if variance <= 0:
        return RankTest(1.0, 1.0, False)
    sd = math.sqrt(variance)
    observed = observed2 / 2.0
    z_slower = (observed - mean - 0.5) / sd
    z_faster = (observed - mean + 0.5) / sd
    return RankTest(_upper_normal(z_slower), 1.0 - _upper_normal(z_faster), False)


def _upper_normal(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class TimingComparison:
    """Verdict on one timed quantity (total or one layer) between two runs."""

    name: str
    n_base: int
    n_new: int
    median_base_ms: float
    median_new_ms: float
    ratio: float  # median(new) / median(base)
    p_slower: float
    p_faster: float
    verdict: str  # slower | faster | unchanged | unclear | insufficient | skipped
    reason: str

    @property
    def p_value(self) -> float | None:
        """The one-sided p-value in the direction of the change; None when not tested."""
        p = self.p_slower if self.ratio >= 1 else self.p_faster
        return p if math.isfinite(p) and self.verdict != "insufficient" else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "n_base": self.n_base,
            "n_new": self.n_new,
            "median_base_ms": _finite(self.median_base_ms),
            "median_new_ms": _finite(self.median_new_ms),
            "ratio": _finite(self.ratio),
            "p_slower": _finite(self.p_slower),
            "p_faster": _finite(self.p_faster),
            "verdict": self.verdict,
            "reason": self.reason,
        }


def compare_samples(
    name: str, base: np.ndarray, new: np.ndarray, tolerance: float, alpha: float
) -> TimingComparison:
    """Slower only if the rank test is significant AND the median ratio exceeds 1 + tolerance."""
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    n_base, n_new = len(base), len(new)
    med_base = float(np.median(base)) if n_base else math.nan
    med_new = float(np.median(new)) if n_new else math.nan
    ratio = med_new / med_base if n_base and n_new and med_base > 0 else math.nan
    floor = min_p_value(n_base, n_new)
    if floor > alpha:
        need = min_iterations(alpha)
        reason = (
            f"too few iterations to judge: {n_base} baseline and {n_new} new; the rank test "
            f"cannot reach p <= {alpha:g} with fewer than {need} measured iterations per run "
            f"(run more iterations)"
        )
        return TimingComparison(name, n_base, n_new, med_base, med_new, ratio, 1.0, 1.0,
                          "insufficient", reason)
    limit_up = 1.0 + tolerance
    limit_down = 1.0 / (1.0 + tolerance)
    change = f"{ratio - 1.0:+.1%}" if math.isfinite(ratio) else "n/a"
    if limit_down <= ratio <= limit_up:
        # within tolerance nothing can be flagged, whatever the p-value: skip the test
        return TimingComparison(name, n_base, n_new, med_base, med_new, ratio, math.nan, math.nan,
                          "unchanged", f"{change}, within {tolerance:.0%}")
    test = mann_whitney(base, new)
    if test.p_slower <= alpha and ratio > limit_up:
        verdict, reason = "slower", f"{change} (p={test.p_slower:.2g}, tolerance {tolerance:.0%})"
    elif test.p_faster <= alpha and ratio < limit_down:
        verdict, reason = "faster", f"{change} (p={test.p_faster:.2g})"
    else:
        p = test.p_slower if ratio > 1 else test.p_faster
        verdict = "unclear"
        reason = f"{change} but not significant (p={p:.2g} > {alpha:g}): noise cannot be ruled out"
    return TimingComparison(name, n_base, n_new, med_base, med_new, ratio, test.p_slower,
                      test.p_faster, verdict, reason)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
