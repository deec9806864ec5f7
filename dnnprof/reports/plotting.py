"""Plotly building blocks for the report's charts: escaping, layout, colours, and the one
loop that draws a chart of one trace per group of a table's rows from a `Chart` spec.

Every string from a log is entity-escaped (`ptext`) before Plotly sees it: its labels
understand a few HTML tags and would otherwise drop `<script>` text instead of showing it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from dnnprof.display import safe_text
from dnnprof.reports.compare import Comparison
from dnnprof.reports.variants import ROLES

# Plotly's named templates cost ~0.1 s of validation per figure; plotly.js' own defaults
# ("none") with a few settings below look the same for these charts.
TEMPLATE = "none"
MS_PER_ITERATION = "oneDNN time per iteration (ms)"


def ptext(value: Any) -> str:
    """Text for a Plotly label: entities, which Plotly decodes and shows literally."""
    return html.escape(safe_text(value), quote=False)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for people: 3 significant digits, thousands separated, '–' when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def figure(*data: Any) -> go.Figure:
    """An empty (or one-trace) figure on the cheap template."""
    return go.Figure(data=list(data), layout={"template": TEMPLATE})


def layout(fig: go.Figure, title: str, x_title: str, y_title: str, height: int = 420) -> None:
    """Title, axis titles, fonts, grid and legend: the look every chart shares."""
    fig.update_layout(
        title={"text": title},
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
    for update in (fig.update_xaxes, fig.update_yaxes):
        update(gridcolor="#e8ebf0", zerolinecolor="#c9ced8", automargin=True)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)


def variant_colors(comp: Comparison) -> dict[str, str]:
    """One colour per variant, the same in every chart."""
    palette = qualitative.Plotly
    return {name: palette[i % len(palette)] for i, name in enumerate(comp.names)}


def kind_colors(comp: Comparison) -> dict[str, str]:
    """One colour per primitive kind (most time first), the same in every chart."""
    palette = qualitative.D3 + qualitative.Dark24
    order = comp.by_kind.groupby("kind")["ms_per_iter"].sum().sort_values(ascending=False)
    return {kind: palette[i % len(palette)] for i, kind in enumerate(order.index)}


def names(values: Sequence[Any]) -> list[str]:
    """Plotly labels for these values (escaped)."""
    return [ptext(v) for v in values]


def custom(frame: pd.DataFrame, columns: Sequence[str]) -> list[list[str]]:
    """Hover columns as escaped text, one list per row (Plotly's customdata)."""
    return [[ptext(value) for value in row] for row in frame[list(columns)].itertuples(False)]


@dataclass(frozen=True)
class Chart:
    """One trace per value of `group` in a Comparison table; `{name}` in `hover` is its name."""

    table: Callable[[Comparison], pd.DataFrame]
    group: str  # "variant" (input order), "role" (ROLES order), or a column (most time first)
    x: str
    y: str
    hover: str
    custom: tuple[str, ...]
    x_title: str
    y_title: str  # `{baseline}` becomes the baseline's name
    barmode: str = "group"
    height: int = 420
    axis: str = ""  # "variants" | "layers" | "timeline": how the category axis is ordered
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None  # hover columns to add
    scatter: bool = False  # markers sized by time instead of bars
    hline: bool = False  # a dotted line at 1x
    order_by: str = "ms_per_iter"  # what "most time first" sums for a column group


def _order(comp: Comparison, chart: Chart, table: pd.DataFrame) -> list[Any]:
    if chart.group == "variant":
        return comp.names
    if chart.group == "role":
        return list(ROLES)
    totals = table.groupby(chart.group)[chart.order_by].sum()
    return list(totals.sort_values(ascending=False).index)


def _colors(comp: Comparison, group: str) -> dict[str, str]:
    if group == "variant":
        return variant_colors(comp)
    return kind_colors(comp) if group == "kind" else {}


def _trace(chart: Chart, rows: pd.DataFrame, name: str, color: str | None,
           biggest: float) -> go.BaseTraceType:
    label = ptext(name)
    common = {"name": label, "customdata": custom(rows, chart.custom),
              "hovertemplate": chart.hover.replace("{name}", label)}
    if chart.scatter:
        return go.Scatter(x=rows[chart.x], y=rows[chart.y], mode="markers", marker={
            "size": 8 + 30 * rows["ms_per_iter"] / biggest, "opacity": 0.7, "color": color,
        }, **common)
    if chart.axis == "timeline":  # horizontal bars from each call's start
        return go.Bar(y=names(rows[chart.y]), x=rows[chart.x], base=rows["start_ms"],
                      orientation="h", marker_color=color, **common)
    return go.Bar(x=names(rows[chart.x]), y=rows[chart.y], marker_color=color, **common)


def grouped_figure(comp: Comparison, chart: Chart, title: str) -> go.Figure | None:
    """The chart drawn from its spec (None when its table is empty)."""
    table = chart.table(comp)
    if table.empty:
        return None
    if chart.prepare is not None:
        table = chart.prepare(table)
    colors = _colors(comp, chart.group)
    biggest = (float(table["ms_per_iter"].max()) or 1.0) if chart.scatter else 1.0
    fig = figure()
    for name in _order(comp, chart, table):
        rows = table[table[chart.group] == name]
        if not rows.empty:
            fig.add_trace(_trace(chart, rows, name, colors.get(name), biggest))
    if chart.hline:
        fig.add_hline(y=1.0, line_dash="dot")
    if not chart.scatter:
        fig.update_layout(barmode=chart.barmode)
    height = 160 + 70 * len(comp.variants) if chart.axis == "timeline" else chart.height
    y_title = chart.y_title.format(baseline=ptext(comp.baseline.name))
    layout(fig, title, chart.x_title, y_title, height)
    if chart.axis == "variants":
        fig.update_xaxes(categoryorder="array", categoryarray=names(comp.names))
    elif chart.axis == "layers":
        ordered = table.sort_values(["position"], kind="stable")["layer"]
        fig.update_xaxes(categoryorder="array", tickangle=-60,
                         categoryarray=names(list(dict.fromkeys(ordered))))
    elif chart.axis == "timeline":
        fig.update_yaxes(categoryorder="array", categoryarray=names(comp.names)[::-1])
    return fig
