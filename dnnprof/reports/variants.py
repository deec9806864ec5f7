"""The comparison model's inputs: traces as named variants, their steady rows and time series.

A `Variant` prepares once what every report table reads: the steady-state exec rows (the
Trace's own rule), per-iteration oneDNN and wall time, and whether iterations, phases and
layers are known. When a trace has no iteration labels the whole log counts as one
"iteration" and the variant's `notes` say so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from dnnprof.loader import open_trace
from dnnprof.metadata import TraceMetadata
from dnnprof.parsers.fields import parse_problem
from dnnprof.trace import Trace
from dnnprof.views import coded
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


@dataclass
class Variant:
    """One trace under a display name, with its steady-state exec rows prepared once."""

    name: str
    trace: Trace
    source: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        steady = self.trace.steady()
        self.iterations_known = bool((steady["iteration"] >= 0).any())
        if self.iterations_known:
            steady = steady[steady["iteration"] >= 0]
        self.phases_known = self.trace.has_steady_state
        steady = steady[[c for c in _STEADY_COLUMNS if c in steady]]
        steady = steady.sort_values("line", kind="stable").copy()
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
    return make_variants((open_trace(path, layers=layers), str(path)) for path in paths)


def text_category(column: pd.Series, empty: str = "") -> pd.Series:
    """A text column as a categorical of strings, "" (and missing) shown as `empty`."""
    codes, names = coded(column)
    names = np.where(names == "", empty, names) if len(names) else names
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
    """The ROLES entry of each exec row."""
    kinds = rows["kind"]
    compute = kinds.isin(COMPUTE_KINDS)
    has_post = rows["post_ops"] != ""
    role = np.select(
        [compute & has_post, compute, kinds.isin(FUSABLE_KINDS), kinds == REORDER],
        list(ROLES[:4]),
        default=ROLES[4],
    )
    return pd.Series(role, index=rows.index)


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
    convs = variant.steady[variant.steady["kind"] == "convolution"]
    if convs.empty:
        return False
    try:
        stem = parse_problem(str(convs["problem"].iloc[0]))
    except ValueError:  # FieldError: a descriptor the grammar keeps as text
        return False
    return all(stem.get(key) == value for key, value in (("ic", 3), ("kh", 7), ("sh", 2)))
