"""findings.md — each claim next to our measurement, the machine and the runs — and the
comparison's report.html, written from run folders (or stored traces, or logs).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from dnnprof.reports import Comparison, Variant, write_html
from studies.thesis2020.claims import ClaimCheck, study_findings

REPORT_TITLE = "dnnprof study: the thesis' chapter 4 on this machine"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _machine(variants: Sequence[Variant]) -> list[str]:
    cpus = sorted({v.meta.isa for v in variants if v.meta.isa})
    frameworks = sorted({f"{v.meta.framework} {v.meta.framework_version or ''}".strip()
                         for v in variants if v.meta.framework})
    lines = [
        f"- CPU (oneDNN banner): {', '.join(cpus) or 'unknown'}",
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
    return lines


def _runs_table(variants: Sequence[Variant]) -> list[str]:
    lines = ["## Runs", "",
             "| run | model | variant | framework | oneDNN | iterations | conditions | source |",
             "|---|---|---|---|---|---|---|---|"]
    for v in variants:
        meta = v.meta
        iterations = v.n_iterations if v.iterations_known else "unknown"
        lines.append(f"| {_cell(v.name)} | {_cell(meta.model or '')} | "
                     f"{_cell(meta.variant or '')} | {_cell(meta.framework or '')} "
                     f"| {_cell(meta.onednn_version or '')} | {iterations} "
                     f"| {_cell(_conditions(v))} | {_cell(v.source)} |")
    return lines


def _conditions(variant: Variant) -> str:
    """The run's verdict and its main figures (docs/conditions.md)."""
    conditions = variant.meta.run_conditions
    figures = []
    if conditions.wait_share is not None:
        figures.append(f"waited {conditions.wait_share:.0%}")
    if conditions.calibration_before is not None and conditions.calibration_before.slowdown:
        figures.append(f"calibration {conditions.calibration_before.slowdown:.2f}x")
    if conditions.load_before is not None:
        figures.append(f"load {conditions.load_before:.1f}")
    return conditions.verdict + (f" ({', '.join(figures)})" if figures else "")


def findings_markdown(findings: Sequence[ClaimCheck], variants: Sequence[Variant],
                      command: str | None = None) -> str:
    """The findings table with the machine, the runs and the caveats, as markdown."""
    lines = [
        "# Chapter 4 of the thesis, re-measured with dnnprof",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from {len(variants)} runs."
        + (f" Command: `{command}`" if command else ""),
        "",
        *_machine(variants),
        "",
        "| # | Claim | Published | Measured here | Verdict | Runs / rule |",
        "|---|---|---|---|---|---|",
    ]
    for index, checked in enumerate(findings, 1):
        lines.append(f"| {index} | {_cell(checked.claim)} | {_cell(checked.published)} | "
                     f"{_cell(checked.measured)} | **{_cell(checked.verdict)}** | "
                     f"{_cell(checked.evidence)} |")
    counts = Counter(checked.verdict.split(" (")[0] for checked in findings)
    verdicts = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    lines += ["", f"Verdicts: {verdicts}.", "", *_runs_table(variants)]
    return "\n".join(lines) + "\n"


def write_study(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                command: str | None = None, html: bool = True) -> tuple[Path, Path | None]:
    """Write findings.md (and report.html) for these runs into out_dir; returns both paths."""
    comp = Comparison.from_paths(paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / "findings.md"
    findings = study_findings(comp.variants)
    markdown.write_text(findings_markdown(findings, comp.variants, command), encoding="utf-8")
    report = write_html(comp, out / "report.html", title=REPORT_TITLE) if html else None
    return markdown, report
