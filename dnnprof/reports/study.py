"""The thesis' chapter-4 findings, re-measured: run folders in, a markdown table out.

`dnnprof study` (wired by the runner) runs the experiments; this module only reads what
they left: run folders (or stored traces / logs) whose metadata names the model and the
variant. It puts each published number next to ours and says, from the numbers, whether
they agree. A finding whose runs are missing is listed as "not measured", never guessed.

    python -m dnnprof.reports.study runs/resnet50-fp32-* runs/resnet50-int8-* -o docs/study
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from dnnprof.reports.compare import Comparison, Variant

AGREES, DISAGREES, PARTLY, NOT_MEASURED, INFO = (
    "agrees", "disagrees", "partly", "not measured", "no published number",
)
PRECISIONS = ("int8", "bf16", "fused", "fp32")
# Variant spellings seen in run metadata and corpus names -> the study's precision names.
_PRECISION_WORDS = {
    "int8": "int8", "quantized": "int8", "qat": "int8", "ptq": "int8",
    "bf16": "bf16", "bfloat16": "bf16", "autocast": "bf16",
    "fused": "fused", "compile": "fused", "freezing": "fused", "jit": "fused",
    "optimize_for": "fused", "fp32": "fp32", "float": "fp32", "eager": "fp32",
}


@dataclass
class Finding:
    """One published claim, our measurement of it, and the verdict."""

    claim: str
    published: str
    measured: str
    verdict: str
    evidence: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunInfo:
    """What a run is, read from its metadata (or, failing that, its name)."""

    variant: Variant
    model: str
    precision: str
    pruned: str  # "", "structured", "unstructured"
    mlp_reduced: bool
    width: float | None
    framework: str


# ---------------------------------------------------------------- identify --


def describe(variant: Variant) -> RunInfo:
    """Model family, precision, pruning, width and framework of a variant."""
    meta = variant.meta
    text = " ".join(str(x) for x in (meta.get("variant"), meta.get("model"), variant.name,
                                     Path(variant.source).name) if x).lower()
    words = re.split(r"[^a-z0-9_.]+|_(?=[a-z])", text)
    precision = next((_PRECISION_WORDS[w] for w in words if w in _PRECISION_WORDS), "fp32")
    for name in PRECISIONS:  # an explicit precision word anywhere wins, int8 first
        if re.search(rf"(?<![a-z]){name}(?![a-z])", text):
            precision = name
            break
    pruned = ""
    if "prun" in text:
        prune = meta.get("prune") if isinstance(meta.get("prune"), dict) else {}
        mode = str(meta.get("prune_mode") or prune.get("mode") or "")
        if "unstructured" in text or mode == "unstructured":
            pruned = "unstructured"
        elif "structured" in text or mode == "structured":
            pruned = "structured"
        else:  # the workload's default mode
            pruned = "unstructured"
    width = meta.get("width", meta.get("alpha"))
    if not isinstance(width, (int, float)):  # the runner keeps the child's --width in `command`
        match = re.search(r"--width[= ]([0-9.]+)", str(meta.get("command") or ""))
        width = float(match.group(1)) if match else None
    if not isinstance(width, (int, float)):
        match = re.search(r"(?:alpha|width|_|-)(0\.25|0\.5|0\.75|1\.0)\b", text)
        width = float(match.group(1)) if match else None
    model = str(meta.get("model") or variant.name.split()[0]).lower()
    return RunInfo(
        variant=variant, model=model, precision=precision, pruned=pruned,
        mlp_reduced="mlp_reduced" in text or "mlp-reduced" in text,
        width=float(width) if width is not None else None,
        framework=str(meta.get("framework") or _framework_in(text)).lower(),
    )


def _framework_in(text: str) -> str:
    for name, words in (("mxnet", ("mxnet", "gluon")), ("pytorch", ("torch", "ipex"))):
        if any(word in text for word in words):
            return name
    return ""


def _family(model: str) -> str:
    """resnet50, mobilenet, dlrm ... from a model or file name ('torch_resnet50_b1')."""
    match = re.search(r"resnet(\d+)|mobilenet|dlrm", model)
    if match:
        return f"resnet{match.group(1)}" if match.group(1) else match.group(0)
    return model


def _pick(runs: Sequence[RunInfo], **want: Any) -> RunInfo | None:
    for run in runs:
        if all(getattr(run, key) == value for key, value in want.items()):
            return run
    return None


def _pair(runs: Sequence[RunInfo], model: str, precision: str,
          **extra: Any) -> tuple[RunInfo, RunInfo] | None:
    """(plain fp32, `precision`) runs of a model, preferring the same framework."""
    candidates = [r for r in runs if _family(r.model) == model and r.precision == precision
                  and not r.mlp_reduced and all(getattr(r, k) == v for k, v in extra.items())]
    for run in candidates:
        base = [r for r in runs if _family(r.model) == model and r.precision == "fp32"
                and not r.pruned and not r.mlp_reduced and r is not run]
        same = [r for r in base if r.framework == run.framework] or base
        if same:
            return same[0], run
    return None


# ---------------------------------------------------------------- measures --


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


def _names(*runs: RunInfo) -> str:
    return ", ".join(f"`{r.variant.name}`" for r in runs)


def int8_speedup(runs: Sequence[RunInfo]) -> list[Finding]:
    """INT8 vs FP32 ResNet-50: the thesis' 3-4x and Neural Compressor's 2.53x."""
    claims = [
        ("INT8 ResNet-50 speedup over FP32 (thesis §4.2, Figs. 4.3/4.4)",
         "3-4x (MXNet + MKL-DNN, i9-7900X, 20 cores)", 3.0, 4.0),
        ("INT8 ResNet-50 speedup over FP32 (Intel Neural Compressor)",
         "2.53x (Xeon Platinum 8380)", 2.53 * 0.85, 2.53 * 1.15),
    ]
    pair = _pair(runs, "resnet50", "int8")
    if pair is None:
        return [Finding(c, p, "needs ResNet-50 fp32 and int8 runs", NOT_MEASURED)
                for c, p, _, _ in claims]
    base, new = pair
    point, low, high, source, samples = _speedup(base.variant, new.variant)
    measured = _speedup_text(point, low, high, source, samples)
    findings = []
    for claim, published, lo, hi in claims:
        band = f"counted as agreeing within {lo:.2f}-{hi:.2f}x"
        findings.append(Finding(claim, published, measured,
                                _range_verdict(point, low, high, lo, hi),
                                f"{_names(base, new)}; {band}",
                                {"speedup": point, "low": low, "high": high}))
    return findings


def int8_conv_share(runs: Sequence[RunInfo]) -> list[Finding]:
    """Convolution's share of INT8 oneDNN time (thesis: up to 95 %)."""
    claim = "Convolution's share of INT8 ResNet-50 oneDNN time (thesis §4.2.2, Fig. 4.9)"
    published = "≈95 %"
    run = next((r for r in runs if _family(r.model) == "resnet50" and r.precision == "int8"),
               None)
    if run is None:
        return [Finding(claim, published, "needs a ResNet-50 int8 run", NOT_MEASURED)]
    kinds = Comparison([run.variant]).by_kind
    conv = kinds.loc[kinds["kind"] == "convolution", "share"]
    if conv.empty:
        return [Finding(claim, published, "no convolution primitive in the log", DISAGREES,
                        _names(run))]
    share = float(conv.iloc[0])
    verdict = AGREES if share >= 0.90 else f"{DISAGREES} (lower)"
    others = kinds[kinds["kind"] != "convolution"].sort_values("share", ascending=False).head(3)
    rest = ", ".join(f"{k} {s:.1%}" for k, s in zip(others["kind"], others["share"],
                                                   strict=True))
    return [Finding(claim, published, f"{share:.1%}" + (f" (then {rest})" if rest else ""),
                    verdict, f"{_names(run)}; counted as agreeing within 90-100 %",
                    {"share": share})]


def int8_per_layer(runs: Sequence[RunInfo]) -> list[Finding]:
    """Average per-layer INT8 latency as a fraction of FP32's (thesis: ≈50 %)."""
    claim = "Average INT8 layer latency as a share of FP32's (thesis §4.2.2, Figs. 4.10/4.11)"
    published = "≈50 %"
    pair = _pair(runs, "resnet50", "int8")
    if pair is None:
        return [Finding(claim, published, "needs ResNet-50 fp32 and int8 runs", NOT_MEASURED)]
    base, new = pair
    speed = Comparison([base.variant, new.variant], baseline=base.variant.name).layer_speedup
    if speed.empty:
        return [Finding(claim, published, "no layer names in common (run with layer markers)",
                        NOT_MEASURED, _names(base, new))]
    ratio = float(speed["variant_ms"].mean() / speed["baseline_ms"].mean())
    median = float(speed["ratio"].median())
    # A layer's time includes its reorders; the thesis' layers were mostly one primitive.
    compute = float(speed["variant_compute_ms"].mean() / speed["baseline_compute_ms"].mean())
    verdict = AGREES if 0.4 <= ratio <= 0.6 else (
        f"{DISAGREES} ({'INT8 layers faster than claimed' if ratio < .4 else 'slower'})")
    return [Finding(claim, published,
                    f"{ratio:.0%} (mean over {len(speed)} layers, reorders included; median "
                    f"per-layer ratio {median:.0%}; without reorders {compute:.0%})",
                    verdict,
                    f"{_names(base, new)}; counted as agreeing within 40-60 %",
                    {"ratio": ratio, "median": median, "compute_ratio": compute,
                     "layers": len(speed)})]


def mobilenet_reorders(runs: Sequence[RunInfo]) -> list[Finding]:
    """Reorders per iteration for MobileNet widths (thesis: more at 0.25 and 0.75)."""
    claim = "MobileNet v1 α=0.25/0.75 run more reorders than α=0.5/1.0 (thesis §4.1.1, Fig. 4.1)"
    published = "more reorders at α=0.25 and 0.75 (8/24-channel stem, nChw8c -> nChw16c)"
    widths: dict[float, RunInfo] = {}
    for run in runs:
        if _family(run.model) == "mobilenet" and run.precision == "fp32" and run.width:
            widths.setdefault(run.width, run)
    if not widths:
        return [Finding(claim, published, "needs MobileNet v1 runs at several widths",
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
    return [Finding(claim, published, measured, verdict, _names(*widths.values()),
                    {"reorders": per_width, "avx2": avx2})]


def resnet_stages(runs: Sequence[RunInfo]) -> list[Finding]:
    """conv5_x vs conv2_x in ResNet-50 (thesis: only 1.1x) and conv1 across depths."""
    findings = []
    claim = "ResNet-50 conv5_x latency vs conv2_x (thesis §4.1.2, Fig. 4.2)"
    run = _pick([r for r in runs if _family(r.model) == "resnet50"], precision="fp32",
                pruned="")
    if run is None:
        findings.append(Finding(claim, "1.1x", "needs a ResNet-50 fp32 run", NOT_MEASURED))
    else:
        stages = Comparison([run.variant]).by_stage.set_index("stage")["ms_per_iter"]
        if {"conv2_x", "conv5_x"} <= set(stages.index):
            ratio = float(stages["conv5_x"] / stages["conv2_x"])
            verdict = AGREES if 0.9 <= ratio <= 1.3 else f"{DISAGREES}"
            findings.append(Finding(claim, "1.1x", f"{ratio:.2f}x ({stages['conv5_x']:.2f} vs "
                                    f"{stages['conv2_x']:.2f} ms)", verdict,
                                    f"{_names(run)}; counted as agreeing within 0.9-1.3x",
                                    {"ratio": ratio}))
        else:
            findings.append(Finding(claim, "1.1x", "no stage roll-up", NOT_MEASURED, _names(run)))
    claim = "Stages of the same structure take similar time across ResNet depths (Fig. 4.2)"
    depths = {}
    for r in runs:
        family = _family(r.model)
        if family.startswith("resnet") and r.precision == "fp32" and not r.pruned:
            depths.setdefault(family, r)
    if len(depths) < 2:
        findings.append(Finding(claim, "similar conv1 latency for 18/34/50/101/152",
                                "needs ResNet runs at two or more depths", NOT_MEASURED))
        return findings
    comp = Comparison([r.variant for r in depths.values()])
    conv1 = comp.by_stage[comp.by_stage["stage"] == "conv1"].set_index("variant")["ms_per_iter"]
    spread = float(conv1.max() / conv1.min()) if len(conv1) > 1 else math.nan
    measured = ", ".join(f"{_family(describe(comp.variant(v)).model)} {ms:.2f} ms"
                         for v, ms in conv1.items())
    verdict = AGREES if spread <= 1.25 else DISAGREES
    findings.append(Finding(claim, "similar conv1 latency for 18/34/50/101/152",
                            f"conv1: {measured} (max/min {spread:.2f})", verdict,
                            f"{_names(*depths.values())}; agreeing if max/min <= 1.25",
                            {"conv1_ms": conv1.to_dict()}))
    return findings


def other_variants(runs: Sequence[RunInfo]) -> list[Finding]:
    """The issue's other experiments: fused, BF16, pruning, MLP-reduced DLRM (no thesis number)."""
    findings = []
    rows: list[tuple[str, Callable[[], tuple[RunInfo, RunInfo] | None], str, str]] = [
        ("ResNet-50 fused (post-op fusion) over FP32", lambda: _pair(runs, "resnet50", "fused"),
         "fused primitives are faster than separate ones (thesis §4.2.2, qualitative)", ">1"),
        ("ResNet-50 BF16 over FP32", lambda: _pair(runs, "resnet50", "bf16"), "", ""),
        ("ResNet-50 unstructured 50 % pruning over dense",
         lambda: _pair(runs, "resnet50", "fp32", pruned="unstructured"),
         "", "~1"),
        ("ResNet-50 structured 50 % pruning over dense",
         lambda: _pair(runs, "resnet50", "fp32", pruned="structured"), "", ">1"),
        ("DLRM MLP-reduced over DLRM", lambda: _dlrm_pair(runs), "", ""),
    ]
    for claim, find, published, expect in rows:
        pair = find()
        if pair is None:
            findings.append(Finding(claim, published or "–", "runs missing", NOT_MEASURED))
            continue
        base, new = pair
        refused = [p for r in (base, new) for p in (r.variant.meta.get("problems") or [])]
        if refused:
            # the runner said the run did not show its variant (bf16 on a CPU without it):
            # a speedup of whatever ran instead would be a wrong answer to this claim
            findings.append(Finding(claim, published or "–", f"not measured: {refused[0]}",
                                    NOT_MEASURED, _names(base, new)))
            continue
        point, low, high, source, samples = _speedup(base.variant, new.variant)
        verdict = INFO
        if expect == ">1":
            verdict = _range_verdict(point, low, high, 1.0, math.inf)
        elif expect == "~1":
            verdict = _range_verdict(point, low, high, 0.95, 1.05)
        findings.append(Finding(claim, published or "–",
                                _speedup_text(point, low, high, source, samples), verdict,
                                _names(base, new), {"speedup": point, "low": low, "high": high}))
    return findings


def _dlrm_pair(runs: Sequence[RunInfo]) -> tuple[RunInfo, RunInfo] | None:
    full = [r for r in runs if _family(r.model) == "dlrm" and not r.mlp_reduced]
    reduced = [r for r in runs if _family(r.model) == "dlrm" and r.mlp_reduced]
    for new in reduced:
        base = [r for r in full if r.precision == new.precision]
        if base:
            return base[0], new
    return None


STUDY = (int8_speedup, int8_conv_share, int8_per_layer, mobilenet_reorders, resnet_stages,
         other_variants)


def study_findings(variants: Sequence[Variant]) -> list[Finding]:
    """Every finding, in the thesis' order, from whatever runs are given."""
    runs = [describe(v) for v in variants]
    return [finding for measure in STUDY for finding in measure(runs)]


# ------------------------------------------------------------------ output --


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: Sequence[Finding], variants: Sequence[Variant],
                      command: str | None = None) -> str:
    """The findings table with the machine, the runs and the caveats, as markdown."""
    machine = sorted({str(v.meta.get("isa") or "") for v in variants} - {""})
    frameworks = sorted({f"{v.meta.get('framework')} {v.meta.get('framework_version') or ''}"
                         .strip() for v in variants if v.meta.get("framework")})
    lines = [
        "# Chapter 4 of the thesis, re-measured with dnnprof",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from {len(variants)} runs."
        + (f" Command: `{command}`" if command else ""),
        "",
        f"- CPU (oneDNN banner): {', '.join(machine) or 'unknown'}",
        f"- Frameworks: {', '.join(frameworks) or 'unknown'}",
        "- The thesis measured MXNet 1.x with MKL-DNN on a 20-core i9-7900X; Neural Compressor's "
        "number is from a Xeon Platinum 8380. Ours come from the runs listed below, on the CPU "
        "their oneDNN banner names; agreement is judged from the measured values and the "
        "stated bands, nothing else.",
    ]
    if any(v.wall_ms.empty for v in variants):
        lines.append(
            "- Some runs carry no wall times (logs parsed without `dnnprof trace`): their "
            "speedups compare oneDNN exec time only, leaving out framework time outside oneDNN."
        )
    lines += [
        "",
        "| # | Claim | Published | Measured here | Verdict | Runs / rule |",
        "|---|---|---|---|---|---|",
    ]
    for index, finding in enumerate(findings, 1):
        lines.append(f"| {index} | {_cell(finding.claim)} | {_cell(finding.published)} | "
                     f"{_cell(finding.measured)} | **{_cell(finding.verdict)}** | "
                     f"{_cell(finding.evidence)} |")
    counts = pd.Series([f.verdict.split(" (")[0] for f in findings]).value_counts()
    lines += ["", "Verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".", ""]
    lines.append("## Runs")
    lines.append("")
    lines.append("| run | model | variant | framework | oneDNN | iterations | source |")
    lines.append("|---|---|---|---|---|---|---|")
    for v in variants:
        meta = v.meta
        lines.append(f"| {_cell(v.name)} | {_cell(meta.get('model') or '')} | "
                     f"{_cell(meta.get('variant') or '')} | {_cell(meta.get('framework') or '')} "
                     f"| {_cell(meta.get('onednn_version') or '')} | "
                     f"{v.n_iterations if v.iterations_known else 'unknown'} | "
                     f"{_cell(v.source)} |")
    return "\n".join(lines) + "\n"


def write_study(paths: Sequence[str | Path], out_dir: str | Path, command: str | None = None,
                html: bool = True) -> tuple[Path, Path | None]:
    """Write findings.md (and report.html) for these runs into out_dir; returns both paths."""
    from dnnprof.reports.html import write_html

    comp = Comparison.from_paths(paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    findings = study_findings(comp.variants)
    markdown = out / "findings.md"
    markdown.write_text(findings_markdown(findings, comp.variants, command), encoding="utf-8")
    report = None
    if html:
        report = write_html(comp, out / "report.html",
                            title="dnnprof study: the thesis' chapter 4 on this machine")
    return markdown, report


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m dnnprof.reports.study RUN... -o DIR`."""
    parser = argparse.ArgumentParser(prog="python -m dnnprof.reports.study",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders, stored traces or logs")
    parser.add_argument("-o", "--output", default="study", help="folder for the outputs")
    parser.add_argument("--no-html", action="store_true", help="write findings.md only")
    args = parser.parse_args(argv)
    command = "python -m dnnprof.reports.study " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    markdown, report = write_study(args.runs, args.output, command, html=not args.no_html)
    print(markdown.read_text())
    print(f"wrote {markdown}" + (f" and {report}" if report else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
