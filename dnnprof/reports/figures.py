"""The report's charts by key, from a Comparison (None where the data is missing).

Ten charts are one trace per group of a table's rows, each a `Chart` spec drawn by
`plotting.grouped_figure`; four of another shape (latency boxes, speedup with error bars,
wall-time coverage, reorder subplots) are small functions of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dnnprof.reports.compare import Comparison
from dnnprof.reports.plotting import (
    Chart,
    custom,
    figure,
    fmt,
    grouped_figure,
    layout,
    names,
    ptext,
)

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
MS_PER_ITERATION = "oneDNN time per iteration (ms)"


def _with_share_text(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(share_text=table["share"].map(lambda s: "–" if pd.isna(s) else f"{s:.1%}"))


def _stacked(table: Callable[[Comparison], pd.DataFrame], column: str) -> Chart:
    """ms per iteration by `column`, stacked per variant, biggest part first."""
    return Chart(
        table=table, group=column, x="variant", y="ms_per_iter",
        hover=("%{x}<br>{name}: %{y:.3f}<br>%{customdata[0]} calls per iteration, "
               "%{customdata[1]} of oneDNN time<br>most time in layer %{customdata[2]}"
               "<br>shape %{customdata[3]}<extra></extra>"),
        custom=("calls_per_iter", "share_text", "top_layer", "top_shape"),
        x_title="variant", y_title=MS_PER_ITERATION, barmode="stack", axis="variants",
        prepare=_with_share_text,
    )


CHARTS: dict[str, Chart] = {
    "kind_time": _stacked(lambda comp: comp.by_kind, "kind"),
    "kind_calls": Chart(
        table=lambda comp: comp.by_kind, group="variant", x="kind", y="calls_per_iter",
        hover=("{name}<br>%{x}: %{y:g} calls per iteration, %{customdata[0]} ms"
               "<br>most time in layer %{customdata[1]}<br>shape %{customdata[2]}"
               "<extra></extra>"),
        custom=("ms_per_iter", "top_layer", "top_shape"),
        x_title="primitive kind", y_title="calls per iteration",
    ),
    "layer_latency": Chart(
        table=lambda comp: comp.by_layer, group="variant", x="layer", y="ms_per_iter",
        hover=("{name}<br>layer %{x} (%{customdata[0]}): %{y:.3f} ms<br>shape %{customdata[1]}"
               "<br>%{customdata[2]}<br>post-ops: %{customdata[3]}<extra></extra>"),
        custom=("layer_type", "shape", "kinds", "post_ops"),
        x_title="layer (execution order)", y_title="time per iteration (ms)", height=520,
        axis="layers",
    ),
    "layer_speedup": Chart(
        table=lambda comp: comp.layer_speedup, group="variant", x="layer", y="speedup",
        hover=("{name}<br>layer %{x} (%{customdata[0]}): %{y:.2f}x<br>shape %{customdata[1]}"
               "<br>%{customdata[2]} ms -> %{customdata[3]} ms<extra></extra>"),
        custom=("layer_type", "shape", "b", "v"),
        x_title="layer (baseline execution order)", y_title="speedup over {baseline} (x)",
        height=520, axis="layers", hline=True,
        prepare=lambda t: t.assign(b=t["baseline_ms"].map(fmt), v=t["variant_ms"].map(fmt)),
    ),
    "stages": Chart(
        table=lambda comp: comp.by_stage, group="variant", x="stage", y="ms_per_iter",
        hover=("{name}<br>%{x}: %{y:.3f} ms, %{customdata[0]} calls per iteration"
               "<br>most time in layer %{customdata[1]}<br>shape %{customdata[2]}"
               "<br>stages from %{customdata[3]}<extra></extra>"),
        custom=("calls_per_iter", "top_layer", "top_shape", "method"),
        x_title="ResNet stage", y_title="time per iteration (ms)",
    ),
    "fusion": Chart(
        table=lambda comp: comp.fusion_roles, group="role", x="variant", y="calls_per_iter",
        hover=("%{x}<br>{name}: %{y:g} per iteration, %{customdata[0]} ms"
               "<br>e.g. layer %{customdata[1]}<br>shape %{customdata[2]}<extra></extra>"),
        custom=("ms_per_iter", "top_layer", "top_shape"),
        x_title="variant", y_title="primitives per iteration", barmode="stack",
        axis="variants",
    ),
    "dtypes": _stacked(lambda comp: comp.dtypes, "dtypes"),
    "isa": _stacked(lambda comp: comp.isas, "isa_name"),
    "top_gflops": Chart(
        table=lambda comp: comp.top_primitives().dropna(subset=["gflops"]), group="variant",
        x="mean_ms", y="gflops", scatter=True,
        hover=("{name}<br>%{customdata[0]} %{customdata[1]}<br>shape %{customdata[2]}"
               "<br>layer %{customdata[3]}<br>types %{customdata[4]}, post-ops "
               "%{customdata[5]}<br>%{x:.3f} ms per call x %{customdata[6]} calls, "
               "%{y:.1f} GFLOP/s<extra></extra>"),
        custom=("kind", "impl", "shape", "layers", "dtypes", "post_ops", "calls_per_iter"),
        x_title="mean time per call (ms)", y_title="throughput (GFLOP/s)",
    ),
    "timeline": Chart(
        table=lambda comp: comp.timeline(), group="kind", x="duration_ms", y="variant",
        hover=("%{y}, iteration %{customdata[4]}<br>{name} %{customdata[2]}"
               "<br>layer %{customdata[0]}<br>shape %{customdata[1]}"
               "<br>starts at %{customdata[3]} ms, takes %{x:.3f} ms<extra></extra>"),
        custom=("layer", "shape", "impl", "s", "iteration"),
        x_title="time since the iteration's first oneDNN call (ms)", y_title="variant",
        barmode="overlay", axis="timeline", order_by="duration_ms",
        prepare=lambda t: t.assign(s=t["start_ms"].map(lambda v: f"{v:.3f}")),
    ),
}


def fig_latency(comp: Comparison) -> go.Figure | None:
    """Box plus points of per-iteration latency per variant (wall and oneDNN)."""
    table = comp.iteration_latency
    if table.empty:
        return None
    fig = figure()
    for column, label in (("wall_ms", "wall time"), ("onednn_ms", "oneDNN exec time")):
        rows = table.dropna(subset=[column])
        if rows.empty:
            continue
        fig.add_trace(go.Box(
            x=names(rows["variant"]), y=rows[column], name=label, boxpoints="all",
            jitter=0.3, pointpos=0, hoveron="points",
            customdata=custom(rows, ["iteration", "slowest_layer", "slowest_shape",
                                     "slowest_kind"]),
            hovertemplate=(
                "%{x}<br>iteration %{customdata[0]}: %{y:.3f} ms (" + label + ")"
                "<br>slowest primitive: %{customdata[3]} in layer %{customdata[1]}"
                "<br>shape %{customdata[2]}<extra></extra>"
            ),
        ))
    fig.update_layout(boxmode="group")
    layout(fig, CHART_TITLES["latency"], "variant", "latency per iteration (ms)")
    return fig


def _most_time(comp: Comparison, variants: pd.Series) -> pd.DataFrame:
    """Per variant, the kind row with the most time (its top layer and shape for hover)."""
    top = comp.by_kind.sort_values("ms_per_iter", ascending=False).drop_duplicates("variant")
    return top.set_index("variant").reindex(variants)


def fig_speedup(comp: Comparison) -> go.Figure | None:
    """Median speedup per variant with its bootstrap interval as error bars."""
    if comp.is_single:
        return None
    rows = comp.overview[~comp.overview["baseline"]].dropna(subset=["speedup"])
    if rows.empty:
        return None
    top = _most_time(comp, rows["variant"])
    hover = [
        [ptext(fmt(lo)), ptext(fmt(hi)), str(n), ptext(layer), ptext(shape)]
        for lo, hi, n, layer, shape in zip(
            rows["speedup_low"], rows["speedup_high"], rows["samples"],
            top["top_layer"].fillna(""), top["top_shape"].fillna(""), strict=True)
    ]
    fig = figure(go.Bar(
        x=names(rows["variant"]), y=rows["speedup"], customdata=hover, name="speedup",
        error_y={"type": "data", "symmetric": False,
                 "array": (rows["speedup_high"] - rows["speedup"]).fillna(0),
                 "arrayminus": (rows["speedup"] - rows["speedup_low"]).fillna(0)},
        hovertemplate=(
            "%{x}: %{y:.2f}x (interval %{customdata[0]} to %{customdata[1]}, "
            "%{customdata[2]} iterations)<br>most time in layer %{customdata[3]}"
            "<br>shape %{customdata[4]}<extra></extra>"
        ),
    ))
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="baseline")
    layout(fig, CHART_TITLES["speedup"], "variant",
           f"speedup over {ptext(comp.baseline.name)} (x, {comp.latency_source} time)")
    return fig


def fig_coverage(comp: Comparison) -> go.Figure | None:
    """oneDNN ms and the rest of the wall time per variant, stacked."""
    rows = comp.overview.dropna(subset=["coverage"])
    if rows.empty:
        return None
    top = _most_time(comp, rows["variant"])
    hover = [
        [f"{c:.0%}", ptext(layer), ptext(shape)]
        for c, layer, shape in zip(rows["coverage"], top["top_layer"].fillna(""),
                                   top["top_shape"].fillna(""), strict=True)
    ]
    template = ("%{x}: %{y:.2f} ms {part}<br>oneDNN covers %{customdata[0]} of wall time"
                "<br>most oneDNN time in layer %{customdata[1]}, shape %{customdata[2]}"
                "<extra></extra>")
    fig = figure()
    onednn = rows["wall_ms"] * rows["coverage"]
    labels = [f"{c:.0%} in oneDNN" for c in rows["coverage"]]
    for values, part, text in ((onednn, "in oneDNN", labels),
                               (rows["wall_ms"] - onednn, "outside oneDNN", None)):
        fig.add_trace(go.Bar(
            x=names(rows["variant"]), y=values, name=part, customdata=hover, text=text,
            hovertemplate=template.replace("{part}", part),
        ))
    fig.update_layout(barmode="stack")
    layout(fig, CHART_TITLES["coverage"], "variant", "median time per iteration (ms)")
    return fig


def fig_reorders(comp: Comparison) -> go.Figure | None:
    """Reorder count and ms per iteration per variant, side by side."""
    table = comp.reorders
    if table.empty or not (table["reorders_per_iter"] > 0).any():
        return None
    detail = comp.reorder_detail.drop_duplicates("variant").set_index("variant")
    rows = table.assign(formats=detail["formats"].reindex(table["variant"]).fillna("").to_numpy())
    hover = custom(rows, ["formats", "top_layer", "top_shape"])
    fig = make_subplots(rows=1, cols=2, figure=figure(),
                        subplot_titles=("calls per iteration", "time per iteration (ms)"))
    template = ("%{x}: %{y:.3g} {what}<br>costliest: %{customdata[0]}"
                "<br>in layer %{customdata[1]}, shape %{customdata[2]}<extra></extra>")
    for col, (column, name, what) in enumerate((
            ("reorders_per_iter", "reorders", "reorders per iteration"),
            ("reorder_ms_per_iter", "reorder time", "ms per iteration")), 1):
        fig.add_trace(go.Bar(x=names(rows["variant"]), y=rows[column], name=name,
                             customdata=hover, hovertemplate=template.replace("{what}", what)),
                      row=1, col=col)
    layout(fig, CHART_TITLES["reorders"], "variant", "reorders per iteration")
    fig.update_yaxes(title_text="reorder time per iteration (ms)", row=1, col=2)
    return fig


FIGURES: dict[str, Callable[[Comparison], go.Figure | None]] = {
    "latency": fig_latency,
    "speedup": fig_speedup,
    "coverage": fig_coverage,
    **{key: partial(grouped_figure, chart=chart, title=CHART_TITLES[key])
       for key, chart in CHARTS.items()},
    "reorders": fig_reorders,
}


def build_figures(comp: Comparison) -> dict[str, go.Figure | None]:
    """Every chart of the report by key (None where the data is missing)."""
    return {key: FIGURES[key](comp) for key in CHART_TITLES}
