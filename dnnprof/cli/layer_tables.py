"""Which layer? The terminal's layer tables for `trace` and `parse`, each within the width.

Slowest layers (name, human shape, ms per iteration, share, fused ops, GFLOP/s), the ResNet
stage roll-up, and the layers that ran outside oneDNN with the share of wall time they
stand for. Every column has a width budget: at 80 columns nothing wraps (long names are
cut from the left, where they repeat); wider terminals get the type and call columns.
Full descriptors stay in `--json`, the report and `--events`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text

from dnnprof import views
from dnnprof.display import LAYER_KEY_COLUMNS, Column, fitted_table, safe_text
from dnnprof.parsers.shapes import TYPE_WORDS, layer_shape, layer_shapes, primitive_shape

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from dnnprof.trace import Trace

OUTSIDE_SHOWN = 8


def _ms(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _share(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1%}"


def _rate(value: Any) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.1f}"


# ------------------------------------------------------------------- slowest layers --

LAYER_COLUMNS = (
    *LAYER_KEY_COLUMNS,
    Column("ms", "ms/iter", 9, right=True),
    Column("share", "share", 6, right=True),
    Column("fused", "fused", 14, least=5),
    Column("gflops", "GFLOP/s", 7, right=True),
    Column("calls", "calls", 5, right=True, wide_only=True),
)


def slowest_layers(trace: Trace, top: int, scope: str, width: int) -> Table | None:
    """The `top` layers with the most oneDNN time per steady iteration."""
    layers = trace.by_layer()
    if layers.empty:
        return None
    steady = trace.steady()
    steady = steady[steady["layer"].astype(str) != ""]
    shapes = layer_shapes(trace.metadata.layer_table, steady)
    post_ops = _post_ops(steady)
    types = {str(r.get("name")): str(r.get("type")) for r in trace.metadata.layer_table or []
             if isinstance(r, dict)}
    slow = layers.sort_values("mean_ms", ascending=False).head(top)
    rows = [{
        "layer": safe_text(row.layer), "type": safe_text(row.layer_type),
        "shape": safe_text(shapes.get(str(row.layer), "")),
        "ms": _ms(row.mean_ms), "share": _share(row.share),
        "fused": safe_text(_fused(str(row.fused_layers), types)
                           or post_ops.get(str(row.layer), "")),
        "gflops": _rate(row.gflops), "calls": str(row.calls),
    } for row in slow.itertuples()]
    title = f"Slowest {len(rows)} of {len(layers)} layers, oneDNN time ({scope})"
    return fitted_table(title, LAYER_COLUMNS, rows, width)


def _fused(fused_layers: str, types: dict[str, str]) -> str:
    """`layer1.0.bn1+layer1.0.relu1` -> `bn+relu`: what was fused, by layer type."""
    words = []
    for name in (n for n in fused_layers.split("+") if n):
        kind = types.get(name)
        words.append(TYPE_WORDS.get(kind, kind.lower()) if kind else name.rsplit(".", 1)[-1])
    return "+".join(words)


def _post_ops(steady: pd.DataFrame) -> dict[str, str]:
    """The post-ops of each layer's primitives, shortened (`eltwise_relu` -> `relu`)."""
    with_ops = steady[steady["post_ops"].astype(str) != ""]
    found: dict[str, str] = {}
    for layer, ops in zip(with_ops["layer"].astype(str), with_ops["post_ops"].astype(str),
                          strict=True):
        if layer not in found:
            found[layer] = "+".join(op.split(":")[0].removeprefix("eltwise_")
                                    for op in ops.split("+"))
    return found


# ------------------------------------------------------------------------- stages --

STAGE_COLUMNS = (
    Column("stage", "stage", 8), Column("layers", "layers", 6, right=True),
    Column("ms", "ms/iter", 9, right=True), Column("share", "share", 6, right=True),
    Column("reorder", "reorder ms", 10, right=True),
)


def stage_rollup(trace: Trace, width: int) -> Table | None:
    """oneDNN time per ResNet stage (conv1, conv2_x ... conv5_x, fc); None for other models."""
    stages = trace.by_stage()
    if stages.empty:
        return None
    iterations = max(1, len(set(trace.steady()["iteration"].tolist()) - {-1}))
    rows = [{
        "stage": str(row.stage), "layers": str(row.layers), "ms": _ms(row.mean_ms),
        "share": _share(row.share), "reorder": _ms(row.reorder_ms / iterations),
    } for row in stages.itertuples()]
    return fitted_table("ResNet stages, oneDNN time per iteration", STAGE_COLUMNS, rows, width)


# ------------------------------------------------------------------ outside oneDNN --

OUTSIDE_COLUMNS = (
    *LAYER_KEY_COLUMNS,
    Column("ms", "wall ms/iter", 12, right=True),
    Column("share", "of wall", 7, right=True),
)


def outside_onednn(trace: Trace) -> pd.DataFrame:
    """Layers of the layer table with no oneDNN primitive (fused ones excepted), with the
    wall ms per iteration their markers measured and their share of the iteration."""
    steady = trace.steady()
    attributed = set(steady["layer"].astype(str)) - {""}
    for fused in pd.unique(steady["fused_layers"].astype(str)):
        attributed.update(name for name in fused.split("+") if name)
    events = trace.events
    markers = events[(events["op"] == "marker").to_numpy()]
    markers = markers[trace.steady_mask(markers)]
    iterations = sorted(set(markers["iteration"].tolist()) - {-1})
    walls = trace.metadata.wall_ms_by_iteration()
    measured = [walls[i] for i in iterations if i in walls]
    iteration_ms = float(np.mean(measured)) if measured else None
    return views.outside_onednn(trace.metadata.layer_table, attributed,
                                views.layer_wall(markers), iteration_ms)


def outside_table(trace: Trace, width: int, shown: int = OUTSIDE_SHOWN
                  ) -> tuple[Table | None, list[str]]:
    """The costliest layers that ran outside oneDNN, and sentences summing them up."""
    outside = outside_onednn(trace)
    if outside.empty:
        return None, []
    timed = outside["wall_ms"].notna().any()
    ranked = outside.sort_values("wall_ms", ascending=False) if timed else outside
    rows = [{
        "layer": safe_text(row.layer), "type": safe_text(row.layer_type),
        "shape": safe_text(layer_shape(row.row)), "ms": _ms(row.wall_ms),
        "share": _share(row.share),
    } for row in ranked.head(shown).itertuples()]
    total = len({str(row.get("name")) for row in trace.metadata.layer_table or []
                 if isinstance(row, dict)})
    title = f"Layers outside oneDNN ({len(outside)} of {total}; framework kernels)"
    return fitted_table(title, OUTSIDE_COLUMNS, rows, width), _outside_summary(outside, timed)


def _outside_summary(outside: pd.DataFrame, timed: bool) -> list[str]:
    by_type = outside.groupby("layer_type", sort=False).agg(
        layers=("layer", "size"), share=("share", lambda s: s.sum(min_count=1)))
    by_type = by_type.sort_values("share" if timed else "layers", ascending=False)
    parts = [f"{safe_text(kind)} {int(row.layers)}" + (_type_share(row.share) if timed else "")
             for kind, row in by_type.iterrows()]
    if not timed:
        return [f"outside oneDNN by type: {', '.join(parts)}; their wall time is unknown "
                "(no dnnprof layer markers in this log)"]
    share = outside["share"].sum(min_count=1)
    return [f"layers outside oneDNN took {share:.0%} of each iteration's wall time "
            f"(marker spans); by type: {', '.join(parts)}"]


def _type_share(share: float) -> str:
    """A layer type's share of the wall time; layers that no marker span timed (modules the
    framework fused away, such as an INT8 model's ReLUs) have none to show."""
    return " (no marker span)" if pd.isna(share) else f" ({share:.0%})"


def print_layer_tables(trace: Trace, console: Console, top: int, scope: str) -> None:
    """Slowest layers, the stage roll-up and what ran outside oneDNN, when layers are known."""
    width = console.width
    for table in (slowest_layers(trace, top, scope, width), stage_rollup(trace, width)):
        if table is not None:
            console.print(table)
    table, sentences = outside_table(trace, width)
    if table is not None:
        console.print(table)
    for sentence in sentences:
        console.print(Text(sentence))


# ------------------------------------------------------------- slowest primitives --

PRIMITIVE_COLUMNS = (
    Column("shape", "primitive", 30, least=18),
    Column("impl", "impl", 20, least=8),
    Column("types", "types", 5),
    Column("post_ops", "post-ops", 14, least=6, wide_only=True),
    Column("calls", "calls", 6, right=True),
    Column("ms", "total ms", 9, right=True),
    Column("gflops", "GFLOP/s", 7, right=True),
)


def slowest_primitives(trace: Trace, top: int, scope: str, width: int) -> Table:
    """The `top` distinct primitives with the most time, each a human shape on one line."""
    slow = trace.top(top, steady=True)
    rows = [{
        "shape": safe_text(primitive_shape(str(row.kind), str(row.problem))),
        "impl": safe_text(row.impl), "types": safe_text(row.src_dt),
        "post_ops": safe_text(row.post_ops), "calls": str(row.calls),
        "ms": _ms(row.total_ms), "gflops": _rate(row.gflops),
    } for row in slow.itertuples()]
    return fitted_table(f"Slowest {len(rows)} primitives ({scope})", PRIMITIVE_COLUMNS, rows,
                        width)
