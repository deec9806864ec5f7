"""One self-contained HTML page (Plotly charts, tables, explanations) from a Comparison.

The page opens offline: plotly.js is embedded once, inline, and nothing else is fetched.
Every string that came from a log (layer, model and variant names, implementations,
shapes) is escaped twice over: `html.escape` for the page itself, and entity-escaped for
Plotly, whose labels understand a few HTML tags and would otherwise drop `<script>` text
instead of showing it.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from dnnprof import __version__
from dnnprof.reports.compare import ROLES, UNATTRIBUTED, Comparison
from dnnprof.trace import Trace

# Chart key -> title. Tests look the titles up in the rendered page.
CHART_TITLES = {
    "latency": "Latency per measured iteration",
    "speedup": "Median speedup against the baseline (95 % bootstrap interval)",
    "coverage": "oneDNN share of wall time per iteration",
    "kind_time": "oneDNN time by primitive kind (thesis Fig. 4.9)",
    "kind_calls": "Primitive calls by kind (thesis Fig. 4.6)",
    "layer_latency": "Latency per layer (thesis Figs. 4.10/4.11)",
    "layer_speedup": "Speedup per layer against the baseline",
    "stages": "ResNet stage roll-up (thesis Fig. 4.2)",
    "fusion": "Primitives per iteration by role (fusion)",
    "reorders": "Reorders per iteration: count and time",
    "dtypes": "oneDNN time by data types (src/weights/dst)",
    "isa": "oneDNN time by instruction set",
    "top_gflops": "Top primitives: throughput against time per call",
    "timeline": "Timeline of one steady-state iteration",
}
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
# Plotly's named templates cost ~0.1 s of validation per figure; plotly.js' own defaults
# ("none") with a few settings below look the same for these charts.
TEMPLATE = "none"


def esc(value: Any) -> str:
    """Text for the HTML page."""
    return html.escape("" if value is None else str(value), quote=True)


def ptext(value: Any) -> str:
    """Text for a Plotly label: entities, which Plotly decodes and shows literally."""
    return html.escape("" if value is None else str(value), quote=False)


# ----------------------------------------------------------------- figures --


def _figure(*data: Any) -> go.Figure:
    """An empty (or one-trace) figure on the cheap template."""
    return go.Figure(data=list(data), layout={"template": TEMPLATE})


def _layout(fig: go.Figure, key: str, x_title: str, y_title: str, height: int = 420) -> None:
    fig.update_layout(
        title={"text": CHART_TITLES[key]},
        colorway=qualitative.Plotly,
        font={"family": "system-ui, sans-serif", "size": 12},
        plot_bgcolor="#ffffff",
        height=height,
        title_x=0.01,
        margin={"l": 70, "r": 30, "t": 80, "b": 60},
        # Above the plot: below it the legend collides with rotated layer names.
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02,
                "yanchor": "bottom"},
        hoverlabel={"align": "left"},
    )
    fig.update_xaxes(title_text=x_title, gridcolor="#e8ebf0", zerolinecolor="#c9ced8",
                     automargin=True)
    fig.update_yaxes(title_text=y_title, gridcolor="#e8ebf0", zerolinecolor="#c9ced8",
                     automargin=True)


def variant_colors(comp: Comparison) -> dict[str, str]:
    """One colour per variant, the same in every chart."""
    palette = qualitative.Plotly
    return {name: palette[i % len(palette)] for i, name in enumerate(comp.names)}


def kind_colors(comp: Comparison) -> dict[str, str]:
    """One colour per primitive kind (most time first), the same in every chart."""
    palette = qualitative.D3 + qualitative.Dark24
    order = comp.by_kind.groupby("kind")["ms_per_iter"].sum().sort_values(ascending=False)
    return {kind: palette[i % len(palette)] for i, kind in enumerate(order.index)}


def _names(values: Sequence[Any]) -> list[str]:
    return [ptext(v) for v in values]


def _custom(frame: pd.DataFrame, columns: Sequence[str]) -> list[list[str]]:
    return [[ptext(value) for value in row] for row in frame[list(columns)].itertuples(False)]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def fig_latency(comp: Comparison) -> go.Figure | None:
    """Box plus points of per-iteration latency per variant (wall and oneDNN)."""
    table = comp.iteration_latency
    if table.empty:
        return None
    fig = _figure()
    series = [("wall_ms", "wall time"), ("onednn_ms", "oneDNN exec time")]
    for column, label in series:
        rows = table.dropna(subset=[column])
        if rows.empty:
            continue
        fig.add_trace(go.Box(
            x=_names(rows["variant"]), y=rows[column], name=label, boxpoints="all",
            jitter=0.3, pointpos=0, hoveron="points",
            customdata=_custom(rows, ["iteration", "slowest_layer", "slowest_shape",
                                      "slowest_kind"]),
            hovertemplate=(
                "%{x}<br>iteration %{customdata[0]}: %{y:.3f} ms (" + label + ")"
                "<br>slowest primitive: %{customdata[3]} in layer %{customdata[1]}"
                "<br>shape %{customdata[2]}<extra></extra>"
            ),
        ))
    fig.update_layout(boxmode="group")
    _layout(fig, "latency", "variant", "latency per iteration (ms)")
    return fig


def fig_speedup(comp: Comparison) -> go.Figure | None:
    """Median speedup per variant with its bootstrap interval as error bars."""
    if comp.is_single:
        return None
    rows = comp.overview[~comp.overview["baseline"]].dropna(subset=["speedup"])
    if rows.empty:
        return None
    low = (rows["speedup"] - rows["speedup_low"]).fillna(0)
    high = (rows["speedup_high"] - rows["speedup"]).fillna(0)
    top = comp.by_kind.sort_values("ms_per_iter", ascending=False).drop_duplicates("variant")
    top = top.set_index("variant").reindex(rows["variant"])
    custom = [
        [ptext(_fmt(lo)), ptext(_fmt(hi)), str(n), ptext(layer), ptext(shape)]
        for lo, hi, n, layer, shape in zip(
            rows["speedup_low"], rows["speedup_high"], rows["samples"],
            top["top_layer"].fillna(""), top["top_shape"].fillna(""), strict=True)
    ]
    fig = _figure(go.Bar(
        x=_names(rows["variant"]), y=rows["speedup"],
        error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low},
        customdata=custom, name="speedup",
        hovertemplate=(
            "%{x}: %{y:.2f}x (interval %{customdata[0]} to %{customdata[1]}, "
            "%{customdata[2]} iterations)<br>most time in layer %{customdata[3]}"
            "<br>shape %{customdata[4]}<extra></extra>"
        ),
    ))
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="baseline")
    _layout(fig, "speedup", "variant",
            f"speedup over {ptext(comp.baseline.name)} (x, {comp.latency_source} time)")
    return fig


def fig_coverage(comp: Comparison) -> go.Figure | None:
    """oneDNN ms and the rest of the wall time per variant, stacked."""
    rows = comp.overview.dropna(subset=["coverage"])
    if rows.empty:
        return None
    layers = comp.by_kind.sort_values("ms_per_iter", ascending=False).drop_duplicates("variant")
    layers = layers.set_index("variant").reindex(rows["variant"])
    custom = [
        [f"{c:.0%}", ptext(layer), ptext(shape)]
        for c, layer, shape in zip(rows["coverage"], layers["top_layer"].fillna(""),
                                   layers["top_shape"].fillna(""), strict=True)
    ]
    template = ("%{x}: %{y:.2f} ms {part}<br>oneDNN covers %{customdata[0]} of wall time"
                "<br>most oneDNN time in layer %{customdata[1]}, shape %{customdata[2]}"
                "<extra></extra>")
    fig = _figure()
    onednn = rows["wall_ms"] * rows["coverage"]
    labels = [f"{c:.0%} in oneDNN" for c in rows["coverage"]]
    for values, part, text in ((onednn, "in oneDNN", labels),
                               (rows["wall_ms"] - onednn, "outside oneDNN", None)):
        fig.add_trace(go.Bar(
            x=_names(rows["variant"]), y=values, name=part, customdata=custom, text=text,
            hovertemplate=template.replace("{part}", part),
        ))
    fig.update_layout(barmode="stack")
    _layout(fig, "coverage", "variant", "median time per iteration (ms)")
    return fig


def _stacked(
    comp: Comparison, table: pd.DataFrame, key: str, column: str, value: str, y_title: str
) -> go.Figure | None:
    if table.empty:
        return None
    fig = _figure()
    order = table.groupby(column)[value].sum().sort_values(ascending=False).index
    colors = kind_colors(comp) if column == "kind" else {}
    for name in order:
        rows = table[table[column] == name]
        fig.add_trace(go.Bar(
            x=_names(rows["variant"]), y=rows[value], name=ptext(name),
            marker_color=colors.get(name),
            customdata=_custom(rows.assign(share_text=rows["share"].map(
                lambda s: "–" if pd.isna(s) else f"{s:.1%}")),
                ["calls_per_iter", "share_text", "top_layer", "top_shape"]),
            hovertemplate=(
                "%{x}<br>" + ptext(name) + ": %{y:.3f}<br>%{customdata[0]} calls per iteration, "
                "%{customdata[1]} of oneDNN time<br>most time in layer %{customdata[2]}"
                "<br>shape %{customdata[3]}<extra></extra>"
            ),
        ))
    fig.update_layout(barmode="stack")
    _layout(fig, key, "variant", y_title)
    fig.update_xaxes(categoryorder="array", categoryarray=_names(comp.names))
    return fig


def fig_kind_time(comp: Comparison) -> go.Figure | None:
    """ms per iteration by primitive kind, stacked per variant (Fig. 4.9)."""
    return _stacked(comp, comp.by_kind, "kind_time", "kind", "ms_per_iter",
                    "oneDNN time per iteration (ms)")


def fig_kind_calls(comp: Comparison) -> go.Figure | None:
    """Calls per iteration by kind, grouped by variant (Fig. 4.6)."""
    table = comp.by_kind
    if table.empty:
        return None
    fig = _figure()
    for name in comp.names:
        rows = table[table["variant"] == name]
        if rows.empty:
            continue
        fig.add_trace(go.Bar(
            x=_names(rows["kind"]), y=rows["calls_per_iter"], name=ptext(name),
            marker_color=variant_colors(comp)[name],
            customdata=_custom(rows, ["ms_per_iter", "top_layer", "top_shape"]),
            hovertemplate=(
                ptext(name) + "<br>%{x}: %{y:g} calls per iteration, %{customdata[0]} ms"
                "<br>most time in layer %{customdata[1]}<br>shape %{customdata[2]}"
                "<extra></extra>"
            ),
        ))
    fig.update_layout(barmode="group")
    _layout(fig, "kind_calls", "primitive kind", "calls per iteration")
    return fig


def _layer_axis(table: pd.DataFrame) -> list[str]:
    ordered = table.sort_values(["position"], kind="stable")["layer"]
    return _names(list(dict.fromkeys(ordered)))


def fig_layer_latency(comp: Comparison) -> go.Figure | None:
    """ms per iteration per layer, one bar per variant (Figs. 4.10/4.11)."""
    table = comp.by_layer
    if table.empty:
        return None
    fig = _figure()
    for name in comp.names:
        rows = table[table["variant"] == name]
        if rows.empty:
            continue
        fig.add_trace(go.Bar(
            x=_names(rows["layer"]), y=rows["ms_per_iter"], name=ptext(name),
            marker_color=variant_colors(comp)[name],
            customdata=_custom(rows, ["layer_type", "shape", "kinds", "post_ops"]),
            hovertemplate=(
                ptext(name) + "<br>layer %{x} (%{customdata[0]}): %{y:.3f} ms"
                "<br>shape %{customdata[1]}<br>%{customdata[2]}"
                "<br>post-ops: %{customdata[3]}<extra></extra>"
            ),
        ))
    fig.update_layout(barmode="group")
    _layout(fig, "layer_latency", "layer (execution order)", "time per iteration (ms)", 520)
    fig.update_xaxes(categoryorder="array", categoryarray=_layer_axis(table), tickangle=-60)
    return fig


def fig_layer_speedup(comp: Comparison) -> go.Figure | None:
    """Baseline ms / variant ms per layer for each non-baseline variant."""
    table = comp.layer_speedup
    if table.empty:
        return None
    fig = _figure()
    for name in comp.names:
        rows = table[table["variant"] == name]
        if rows.empty:
            continue
        fig.add_trace(go.Bar(
            x=_names(rows["layer"]), y=rows["speedup"], name=ptext(name),
            marker_color=variant_colors(comp)[name],
            customdata=_custom(rows.assign(
                b=rows["baseline_ms"].map(_fmt), v=rows["variant_ms"].map(_fmt)),
                ["layer_type", "shape", "b", "v"]),
            hovertemplate=(
                ptext(name) + "<br>layer %{x} (%{customdata[0]}): %{y:.2f}x"
                "<br>shape %{customdata[1]}<br>%{customdata[2]} ms -> %{customdata[3]} ms"
                "<extra></extra>"
            ),
        ))
    fig.add_hline(y=1.0, line_dash="dot")
    fig.update_layout(barmode="group")
    _layout(fig, "layer_speedup", "layer (baseline execution order)",
            f"speedup over {ptext(comp.baseline.name)} (x)", 520)
    fig.update_xaxes(categoryorder="array", categoryarray=_layer_axis(table), tickangle=-60)
    return fig


def fig_stages(comp: Comparison) -> go.Figure | None:
    """ms per iteration per ResNet stage, one bar per variant (Fig. 4.2)."""
    table = comp.by_stage
    if table.empty:
        return None
    fig = _figure()
    for name in comp.names:
        rows = table[table["variant"] == name]
        if rows.empty:
            continue
        fig.add_trace(go.Bar(
            x=rows["stage"], y=rows["ms_per_iter"], name=ptext(name),
            marker_color=variant_colors(comp)[name],
            customdata=_custom(rows, ["calls_per_iter", "top_layer", "top_shape", "method"]),
            hovertemplate=(
                ptext(name) + "<br>%{x}: %{y:.3f} ms, %{customdata[0]} calls per iteration"
                "<br>most time in layer %{customdata[1]}<br>shape %{customdata[2]}"
                "<br>stages from %{customdata[3]}<extra></extra>"
            ),
        ))
    fig.update_layout(barmode="group")
    _layout(fig, "stages", "ResNet stage", "time per iteration (ms)")
    return fig


def fig_fusion(comp: Comparison) -> go.Figure | None:
    """Primitives per iteration by role, stacked per variant."""
    table = comp.fusion_roles
    if table.empty:
        return None
    fig = _figure()
    for role in ROLES:
        rows = table[table["role"] == role]
        if rows.empty:
            continue
        fig.add_trace(go.Bar(
            x=_names(rows["variant"]), y=rows["calls_per_iter"], name=role,
            customdata=_custom(rows, ["ms_per_iter", "top_layer", "top_shape"]),
            hovertemplate=(
                "%{x}<br>" + role + ": %{y:g} per iteration, %{customdata[0]} ms"
                "<br>e.g. layer %{customdata[1]}<br>shape %{customdata[2]}<extra></extra>"
            ),
        ))
    fig.update_layout(barmode="stack")
    _layout(fig, "fusion", "variant", "primitives per iteration")
    fig.update_xaxes(categoryorder="array", categoryarray=_names(comp.names))
    return fig


def fig_reorders(comp: Comparison) -> go.Figure | None:
    """Reorder count and ms per iteration per variant, side by side."""
    table = comp.reorders
    if table.empty or not (table["reorders_per_iter"] > 0).any():
        return None
    detail = comp.reorder_detail.drop_duplicates("variant").set_index("variant")
    formats = detail["formats"].reindex(table["variant"]).fillna("")
    rows = table.assign(formats=formats.to_numpy())
    custom = _custom(rows, ["formats", "top_layer", "top_shape"])
    fig = make_subplots(rows=1, cols=2, figure=_figure(),
                        subplot_titles=("calls per iteration", "time per iteration (ms)"))
    template = ("%{x}: %{y:.3g} {what}<br>costliest: %{customdata[0]}"
                "<br>in layer %{customdata[1]}, shape %{customdata[2]}<extra></extra>")
    fig.add_trace(go.Bar(x=_names(rows["variant"]), y=rows["reorders_per_iter"],
                         name="reorders", customdata=custom,
                         hovertemplate=template.replace("{what}", "reorders per iteration")),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=_names(rows["variant"]), y=rows["reorder_ms_per_iter"],
                         name="reorder time", customdata=custom,
                         hovertemplate=template.replace("{what}", "ms per iteration")),
                  row=1, col=2)
    _layout(fig, "reorders", "variant", "reorders per iteration")
    fig.update_yaxes(title_text="reorder time per iteration (ms)", row=1, col=2)
    return fig


def fig_dtypes(comp: Comparison) -> go.Figure | None:
    """ms per iteration by data-type combination, stacked per variant."""
    return _stacked(comp, comp.dtypes, "dtypes", "dtypes", "ms_per_iter",
                    "oneDNN time per iteration (ms)")


def fig_isa(comp: Comparison) -> go.Figure | None:
    """ms per iteration by ISA, stacked per variant."""
    return _stacked(comp, comp.isas, "isa", "isa_name", "ms_per_iter",
                    "oneDNN time per iteration (ms)")


def fig_top_gflops(comp: Comparison) -> go.Figure | None:
    """GFLOP/s against mean ms per call for the top primitives of each variant."""
    table = comp.top_primitives().dropna(subset=["gflops"])
    if table.empty:
        return None
    fig = _figure()
    biggest = float(table["ms_per_iter"].max()) or 1.0
    for name in comp.names:
        rows = table[table["variant"] == name]
        if rows.empty:
            continue
        fig.add_trace(go.Scatter(
            x=rows["mean_ms"], y=rows["gflops"], mode="markers", name=ptext(name),
            marker={"size": 8 + 30 * rows["ms_per_iter"] / biggest, "opacity": 0.7,
                    "color": variant_colors(comp)[name]},
            customdata=_custom(rows, ["kind", "impl", "shape", "layers", "dtypes", "post_ops",
                                      "calls_per_iter"]),
            hovertemplate=(
                ptext(name) + "<br>%{customdata[0]} %{customdata[1]}<br>shape %{customdata[2]}"
                "<br>layer %{customdata[3]}<br>types %{customdata[4]}, post-ops "
                "%{customdata[5]}<br>%{x:.3f} ms per call x %{customdata[6]} calls, "
                "%{y:.1f} GFLOP/s<extra></extra>"
            ),
        ))
    _layout(fig, "top_gflops", "mean time per call (ms)", "throughput (GFLOP/s)")
    return fig


def fig_timeline(comp: Comparison) -> go.Figure | None:
    """Gantt of one steady iteration per variant: one row per variant, colour per kind."""
    table = comp.timeline()
    if table.empty:
        return None
    fig = _figure()
    for kind in table.groupby("kind")["duration_ms"].sum().sort_values(ascending=False).index:
        rows = table[table["kind"] == kind]
        fig.add_trace(go.Bar(
            y=_names(rows["variant"]), x=rows["duration_ms"], base=rows["start_ms"],
            orientation="h", name=ptext(kind), marker_color=kind_colors(comp).get(kind),
            customdata=_custom(rows.assign(s=rows["start_ms"].map(lambda v: f"{v:.3f}")),
                               ["layer", "shape", "impl", "s", "iteration"]),
            hovertemplate=(
                "%{y}, iteration %{customdata[4]}<br>" + ptext(kind) + " %{customdata[2]}"
                "<br>layer %{customdata[0]}<br>shape %{customdata[1]}"
                "<br>starts at %{customdata[3]} ms, takes %{x:.3f} ms<extra></extra>"
            ),
        ))
    fig.update_layout(barmode="overlay")
    height = 160 + 70 * len(comp.variants)
    _layout(fig, "timeline", "time since the iteration's first oneDNN call (ms)", "variant",
            height)
    fig.update_yaxes(categoryorder="array", categoryarray=_names(comp.names)[::-1])
    return fig


FIGURES: dict[str, Callable[[Comparison], go.Figure | None]] = {
    "latency": fig_latency,
    "speedup": fig_speedup,
    "coverage": fig_coverage,
    "kind_time": fig_kind_time,
    "kind_calls": fig_kind_calls,
    "layer_latency": fig_layer_latency,
    "layer_speedup": fig_layer_speedup,
    "stages": fig_stages,
    "fusion": fig_fusion,
    "reorders": fig_reorders,
    "dtypes": fig_dtypes,
    "isa": fig_isa,
    "top_gflops": fig_top_gflops,
    "timeline": fig_timeline,
}

# Why a chart is absent, when it is.
MISSING = {
    "latency": "no per-iteration timing: the traces have neither oneDNN exec lines nor wall times",
    "speedup": "needs at least two variants with timings: one is the baseline",
    "coverage": "needs iteration labels and the runner's wall times (`dnnprof trace` runs)",
    "kind_time": "no oneDNN primitive executed",
    "kind_calls": "no oneDNN primitive executed",
    "layer_latency": "no variant has layer labels",
    "layer_speedup": "needs a second variant whose layer names match the baseline's",
    "stages": "no ResNet among the variants",
    "fusion": "no oneDNN primitive executed",
    "reorders": "no reorder primitive in any variant",
    "dtypes": "no oneDNN primitive executed",
    "isa": "no oneDNN primitive executed",
    "top_gflops": "no primitive with a FLOP count (convolution, inner product, matmul)",
    "timeline": "no oneDNN primitive executed",
}


def build_figures(comp: Comparison) -> dict[str, go.Figure | None]:
    """Every chart of the report by key (None where the data is missing)."""
    return {key: build(comp) for key, build in FIGURES.items()}


# ------------------------------------------------------------------ tables --

Column = tuple[str, str, Callable[[Any], str] | None]


def _number(digits: int = 3) -> Callable[[Any], str]:
    return lambda value: _fmt(float(value), digits) if _is_num(value) else esc(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _percent(value: Any) -> str:
    return "–" if not _is_num(value) or not math.isfinite(value) else f"{value:.1%}"


def html_table(frame: pd.DataFrame, columns: Sequence[Column], limit: int | None = None) -> str:
    """An escaped HTML table of selected columns: (column, header, formatter)."""
    if frame.empty:
        return '<p class="empty">(no rows)</p>'
    rows = frame if limit is None else frame.head(limit)
    head = "".join(f"<th>{esc(header)}</th>" for _, header, _ in columns)
    body = []
    for record in rows.to_dict(orient="records"):
        cells = []
        for column, _, formatter in columns:
            value = record.get(column)
            text = formatter(value) if formatter else esc(value)
            numeric = ' class="num"' if _is_num(value) else ""
            cells.append(f"<td{numeric}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if limit is not None and len(frame) > limit:
        more = f'<p class="more">{len(frame) - limit} more rows in `--json` output</p>'
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{more}')


NUM, PCT = _number(), _percent


def _notes(items: Sequence[str]) -> str:
    if not items:
        return ""
    return '<div class="note"><ul>' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul></div>"


def _speedup_text(row: dict[str, Any]) -> str:
    if row["baseline"]:
        return "baseline"
    if not _is_num(row["speedup"]) or not math.isfinite(row["speedup"]):
        return "–"
    interval = ""
    if math.isfinite(row["speedup_low"]):
        interval = f" [{row['speedup_low']:.2f}, {row['speedup_high']:.2f}]"
    return f"{row['speedup']:.2f}x{interval}"


# -------------------------------------------------------------------- page --


def _section_tables(comp: Comparison) -> dict[str, list[str]]:
    overview = comp.overview.copy()
    if not overview.empty:
        overview["speedup_text"] = [_speedup_text(r) for r in overview.to_dict("records")]
    top = comp.top_primitives()
    wide_layers = _layer_pivot(comp)
    fused = comp.fused_primitives
    return {
        "overview": ["<h3>Runs</h3>" + html_table(overview, [
            ("variant", "variant", None), ("model", "model", None),
            ("framework", "framework", None), ("onednn_version", "oneDNN", None),
            ("isa", "ISA (oneDNN banner)", None), ("threads", "threads", NUM),
            ("batch", "batch", NUM), ("timeline", "timeline", None), ("source", "source", None),
        ])],
        "overview_top": [html_table(overview, [
            ("variant", "variant", None), ("measured_iterations", "iterations", NUM),
            ("median_ms", f"median {comp.latency_source} ms", NUM),
            ("onednn_ms", "oneDNN ms", NUM), ("wall_ms", "wall ms", NUM),
            ("coverage", "oneDNN coverage", PCT), ("primitives_per_iter", "primitives/iter", NUM),
            ("reorders_per_iter", "reorders/iter", NUM), ("speedup_text", "speedup [95 % CI]",
                                                          None),
        ])],
        "kinds": [html_table(comp.by_kind, [
            ("variant", "variant", None), ("kind", "kind", None),
            ("calls_per_iter", "calls/iter", NUM), ("ms_per_iter", "ms/iter", NUM),
            ("share", "share", PCT), ("top_layer", "most time in layer", None),
            ("top_shape", "shape", None),
        ])],
        "layers": [wide_layers],
        "stages": [html_table(comp.by_stage, [
            ("variant", "variant", None), ("stage", "stage", None),
            ("ms_per_iter", "ms/iter", NUM), ("calls_per_iter", "calls/iter", NUM),
            ("top_layer", "most time in layer", None), ("top_shape", "shape", None),
            ("method", "stages from", None),
        ])],
        "fusion": [
            html_table(comp.fusion_summary, [
                ("variant", "variant", None), *[(r, r, NUM) for r in ROLES],
                ("post_ops", "post-ops per iteration", None),
            ]),
            "<h3>Layers that became one primitive</h3>" + html_table(fused, [
                ("variant", "variant", None), ("layer", "layer", None),
                ("layer_type", "layer type", None), ("became", "one primitive doing", None),
                ("shape", "shape", None), ("calls_per_iter", "calls/iter", NUM),
                ("ms_per_iter", "ms/iter", NUM),
            ], limit=300),
        ],
        "reorders": [
            html_table(comp.reorders, [
                ("variant", "variant", None), ("reorders_per_iter", "reorders/iter", NUM),
                ("reorder_ms_per_iter", "ms/iter", NUM), ("share", "share of oneDNN time", PCT),
                ("top_layer", "costliest in layer", None), ("top_shape", "shape", None),
            ]),
            "<h3>By layout change</h3>" + html_table(comp.reorder_detail, [
                ("variant", "variant", None), ("formats", "formats", None),
                ("types", "types", None), ("calls_per_iter", "calls/iter", NUM),
                ("ms_per_iter", "ms/iter", NUM), ("layers", "layers", None),
                ("shape", "shape", None),
            ], limit=200),
        ],
        "types": [
            html_table(comp.dtypes, [
                ("variant", "variant", None), ("dtypes", "src/weights/dst", None),
                ("calls_per_iter", "calls/iter", NUM), ("ms_per_iter", "ms/iter", NUM),
                ("share", "share", PCT), ("top_layer", "most time in layer", None),
            ]),
            "<h3>Implementations</h3>" + html_table(comp.implementations, [
                ("variant", "variant", None), ("kind", "kind", None), ("impl", "implementation",
                                                                        None),
                ("isa_name", "ISA", None), ("calls_per_iter", "calls/iter", NUM),
                ("ms_per_iter", "ms/iter", NUM), ("share", "share", PCT),
                ("top_shape", "costliest shape", None),
            ], limit=200),
        ],
        "top": [html_table(top, [
            ("variant", "variant", None), ("kind", "kind", None), ("impl", "implementation",
                                                                    None),
            ("shape", "shape", None), ("dtypes", "types", None), ("post_ops", "post-ops", None),
            ("layers", "layers", None), ("calls_per_iter", "calls/iter", NUM),
            ("mean_ms", "ms/call", NUM), ("ms_per_iter", "ms/iter", NUM),
            ("gflops", "GFLOP/s", NUM),
        ])],
        "timeline": [],
    }


def _layer_pivot(comp: Comparison) -> str:
    table = comp.by_layer
    if table.empty:
        return ""
    wide = table.pivot_table(index="layer", columns="variant", values="ms_per_iter",
                             aggfunc="sum", sort=False)
    firsts = table.drop_duplicates("layer").set_index("layer")
    wide = wide.reindex(firsts.sort_values("position").index)
    frame = pd.DataFrame({
        "layer": wide.index, "layer_type": firsts.loc[wide.index, "layer_type"].to_numpy(),
        "shape": firsts.loc[wide.index, "shape"].to_numpy(),
    })
    columns: list[Column] = [("layer", "layer", None), ("layer_type", "type", None),
                             ("shape", "shape", None)]
    for index, name in enumerate(wide.columns):
        frame[f"v{index}"] = wide[name].to_numpy()
        columns.append((f"v{index}", f"{name} ms/iter", NUM))
    speed = comp.layer_speedup
    for index, name in enumerate(n for n in comp.names if n in set(speed["variant"])):
        rows = speed[speed["variant"] == name].set_index("layer")["speedup"]
        frame[f"s{index}"] = rows.reindex(frame["layer"]).to_numpy()
        columns.append((f"s{index}", f"{name} speedup", NUM))
    frame = frame[frame["layer"] != UNATTRIBUTED].pipe(
        lambda f: pd.concat([f, frame[frame["layer"] == UNATTRIBUTED]]))
    return html_table(frame, columns, limit=400)


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


def render_html(comp: Comparison, title: str | None = None) -> str:
    """The whole report page as one string."""
    started = time.perf_counter()
    figures = build_figures(comp)
    tables = _section_tables(comp)
    notes = comp.notes
    plotly_included = False
    parts: list[str] = []
    for section, heading in SECTIONS:
        body = [f'<section id="{section}"><h2>{esc(heading)}</h2>',
                f'<p class="intro">{esc(INTRO[section])}</p>', _notes(notes.get(section, []))]
        if section == "overview":
            body.extend(tables["overview_top"])
        if section == "overview" and comp.structural_changes:
            body.append("<h3>Structural changes against the baseline</h3><ul class=\"changes\">"
                        + "".join(f"<li>{esc(c)}</li>" for c in comp.structural_changes)
                        + "</ul>")
        for key in SECTION_CHARTS[section]:
            figure = figures[key]
            if figure is None:
                body.append(f'<div class="missing" data-chart="{key}"><b>{esc(CHART_TITLES[key])}'
                            f"</b>: not shown: {esc(MISSING[key])}.</div>")
                continue
            body.append(f'<div class="chart" data-chart="{key}">' + pio.to_html(
                figure, full_html=False, include_plotlyjs=not plotly_included,
                div_id=f"chart-{key}", config=PLOTLY_CONFIG, default_width="100%",
                default_height=f"{figure.layout.height or 420}px", validate=False,
            ) + "</div>")
            plotly_included = True
        body.extend(tables[section])
        body.append("</section>")
        parts.append("\n".join(body))
    models = sorted({str(v.meta.get("model")) for v in comp.variants if v.meta.get("model")})
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
        f"latency from {esc(comp.latency_source)} time</p></header>"
        f"<nav>{nav}</nav><main>{''.join(parts)}</main></body></html>\n"
    )


def write_report(trace: Trace, path: str | Path, title: str | None = None) -> Path:
    """The one-run report of a Trace (what `dnnprof trace` leaves in its run folder)."""
    return write_html(Comparison.from_traces([trace]), path, title)


def write_html(comp: Comparison, path: str | Path, title: str | None = None) -> Path:
    """Render the report and write it to `path` (parent folders created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(comp, title), encoding="utf-8")
    return target
