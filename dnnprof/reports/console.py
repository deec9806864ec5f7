"""Rich tables at the terminal for one trace or a comparison, and the `--json` numbers.

Everything printed comes from the `Comparison`'s tables. Log text goes into `rich.text.Text`
cells, never into markup strings, so a layer named `[bold]x` prints as written; control and
bidi characters are made visible first (`dnnprof.display.safe_text`).

Every table fits the console's width (80 columns at least, drawn by `display.fitted_table` as
`trace` and `parse` draw theirs): primitives and layers show human shapes
(`conv 3×3 256→256 @14×14 s1`, full descriptors stay in `--json` and the HTML page),
variants their names without the words all of them share, and wide terminals get the
optional columns (oneDNN version, oneDNN ms, post-ops, which layers ...).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dnnprof.display import LAYER_KEY_COLUMNS, WIDE, Column, fitted_table, safe_text
from dnnprof.parsers.shapes import layer_shapes, primitive_shape
from dnnprof.reports.compare import Comparison
from dnnprof.reports.variants import ROLES, UNATTRIBUTED
from dnnprof.views import RESNET_STAGES

VARIANT = Column("variant", "variant", 18, least=8, cut_left=True)
# a variant's column in a table with one column per variant: a number or two
VARIANT_CELL = 16
_SEPARATORS = " _./-"


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


def _texts(**cells: Any) -> dict[str, str]:
    """One table row: every cell made safe to show (log text may hold escapes)."""
    return {key: safe_text(value) for key, value in cells.items()}


def short_names(names: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Each name without the words every name holds (`torch_resnet50_int8_fx_b1` beside
    `torch_resnet50_fp32_eager_b1` is `int8_fx`), and those words; names unchanged (no
    words) when one name is given or what is left would be empty or ambiguous."""
    words = [re.findall(f"[{_SEPARATORS}]*[^{_SEPARATORS}]+", name) for name in names]
    shared = set.intersection(*({w.lstrip(_SEPARATORS) for w in ws} for ws in words)) if (
        len(names) > 1) else set()
    short = {}
    for name, parts in zip(names, words, strict=True):
        kept = [part for part in parts if part.lstrip(_SEPARATORS) not in shared]
        short[name] = "".join(kept).lstrip(_SEPARATORS)
    if not shared or not all(short.values()) or len(set(short.values())) < len(names):
        return {name: name for name in names}, []
    return short, list(dict.fromkeys(w.lstrip(_SEPARATORS) for w in words[0]
                                     if w.lstrip(_SEPARATORS) in shared))


def _variant_tables(title: str, first: Sequence[Column], rows: list[dict[str, str]],
                    headers: Sequence[str], width: int) -> list[Table]:
    """A table with one column per variant (keys v0, v1 ...) after the `first` columns; when
    the variant columns do not fit side by side, several tables, each repeating `first`."""
    # the first columns as wide as their text: a group holds the variants that fit beside them
    fixed = sum(_natural(c, rows) + 1 for c in first if not c.wide_only or width >= WIDE)
    sizes = [_natural(Column(f"v{i}", h, VARIANT_CELL), rows) for i, h in enumerate(headers)]
    groups: list[list[int]] = [[]]
    for index, size in enumerate(sizes):
        used = fixed + sum(sizes[i] + 1 for i in groups[-1])
        if groups[-1] and used + size > width:
            groups.append([])
        groups[-1].append(index)
    tables = []
    for number, group in enumerate(groups, 1):
        part = f" ({number}/{len(groups)})" if len(groups) > 1 else ""
        columns = [*first, *(Column(f"v{i}", headers[i], VARIANT_CELL, right=True)
                             for i in group)]
        tables.append(fitted_table(safe_text(title) + part, columns, rows, width))
    return tables


def _natural(column: Column, rows: Sequence[dict[str, str]]) -> int:
    return min(column.most, max([len(column.header), *(len(r.get(column.key, "")) for r in rows)]))


def _per_variant(frame: pd.DataFrame, index: str, order: Sequence[Any], names: Sequence[str],
                 cell: Callable[[pd.Series], str]) -> list[dict[str, str]]:
    """Rows = `order`, cells v0, v1 ... = cell(that variant's row), or '–' where it has none."""
    rows = [_texts(**{index: key}) for key in order]
    for position, name in enumerate(names):
        mine = frame[frame["variant"] == name].set_index(index)
        for row, key in zip(rows, order, strict=True):
            row[f"v{position}"] = safe_text(cell(mine.loc[key]) if key in mine.index else "–")
    return rows


def _shares(frame: pd.DataFrame, key: str, name: str, limit: int = 3) -> str:
    mine = frame[frame["variant"] == name].groupby(key)["share"].sum()
    mine = mine.sort_values(ascending=False).head(limit)
    return ", ".join(f"{k} {v:.0%}" for k, v in mine.items() if pd.notna(v))


OVERVIEW_COLUMNS = (
    VARIANT, Column("run", "run", 10, least=7),
    Column("onednn", "oneDNN", 10, wide_only=True),
    Column("iters", "iters", 5, right=True, wide_only=True),
    Column("median", "median ms", 9, right=True),
    Column("onednn_ms", "oneDNN ms", 9, right=True, wide_only=True),
    Column("coverage", "coverage", 8, right=True),
    Column("prims", "prims/iter", 10, right=True), Column("reorders", "reorders", 8, right=True),
    Column("speedup", "speedup [95% CI]", 22),
)


def _lead(comp: Comparison) -> list[Column]:
    """The variant column, where there is more than one variant (a report names its one)."""
    return [VARIANT] if len(comp.names) > 1 else []


def _overview(comp: Comparison, short: dict[str, str], shared: list[str], width: int) -> Table:
    rows = [_texts(
        variant=short[r["variant"]], run=r["conditions"], onednn=r["onednn_version"],
        iters=_num(r["measured_iterations"]), median=_num(r["median_ms"]),
        onednn_ms=_num(r["onednn_ms"]), coverage=_pct(r["coverage"]),
        prims=_num(r["primitives_per_iter"]), reorders=_num(r["reorders_per_iter"]),
        speedup=_speedup(r),
    ) for r in comp.overview.to_dict("records")]
    title = f"Variants (latency from {comp.latency_source} time)"
    if shared:
        title += f", names shown without {' '.join(shared)}"
    if not _lead(comp):
        title += f": {comp.names[0]}"
    return fitted_table(safe_text(title), [*_lead(comp), *OVERVIEW_COLUMNS[1:]], rows, width)


def _layer_tables(comp: Comparison, short: dict[str, str], width: int,
                  layers: int) -> list[Table]:
    """Per-layer speedup over the baseline (its slowest layers), else the slowest layers."""
    names = comp.names
    shapes = {v.name: layer_shapes(v.meta.layer_table, v.steady) for v in comp.variants
              if v.layers_known}
    speed = comp.layer_speedup
    if not speed.empty:
        base = comp.by_layer[(comp.by_layer["variant"] == comp.baseline.name)
                             & (comp.by_layer["layer"] != UNATTRIBUTED)]
        slowest = base.sort_values("ms_per_iter", ascending=False).head(layers)
        others = [n for n in names if n in set(speed["variant"])]
        rows = _per_variant(speed, "layer", slowest["layer"].tolist(), others,
                            lambda r: f"{r['speedup']:.2f}x")
        for row, layer in zip(rows, slowest.itertuples(), strict=True):
            row.update(_texts(type=layer.layer_type, ms=_num(layer.ms_per_iter),
                              shape=shapes[comp.baseline.name].get(str(layer.layer), "")))
        first = [*LAYER_KEY_COLUMNS, Column("ms", "base ms", 9, right=True)]
        return _variant_tables(
            f"Per-layer speedup over {comp.baseline.name} (its {len(slowest)} slowest layers)",
            first, rows, [short[n] for n in others], width)
    if comp.by_layer.empty:
        return []
    by_layer = comp.by_layer[comp.by_layer["layer"] != UNATTRIBUTED]
    slowest = by_layer.sort_values("ms_per_iter", ascending=False)
    rows = [_texts(variant=short[r.variant], layer=r.layer, type=r.layer_type,
                   shape=shapes[r.variant].get(str(r.layer), ""), ms=_num(r.ms_per_iter),
                   calls=_num(r.calls_per_iter), kinds=r.kinds)
            for r in slowest.head(layers).itertuples()]
    columns = [*_lead(comp), *LAYER_KEY_COLUMNS,
               Column("ms", "ms/iter", 9, right=True),
               Column("calls", "calls", 5, right=True, wide_only=True),
               Column("kinds", "primitives", 40, least=10, wide_only=True)]
    table = fitted_table(f"Slowest {len(rows)} of {len(by_layer)} layers", columns, rows, width)
    return [table]


def _structure_tables(comp: Comparison, short: dict[str, str], width: int) -> list[Table]:
    """Fusion roles, reorders, and data types with ISA, one row per variant."""
    words = ("fused", "compute", "bn/eltwise/sum", "reorder", "other")
    roles = [Column(f"r{i}", word, len(word), right=True) for i, word in enumerate(words)]
    fusion = [_texts(variant=short[r["variant"]], post_ops=r["post_ops"],
                     **{f"r{i}": _num(r[role]) for i, role in enumerate(ROLES)})
              for r in comp.fusion_summary.to_dict("records")]
    reorders = [_texts(variant=short[r["variant"]], count=_num(r["reorders_per_iter"]),
                       ms=_num(r["reorder_ms_per_iter"]), share=_pct(r["share"]),
                       layer=r["top_layer"])
                for r in comp.reorders.to_dict("records")]
    types = [_texts(variant=short[n], dtypes=_shares(comp.dtypes, "dtypes", n),
                    isa=_shares(comp.isas, "isa_name", n)) for n in comp.names]
    return [
        fitted_table("Primitives per iteration by role (fusion)", [
            *_lead(comp), *roles, Column("post_ops", "post-ops", 30, least=8)], fusion, width),
        fitted_table("Reorders per iteration", [
            *_lead(comp), Column("count", "count", 6, right=True),
            Column("ms", "ms", 7, right=True),
            Column("share", "share", 6, right=True),
            Column("layer", "costliest in layer", 24, least=10, cut_left=True)], reorders, width),
        fitted_table("Data types (src/wei/dst) and ISA, share of oneDNN time", [
            *_lead(comp), Column("dtypes", "data types", 34, least=14),
            Column("isa", "ISA", 40, least=12)], types, width),
    ]


TOP_COLUMNS = (
    VARIANT, Column("shape", "primitive", 30, least=18), Column("types", "types", 11),
    Column("ms", "ms/iter", 7, right=True), Column("gflops", "GFLOP/s", 7, right=True),
    Column("post_ops", "post-ops", 14, wide_only=True, least=6),
    Column("impl", "impl", 22, least=8),
    Column("layers", "layers", 30, least=10, wide_only=True),
)


def _top_table(comp: Comparison, short: dict[str, str], width: int, top: int) -> Table:
    rows = [_texts(variant=short[r.variant], shape=primitive_shape(str(r.kind), str(r.shape)),
                   types=r.dtypes, ms=_num(r.ms_per_iter), gflops=_num(r.gflops),
                   post_ops=r.post_ops, impl=r.impl, layers=getattr(r, "layers", ""))
            for r in comp.top_primitives(top).itertuples()]
    return fitted_table("Top primitives", [*_lead(comp), *TOP_COLUMNS[1:]], rows, width)


def comparison_tables(comp: Comparison, width: int = 80, layers: int = 15,
                      top: int = 5) -> list[Table]:
    """The terminal view within `width` columns: overview, kinds, layers, stages, fusion,
    reorders, types, top primitives (human shapes; full descriptors stay in --json and HTML)."""
    names = comp.names
    short, shared = short_names(names)
    headers = [short[n] for n in names]
    one = len(names) == 1  # a report: one value column, named by what it holds
    tables = [_overview(comp, short, shared, width)]
    kinds = comp.by_kind
    if not kinds.empty:
        order = kinds.groupby("kind")["ms_per_iter"].sum().sort_values(ascending=False).index
        rows = _per_variant(kinds, "kind", order.tolist(), names, lambda r: (
            f"{_num(r['ms_per_iter'])} ({_num(r['calls_per_iter'])})"))
        tables += _variant_tables("oneDNN time by kind per iteration: ms (calls)",
                                  [Column("kind", "kind", 22, least=10)], rows,
                                  ["ms (calls)"] if one else headers, width)
    tables += _layer_tables(comp, short, width, layers)
    if not comp.by_stage.empty:
        present = [s for s in RESNET_STAGES if s in set(comp.by_stage["stage"])]
        rows = _per_variant(comp.by_stage, "stage", present, names,
                            lambda r: _num(r["ms_per_iter"]))
        tables += _variant_tables("ResNet stages (ms per iteration)",
                                  [Column("stage", "stage", 8)], rows,
                                  ["ms/iter"] if one else headers, width)
    tables += _structure_tables(comp, short, width)
    tables.append(_top_table(comp, short, width, top))
    return tables


def _bullets(heading: str, style: str, items: Sequence[str], console: Console) -> None:
    """A heading and one bullet per item; a long item wraps under its own first word."""
    console.print(Text(heading, style=style))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for item in items:
        grid.add_row(Text("  •"), Text(safe_text(item)))
    console.print(grid)


def print_comparison(comp: Comparison, console: Console | None = None) -> None:
    """Print every comparison table within the console's width, the structural changes
    and the notes."""
    console = console or Console()
    if comp.conditions_banner:
        console.print(Text(safe_text(comp.conditions_banner), style="bold red"))
    for table in comparison_tables(comp, console.width):
        console.print()
        console.print(table)
    console.print()
    if comp.structural_changes:
        _bullets("Structural changes against the baseline", "bold", comp.structural_changes,
                 console)
    notes = [note for items in comp.notes.values() for note in items]
    if notes:
        _bullets("Notes", "bold yellow", list(dict.fromkeys(notes)), console)


def comparison_json(comp: Comparison) -> str:
    """The comparison's numbers as indented JSON text."""
    return json.dumps(comp.to_json(), indent=2, allow_nan=False)
