"""The comparison model's inputs: traces as named variants, their steady rows and time series.

A `Variant` prepares once what every report table reads: the steady-state exec rows (the
Trace's own rule), per-iteration oneDNN and wall time, and whether iterations, phases and
layers are known. When a trace has no iteration labels the whole log counts as one
"iteration" and the variant's `notes` say so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from dnnprof.loader import open_trace
from dnnprof.metadata import TraceMetadata
from dnnprof.parsers.fields import parse_problem
from dnnprof.trace import Trace
from dnnprof.views import by_layer, coded
from dnnprof.vocabulary import COMPUTE_KINDS, REORDER

UNATTRIBUTED = "(outside any layer)"
# Standalone primitives that a fusing variant folds into a convolution/matmul as post-ops.
FUSABLE_KINDS = ("batch_normalization", "eltwise", "sum", "binary")
# What each primitive is, for the fusion view: a fusing variant moves rows from the
# standalone role into "compute with post-ops".
ROLES = (
    "compute with post-ops", "compute alone", "standalone bn/eltwise/sum/binary",
    "reorder", "other",
)
# Only the columns reports read: every groupby copies what the frame holds.
_STEADY_COLUMNS = (
    "line", "start_ms", "duration_ms", "kind", "impl", "isa", "src_dt", "wei_dt", "dst_dt",
    "src_fmt", "dst_fmt", "post_ops", "problem", "flops", "desc_id", "iteration", "phase",
    "layer", "layer_type", "fused_layers", "reorder_class",
)
# What a variant reads of its trace: the steady columns and what the Trace's by_layer() reads
TRACE_COLUMNS = (*_STEADY_COLUMNS, "is_reorder")


@dataclass
class Variant:
    """One trace under a display name, with its steady-state exec rows prepared once."""

    name: str
    trace: Trace
    source: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        events = self.trace.events
        rows = self.trace.steady_rows()  # the Trace's steady() rows
        # the Trace's by_layer() (views.by_layer of its steady rows)
        self.layer_view = by_layer(rows_of(events, rows))
        iteration = events["iteration"].to_numpy()[rows]
        self.iterations_known = bool((iteration >= 0).any())
        self.phases_known = self.trace.has_steady_state
        if self.iterations_known:
            rows = rows[iteration >= 0]
        rows = rows[np.argsort(events["line"].to_numpy()[rows], kind="stable")]  # line order
        steady = rows_of(events[[c for c in _STEADY_COLUMNS if c in events]], rows)
        if not self.iterations_known:
            steady["iteration"] = 0
        # derived texts stay categorical: made once per distinct value, not once per row
        steady["shape"] = text_category(steady["problem"])
        steady["layer_name"] = text_category(steady["layer"], empty=UNATTRIBUTED)
        self.layers_known = bool((steady["layer_name"] != UNATTRIBUTED).any())
        steady["dtypes"] = joined_category(
            [steady["src_dt"], steady["wei_dt"], steady["dst_dt"]], "/", empty="-")
        steady["isa_name"] = text_category(steady["isa"], empty="(none named)")
        for column in ("fused_layers", "reorder_class"):  # reconstructor columns, if run
            steady[column] = text_category(steady[column]) if column in steady else ""
        # heuristic layer names (conv1, conv2 ... by order) are positions, not model names
        self.layer_mode = self.meta.reconstruction_mode or (
            "labels" if self.layers_known else "none")
        self.steady = steady
        self.n_iterations = int(steady["iteration"].nunique()) if len(steady) else 0
        self.divisor = max(self.n_iterations, 1)

    @property
    def meta(self) -> TraceMetadata:
        """The trace metadata."""
        return self.trace.metadata

    @cached_property
    def onednn_ms(self) -> pd.Series:
        """oneDNN exec time per measured iteration (ms), indexed by iteration."""
        if self.steady.empty:
            return pd.Series(dtype=float)
        return self.steady.groupby("iteration")["duration_ms"].sum()

    @cached_property
    def wall_ms(self) -> pd.Series:
        """Wall time per measured iteration from the run's metadata (empty when absent)."""
        by_iteration = {i: ms for i, ms in self.meta.wall_ms_by_iteration().items()
                        if math.isfinite(ms)}
        if not by_iteration:
            return pd.Series(dtype=float)
        if self.iterations_known and self.phases_known:
            wanted = [i for i in self.onednn_ms.index if i in by_iteration]
            return pd.Series({i: by_iteration[i] for i in wanted}, dtype=float)
        warmup = self.meta.warmup
        if warmup is not None:
            return pd.Series({i: v for i, v in by_iteration.items() if i >= warmup}, dtype=float)
        self.notes.append(
            "wall times: which iterations were warm-up is unknown, so every wall time is used"
        )
        return pd.Series(by_iteration, dtype=float)


def rows_of(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The frame's rows at these positions: a view sharing its columns when they are one
    contiguous range (a long run's steady rows usually are), else a copy."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and (np.diff(rows) == 1).all():
        return frame.iloc[int(rows[0]) : int(rows[-1]) + 1]
    return frame.iloc[rows]


def variant_name(trace: Trace, source: str) -> str:
    """A display name: the runner's variant (with model) when recorded, else the file name."""
    meta = trace.metadata
    if meta.variant:
        return f"{meta.model} {meta.variant}" if meta.model else str(meta.variant)
    path = Path(source)
    stem = path.name if path.is_dir() else path.stem
    return stem or str(source)


def make_variants(
    items: Iterable[tuple[Trace, str] | tuple[Trace, str, str]],
) -> list[Variant]:
    """Wrap (trace, source[, name]) pairs as variants with unique names."""
    variants: list[Variant] = []
    seen: dict[str, int] = {}
    for item in items:
        trace, source = item[0], item[1]
        name = item[2] if len(item) > 2 else variant_name(trace, source)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        variants.append(Variant(name=name, trace=trace, source=str(source)))
    return variants


def open_variants(paths: Sequence[str | os.PathLike[str]], layers: bool = True) -> list[Variant]:
    """Open each run folder, stored trace or log (dnnprof.open) as a variant; InputError if unusable.

    With `layers`, a log without iterations is reconstructed, as `dnnprof.open` does.
    """
    return make_variants((open_trace(path, layers=layers, columns=TRACE_COLUMNS), str(path))
                         for path in paths)


def text_category(column: pd.Series, empty: str = "",
                  rename: Callable[[str], str] | None = None) -> pd.Series:
    """A text column as a categorical of strings, "" (and missing) shown as `empty`, each
    distinct value passed through `rename` when given."""
    codes, names = coded(column)
    names = np.where(names == "", empty, names) if len(names) else names
    if rename is not None:
        names = np.asarray([rename(str(name)) for name in names], dtype=object)
    distinct, codes_of_names = np.unique(names.astype(str), return_inverse=True)
    return pd.Series(pd.Categorical.from_codes(codes_of_names.reshape(-1)[codes], distinct),
                     index=column.index)


def joined_category(columns: Sequence[pd.Series], separator: str, empty: str) -> pd.Series:
    """Several text columns joined per row ('u8/s8/f32'), the text made once per distinct
    combination of their codes."""
    parts = [coded(column) for column in columns]
    combined = np.zeros(len(columns[0]), np.int64)
    for codes, names in parts:
        combined = combined * max(len(names), 1) + codes
    codes = pd.factorize(combined)[0]
    first = np.unique(codes, return_index=True)[1]
    texts = [separator.join(str(names[values[row]]) or empty for values, names in parts)
             for row in first]
    distinct, inverse = np.unique(np.asarray(texts, dtype=str), return_inverse=True)
    return pd.Series(pd.Categorical.from_codes(inverse.reshape(-1)[codes], distinct),
                     index=columns[0].index)


def primitive_roles(rows: pd.DataFrame) -> pd.Series:
    """The ROLES entry of each exec row, as a categorical of ROLES (a byte per row, not a
    string)."""
    kinds = rows["kind"]
    compute = kinds.isin(COMPUTE_KINDS).to_numpy()
    has_post = (rows["post_ops"] != "").to_numpy()
    role = np.select(
        [compute & has_post, compute, kinds.isin(FUSABLE_KINDS).to_numpy(),
         (kinds == REORDER).to_numpy()],
        [0, 1, 2, 3],
        default=4,
    ).astype(np.int8)
    return pd.Series(pd.Categorical.from_codes(role, ROLES), index=rows.index)


def looks_like_resnet(variant: Variant) -> bool:
    """True for ResNet models: by name, by layer names, or by the 7x7/2 stem on 3 channels."""
    model = (variant.meta.model or "").lower()
    if "resnet" in model:
        return True
    if model:
        return False
    layers = variant.steady["layer_name"]
    if layers.str.contains(r"(?:^|\.)layer[1-4]\.|stage[1-4]_", regex=True).any():
        return True
    convs = np.flatnonzero((variant.steady["kind"] == "convolution").to_numpy())
    if not len(convs):
        return False
    try:
        stem = parse_problem(str(variant.steady["problem"].iloc[convs[0]]))
    except ValueError:  # FieldError: a descriptor the grammar keeps as text
        return False
    return all(stem.get(key) == value for key, value in (("ic", 3), ("kh", 7), ("sh", 2)))
