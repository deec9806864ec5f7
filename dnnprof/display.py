"""Text read from a log or a stored trace, made safe to show: at a terminal, in rich markup, in
HTML; and numbers made valid JSON (`json_text`: JSON has no NaN or Infinity).

A log comes from anywhere. An implementation name may carry ESC sequences that would drive
the reader's terminal, `[/]` or `[bold]` that rich would take for markup (and fail on), or a
right-to-left override that reorders what a reader sees. Every printer passes such text
through one of these functions; standard library only (rich is imported when markup is asked).
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

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
