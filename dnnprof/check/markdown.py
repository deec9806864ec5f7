"""A markdown summary for a CI log, $GITHUB_STEP_SUMMARY or a pull-request comment."""

from __future__ import annotations

import math

from dnnprof.check.console import NOTABLE_LAYERS
from dnnprof.check.report import CHECK_TITLES, CheckReport, Finding, RunInfo
from dnnprof.check.stats import TimingComparison
from dnnprof.display import safe_text

_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
# Long lists fold away so that a pull-request comment stays readable.
OPEN_ROWS = 10


def markdown_summary(report: CheckReport) -> str:
    """The report as GitHub-flavoured markdown."""
    icon = "✅" if report.passed else "❌"
    lines = [
        f"## {icon} dnnprof check: {'pass' if report.passed else 'FAIL'}",
        "",
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s), "
        f"{report.compared_layers} layers matched.",
        "",
        "| run | trace | oneDNN | iterations | median ms/iter | spread | conditions |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
        _run_row("baseline", report.baseline),
        _run_row("new", report.new),
        "",
        "### Timing",
        "",
        "| quantity | baseline | new | change | p | verdict |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    notable = report.notable_layers()
    lines += [_timing_row(c) for c in (report.total, report.speed, *notable[:NOTABLE_LAYERS])]
    if len(notable) > NOTABLE_LAYERS:
        lines.append(f"| ... {len(notable) - NOTABLE_LAYERS} more layers | | | | | |")
    for comparison in (report.total, report.speed):
        if comparison.verdict in ("insufficient", "skipped"):
            lines += ["", f"> {comparison.name}: {comparison.reason}"]
    lines += ["", "| primitive calls per iteration | baseline | new |", "| --- | ---: | ---: |"]
    lines += [f"| {kind} | {base} | {new} |" for kind, base, new in report.calls_per_iteration()]
    lines += ["", "### Structure", ""]
    groups = report.by_check()
    any_structure = False
    for check, findings in groups.items():
        if check == "timing" or not findings:
            continue
        any_structure = True
        lines += _finding_section(CHECK_TITLES[check], findings)
    if not any_structure:
        lines.append("No structural change: same fusion, reorders, kinds, data types, "
                     "implementations and shapes in every matched layer.")
    if report.notes:
        lines += ["", "### Notes", ""] + [f"- {safe_text(note)}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _run_row(label: str, info: RunInfo) -> str:
    median = f"{info.median_ms:.3f}" if info.median_ms is not None else "?"
    spread = f"{info.spread:.0%}" if info.spread is not None else "-"
    return (
        f"| {label} | `{_escape(info.path or info.source or '')}` | {info.onednn_version or '?'} | "
        f"{info.iterations} | {median} | {spread} | {info.conditions} |"
    )


def _timing_row(comparison: TimingComparison) -> str:
    unit = "x" if comparison.name == "(typical speed)" else " ms"
    base, new = _value(comparison.median_base_ms, unit), _value(comparison.median_new_ms, unit)
    change = f"{comparison.ratio - 1:+.1%}" if math.isfinite(comparison.ratio) else "-"
    p_text = "-" if comparison.p_value is None else f"{comparison.p_value:.3g}"
    verdict = {"slower": "❌ slower", "faster": "✅ faster"}.get(
        comparison.verdict, comparison.verdict
    )
    return (
        f"| {_escape(comparison.name)} | {base} | {new} | {change} | {p_text} | {verdict} |"
    )


def _finding_section(title: str, findings: list[Finding]) -> list[str]:
    worst = min(findings, key=lambda f: ("error", "warning", "info").index(f.severity))
    header = f"**{_ICON[worst.severity]} {title}**: {len(findings)} layer(s)"
    rows = ["| severity | layer | change |", "| --- | --- | --- |"]
    rows += [
        f"| {_ICON[f.severity]} {f.severity} | `{_escape(f.layer)}` | {_escape(f.detail)} |"
        for f in findings
    ]
    if len(findings) <= OPEN_ROWS:
        return [header, "", *rows, ""]
    return [header, "", "<details><summary>show all</summary>", "", *rows, "", "</details>", ""]


def _escape(text: str) -> str:
    # layer names come from logs: control and bidi characters shown as escapes, then the
    # table's own separator escaped
    return safe_text(text).replace("|", "\\|")


def _value(value: float, unit: str) -> str:
    return f"{value:.3f}{unit}" if math.isfinite(value) else "-"
