"""The events frame as plain column arrays, plus one decoded shape per descriptor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnprof.reconstruct.primitives import PrimitiveShape, describe
from dnnprof.vocabulary import REORDER


@dataclass
class EventColumns:
    """Column arrays of one events frame that every reconstruction step reads."""

    events: pd.DataFrame
    op: np.ndarray
    kind: np.ndarray
    desc_id: np.ndarray
    is_exec: np.ndarray  # primitive exec rows (graph partitions excluded)
    is_reorder: np.ndarray
    duration: np.ndarray
    cache_miss: np.ndarray  # create rows that missed the primitive cache
    shapes: dict[int, PrimitiveShape]
    src_dt: np.ndarray
    anchor_key: np.ndarray  # per row: code of (kind, problem, src_dt); -1 for non-anchors
    shape_key: np.ndarray  # per row: code of (kind, problem)

    @property
    def exec_rows(self) -> np.ndarray:
        """Positions of primitive exec rows, in log order."""
        return np.flatnonzero(self.is_exec)

    def shape(self, row: int) -> PrimitiveShape:
        """Decoded shape of the descriptor on one row."""
        return self.shapes[int(self.desc_id[row])]


def text(column: pd.Series) -> np.ndarray:
    """A (categorical) string column as an object array, without converting row by row."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = np.asarray(column.cat.categories.astype(str), dtype=object)
        codes = column.cat.codes.to_numpy()
        values = categories[codes] if len(categories) else np.full(len(codes), "", dtype=object)
        if (codes < 0).any():
            values[codes < 0] = ""
        return values
    return column.fillna("").astype(str).to_numpy(dtype=object)


def columns_of(events: pd.DataFrame) -> EventColumns:
    """Arrays and per-descriptor shapes for an events frame."""
    op = text(events["op"])
    kind = text(events["kind"])
    api = text(events["api"])
    desc_id = events["desc_id"].to_numpy()
    is_exec = (op == "exec") & (api != "graph")
    shapes: dict[int, PrimitiveShape] = {}
    exec_rows = np.flatnonzero(is_exec)
    if len(exec_rows):
        first = pd.Series(exec_rows).groupby(desc_id[exec_rows]).first()
        described = ["kind", "problem", "alg", "src_fmt", "dst_fmt", "post_ops", "mds"]
        sub = events.iloc[first.to_numpy()][described].astype(str)
        for did, row in zip(first.index, sub.itertuples(index=False), strict=True):
            shapes[int(did)] = describe(row.kind, row.problem, row.alg, row.src_fmt,
                                        row.dst_fmt, row.post_ops, row.mds)
    is_reorder = is_exec & (kind == REORDER)
    problem = text(events["problem"])
    src_dt = text(events["src_dt"])
    anchor_key = np.full(len(events), -1, np.int64)
    shape_key = np.full(len(events), -1, np.int64)
    anchors = np.flatnonzero(is_exec & ~is_reorder)
    if len(anchors):
        full = pd.MultiIndex.from_arrays([kind[anchors], problem[anchors], src_dt[anchors]])
        anchor_key[anchors] = pd.factorize(full)[0]
        shape_key[anchors] = pd.factorize(pd.MultiIndex.from_arrays([kind[anchors], problem[anchors]]))[0]
    cache = text(events["cache"])
    return EventColumns(
        events=events,
        op=op,
        kind=kind,
        desc_id=desc_id,
        is_exec=is_exec,
        is_reorder=is_reorder,
        duration=events["duration_ms"].to_numpy(dtype=float),
        cache_miss=(op == "create") & (cache == "cache_miss"),
        shapes=shapes,
        src_dt=src_dt,
        anchor_key=anchor_key,
        shape_key=shape_key,
    )
