"""Small DataFrame helpers the report tables share: hover detail, text columns, JSON records."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-safe dicts (NaN and NA become None, numpy scalars plain)."""
    return [{str(k): _plain(v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value if isinstance(value, (int, str)) else str(value)


def concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The per-variant frames as one table with these columns (empty when there are none)."""
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def tops(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys`: the layer and the shape with the most time (for hover text)."""
    out = {}
    for column, name in (("layer_name", "top_layer"), ("shape", "top_shape")):
        totals = rows.groupby([*keys, column], observed=True, sort=False)["duration_ms"].sum()
        if totals.empty:
            out[name] = pd.Series(dtype=str)
            continue
        best = totals.groupby(level=list(range(len(keys))), observed=True).idxmax()
        out[name] = best.map(lambda index: str(index[-1]))
    return pd.DataFrame(out)


def top_row(rows: pd.DataFrame) -> tuple[str, str]:
    """(layer, shape) with the most time among rows; empty strings when there are none."""
    if rows.empty:
        return "", ""
    top = tops(rows.assign(_all=0), ["_all"]).iloc[0]
    return str(top["top_layer"]), str(top["top_shape"])


def layers_text(values: pd.Series, limit: int = 3) -> str:
    """'conv1, layer1.0.conv1, fc (+4 more)': the distinct names, first ones first."""
    names = list(dict.fromkeys(str(value) for value in values.unique()))  # per distinct value
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def kinds_text(rows: pd.DataFrame, key: str, divisor: int) -> pd.Series:
    """Per value of `key`: 'reorder x3, convolution x1' (calls per iteration, most first)."""
    counts = rows.groupby([key, "kind"], observed=True, sort=False).size()
    counts = counts[counts > 0].sort_values(ascending=False)
    return counts.groupby(level=0, sort=False).apply(
        lambda group: ", ".join(f"{kind} x{n / divisor:g}" for (_, kind), n in group.items())
    )
