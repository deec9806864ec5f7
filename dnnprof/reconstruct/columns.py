"""The events frame as compact column arrays, plus one decoded shape per descriptor.

Every per-row array here is a number or a small integer code (never a Python string per
row): a ten-million-line log costs a few bytes per row, and the texts are looked up once
per distinct value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dnnprof.reconstruct.primitives import PrimitiveShape, describe
from dnnprof.views import coded
from dnnprof.vocabulary import REORDER


@dataclass
class Labels:
    """A text label per row, kept as an int32 code into `names` (code 0 is "")."""

    codes: np.ndarray
    names: list[str] = field(default_factory=lambda: [""])
    index: dict[str, int] = field(default_factory=lambda: {"": 0})

    @classmethod
    def empty(cls, n: int) -> Labels:
        """n rows, every one ""."""
        return cls(np.zeros(n, np.int32))

    def copy(self) -> Labels:
        """An independent copy."""
        return Labels(self.codes.copy(), list(self.names), dict(self.index))

    def code(self, name: str) -> int:
        """The code of a name, added when new."""
        found = self.index.get(name)
        if found is None:
            found = self.index[name] = len(self.names)
            self.names.append(name)
        return found

    def codes_of(self, names: Sequence[str]) -> np.ndarray:
        """The codes of a sequence of names (a pass's worth, worked out once per signature)."""
        return np.array([self.code(name) for name in names], dtype=np.int32)

    def __getitem__(self, row: int) -> str:
        return self.names[int(self.codes[row])]

    def __setitem__(self, rows: int | np.ndarray | slice, name: str) -> None:
        self.codes[rows] = self.code(name)

    def text(self, rows: np.ndarray | slice) -> np.ndarray:
        """The names of some rows, as an object array (for a selection, not a whole column)."""
        return np.asarray(self.names, dtype=object)[self.codes[rows]]

    def labelled(self) -> np.ndarray:
        """Which rows have a non-empty label."""
        return self.codes != 0

    def categorical(self) -> pd.Categorical:
        """The labels as a pandas categorical (sorted categories, only those used), made from
        the codes without a string per row."""
        used = np.flatnonzero(np.bincount(self.codes, minlength=len(self.names)))
        order = sorted(used.tolist(), key=lambda code: self.names[code])
        remap = np.zeros(len(self.names), np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        return pd.Categorical.from_codes(remap[self.codes],
                                         categories=[self.names[c] for c in order])


@dataclass
class EventColumns:
    """Column arrays of one events frame that every reconstruction step reads."""

    events: pd.DataFrame
    desc_id: np.ndarray
    is_exec: np.ndarray  # primitive exec rows (graph partitions excluded)
    is_reorder: np.ndarray  # exec rows of reorders
    reorder_kind: np.ndarray  # rows of kind reorder, whatever their op (exec, create...)
    duration: np.ndarray
    cache_miss: np.ndarray  # create rows that missed the primitive cache
    shapes: dict[int, PrimitiveShape]
    src_dt: np.ndarray  # per row: code into src_dt_names
    src_dt_names: np.ndarray
    anchor_key: np.ndarray  # per row: code of (kind, problem, src_dt); -1 for non-anchors
    shape_key: np.ndarray  # per row: code of (kind, problem)

    def __len__(self) -> int:
        return len(self.desc_id)

    @property
    def exec_rows(self) -> np.ndarray:
        """Positions of primitive exec rows, in log order."""
        return np.flatnonzero(self.is_exec)

    def shape(self, row: int) -> PrimitiveShape:
        """Decoded shape of the descriptor on one row."""
        return self.shapes[int(self.desc_id[row])]

    def dtypes(self, rows: np.ndarray) -> frozenset[str]:
        """The source data types of some rows."""
        return frozenset(self.src_dt_names[np.unique(self.src_dt[rows])].tolist())


BLOCK_ROWS = 1 << 16  # rows counted at a time: a block's temporaries, not the column's


def distinct_in_order(codes: np.ndarray) -> list[int]:
    """The distinct values of an integer column in order of first appearance."""
    seen: dict[int, None] = {}
    for start in range(0, len(codes), BLOCK_ROWS):
        seen.update(dict.fromkeys(pd.unique(codes[start : start + BLOCK_ROWS]).tolist()))
    return list(seen)


def pair_counts(first: np.ndarray, second: np.ndarray) -> Counter[tuple[int, int]]:
    """How many rows hold each (first, second) pair of two integer columns (`second`
    non-negative): one sort of a block at a time instead of a whole-column sort."""
    counts: Counter[tuple[int, int]] = Counter()
    width = int(second.max()) + 1 if len(second) else 1
    for start in range(0, len(first), BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        keys, found = np.unique(first[block].astype(np.int64) * width + second[block],
                                return_counts=True)
        for key, count in zip(keys.tolist(), found.tolist(), strict=True):
            counts[divmod(key, width)] += count  # floor division: (-1, code) for -1
    return counts


def text(column: pd.Series) -> np.ndarray:
    """A (categorical) string column as an object array, without converting row by row."""
    codes, names = coded(column)
    return names[codes] if len(names) else np.full(len(codes), "", dtype=object)


def is_value(column: pd.Series, *values: str) -> np.ndarray:
    """Which rows of a text column hold one of `values` (compared once per distinct value)."""
    codes, names = coded(column)
    return np.isin(names, values)[codes] if len(names) else np.zeros(len(codes), bool)


def _combined(*columns: pd.Series) -> np.ndarray:
    """One int64 code per row for the tuple of several text columns' values."""
    key = np.zeros(len(columns[0]), np.int64)
    for column in columns:
        codes, names = coded(column)
        key = key * max(len(names), 1) + codes
    return key


def columns_of(events: pd.DataFrame) -> EventColumns:
    """Arrays and per-descriptor shapes for an events frame."""
    desc_id = events["desc_id"].to_numpy()
    is_exec = is_value(events["op"], "exec") & ~is_value(events["api"], "graph")
    reorder_kind = is_value(events["kind"], REORDER)
    is_reorder = is_exec & reorder_kind
    anchor_key = np.full(len(events), -1, np.int32)
    shape_key = np.full(len(events), -1, np.int32)
    anchors = np.flatnonzero(is_exec & ~is_reorder)
    if len(anchors):
        kind, problem = events["kind"].iloc[anchors], events["problem"].iloc[anchors]
        full = _combined(kind, problem, events["src_dt"].iloc[anchors])
        anchor_key[anchors] = pd.factorize(full)[0]
        shape_key[anchors] = pd.factorize(_combined(kind, problem))[0]
    src_dt, src_dt_names = coded(events["src_dt"])
    return EventColumns(
        events=events,
        desc_id=desc_id,
        is_exec=is_exec,
        is_reorder=is_reorder,
        reorder_kind=reorder_kind,
        duration=events["duration_ms"].to_numpy(dtype=float),
        cache_miss=is_value(events["op"], "create") & is_value(events["cache"], "cache_miss"),
        shapes=_shapes(events, desc_id, is_exec),
        src_dt=src_dt,
        src_dt_names=src_dt_names,
        anchor_key=anchor_key,
        shape_key=shape_key,
    )


def _shapes(events: pd.DataFrame, desc_id: np.ndarray,
            is_exec: np.ndarray) -> dict[int, PrimitiveShape]:
    """The decoded shape of each descriptor of the exec rows, from its first row."""
    exec_rows = np.flatnonzero(is_exec)
    if not len(exec_rows):
        return {}
    distinct, first = np.unique(desc_id[exec_rows], return_index=True)
    described = ["kind", "problem", "alg", "src_fmt", "dst_fmt", "post_ops", "mds"]
    sub = events.iloc[exec_rows[first]][described].astype(str)
    return {int(did): describe(row.kind, row.problem, row.alg, row.src_fmt, row.dst_fmt,
                               row.post_ops, row.mds)
            for did, row in zip(distinct, sub.itertuples(index=False), strict=True)}
