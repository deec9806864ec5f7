"""The check report at the terminal, drawn with rich."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from dnnprof.check.report import CHECK_TITLES, CheckReport, RunInfo
from dnnprof.check.stats import TimingComparison
from dnnprof.display import markup_text, safe_text

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
NOTABLE_LAYERS = 15  # layers listed in the timing table; --json has them all
_VERDICT_STYLE = {
    "slower": "bold red", "faster": "green", "unchanged": "", "unclear": "yellow",
    "insufficient": "yellow", "skipped": "dim",
}


def print_report(report: CheckReport, console: Console | None = None, max_rows: int = 40) -> None:
    """Verdict, both runs, timing table, findings per check, then the individual findings."""
    console = console or Console()
    style = "bold green" if report.passed else "bold red"
    console.print(f"[{style}]dnnprof check: {markup_text(report.headline())}[/]", highlight=False)
    for label, info in (("baseline", report.baseline), ("new", report.new)):
        console.print(safe_text(_run_line(label, info)), highlight=False, markup=False)

    timing = Table(title="Timing (steady-state iterations)", title_justify="left")
    for column in ("quantity", "baseline", "new", "change", "p", "verdict"):
        timing.add_column(column, justify="left" if column in ("quantity", "verdict") else "right")
    notable = report.notable_layers()
    for comparison in [report.total, report.speed, *notable[:NOTABLE_LAYERS]]:
        timing.add_row(*_timing_cells(comparison))
    if len(notable) > NOTABLE_LAYERS:
        timing.add_row(f"... {len(notable) - NOTABLE_LAYERS} more layers", "", "", "", "", "")
    console.print(timing)

    kinds = Table(title="Primitive calls per iteration", title_justify="left")
    for column in ("kind", "baseline", "new"):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, base, new in report.calls_per_iteration():
        kinds.add_row(markup_text(kind), base, new)
    console.print(kinds)

    groups = report.by_check()
    summary = Table(title=f"Structure ({report.compared_layers} layers matched)",
                    title_justify="left")
    for column in ("check", "errors", "warnings", "info", "layers"):
        summary.add_column(column, justify="left" if column in ("check", "layers") else "right")
    for check, findings in groups.items():
        if check == "timing":
            continue
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
        layers = ", ".join(f.layer for f in findings[:3]) + (" ..." if len(findings) > 3 else "")
        summary.add_row(CHECK_TITLES[check], *(str(counts[s]) for s in counts),
                        markup_text(layers or "-"))
    console.print(summary)

    findings = report.visible_findings()
    if findings:
        table = Table(title="Findings", title_justify="left")
        for column in ("severity", "check", "layer", "change"):
            table.add_column(column, overflow="fold")
        for finding in findings[:max_rows]:
            table.add_row(f"[{_STYLE.get(finding.severity, '')}]{finding.severity}[/]",
                          finding.check, markup_text(finding.layer), markup_text(finding.detail))
        console.print(table)
        if len(findings) > max_rows:
            console.print(f"... and {len(findings) - max_rows} more findings "
                          "(--markdown or --json list them all)")
    for note in report.notes:
        console.print(f"note: {safe_text(note)}", highlight=False, markup=False)


def _run_line(label: str, info: RunInfo) -> str:
    median = f"{info.median_ms:.3f} ms/iter" if info.median_ms is not None else "?"
    spread = f", spread {info.spread:.0%}" if info.spread is not None else ""
    found = "labelled" if info.method == "labels" else "found by the reconstructor"
    return (
        f"  {label:8s} {info.path or info.source}  oneDNN {info.onednn_version or '?'}, "
        f"{info.iterations} iterations ({found}), median {median}{spread}, "
        f"run {info.conditions}"
    )


def _timing_cells(comparison: TimingComparison) -> tuple[str, ...]:
    unit = "x" if comparison.name == "(typical speed)" else " ms"
    base, new = _value(comparison.median_base_ms, unit), _value(comparison.median_new_ms, unit)
    change = f"{comparison.ratio - 1:+.1%}" if math.isfinite(comparison.ratio) else "-"
    p_text = "-" if comparison.p_value is None else f"{comparison.p_value:.3g}"
    style = _VERDICT_STYLE.get(comparison.verdict, "")
    verdict = f"[{style}]{comparison.verdict}[/]" if style else comparison.verdict
    return markup_text(comparison.name), base, new, change, p_text, verdict


def _value(value: float, unit: str) -> str:
    return f"{value:.3f}{unit}" if math.isfinite(value) else "-"
