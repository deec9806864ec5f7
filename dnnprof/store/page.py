"""A history as one self-contained HTML page: Plotly series with the change points marked.

Per series (variant, runner class): the whole model's steady median per run, coloured by
run conditions, with a line at every change point (red: timing step, purple: structural
change); below it the layers that stepped (or the one asked for); then the change points
as a table. plotly.js is embedded once, so the page opens offline. Names from the store
(layers, runners, commits) are escaped for the page and for Plotly's labels.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from dnnprof import __version__
from dnnprof.errors import OutputError
from dnnprof.store.history import TOTAL, History, Series

_CONDITION_COLOUR = {"quiet": "#2c7fb8", "unknown": "#2c7fb8", "busy": "#fdae61",
                     "unreliable": "#bdbdbd"}
_CHANGE_COLOUR = {"timing": "#d7191c", "structure": "#7b3294"}
LAYERS_PLOTTED = 8  # stepped layers drawn per series (the table lists them all)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 2em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
th { background: #f4f4f4; } .timing { color: #d7191c; } .structure { color: #7b3294; }
.note { color: #666; }
"""


def write_history_page(history: History, path: str | os.PathLike[str]) -> Path:
    """Write the page; OutputError (exit 2) when it cannot be written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_history_page(history), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def render_history_page(history: History) -> str:
    """The page as one HTML string."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>dnnprof history: "
             f"{_esc(history.model)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{_esc(history.model)}: history</h1>",
             f"<p class='note'>store {_esc(history.store)}, engine {_esc(history.engine)}, "
             f"dnnprof {__version__}</p>"]
    first = True
    for series in history.series:
        parts.append(f"<h2>{_esc(series.variant)} on {_esc(series.runner)} "
                     f"({len(series.runs)} runs)</h2>")
        for figure in (_total_figure(series), _layer_figure(series, history.layer)):
            if figure is not None:
                parts.append(pio.to_html(figure, full_html=False, include_plotlyjs=first,
                                         config={"displaylogo": False, "responsive": True}))
                first = False
        parts.append(_change_table(series))
        parts += [f"<p class='note'>{_esc(note)}</p>" for note in series.notes]
    parts.append("</body></html>")
    return "\n".join(parts)


def _total_figure(series: Series) -> go.Figure:
    runs = series.runs
    figure = go.Figure()
    for condition, group in runs.groupby("conditions", sort=True):
        figure.add_trace(go.Scattergl(
            x=group["run_time"], y=group["median_ms"], mode="markers", name=_esc(condition),
            marker={"size": 5, "color": _CONDITION_COLOUR.get(condition, "#2c7fb8")},
            customdata=group[["position", "run_id", "git_commit"]].astype(str).map(_esc),
            hovertemplate="#%{customdata[0]} %{customdata[1]}<br>commit %{customdata[2]}"
                          "<br>%{y:.3f} ms<extra></extra>",
        ))
    _mark_changes(figure, series)
    figure.update_layout(title=f"{TOTAL}: oneDNN ms per steady iteration (median per run); "
                               "the scale fits the runs steps are found in",
                         xaxis_title="run time", yaxis_title="ms", height=420,
                         yaxis_range=_robust_range(runs.loc[runs["used"], "median_ms"]))
    return figure


def _robust_range(values: pd.Series) -> list[float] | None:
    """A y range around the bulk of the values: an unreliable run 5x slower would otherwise
    flatten every step (zoom out, or double-click, to see every point)."""
    if values.empty:
        return None
    low, high = float(values.quantile(0.002)), float(values.quantile(0.998))
    margin = 0.15 * (high - low) + 0.02 * high
    return [max(0.0, low - margin), high + margin]


def _layer_figure(series: Series, layer: str | None) -> go.Figure | None:
    stepped = [name for change in series.changes if change.kind == "timing"
               for name in change.layers if name != TOTAL]
    names = [layer] if layer else list(dict.fromkeys(stepped))[:LAYERS_PLOTTED]
    if not names:
        return None
    runs = series.runs.set_index("position")
    used = series.layers[series.layers["position"].map(runs["used"])]
    figure = go.Figure()
    for name in names:
        rows = used[used["layer"] == name]
        figure.add_trace(go.Scattergl(
            x=runs.loc[rows["position"], "run_time"], y=rows["median_ms"], mode="markers",
            name=_esc(name), marker={"size": 4},
            hovertemplate=f"{_esc(name)}<br>%{{y:.4f}} ms<extra></extra>",
        ))
    _mark_changes(figure, series)
    figure.update_layout(title="layers: ms per steady iteration (median per run; the runs "
                               "steps are found in)", xaxis_title="run time", yaxis_title="ms",
                         height=420, showlegend=True,
                         yaxis_range=_robust_range(used.loc[used["layer"].isin(names),
                                                            "median_ms"]))
    return figure


def _mark_changes(figure: go.Figure, series: Series) -> None:
    for change in series.changes:
        figure.add_vline(x=change.run_time, line_dash="dash" if change.kind == "timing"
                         else "dot", line_color=_CHANGE_COLOUR[change.kind], opacity=0.8)
        figure.add_annotation(x=change.run_time, y=1.0, yref="paper", showarrow=False,
                              text=f"#{change.position} {change.kind}", yanchor="bottom",
                              font={"color": _CHANGE_COLOUR[change.kind], "size": 10})


def _change_table(series: Series) -> str:
    if not series.changes:
        return "<p>No timing step and no structural change.</p>"
    rows = ["<table><tr><th>run</th><th>run id</th><th>time</th><th>commit</th>"
            "<th>change</th><th>what</th></tr>"]
    for change in series.changes:
        details = "<br>".join(_esc(d) for d in change.details)
        rows.append(f"<tr><td>#{change.position}</td><td>{_esc(change.run_id)}</td>"
                    f"<td>{change.run_time:%Y-%m-%d %H:%M}</td>"
                    f"<td>{_esc(change.git_commit[:12])}</td>"
                    f"<td class='{change.kind}'>{change.kind}</td><td>{details}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _esc(text: object) -> str:
    return html.escape(str(text))
