"""One self-contained HTML page (Plotly charts, tables, explanations) from a Comparison.

The page opens offline: plotly.js is embedded once, inline, and nothing else is fetched.
Every string that came from a log (layer, model and variant names, implementations,
shapes) is escaped twice over: `html.escape` for the page itself (`page_tables.esc`), and
entity-escaped for Plotly (`plotting.ptext`), whose labels understand a few HTML tags and
would otherwise drop `<script>` text instead of showing it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from dnnprof import __version__
from dnnprof.reports.compare import Comparison
from dnnprof.reports.figures import CHART_TITLES, MISSING, build_figures
from dnnprof.reports.page_tables import esc, section_tables
from dnnprof.trace import Trace

__all__ = ["CHART_TITLES", "render_html", "write_html", "write_report"]

SECTIONS = (
    ("overview", "Overview"),
    ("kinds", "Time by primitive kind"),
    ("layers", "Per layer"),
    ("stages", "ResNet stages"),
    ("fusion", "Fusion"),
    ("reorders", "Reorders"),
    ("types", "Data types and implementations"),
    ("top", "Top primitives"),
    ("timeline", "Timeline"),
)
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


INTRO = {
    "overview": "Per-iteration latency of each variant (steady state only), the median "
                "speedup against the baseline with a 95 % percentile-bootstrap interval from "
                "the iteration samples, and how much of the wall time oneDNN accounts for.",
    "kinds": "Where the oneDNN time goes by primitive kind, and how many calls of each kind "
             "one iteration makes (the thesis' Figures 4.9 and 4.6).",
    "layers": "Time per model layer in each variant, and per-layer speedup for layers whose "
              "names match the baseline's (the thesis' Figures 4.10 and 4.11).",
    "stages": "ResNet layers rolled up into conv1, conv2_x ... conv5_x and fc, as in the "
              "thesis' Figure 4.2.",
    "fusion": "A fused layer is one compute primitive carrying post-ops (ReLU, residual sum) "
              "instead of separate batch-norm / eltwise / sum primitives.",
    "reorders": "Reorders copy tensors between memory layouts. Channel counts that do not "
                "fill a SIMD block, eager weight handling and framework boundaries add them.",
    "types": "Data types and the implementation / instruction set oneDNN dispatched to; an "
             "int8 path falling back to f32, or an ISA downgrade, shows here.",
    "top": "The distinct primitives (same descriptor) with the most time per iteration.",
    "timeline": "One steady-state iteration per variant (the median one by oneDNN time), "
                "each bar a primitive call.",
}
SECTION_CHARTS = {
    "overview": ("latency", "speedup", "coverage"),
    "kinds": ("kind_time", "kind_calls"),
    "layers": ("layer_latency", "layer_speedup"),
    "stages": ("stages",),
    "fusion": ("fusion",),
    "reorders": ("reorders",),
    "types": ("dtypes", "isa"),
    "top": ("top_gflops",),
    "timeline": ("timeline",),
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330}
header{background:#1d2b45;color:#fff;padding:16px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:#cdd6e6}
nav{position:sticky;top:0;background:#f2f4f8;border-bottom:1px solid #d8dde6;padding:6px 28px;
z-index:10}
nav a{margin-right:14px;color:#1d4ed8;text-decoration:none}
main{padding:0 28px 40px;max-width:1500px}
section{border-bottom:1px solid #e3e6ec;padding:10px 0 22px}
h2{margin:18px 0 6px}
.intro{color:#4a5468;max-width:1000px}
.note{background:#fff8e1;border-left:4px solid #f0b429;padding:6px 12px;margin:10px 0}
.banner{background:#fdecea;border-left:6px solid #c62828;padding:8px 14px;margin:10px 0;font-weight:600}
.note ul{margin:0;padding-left:18px}
.missing{background:#f4f5f7;border:1px dashed #b8bfcc;padding:10px 14px;margin:10px 0;color:#4a5468}
.table-wrap{overflow-x:auto;max-height:560px;overflow-y:auto;margin:8px 0}
table{border-collapse:collapse;font-size:12.5px}
th,td{border:1px solid #dde1e8;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef1f6;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.changes li{margin:2px 0}
.chart{margin:12px 0}
"""


def _notes(items: Sequence[str]) -> str:
    if not items:
        return ""
    return '<div class="note"><ul>' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul></div>"


def _banner(comp: Comparison) -> str:
    """The run-conditions warning at the top of the page ('' when every run was quiet)."""
    text = comp.conditions_banner
    return f'<div class="banner" id="conditions">{esc(text)}</div>' if text else ""


def _chart(key: str, figure: go.Figure | None, with_plotlyjs: bool) -> str:
    if figure is None:
        return (f'<div class="missing" data-chart="{key}"><b>{esc(CHART_TITLES[key])}'
                f"</b>: not shown: {esc(MISSING[key])}.</div>")
    return f'<div class="chart" data-chart="{key}">' + pio.to_html(
        figure, full_html=False, include_plotlyjs=with_plotlyjs,
        div_id=f"chart-{key}", config=PLOTLY_CONFIG, default_width="100%",
        default_height=f"{figure.layout.height or 420}px", validate=False,
    ) + "</div>"


def _sections(comp: Comparison) -> list[str]:
    """Each section: intro, notes, charts (plotly.js inlined with the first), tables."""
    figures = build_figures(comp)
    notes = comp.notes
    plotly_included = False
    parts: list[str] = []
    for section, heading in SECTIONS:
        body = [f'<section id="{section}"><h2>{esc(heading)}</h2>',
                f'<p class="intro">{esc(INTRO[section])}</p>', _notes(notes.get(section, []))]
        if section == "overview":
            body.extend(section_tables(comp, "overview_top"))
        if section == "overview" and comp.structural_changes:
            body.append("<h3>Structural changes against the baseline</h3><ul class=\"changes\">"
                        + "".join(f"<li>{esc(c)}</li>" for c in comp.structural_changes)
                        + "</ul>")
        for key in SECTION_CHARTS[section]:
            body.append(_chart(key, figures[key], not plotly_included))
            plotly_included = plotly_included or figures[key] is not None
        body.extend(section_tables(comp, section))
        body.append("</section>")
        parts.append("\n".join(body))
    return parts


def render_html(comp: Comparison, title: str | None = None) -> str:
    """The whole report page as one string."""
    started = time.perf_counter()
    parts = _sections(comp)
    models = sorted({v.meta.model for v in comp.variants if v.meta.model})
    heading = title or (
        ("dnnprof report: " if comp.is_single else "dnnprof comparison: ")
        + (", ".join(models) if models else ", ".join(comp.names))
    )
    subtitle = (
        f"{len(comp.variants)} variant(s): " + ", ".join(comp.names)
        + ("" if comp.is_single else f" · baseline: {comp.baseline.name}")
    )
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    elapsed = time.perf_counter() - started
    nav = "".join(f'<a href="#{key}">{esc(name)}</a>' for key, name in SECTIONS)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(heading)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(heading)}</h1><p>{esc(subtitle)}</p>"
        f"<p>dnnprof {esc(__version__)} · generated {esc(generated)} in {elapsed:.1f} s · "
        f"latency from {esc(comp.latency_source)} time</p>{_banner(comp)}</header>"
        f"<nav>{nav}</nav><main>{''.join(parts)}</main></body></html>\n"
    )


def write_report(trace: Trace, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """The one-run report of a Trace (what `dnnprof trace` leaves in its run folder)."""
    return write_html(Comparison.from_traces([trace]), path, title)


def write_html(comp: Comparison, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Render the report and write it to `path` (parent folders created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(comp, title), encoding="utf-8")
    return target
