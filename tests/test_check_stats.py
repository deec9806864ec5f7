"""The check's statistics: the rank test itself, the verdict rule, and measured error rates.

The error rates are measured, not assumed: runs are rebuilt by resampling the real
steady-state iterations of each corpus log (whole iterations, so contention episodes stay
as they were), then compared through the same code path as `dnnprof check`.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

import dnnprof
from dnnprof.check.config import CheckConfig
from dnnprof.check.gate import judge_timing
from dnnprof.check.stats import compare_samples, mann_whitney, min_iterations, min_p_value
from dnnprof.check.steady import SteadyState, steady_state
from dnnprof.check.structure import match_units
from support.corpus import CORPUS

POOLS = (
    "torch_resnet50_fp32_eager_b1",  # one of its 3 iterations ran 2x slower for 80 primitives
    "torch_resnet50_fp32_eager_b1_verbose_all",
    "torch_resnet50_int8_fx_b1",
    "torch_resnet50_compile_freezing_b1",
    "mxnet_resnet50_v1_fp32_b1",
)
# Pairs per (log, iterations, slowdown). The contended eager log decides the detection
# rate (~97 % at 10 iterations), so it gets enough pairs for +-1 % resolution; the quiet
# logs sit at 100 % and need few.
PAIRS_CONTENDED = 400
PAIRS_QUIET = 100
SLOWDOWN = 1.20


# ------------------------------------------------------------ the rank test --

def test_exact_p_values_match_scipy_without_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        base = rng.normal(0, 1, rng.integers(2, 12))
        new = rng.normal(0.7, 1, rng.integers(2, 12))
        ours = mann_whitney(base, new)
        assert ours.exact
        assert ours.p_slower == pytest.approx(
            scipy_stats.mannwhitneyu(new, base, alternative="greater", method="exact").pvalue)
        assert ours.p_faster == pytest.approx(
            scipy_stats.mannwhitneyu(new, base, alternative="less", method="exact").pvalue)


def test_exact_p_values_with_ties_match_a_full_permutation_test() -> None:
    rng = np.random.default_rng(4)
    for _ in range(5):
        base = np.round(rng.normal(0, 1, 7))
        new = np.round(rng.normal(0.5, 1, 6))
        expected = scipy_stats.permutation_test(
            (new, base), lambda a, b: scipy_stats.mannwhitneyu(a, b).statistic,
            alternative="greater", permutation_type="independent", n_resamples=np.inf,
        ).pvalue
        assert mann_whitney(base, new).p_slower == pytest.approx(expected)


def test_large_samples_use_the_normal_approximation() -> None:
    rng = np.random.default_rng(5)
    base, new = rng.normal(0, 1, 60), rng.normal(0.3, 1, 50)
    ours = mann_whitney(base, new)
    assert not ours.exact
    assert ours.p_slower == pytest.approx(
        scipy_stats.mannwhitneyu(new, base, alternative="greater", method="asymptotic").pvalue)


def test_minimum_iterations_follow_from_alpha() -> None:
    assert min_p_value(5, 5) == pytest.approx(1 / 252)
    assert min_iterations(0.005) == 5  # the default: alpha 0.01 split over two statistics
    assert min_iterations(0.05) == 3  # 1/C(6,3) = 0.05


# ------------------------------------------------------------- the verdict --

def test_slower_needs_significance_and_a_slowdown_beyond_tolerance() -> None:
    base = np.array([10.0, 10.1, 9.9, 10.05, 9.95, 10.02])
    assert compare_samples("t", base, base * 1.20, 0.05, 0.01).verdict == "slower"
    assert compare_samples("t", base, base * 0.80, 0.05, 0.01).verdict == "faster"
    # significant but within tolerance: not a regression
    assert compare_samples("t", base, base * 1.03, 0.05, 0.01).verdict == "unchanged"
    # beyond tolerance but noisy: said so, not failed
    noisy = np.array([10.0, 14.0, 9.0, 13.0, 9.5, 12.5])
    assert compare_samples("t", base, noisy, 0.05, 0.01).verdict == "unclear"


def test_too_few_iterations_are_reported_not_guessed() -> None:
    result = compare_samples("t", np.array([10.0, 10.0, 10.0]), np.array([20.0, 20.0, 20.0]),
                             0.05, 0.005)
    assert result.verdict == "insufficient"
    assert "too few iterations" in result.reason and "fewer than 5 measured iterations" in result.reason
    assert result.p_value is None
    assert math.isclose(result.ratio, 2.0)


# ------------------------------------------------- measured error rates --

@cache
def _pool(name: str) -> tuple[SteadyState, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    state = steady_state(dnnprof.parse(CORPUS / f"{name}.log"))
    iterations = [
        (group["unit"].to_numpy(dtype=object), group["kind"].astype(str).to_numpy(dtype=object),
         group["signature"].astype(str).to_numpy(dtype=object),
         group["duration_ms"].to_numpy(dtype=float))
        for _, group in state.rows.groupby("iter", sort=True)
    ]
    return state, iterations


def _resampled(state: SteadyState, iterations: list, picks: np.ndarray, factor: float) -> SteadyState:
    chosen = [iterations[i] for i in picks]
    rows = pd.DataFrame({
        "unit": np.concatenate([c[0] for c in chosen]),
        "kind": np.concatenate([c[1] for c in chosen]),
        "signature": np.concatenate([c[2] for c in chosen]),
        "duration_ms": np.concatenate([c[3] for c in chosen]) * factor,
        "iter": np.repeat(np.arange(len(chosen)), [len(c[3]) for c in chosen]),
    })
    return SteadyState(rows, state.units, list(range(len(chosen))), "labels", [], state.trace)


def _rates(name: str, n: int, rng: np.random.Generator, pairs_per_cell: int) -> dict[str, float]:
    state, iterations = _pool(name)
    pairs = match_units(state.units, state.units)
    config = CheckConfig()
    counts = {"false_alarm": 0, "layer_warning": 0, "detected": 0}
    for factor in (1.0, SLOWDOWN):
        for _ in range(pairs_per_cell):
            base = _resampled(state, iterations, rng.integers(0, len(iterations), n), 1.0)
            new = _resampled(state, iterations, rng.integers(0, len(iterations), n), factor)
            findings = judge_timing(base, new, pairs, config)[2]
            failed = any(f.severity == "error" for f in findings)
            if factor == 1.0:
                counts["false_alarm"] += failed
                counts["layer_warning"] += any(f.code == "layer_timing_regression" for f in findings)
            else:
                counts["detected"] += failed
    return {key: value / pairs_per_cell for key, value in counts.items()}


@pytest.mark.parametrize("iterations", [10, 5])
def test_resampled_real_iterations_false_alarms_and_detection(iterations: int) -> None:
    rng = np.random.default_rng(2026 + iterations)
    contended = POOLS[0]
    sizes = {name: PAIRS_CONTENDED if name == contended and iterations >= 10 else PAIRS_QUIET
             for name in POOLS}
    rates = {name: _rates(name, iterations, rng, sizes[name]) for name in POOLS}
    print(f"\n{iterations} measured iterations per run, injected slowdown {SLOWDOWN - 1:.0%}:")
    for name, rate in rates.items():
        print(f"  {name:42s} {sizes[name]:3d} pairs each: false alarms {rate['false_alarm']:6.1%}"
              f"  (any layer warning {rate['layer_warning']:5.1%})"
              f"  detected {rate['detected']:6.1%}")
    for name, rate in rates.items():
        assert rate["false_alarm"] <= 0.05, name
    # With 5 iterations the contended log is at ~94 %: when most of a short run is
    # contended nothing can tell a slowdown from contention. 10 iterations reach 95 % on
    # every log, which is why docs/check.md asks for 10 measured iterations in CI.
    judged = POOLS if iterations >= 10 else POOLS[1:]
    for name in judged:
        assert rates[name]["detected"] >= 0.95, name


# ------------------------------------------ timing verdicts on real runs --

def _run(name: str, iterations: int, path, edit=None, start: int = 0):
    from support.check_logs import replicated_log

    return dnnprof.parse(replicated_log(name, iterations, path, edit=edit, start=start))


def test_a_structural_improvement_is_not_called_slower(tmp_path) -> None:
    from dnnprof.check import check_traces

    # eager (reorders, no fusion) replaced by torch.compile (fused, no reorders): no
    # primitive runs the same way in both, so only the total speaks
    report = check_traces(_run("torch_resnet50_fp32_eager_b1", 6, tmp_path / "e.log"),
                          _run("torch_resnet50_compile_freezing_b1", 6, tmp_path / "c.log"))
    assert report.speed.verdict == "skipped"
    assert "structure changed" in report.speed.reason
    assert report.total.verdict == "faster"
    assert report.exit_code == 0


def test_one_layer_slower_fails_even_when_the_rest_is_unchanged(tmp_path) -> None:
    from dnnprof.check import check_traces
    from support.check_logs import slower

    layer = "mb1_ic3oc64_ih224oh112kh7sh2dh0ph3_iw224ow112kw7sw2dw0pw3"  # the stem, ~4 %

    def stem_slower(line: str) -> str:
        return slower(3.0)(line) if layer in line else line

    report = check_traces(_run("torch_resnet50_int8_fx_b1", 6, tmp_path / "b.log"),
                          _run("torch_resnet50_int8_fx_b1", 6, tmp_path / "n.log",
                               edit=stem_slower, start=1))
    assert report.speed.verdict == "unchanged"  # the typical primitive did not move
    errors = [(f.code, f.layer) for f in report.errors]
    # +8 % of the iteration: the total catches it, and the layer alone exceeds the tolerance
    assert ("timing_regression", "(total)") in errors
    assert ("timing_regression", f"convolution[{layer}]#0") in errors
