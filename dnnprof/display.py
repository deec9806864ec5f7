"""Text read from a log or a stored trace, made safe to show: at a terminal, in rich markup, in
HTML; and numbers made valid JSON (`json_text`: JSON has no NaN or Infinity).

A log comes from anywhere. An implementation name may carry ESC sequences that would drive
the reader's terminal, `[/]` or `[bold]` that rich would take for markup (and fail on), or a
right-to-left override that reorders what a reader sees. Every printer passes such text
through one of these functions; standard library only (rich is imported when markup or a
table is asked).

`fitted_table` draws the terminal's tables within a width: every column has a budget, the
last columns give way first, and nothing wraps (a cut cell ends or starts with `…`).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

WIDE = 100  # from this terminal width on, a table's optional (wide_only) columns are shown

# C0 controls (newline and tab included: no field of a log holds one), DEL, C1 controls,
# and the bidirectional marks, embeddings, overrides and isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def safe_text(value: Any, lines: bool = False) -> str:
    """The text with control and bidi characters written as escapes (`\\x1b`, `\\u202e`).

    `lines`: several lines (a process's stderr), whose newlines stay newlines.
    """
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():  # the usual case, checked in C
        return text
    return (_UNSAFE_IN_LINES if lines else _UNSAFE).sub(_visible, text)


def markup_text(value: Any) -> str:
    """`safe_text` with rich markup escaped, for a string rich reads as markup."""
    from rich.markup import escape

    return escape(safe_text(value))


def html_text(value: Any) -> str:
    """`safe_text` HTML-escaped (quotes included), for a page or an attribute."""
    return html.escape(safe_text(value), quote=True)


def json_text(value: Any) -> str:
    """Indented JSON that every parser accepts: NaN and infinities become null."""
    return json.dumps(_finite(value), indent=2, allow_nan=False, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float):  # numpy's float64 is a float too
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if hasattr(value, "dtype") and getattr(value, "shape", None) == ():  # numpy scalars
        return _finite(value.item())
    return value


@dataclass(frozen=True)
class Column:
    """One column: header, widest it may be, narrowest it may shrink to, and how to cut."""

    key: str
    header: str
    most: int
    least: int | None = None  # None: never shrinks
    right: bool = False  # numbers: right-justified
    wide_only: bool = False
    cut_left: bool = False  # dotted names: keep the end, which says what the layer is


# which layer a row is: the first columns of every layer table (trace/parse, report/compare)
LAYER_KEY_COLUMNS = (
    Column("layer", "layer", 24, least=12, cut_left=True),
    Column("type", "type", 12, wide_only=True),
    Column("shape", "shape", 28, least=16),
)


def fitted_table(title: str, columns: Sequence[Column], rows: Sequence[dict[str, str]],
                 width: int) -> Table:
    """A borderless table whose lines are at most `width` characters; cells are literal text."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    shown = [c for c in columns if not c.wide_only or width >= WIDE]
    sizes = [min(c.most, max([len(c.header), *(len(r.get(c.key, "")) for r in rows)]))
             for c in shown]
    excess = sum(sizes) + len(shown) - 1 - width  # the box puts one space between columns
    for index in reversed(range(len(shown))):  # the last columns give way first
        column = shown[index]
        if excess > 0 and column.least is not None:
            cut = min(excess, sizes[index] - column.least)
            sizes[index] -= max(cut, 0)
            excess -= max(cut, 0)
    table = Table(title=Text(title, style="bold"), title_justify="left", box=box.SIMPLE_HEAD,
                  padding=0, pad_edge=False, show_edge=False, min_width=min(len(title), width))
    for column, size in zip(shown, sizes, strict=True):
        table.add_column(Text(column.header), width=size, no_wrap=True, overflow="ellipsis",
                         justify="right" if column.right else "left")
    for row in rows:
        table.add_row(*(Text(cut_text(row.get(c.key, ""), size, c.cut_left))
                        for c, size in zip(shown, sizes, strict=True)))
    return table


def cut_text(text: str, size: int, left: bool = False) -> str:
    """`text` in at most `size` characters: its end cut to `…`, or its start with `left`."""
    if len(text) <= size:
        return text
    return "…" + text[len(text) - size + 1:] if left else text[: size - 1] + "…"
