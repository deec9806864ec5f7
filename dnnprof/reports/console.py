"""Rich tables at the terminal for one trace or a comparison, and the `--json` numbers.

Everything printed comes from the `Comparison`'s tables. Log text goes into `rich.text.Text`
cells, never into markup strings, so a layer named `[bold]x` prints as written; control and
bidi characters are made visible first (`dnnprof.display.safe_text`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dnnprof.display import safe_text
from dnnprof.reports.compare import Comparison
from dnnprof.reports.variants import ROLES, UNATTRIBUTED
from dnnprof.views import RESNET_STAGES

Column = tuple[str, str, Callable[[Any], str] | None]


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _pct(value: Any) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value:.1%}"


def _speedup(row: dict[str, Any]) -> str:
    if row.get("baseline"):
        return "baseline"
    value = row.get("speedup")
    if not isinstance(value, float) or not math.isfinite(value):
        return "–"
    low, high = row.get("speedup_low"), row.get("speedup_high")
    if isinstance(low, float) and math.isfinite(low):
        return f"{value:.2f}x [{low:.2f}, {high:.2f}]"
    return f"{value:.2f}x"


def rich_table(
    title: str, frame: pd.DataFrame, columns: Sequence[Column], limit: int | None = None
) -> Table:
    """A rich Table of selected columns: (column, header, formatter); text cells are literal."""
    table = Table(title=Text(safe_text(title), style="bold"), box=box.SIMPLE_HEAVY,
                  title_justify="left")
    numeric = {
        column: pd.api.types.is_numeric_dtype(frame[column]) if column in frame else False
        for column, _, _ in columns
    }
    for column, header, _ in columns:
        table.add_column(Text(safe_text(header)), justify="right" if numeric[column] else "left",
                         overflow="fold")
    rows = frame if limit is None else frame.head(limit)
    for record in rows.to_dict(orient="records"):
        cells = []
        for column, _, formatter in columns:
            value = record.get(column)
            cells.append(Text(safe_text(formatter(value) if formatter else _num(value))))
        table.add_row(*cells)
    if limit is not None and len(frame) > limit:
        table.caption = Text(f"{len(frame) - limit} more rows (see --json or the HTML report)")
    return table


def _wide(frame: pd.DataFrame, index: str, order: Sequence[Any], names: Sequence[str],
          cell: Callable[[pd.Series], str]) -> tuple[pd.DataFrame, list[Column]]:
    """Rows = `order`, one text column per variant: cell(row of that variant) or '–'."""
    out = pd.DataFrame({index: list(order)})
    columns: list[Column] = [(index, index, str)]
    for position, name in enumerate(names):
        mine = frame[frame["variant"] == name].set_index(index)
        out[f"v{position}"] = [cell(mine.loc[key]) if key in mine.index else "–" for key in order]
        columns.append((f"v{position}", name, str))
    return out, columns


def _shares(frame: pd.DataFrame, key: str, name: str, limit: int = 3) -> str:
    mine = frame[frame["variant"] == name].groupby(key)["share"].sum()
    mine = mine.sort_values(ascending=False).head(limit)
    return ", ".join(f"{k} {v:.0%}" for k, v in mine.items() if pd.notna(v))


def comparison_tables(comp: Comparison, layers: int = 15, top: int = 5) -> list[Table]:
    """The terminal view: overview, kinds, layers, stages, fusion, reorders, types, top."""
    names = comp.names
    overview = comp.overview.copy()
    overview["speedup_text"] = [_speedup(r) for r in overview.to_dict("records")]
    tables = [
        rich_table(f"Variants (latency from {comp.latency_source} time)", overview, [
            ("variant", "variant", str), ("conditions", "run", str),
            ("onednn_version", "oneDNN", str),
            ("measured_iterations", "iters", _num), ("median_ms", "median ms", _num),
            ("onednn_ms", "oneDNN ms", _num), ("coverage", "coverage", _pct),
            ("primitives_per_iter", "prims/iter", _num),
            ("reorders_per_iter", "reorders/iter", _num),
            ("speedup_text", "speedup [95% CI]", str),
        ]),
    ]
    kinds = comp.by_kind
    if not kinds.empty:
        order = kinds.groupby("kind")["ms_per_iter"].sum().sort_values(ascending=False).index
        frame, columns = _wide(kinds, "kind", order, names, lambda r: (
            f"{_num(r['ms_per_iter'])} ms ({_num(r['calls_per_iter'])})"))
        tables.append(rich_table("oneDNN time by kind per iteration: ms (calls)", frame,
                                 columns))
    speed = comp.layer_speedup
    if not speed.empty:
        base = comp.by_layer[(comp.by_layer["variant"] == comp.baseline.name)
                             & (comp.by_layer["layer"] != UNATTRIBUTED)]
        slowest = base.sort_values("ms_per_iter", ascending=False).head(layers)
        others = [n for n in names if n in set(speed["variant"])]
        frame, columns = _wide(speed, "layer", slowest["layer"], others,
                               lambda r: f"{r['speedup']:.2f}x")
        frame.insert(1, "ms", slowest["ms_per_iter"].to_numpy())
        frame["shape"] = slowest["shape"].to_numpy()
        columns = [columns[0], ("ms", f"{comp.baseline.name} ms", _num), *columns[1:],
                   ("shape", "shape", str)]
        tables.append(rich_table(
            f"Per-layer speedup over {comp.baseline.name} (its {len(slowest)} slowest layers)",
            frame, columns))
    elif not comp.by_layer.empty:
        by_layer = comp.by_layer[comp.by_layer["layer"] != UNATTRIBUTED]
        tables.append(rich_table("Slowest layers", by_layer.sort_values(
            "ms_per_iter", ascending=False), [
                ("variant", "variant", str), ("layer", "layer", str),
                ("ms_per_iter", "ms/iter", _num), ("kinds", "primitives", str),
                ("shape", "shape", str),
            ], limit=layers))
    if not comp.by_stage.empty:
        present = [s for s in RESNET_STAGES if s in set(comp.by_stage["stage"])]
        frame, columns = _wide(comp.by_stage, "stage", present, names,
                               lambda r: _num(r["ms_per_iter"]))
        tables.append(rich_table("ResNet stages (ms per iteration)", frame, columns))
    short = dict(zip(ROLES, ("fused", "compute", "bn/eltwise/sum", "reorder", "other"),
                     strict=True))
    tables.append(rich_table("Primitives per iteration by role (fusion)", comp.fusion_summary, [
        ("variant", "variant", str), *[(role, short[role], _num) for role in ROLES],
        ("post_ops", "post-ops", str),
    ]))
    tables.append(rich_table("Reorders per iteration", comp.reorders, [
        ("variant", "variant", str), ("reorders_per_iter", "count", _num),
        ("reorder_ms_per_iter", "ms", _num), ("share", "share", _pct),
        ("top_layer", "costliest in layer", str),
    ]))
    types = pd.DataFrame({
        "variant": names,
        "dtypes": [_shares(comp.dtypes, "dtypes", n) for n in names],
        "isa": [_shares(comp.isas, "isa_name", n) for n in names],
    })
    tables.append(rich_table("Data types (src/wei/dst) and ISA, share of oneDNN time", types, [
        ("variant", "variant", str), ("dtypes", "data types", str), ("isa", "ISA", str),
    ]))
    tables.append(rich_table("Top primitives", comp.top_primitives(top), [
        ("variant", "variant", str), ("kind", "kind", str), ("impl", "impl", str),
        ("dtypes", "types", str), ("ms_per_iter", "ms/iter", _num),
        ("gflops", "GFLOP/s", _num), ("shape", "shape", str),
    ]))
    return tables


def print_comparison(comp: Comparison, console: Console | None = None) -> None:
    """Print every comparison table, the structural changes and the notes."""
    console = console or Console()
    if comp.conditions_banner:
        console.print(Text(safe_text(comp.conditions_banner), style="bold red"))
    for table in comparison_tables(comp):
        console.print(table)
    if comp.structural_changes:
        console.print(Text("Structural changes against the baseline", style="bold"))
        for change in comp.structural_changes:
            console.print(Text(f"  • {safe_text(change)}"))
    notes = [note for items in comp.notes.values() for note in items]
    if notes:
        console.print(Text("Notes", style="bold yellow"))
        for note in dict.fromkeys(notes):
            console.print(Text(f"  • {safe_text(note)}"))


def comparison_json(comp: Comparison) -> str:
    """The comparison's numbers as indented JSON text."""
    return json.dumps(comp.to_json(), indent=2, allow_nan=False)
