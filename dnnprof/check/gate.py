"""The facade: two traces in, one CheckReport out (timing verdicts plus structural findings)."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from dnnprof.check.config import CheckConfig
from dnnprof.check.inputs import load_input
from dnnprof.check.report import CheckReport, Finding, RunInfo
from dnnprof.check.stats import TimingComparison
from dnnprof.check.steady import STEADY_COLUMNS, SteadyState, SteadyStateError, steady_state
from dnnprof.check.structure import (
    UnitPair,
    completeness_findings,
    match_units,
    structural_findings,
)
from dnnprof.check.timing import (
    SPEED,
    TOTAL,
    Samples,
    TimingResult,
    compare_timing,
    iteration_samples,
    spread,
)
from dnnprof.trace import Trace
from dnnprof.vocabulary import BUSY, UNRELIABLE

NOISY_SPREAD = 0.30  # iteration totals varying more than this: the runner was busy

TraceOrPath = Trace | str | os.PathLike[str]


def check(
    new: TraceOrPath,
    *,
    baseline: TraceOrPath,
    config: CheckConfig | None = None,
    model: str | None = None,
) -> CheckReport:
    """`dnnprof check NEW --baseline BASE` from Python: each side a Trace or a path to one.

    A path is read with `load_input` (with `model`, aligned with that zoo model's layers).
    Raises InputError (CheckInputError, SteadyStateError) when a side cannot be compared.
    """
    new_trace, new_name = _side(new, "new", model)
    base_trace, base_name = _side(baseline, "baseline", model)
    return check_traces(base_trace, new_trace, config, base_name, new_name)


def _side(side: TraceOrPath, role: str, model: str | None) -> tuple[Trace, str]:
    if isinstance(side, Trace):
        return side, ""
    return load_input(side, role, model, columns=STEADY_COLUMNS), str(side)


def check_traces(
    baseline: Trace,
    new: Trace,
    config: CheckConfig | None = None,
    baseline_path: str = "",
    new_path: str = "",
) -> CheckReport:
    """Compare `new` against `baseline`; raises SteadyStateError if either has nothing to compare."""
    config = config or CheckConfig()
    base_state = _steady(baseline, "baseline", baseline_path)
    new_state = _steady(new, "new", new_path)
    pairs = match_units(base_state.units, new_state.units)
    samples, timing, findings = judge_timing(base_state, new_state, pairs, config)
    declined = declined_because(baseline, new)
    if declined:
        # the structure is deterministic and still judged; times from such a run are not
        timing = decline_timing(timing, declined)
        findings = [Finding("timing", "timing_declined", TOTAL, timing.total.reason,
                            config.severity_of("timing_declined"))]
    stopped = bool(new.metadata.interrupted) or new.metadata.child_returncode not in (None, 0)
    missing, covered = completeness_findings(
        pairs, base_state.measured, new_state.measured, config, stopped)
    findings += missing + structural_findings(pairs, config, covered)
    report = CheckReport(
        baseline=_run_info(baseline, base_state, baseline_path, samples.total_base,
                           samples.clipped_base),
        new=_run_info(new, new_state, new_path, samples.total_new, samples.clipped_new),
        config=config,
        total=timing.total,
        speed=timing.speed,
        layers=timing.layers,
        findings=findings,
        compared_layers=sum(1 for p in pairs if p.base is not None and p.new is not None),
        ignored_layers=sorted({p.name for p in pairs if config.ignores(p.name)}),
    )
    report.notes += _notes(report, base_state, new_state)
    return report


def judge_timing(
    base: SteadyState, new: SteadyState, pairs: list[UnitPair], config: CheckConfig
) -> tuple[Samples, TimingResult, list[Finding]]:
    """Iteration samples, their verdicts, and the timing findings they raise."""
    samples = iteration_samples(base, new, pairs, config.spike_clip)
    timing = compare_timing(samples, pairs, config)
    return samples, timing, _timing_findings(timing, config)


def declined_because(baseline: Trace, new: Trace) -> str:
    """Why no timing verdict may be given ('' when one may): a run judged unreliable."""
    reasons = []
    for role, trace in (("new", new), ("baseline", baseline)):
        conditions = trace.metadata.run_conditions
        if conditions.verdict == UNRELIABLE:
            # the first reason says enough; every one is in the run's conditions_reason
            first = conditions.reasons[0] if conditions.reasons else "no reason recorded"
            more = " ..." if len(conditions.reasons) > 1 else ""
            reasons.append(f"the {role} run was measured on an unreliable machine "
                           f"({first}{more})")
    return "; ".join(reasons)


def decline_timing(timing: TimingResult, reason: str) -> TimingResult:
    """Every timing comparison `skipped`, saying why; the medians stay for the record."""
    text = f"not judged: {reason}"

    def skipped(comparison: TimingComparison) -> TimingComparison:
        return dataclasses.replace(comparison, verdict="skipped", reason=text,
                                   p_slower=math.nan, p_faster=math.nan)

    return TimingResult(skipped(timing.total), skipped(timing.speed),
                        [skipped(layer) for layer in timing.layers])


def _steady(trace: Trace, role: str, path: str) -> SteadyState:
    try:
        return steady_state(trace)
    except SteadyStateError as exc:
        where = f" {path}" if path else ""
        raise SteadyStateError(f"{role}{where}: {exc}") from None


def _timing_findings(timing: TimingResult, config: CheckConfig) -> list[Finding]:
    findings: list[Finding] = []
    whole = [c for c in (timing.total, timing.speed) if c.verdict != "skipped"]
    if all(c.verdict == "insufficient" for c in whole):
        findings.append(Finding("timing", "timing_insufficient", timing.total.name,
                                timing.total.reason, config.severity_of("timing_insufficient")))
        whole = []
    for comparison in whole:
        code = {
            "slower": "timing_regression",
            "faster": "timing_improvement",
            "unclear": "timing_unclear",
        }.get(comparison.verdict)
        if code:
            findings.append(Finding("timing", code, comparison.name, _describe(comparison),
                                    config.severity_of(code)))
    base_total = timing.total.median_base_ms
    for layer in timing.layers:
        if layer.verdict == "slower":
            added = layer.median_new_ms - layer.median_base_ms
            # one layer that alone adds more than the whole-model tolerance makes the
            # model slower, even when a noisy total hides it
            if base_total > 0 and added >= config.tolerance * base_total:
                code = "timing_regression"
            else:
                code = "layer_timing_regression"
        elif layer.verdict == "faster":
            code = "layer_timing_improvement"
        else:
            continue
        findings.append(Finding("timing", code, layer.name, _describe(layer),
                                config.severity_of(code)))
    return findings


def _describe(comparison: TimingComparison) -> str:
    if comparison.name == SPEED:
        return (
            f"primitives run at {comparison.ratio:.2f}x their baseline time "
            f"(time-weighted median): {comparison.reason}"
        )
    per = "per iteration" if comparison.name == TOTAL else "per iteration in this layer"
    return (
        f"median {comparison.median_base_ms:.3f} → {comparison.median_new_ms:.3f} ms {per}: "
        f"{comparison.reason}"
    )


def _run_info(
    trace: Trace, state: SteadyState, path: str, totals: np.ndarray, clipped: int
) -> RunInfo:
    rows = state.rows
    n_iter = max(1, len(state.iterations))
    kinds = rows.groupby("kind", observed=True).size() / n_iter
    conditions = trace.metadata.run_conditions
    return RunInfo(
        path=path,
        source=trace.metadata.source,
        onednn_version=trace.metadata.onednn_version,
        iterations=len(state.iterations),
        method=state.method,
        labeled=state.labeled,
        notes=list(state.notes),
        median_ms=float(np.median(totals)) if len(totals) else None,
        spread=spread(totals),
        clipped=clipped,
        kinds={str(k): float(v) for k, v in kinds.sort_values(ascending=False).items()},
        conditions=conditions.verdict,
        conditions_reason=conditions.reason,
    )


def _notes(report: CheckReport, base: SteadyState, new: SteadyState) -> list[str]:
    notes: list[str] = [f"both runs: {note}" for note in base.notes if note in new.notes]
    notes += [f"baseline: {note}" for note in base.notes if note not in new.notes]
    notes += [f"new: {note}" for note in new.notes if note not in base.notes]
    for label, info in (("baseline", report.baseline), ("new", report.new)):
        if info.conditions == BUSY:
            notes.append(f"{label}: measured on a busy machine ({info.conditions_reason}); "
                         "its timing verdicts are less reliable")
        if info.spread is not None and info.spread > NOISY_SPREAD:
            notes.append(
                f"{label}: iteration totals vary by {info.spread:.0%} (max-min over median); "
                "the machine was probably busy, so timing verdicts are less reliable"
            )
    if base.labeled != new.labeled:
        notes.append(
            "only one trace has layer names: layers were matched by primitive kind and shape"
        )
    return notes
