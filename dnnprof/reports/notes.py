"""Plain-text notes per report section: what a comparison lacks, and why.

Every report shows what it can; these sentences say what it could not and what to run to
get it. `comparison_notes` gathers them per section; each small function answers one
question about the inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dnnprof.reports.variants import Variant, looks_like_resnet
from dnnprof.views import BY_OUTPUT_SIZES
from dnnprof.vocabulary import BUSY, UNKNOWN, UNRELIABLE

if TYPE_CHECKING:  # pragma: no cover - compare.py imports this module
    from dnnprof.reports.compare import Comparison

SECTIONS = ("overview", "kinds", "layers", "stages", "fusion", "reorders", "types", "top",
            "timeline")
SHOWN_WARNINGS = 5  # per variant and source: the rest are in `dnnprof parse`'s output


def comparison_notes(comp: Comparison) -> dict[str, list[str]]:
    """Per report section, plain-text explanations of what is missing and why."""
    notes: dict[str, list[str]] = {key: [] for key in SECTIONS}
    for v in comp.variants:
        notes["overview"] += variant_notes(v)
    notes["overview"] += latency_notes(comp)
    notes["layers"] += layer_notes(comp)
    notes["stages"] += stage_notes(comp)
    if comp.fused_primitives.empty:
        notes["fusion"].append(
            "no compute primitive carries post-ops in any variant: nothing was fused in oneDNN"
        )
    notes["timeline"] += timeline_notes(comp)
    top = comp.top_primitives()
    if not top.empty and top["gflops"].isna().all():
        notes["top"].append("no primitive here has a FLOP count (GFLOP/s needs conv/matmul)")
    return notes


def conditions_banner(comp: Comparison) -> str:
    """One warning naming every variant measured on a busy or unreliable machine, and why."""
    flagged = [v for v in comp.variants
               if v.meta.run_conditions.verdict in (BUSY, UNRELIABLE)]
    if not flagged:
        return ""
    sentences = []
    for v in flagged:
        conditions = v.meta.run_conditions
        unreliable = conditions.verdict == UNRELIABLE
        trust = ("its times are not to be trusted" if unreliable
                 else "read its times with care")
        if len(comp.variants) > 1:
            trust += ", nor the speedups involving it" if unreliable else " (and its speedups)"
        sentences.append(f"{v.name} was measured on "
                         f"{'an unreliable' if unreliable else 'a busy'} machine: "
                         f"{conditions.reason}. {trust[0].upper()}{trust[1:]}.")
    return "Run conditions: " + " ".join(sentences)


def variant_notes(v: Variant) -> list[str]:
    """What one variant's log and metadata lack: warnings, unparsed lines, iterations, wall times."""
    meta = v.meta
    out = [f"{v.name}: {note}" for note in v.notes]
    out += [f"{v.name}: log warning: {w}" for w in meta.warnings[:SHOWN_WARNINGS]]
    if meta.reconstruction is not None:
        out += [f"{v.name}: reconstruction: {w}"
                for w in meta.reconstruction.warnings[:SHOWN_WARNINGS]]
    if meta.counts.unparsed:
        out.append(f"{v.name}: {meta.counts.unparsed} log lines did not parse "
                   "(see `dnnprof parse`)")
    if v.steady.empty:
        out.append(f"{v.name}: no oneDNN primitive executed in this log (e.g. fp32 DLRM in "
                   "PyTorch runs its Linear layers in MKL), so there is nothing to break down")
    elif not v.iterations_known:
        out.append(f"{v.name}: iterations are unknown (no markers and no reconstruction), so "
                   "every per-iteration figure is the total over the whole log, warm-up and "
                   "calibration included")
    elif not v.phases_known:
        out.append(f"{v.name}: warm-up iterations are not identified; all iterations count")
    if v.meta.run_conditions.verdict == UNKNOWN:
        out.append(f"{v.name}: run conditions {v.meta.run_conditions.reason}: whether the "
                   "machine was quiet is unknown")
    if v.wall_ms.empty:
        out.append(f"{v.name}: no wall times in the metadata (a parsed log, not a `dnnprof "
                   "trace` run), so oneDNN coverage of wall time is unknown")
    return out


def latency_notes(comp: Comparison) -> list[str]:
    """Uneven iterations, the latency source, and why a speedup has no interval."""
    out = []
    for v in comp.variants:
        samples = comp.latency_samples(v)
        if len(samples) >= 2 and samples.min() > 0 and samples.max() / samples.min() > 1.5:
            out.append(
                f"{v.name}: iterations range from {samples.min():.1f} to {samples.max():.1f} "
                "ms; timings this uneven usually mean other processes shared the CPU, so "
                "read its speedup interval, not the point estimate"
            )
    if comp.latency_source != "wall":
        out.append("latency = oneDNN exec time per iteration (not every variant has wall "
                   "times); it leaves out framework time outside oneDNN")
    if comp.is_single:
        out.append("one variant: there is no baseline to compute a speedup against")
    elif any(s < 2 for s in comp.overview["samples"]):
        out.append("a confidence interval needs at least two iterations per variant; variants "
                   "with fewer show the point estimate only")
    return out


def layer_notes(comp: Comparison) -> list[str]:
    """Variants without layer labels, with heuristic names, or with no layer in common."""
    out = []
    no_layers = [v.name for v in comp.variants if not v.layers_known]
    if no_layers:
        out.append("no layer labels in: " + ", ".join(no_layers) + " (compiled or hybridized "
                   "graphs run no per-layer hooks, and a parsed log without markers has no "
                   "layers; run the reconstructor, or `dnnprof trace` with markers)")
    heuristic = [v.name for v in comp.variants if v.layer_mode == "heuristic"]
    if heuristic:
        out.append("layers grouped heuristically (a compute primitive plus the element-wise "
                   "ones after it; named conv1, conv2 ... in order) in: " + ", ".join(heuristic)
                   + "; such names match across variants only when both run the same primitives")
    if comp.is_single:
        return out
    if not comp.layer_speedup.empty:
        matched = set(comp.layer_speedup["variant"])
        out += [f"{v.name}: no layer names in common with the baseline {comp.baseline.name}, "
                "so no per-layer speedup"
                for v in comp.variants
                if v is not comp.baseline and v.layers_known and v.name not in matched]
    elif not comp.baseline.layers_known:
        out.append(f"per-layer speedup needs layer labels in the baseline ({comp.baseline.name})")
    return out


def stage_notes(comp: Comparison) -> list[str]:
    """Which variants have no stage roll-up, and which were staged by output size."""
    out = []
    not_resnet = [v.name for v in comp.variants if not v.steady.empty
                  and not looks_like_resnet(v)]
    if not_resnet:
        out.append("stage roll-ups (conv1, conv2_x ... conv5_x, fc) apply to ResNets only; "
                   "skipped: " + ", ".join(not_resnet))
    by_shape = comp.by_stage[comp.by_stage["method"] == BY_OUTPUT_SIZES]
    if not by_shape.empty:
        out.append("without layer labels, stages come from convolution output sizes (112, 56, "
                   "28, 14, 7 for a 224 input); reorders and other primitives join the "
                   "convolution that follows them: " + ", ".join(by_shape["variant"].unique()))
    return out


def timeline_notes(comp: Comparison) -> list[str]:
    """Variants whose timeline is synthetic, or not one iteration."""
    out = []
    synthetic = [v.name for v in comp.variants if (v.meta.timeline or "synthetic") != "timestamps"]
    if synthetic:
        out.append("no oneDNN timestamps (ONEDNN_VERBOSE_TIMESTAMP=1) in: " + ", ".join(synthetic)
                   + "; their calls are laid end to end, so time spent outside oneDNN between "
                   "calls does not show")
    unknown = [v.name for v in comp.variants if not v.steady.empty and not v.iterations_known]
    if unknown:
        out.append("iterations unknown in: " + ", ".join(unknown)
                   + "; the timeline shows the start of the log instead of one iteration")
    return out
