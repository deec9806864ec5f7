"""Each published claim of the thesis' chapter 4 (and Neural Compressor's INT8 number),
our measurement of it from the runs given, and a verdict from the numbers and stated bands.

A claim whose runs are missing is "not measured", never guessed; a timing claim resting on
a run measured on an unreliable machine is "not judged" (docs/conditions.md), while a claim
on what ran (reorders counted per iteration) is judged whatever the machine's load. Per-stage times
are medians over the measured iterations: a few iterations slowed by other work must not
decide a comparison (docs/study/conv1.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dnnprof.reports import Comparison, Variant
from dnnprof.views import stage_mapper
from dnnprof.vocabulary import BUSY, UNRELIABLE
from studies.thesis2020.runs import StudyRun, describe, dlrm_pair, family, pair, pick

SIMILAR = 1.25  # claim 7: max/min of conv1 across depths still "similar"
AGREES, DISAGREES, PARTLY, NOT_MEASURED, INFO, NOT_JUDGED = (
    "agrees", "disagrees", "partly", "not measured", "no published number", "not judged",
)


@dataclass
class ClaimCheck:
    """One published claim, our measurement of it, and the verdict."""

    claim: str
    published: str
    measured: str
    verdict: str
    evidence: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    timing: bool = True  # False: a count of what ran, which other work on the CPU cannot change


def _speedup(base: Variant, new: Variant) -> tuple[float, float, float, str, int]:
    comp = Comparison([base, new], baseline=base.name)
    row = comp.overview.set_index("variant").loc[new.name]
    return (float(row["speedup"]), float(row["speedup_low"]), float(row["speedup_high"]),
            comp.latency_source, int(row["samples"]))


def _speedup_text(point: float, low: float, high: float, source: str, samples: int) -> str:
    if not math.isfinite(point):
        return "no timings"
    interval = f" (95 % CI {low:.2f}-{high:.2f})" if math.isfinite(low) else " (no CI: 1 sample)"
    return f"{point:.2f}x{interval}, median {source} time, {samples} iterations"


def _range_verdict(point: float, low: float, high: float, lo: float, hi: float) -> str:
    if not math.isfinite(point):
        return NOT_MEASURED
    low = point if not math.isfinite(low) else low
    high = point if not math.isfinite(high) else high
    if high < lo:
        return f"{DISAGREES} (lower)"
    if low > hi:
        return f"{DISAGREES} (higher)"
    return AGREES if lo <= point <= hi else PARTLY


def _names(*runs: StudyRun) -> str:
    return ", ".join(f"`{r.variant.name}`" for r in runs)


def int8_speedup(runs: Sequence[StudyRun]) -> list[ClaimCheck]:
    """INT8 vs FP32 ResNet-50: the thesis' 3-4x and Neural Compressor's 2.53x."""
    claims = [
        ("INT8 ResNet-50 speedup over FP32 (thesis §4.2, Figs. 4.3/4.4)",
         "3-4x (MXNet + MKL-DNN, i9-7900X, 20 cores)", 3.0, 4.0),
        ("INT8 ResNet-50 speedup over FP32 (Intel Neural Compressor)",
         "2.53x (Xeon Platinum 8380)", 2.53 * 0.85, 2.53 * 1.15),
    ]
    runs_pair = pair(runs, "resnet50", "int8")
    if runs_pair is None:
        return [ClaimCheck(c, p, "needs ResNet-50 fp32 and int8 runs", NOT_MEASURED)
                for c, p, _, _ in claims]
    base, new = runs_pair
    point, low, high, source, samples = _speedup(base.variant, new.variant)
    measured = _speedup_text(point, low, high, source, samples)
    return [ClaimCheck(claim, published, measured, _range_verdict(point, low, high, lo, hi),
                       f"{_names(base, new)}; counted as agreeing within {lo:.2f}-{hi:.2f}x",
                       {"speedup": point, "low": low, "high": high})
            for claim, published, lo, hi in claims]


def int8_conv_share(runs: Sequence[StudyRun]) -> list[ClaimCheck]:
    """Convolution's share of INT8 oneDNN time (thesis: up to 95 %)."""
    claim = "Convolution's share of INT8 ResNet-50 oneDNN time (thesis §4.2.2, Fig. 4.9)"
    published = "≈95 %"
    run = next((r for r in runs if family(r.model) == "resnet50" and r.precision == "int8"),
               None)
    if run is None:
        return [ClaimCheck(claim, published, "needs a ResNet-50 int8 run", NOT_MEASURED)]
    kinds = Comparison([run.variant]).by_kind
    conv = kinds.loc[kinds["kind"] == "convolution", "share"]
    if conv.empty:
        return [ClaimCheck(claim, published, "no convolution primitive in the log", DISAGREES,
                           _names(run))]
    share = float(conv.iloc[0])
    verdict = AGREES if share >= 0.90 else f"{DISAGREES} (lower)"
    others = kinds[kinds["kind"] != "convolution"].sort_values("share", ascending=False).head(3)
    rest = ", ".join(f"{k} {s:.1%}" for k, s in zip(others["kind"], others["share"],
                                                   strict=True))
    return [ClaimCheck(claim, published, f"{share:.1%}" + (f" (then {rest})" if rest else ""),
                       verdict, f"{_names(run)}; counted as agreeing within 90-100 %",
                       {"share": share})]


def int8_per_layer(runs: Sequence[StudyRun]) -> list[ClaimCheck]:
    """Average per-layer INT8 latency as a fraction of FP32's (thesis: ≈50 %)."""
    claim = "Average INT8 layer latency as a share of FP32's (thesis §4.2.2, Figs. 4.10/4.11)"
    published = "≈50 %"
    runs_pair = pair(runs, "resnet50", "int8")
    if runs_pair is None:
        return [ClaimCheck(claim, published, "needs ResNet-50 fp32 and int8 runs", NOT_MEASURED)]
    base, new = runs_pair
    speed = Comparison([base.variant, new.variant], baseline=base.variant.name).layer_speedup
    if speed.empty:
        return [ClaimCheck(claim, published, "no layer names in common (run with layer markers)",
                           NOT_MEASURED, _names(base, new))]
    ratio = float(speed["variant_ms"].mean() / speed["baseline_ms"].mean())
    median = float(speed["ratio"].median())
    # A layer's time includes its reorders; the thesis' layers were mostly one primitive.
    compute = float(speed["variant_compute_ms"].mean() / speed["baseline_compute_ms"].mean())
    verdict = AGREES if 0.4 <= ratio <= 0.6 else (
        f"{DISAGREES} ({'INT8 layers faster than claimed' if ratio < .4 else 'slower'})")
    return [ClaimCheck(claim, published,
                       f"{ratio:.0%} (mean over {len(speed)} layers, reorders included; median "
                       f"per-layer ratio {median:.0%}; without reorders {compute:.0%})",
                       verdict,
                       f"{_names(base, new)}; counted as agreeing within 40-60 %",
                       {"ratio": ratio, "median": median, "compute_ratio": compute,
                        "layers": len(speed)})]


def mobilenet_reorders(runs: Sequence[StudyRun]) -> list[ClaimCheck]:
    """Reorders per iteration for MobileNet widths (thesis: more at 0.25 and 0.75)."""
    claim = "MobileNet v1 α=0.25/0.75 run more reorders than α=0.5/1.0 (thesis §4.1.1, Fig. 4.1)"
    published = "more reorders at α=0.25 and 0.75 (8/24-channel stem, nChw8c -> nChw16c)"
    widths: dict[float, StudyRun] = {}
    for run in runs:
        if family(run.model) == "mobilenet" and run.precision == "fp32" and run.width:
            widths.setdefault(run.width, run)
    if not widths:
        return [ClaimCheck(claim, published, "needs MobileNet v1 runs at several widths",
                           NOT_MEASURED)]
    comp = Comparison([r.variant for r in widths.values()])
    counts = comp.reorders.set_index("variant")["reorders_per_iter"]
    per_width = {w: float(counts[r.variant.name]) for w, r in sorted(widths.items())}
    isas = comp.isas
    avx2 = {w: bool(((isas["variant"] == r.variant.name)
                     & isas["isa_name"].str.startswith("avx2")).any())
            for w, r in widths.items()}
    odd = [per_width[w] for w in (0.25, 0.75) if w in per_width]
    even = [per_width[w] for w in (0.5, 1.0) if w in per_width]
    if not odd or not even:
        verdict = PARTLY if odd or even else NOT_MEASURED
    else:
        verdict = AGREES if min(odd) > max(even) else DISAGREES
    measured = "; ".join(
        f"α={w:g}: {n:g}/iter" + (" (avx2 kernels)" if avx2[w] else "")
        for w, n in per_width.items()
    )
    return [ClaimCheck(claim, published, measured, verdict, _names(*widths.values()),
                       {"reorders": per_width, "avx2": avx2}, timing=False)]


def resnet_stages(runs: Sequence[StudyRun]) -> list[ClaimCheck]:
    """conv5_x vs conv2_x in ResNet-50 (thesis: only 1.1x) and conv1 across depths."""
    return [_conv5_over_conv2(runs), _conv1_across_depths(runs)]


def stage_iterations(variant: Variant) -> pd.DataFrame:
    """Each ResNet stage's oneDNN ms in each measured iteration (stages × iterations)."""
    rows = variant.steady[variant.steady["layer"].astype(str) != ""]
    chosen = stage_mapper(rows) if not rows.empty else None
    if chosen is None:
        return pd.DataFrame(dtype=float)
    mapper = chosen[0]
    lookup = {layer: mapper(layer) for layer in pd.unique(rows["layer"].astype(str))}
    stage = rows["layer"].astype(str).map(lookup)
    per_iteration = rows.groupby([stage, rows["iteration"]])["duration_ms"].sum()
    return per_iteration.unstack(fill_value=0.0)


def stage_medians(variant: Variant) -> pd.Series:
    """Each ResNet stage's oneDNN ms: the median over the measured iterations."""
    per_iteration = stage_iterations(variant)
    return per_iteration.median(axis=1) if not per_iteration.empty else pd.Series(dtype=float)


def spread_interval(samples: Sequence[np.ndarray], draws: int = 2000) -> tuple[float, float]:
    """95 % bootstrap interval of max/min of the groups' medians (iterations resampled within
    each group, a fixed seed so that a study is reproducible)."""
    rng = np.random.default_rng(0)
    medians = np.column_stack([
        np.median(rng.choice(group, size=(draws, len(group))), axis=1) for group in samples
    ])  # fmt: skip
    ratios = medians.max(axis=1) / medians.min(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def _conv5_over_conv2(runs: Sequence[StudyRun]) -> ClaimCheck:
    claim = "ResNet-50 conv5_x latency vs conv2_x (thesis §4.1.2, Fig. 4.2)"
    run = pick([r for r in runs if family(r.model) == "resnet50"], precision="fp32", pruned="")
    if run is None:
        return ClaimCheck(claim, "1.1x", "needs a ResNet-50 fp32 run", NOT_MEASURED)
    stages = stage_medians(run.variant)
    if not {"conv2_x", "conv5_x"} <= set(stages.index):
        return ClaimCheck(claim, "1.1x", "no stage roll-up", NOT_MEASURED, _names(run))
    ratio = float(stages["conv5_x"] / stages["conv2_x"])
    verdict = AGREES if 0.9 <= ratio <= 1.3 else DISAGREES
    return ClaimCheck(claim, "1.1x", f"{ratio:.2f}x ({stages['conv5_x']:.2f} vs "
                      f"{stages['conv2_x']:.2f} ms)", verdict,
                      f"{_names(run)}; counted as agreeing within 0.9-1.3x", {"ratio": ratio})


def _conv1_across_depths(runs: Sequence[StudyRun]) -> ClaimCheck:
    claim = "Stages of the same structure take similar time across ResNet depths (Fig. 4.2)"
    published = "similar conv1 latency for 18/34/50/101/152"
    depths: dict[str, StudyRun] = {}
    for r in runs:
        if family(r.model).startswith("resnet") and r.precision == "fp32" and not r.pruned:
            depths.setdefault(family(r.model), r)
    if len(depths) < 2:
        return ClaimCheck(claim, published, "needs ResNet runs at two or more depths",
                          NOT_MEASURED)
    ordered = sorted(depths.items(), key=lambda item: int(item[0].removeprefix("resnet")))
    tables = {name: stage_iterations(r.variant) for name, r in ordered}
    samples = {name: table.loc["conv1"].to_numpy(float) for name, table in tables.items()
               if "conv1" in table.index}
    if len(samples) < 2:
        return ClaimCheck(claim, published, "no conv1 in two or more runs", NOT_MEASURED,
                          _names(*depths.values()))
    conv1 = pd.Series({name: float(np.median(values)) for name, values in samples.items()})
    spread = float(conv1.max() / conv1.min())
    low, high = spread_interval(list(samples.values()))
    # The same layer in every depth: a spread is only a finding when the runs' own
    # iteration-to-iteration noise cannot explain it (the interval clears the band).
    verdict = AGREES if high <= SIMILAR else DISAGREES if low > SIMILAR else PARTLY
    measured = ", ".join(f"{name} {ms:.2f} ms" for name, ms in conv1.items())
    return ClaimCheck(claim, published,
                      f"conv1, median per iteration: {measured} (max/min {spread:.2f}, "
                      f"95 % CI {low:.2f}-{high:.2f})", verdict,
                      f"{_names(*depths.values())}; agreeing if the interval of max/min stays "
                      f"<= {SIMILAR}, disagreeing if it lies above, partly if it spans it",
                      {"conv1_ms": conv1.to_dict(), "spread_ci": (low, high)})


PairFinder = Callable[[Sequence[StudyRun]], tuple[StudyRun, StudyRun] | None]
# (claim, the two runs, published, expectation: ">1" faster, "~1" the same, "" no number)
OTHER_VARIANTS: tuple[tuple[str, PairFinder, str, str], ...] = (
    ("ResNet-50 fused (post-op fusion) over FP32", lambda runs: pair(runs, "resnet50", "fused"),
     "fused primitives are faster than separate ones (thesis §4.2.2, qualitative)", ">1"),
    ("ResNet-50 BF16 over FP32", lambda runs: pair(runs, "resnet50", "bf16"), "", ""),
    ("ResNet-50 unstructured 50 % pruning over dense",
     lambda runs: pair(runs, "resnet50", "fp32", pruned="unstructured"), "", "~1"),
    ("ResNet-50 structured 50 % pruning over dense",
     lambda runs: pair(runs, "resnet50", "fp32", pruned="structured"), "", ">1"),
    ("DLRM MLP-reduced over DLRM", dlrm_pair, "", ""),
)


def other_variants(runs: Sequence[StudyRun]) -> list[ClaimCheck]:
    """The issue's other experiments: fused, BF16, pruning, MLP-reduced DLRM (no thesis number)."""
    return [_other_variant(runs, *row) for row in OTHER_VARIANTS]


def _other_variant(runs: Sequence[StudyRun], claim: str, find: PairFinder, published: str,
                   expect: str) -> ClaimCheck:
    published = published or "–"
    found = find(runs)
    if found is None:
        return ClaimCheck(claim, published, "runs missing", NOT_MEASURED)
    base, new = found
    refused = [problem for r in (base, new) for problem in r.variant.meta.problems]
    if refused:
        # the runner said the run did not show its variant (bf16 on a CPU without it):
        # a speedup of whatever ran instead would be a wrong answer to this claim
        return ClaimCheck(claim, published, f"not measured: {refused[0]}", NOT_MEASURED,
                          _names(base, new))
    point, low, high, source, samples = _speedup(base.variant, new.variant)
    verdict = INFO
    if expect == ">1":
        verdict = _range_verdict(point, low, high, 1.0, math.inf)
    elif expect == "~1":
        verdict = _range_verdict(point, low, high, 0.95, 1.05)
    return ClaimCheck(claim, published, _speedup_text(point, low, high, source, samples),
                      verdict, _names(base, new), {"speedup": point, "low": low, "high": high})


STUDY = (int8_speedup, int8_conv_share, int8_per_layer, mobilenet_reorders, resnet_stages,
         other_variants)


def study_findings(variants: Sequence[Variant]) -> list[ClaimCheck]:
    """Every claim checked, in the thesis' order, from whatever runs are given."""
    runs = [describe(v) for v in variants]
    return [respect_conditions(checked, variants) for measure in STUDY
            for checked in measure(runs)]


def respect_conditions(checked: ClaimCheck, variants: Sequence[Variant]) -> ClaimCheck:
    """No timing verdict from a run measured on an unreliable machine; a busy one is named."""
    if not checked.timing:
        return checked
    involved = [v for v in variants if f"`{v.name}`" in checked.evidence]
    unreliable = [v.name for v in involved if v.meta.run_conditions.verdict == UNRELIABLE]
    busy = [v.name for v in involved if v.meta.run_conditions.verdict == BUSY]
    if unreliable and checked.verdict != NOT_MEASURED:
        checked.measured += f" — measured on an unreliable machine: {', '.join(unreliable)}"
        checked.verdict = NOT_JUDGED
    elif busy:
        checked.measured += f" — busy machine during {', '.join(busy)}"
    return checked
