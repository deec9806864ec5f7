"""Descriptor columns: one row per distinct descriptor, gathered into one value per event.

Everything in an event's row except its line, timestamp and time depends only on its
descriptor, so the stream keeps one tuple per descriptor and `expand` gathers the
frame's columns from them by descriptor id (categorical codes, never string copies).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import markers
from dnnprof.parsers.events import Descriptor, MarkerEvent, MemoryDesc, MessageEvent
from dnnprof.trace import CATEGORICAL_COLUMNS
from dnnprof.vocabulary import TIMED_OPS

# A template field dnnprof does not decode becomes a text column of this prefix + its name
# (docs/trace-schema.md).
FIELD_PREFIX = "field_"

_NAN = float("nan")
_NUMERIC_DEFAULTS = {"flops": _NAN, "has_scales": False, "has_zero_points": False}
# filled by the reconstructor, not from a descriptor
_LATER = ("phase", "layer", "layer_type", "fused_layers", "reorder_class", "attribution")
_TEXT_COLUMNS = tuple(c for c in CATEGORICAL_COLUMNS if c not in _LATER)
# a descriptor row: the text columns, the numeric columns, then the kept template fields
_ROW_FIELDS = tuple((name, "") for name in _TEXT_COLUMNS) + tuple(_NUMERIC_DEFAULTS.items())
_KEPT = len(_ROW_FIELDS)
OP = _TEXT_COLUMNS.index("op")
API = _TEXT_COLUMNS.index("api")

Row = tuple[Any, ...]


def row(columns: dict[str, Any], kept: tuple[tuple[str, str], ...] = ()) -> Row:
    """A descriptor row from its column values (missing columns get their defaults)."""
    # a tuple, not the dict: an all-distinct log keeps one per line
    return (*[columns.get(name, default) for name, default in _ROW_FIELDS], kept)


def descriptor_row(desc: Descriptor) -> Row:
    """The row of a primitive or graph descriptor."""
    graph = desc.api == "graph"
    src_dt, wei_dt, dst_dt, src_fmt, wei_fmt, dst_fmt = (
        _graph_mem_desc_columns(desc) if graph else _mem_desc_columns(desc.mds)
    )
    attrs = desc.attrs
    return row(
        {
            "op": desc.op, "cache": desc.cache, "api": desc.api, "engine": desc.engine,
            "kind": desc.kind, "impl": desc.impl, "isa": desc.isa, "prop": desc.prop,
            "src_dt": src_dt, "wei_dt": wei_dt, "dst_dt": dst_dt,
            "src_fmt": src_fmt, "wei_fmt": wei_fmt, "dst_fmt": dst_fmt,
            "mds": desc.mds_text, "attrs": desc.attrs_text, "post_ops": attrs.post_ops_str,
            "has_scales": bool(attrs.scales or attrs.oscale),
            "has_zero_points": bool(attrs.zero_points),
            "fpmath": attrs.fpmath, "alg": desc.alg, "aux": desc.aux_text,
            "problem": desc.problem.text,
            "flops": _NAN if desc.flops is None else float(desc.flops),
            "message": (desc.graph or {}).get("partition_id", "") if graph else "",
        },
        desc.extra_fields,
    )


def message_row(event: MessageEvent) -> Row:
    """The row of a check/dispatch/error/warning message."""
    text = event.message + (f" ({event.source})" if event.source else "")
    return row({"op": event.op, "cache": event.stage, "api": "primitive", "kind": event.component,
                "message": text, "problem": event.problem})


def marker_row(event: MarkerEvent) -> Row:
    """The row of a `#DNNPROF` marker: its payload as `dnnprof.markers` defines it."""
    return row({"op": "marker", "api": "dnnprof", "kind": event.event,
                "message": markers.payload(event.fields)})


def is_timed(desc_row: Row) -> bool:
    """True for a row whose events have a duration (exec, create, create_nested, compile)."""
    return desc_row[OP] in TIMED_OPS


def _first_mem_desc(
    mem_descs: tuple[MemoryDesc, ...], prefixes: tuple[str, ...]
) -> tuple[str, str]:
    for mem_desc in mem_descs:
        if mem_desc.arg.startswith(prefixes):
            return mem_desc.data_type, mem_desc.tag
    return "", ""


@lru_cache(maxsize=16384)
def _mem_desc_columns(mem_descs: tuple[MemoryDesc, ...]) -> tuple[str, str, str, str, str, str]:
    """(src_dt, wei_dt, dst_dt, src_fmt, wei_fmt, dst_fmt) of a descriptor's memory descriptors."""
    src_dt, src_fmt = _first_mem_desc(mem_descs, ("src", "data", "in", "query", "diff_src"))
    wei_dt, wei_fmt = _first_mem_desc(mem_descs, ("wei", "src_b"))
    dst_dt, dst_fmt = _first_mem_desc(mem_descs, ("dst", "out", "diff_dst"))
    return src_dt, wei_dt, dst_dt, src_fmt, wei_fmt, dst_fmt


def _graph_mem_desc_columns(desc: Descriptor) -> tuple[str, str, str, str, str, str]:
    tensors = (desc.graph or {}).get("tensors", "").split(";")
    src = next((t for t in tensors if t.startswith("in")), "")
    dst = next((t for t in tensors if t.startswith("out")), "")
    return src.split(":")[0].partition("_")[2], "", dst.split(":")[0].partition("_")[2], "", "", ""


def expand(rows: list[Row], desc_ids: np.ndarray) -> dict[str, Any]:
    """One value per event from one row per descriptor, kept template fields included."""
    columns: dict[str, Any] = {}
    # np.take with native-width indices: several times faster than indexing with int32 ids
    desc_ids = desc_ids.astype(np.intp)
    for position, (name, default) in enumerate(_ROW_FIELDS):
        values = [r[position] for r in rows]
        if name in _NUMERIC_DEFAULTS:
            columns[name] = np.take(np.array(values or [default]), desc_ids)
        else:
            columns[name] = _categorical(values, desc_ids)
    for name in kept_field_names(rows):
        values = [dict(r[_KEPT]).get(name, "") for r in rows]
        columns[FIELD_PREFIX + name] = _categorical(values, desc_ids)
    return columns


def kept_field_names(rows: list[Row]) -> list[str]:
    """Names of the template fields kept as text, in order of first appearance."""
    names: dict[str, None] = {}
    for r in rows:
        for name, _ in r[_KEPT]:
            names.setdefault(name)
    return list(names)


def _categorical(values: list[Any], desc_ids: np.ndarray) -> pd.Categorical:
    # factorize hashes the strings; np.unique would copy them into fixed-width arrays
    codes, categories = pd.factorize(pd.Series(values, dtype=object).astype(str), sort=True)
    # gathered straight into the codes' final width (pandas keeps int8 codes for < 128
    # categories) and not validated again: one pass over the rows per column, not four
    width = np.int8 if len(categories) < 127 else np.int16 if len(categories) < 32767 else np.int32
    gathered = np.take(codes.astype(width), desc_ids)
    return pd.Categorical.from_codes(gathered, dtype=pd.CategoricalDtype(categories),
                                     validate=False)
