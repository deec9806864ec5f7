"""The HTML report's tables: which Comparison table each section shows, with which columns.

Every cell is escaped: layer, model and implementation names come from logs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dnnprof.display import html_text
from dnnprof.reports.compare import Comparison
from dnnprof.reports.plotting import fmt
from dnnprof.reports.variants import ROLES, UNATTRIBUTED

Column = tuple[str, str, Callable[[Any], str] | None]  # (column, header, formatter)


def esc(value: Any) -> str:
    """Text for the HTML page (bidi overrides and control characters shown as escapes)."""
    return html_text(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any) -> str:
    return fmt(float(value), 3) if _is_num(value) else esc(value)


def _percent(value: Any) -> str:
    return "–" if not _is_num(value) or not math.isfinite(value) else f"{value:.1%}"


NUM, PCT = _number, _percent  # cell formatters: 3 significant digits; a share in percent


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


def speedup_text(row: dict[str, Any]) -> str:
    """'2.31x [2.10, 2.52]', 'baseline' or '–' for an overview row."""
    if row["baseline"]:
        return "baseline"
    if not _is_num(row["speedup"]) or not math.isfinite(row["speedup"]):
        return "–"
    interval = ""
    if math.isfinite(row["speedup_low"]):
        interval = f" [{row['speedup_low']:.2f}, {row['speedup_high']:.2f}]"
    return f"{row['speedup']:.2f}x{interval}"


@dataclass(frozen=True)
class PageTable:
    """One table of a section: a Comparison table, its columns, an optional heading.

    A header may name `{latency_source}` (wall or oneDNN), filled in per comparison.
    """

    table: Callable[[Comparison], pd.DataFrame]
    columns: Sequence[Column]
    heading: str = ""
    limit: int | None = None

    def render(self, comp: Comparison) -> str:
        """The heading and the escaped table."""
        heading = f"<h3>{esc(self.heading)}</h3>" if self.heading else ""
        columns = [(column, header.format(latency_source=comp.latency_source), formatter)
                   for column, header, formatter in self.columns]
        return heading + html_table(self.table(comp), columns, self.limit)


def _overview(comp: Comparison) -> pd.DataFrame:
    overview = comp.overview.copy()
    if not overview.empty:
        overview["speedup_text"] = [speedup_text(r) for r in overview.to_dict("records")]
    return overview


V = ("variant", "variant", None)  # every table's first column
CALLS, MS = ("calls_per_iter", "calls/iter", NUM), ("ms_per_iter", "ms/iter", NUM)
TOP_LAYER, SHAPE = ("top_layer", "most time in layer", None), ("top_shape", "shape", None)

# Per section, the tables shown after its charts ("overview_top" comes before them).
SECTION_TABLES: dict[str, list[PageTable]] = {
    "overview_top": [PageTable(_overview, [
        V, ("conditions", "run conditions", None), ("measured_iterations", "iterations", NUM), ("median_ms", "median {latency_source} ms", NUM),
        ("onednn_ms", "oneDNN ms", NUM), ("wall_ms", "wall ms", NUM),
        ("coverage", "oneDNN coverage", PCT), ("primitives_per_iter", "primitives/iter", NUM),
        ("reorders_per_iter", "reorders/iter", NUM), ("speedup_text", "speedup [95 % CI]", None),
    ])],
    "overview": [PageTable(_overview, [
        V, ("model", "model", None), ("framework", "framework", None),
        ("onednn_version", "oneDNN", None), ("isa", "ISA (oneDNN banner)", None),
        ("threads", "threads", NUM), ("batch", "batch", NUM), ("timeline", "timeline", None),
        ("source", "source", None),
    ], heading="Runs")],
    "kinds": [PageTable(lambda comp: comp.by_kind, [
        V, ("kind", "kind", None), CALLS, MS, ("share", "share", PCT), TOP_LAYER, SHAPE,
    ])],
    "stages": [PageTable(lambda comp: comp.by_stage, [
        V, ("stage", "stage", None), MS, CALLS, TOP_LAYER, SHAPE, ("method", "stages from", None),
    ])],
    "fusion": [
        PageTable(lambda comp: comp.fusion_summary, [
            V, *[(r, r, NUM) for r in ROLES], ("post_ops", "post-ops per iteration", None),
        ]),
        PageTable(lambda comp: comp.fused_primitives, [
            V, ("layer", "layer", None), ("layer_type", "layer type", None),
            ("became", "one primitive doing", None), ("shape", "shape", None), CALLS, MS,
        ], heading="Layers that became one primitive", limit=300),
    ],
    "reorders": [
        PageTable(lambda comp: comp.reorders, [
            V, ("reorders_per_iter", "reorders/iter", NUM), ("reorder_ms_per_iter", "ms/iter", NUM),
            ("share", "share of oneDNN time", PCT), ("top_layer", "costliest in layer", None),
            SHAPE,
        ]),
        PageTable(lambda comp: comp.reorder_detail, [
            V, ("formats", "formats", None), ("types", "types", None), CALLS, MS,
            ("layers", "layers", None), ("shape", "shape", None),
        ], heading="By layout change", limit=200),
    ],
    "types": [
        PageTable(lambda comp: comp.dtypes, [
            V, ("dtypes", "src/weights/dst", None), CALLS, MS, ("share", "share", PCT), TOP_LAYER,
        ]),
        PageTable(lambda comp: comp.implementations, [
            V, ("kind", "kind", None), ("impl", "implementation", None), ("isa_name", "ISA", None),
            CALLS, MS, ("share", "share", PCT), ("top_shape", "costliest shape", None),
        ], heading="Implementations", limit=200),
    ],
    "top": [PageTable(lambda comp: comp.top_primitives(), [
        V, ("kind", "kind", None), ("impl", "implementation", None), ("shape", "shape", None),
        ("dtypes", "types", None), ("post_ops", "post-ops", None), ("layers", "layers", None),
        CALLS, ("mean_ms", "ms/call", NUM), MS, ("gflops", "GFLOP/s", NUM),
    ])],
}


def section_tables(comp: Comparison, section: str) -> list[str]:
    """The rendered tables of one report section (the layers one is a wide pivot)."""
    if section == "layers":
        return [layer_pivot(comp)]
    return [table.render(comp) for table in SECTION_TABLES.get(section, [])]


def layer_pivot(comp: Comparison) -> str:
    """ms per iteration per layer, one column per variant, then the speedups."""
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
    outside = frame["layer"] == UNATTRIBUTED
    frame = pd.concat([frame[~outside], frame[outside]])  # glue last
    return html_table(frame, columns, limit=400)
