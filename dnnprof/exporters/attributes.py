"""Span attributes: what a primitive span carries from its row, and what the run span carries
from the Trace's metadata. Keys are `onednn.*` (the log's facts) and `dnnprof.*` (dnnprof's
own labels); values are str/bool/int/float so that every span format can hold them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import __version__
from dnnprof.metadata import TraceMetadata
from dnnprof.trace import Trace

AttributeValue = str | bool | int | float

# (trace.events column, attribute key) for primitive spans; empty values are left out.
PRIMITIVE_COLUMNS = (
    ("api", "onednn.api"),
    ("engine", "onednn.engine"),
    ("kind", "onednn.kind"),
    ("impl", "onednn.impl"),
    ("isa", "onednn.isa"),
    ("prop", "onednn.prop_kind"),
    ("src_dt", "onednn.src_dt"),
    ("wei_dt", "onednn.wei_dt"),
    ("dst_dt", "onednn.dst_dt"),
    ("src_fmt", "onednn.src_fmt"),
    ("wei_fmt", "onednn.wei_fmt"),
    ("dst_fmt", "onednn.dst_fmt"),
    ("post_ops", "onednn.post_ops"),
    ("fpmath", "onednn.fpmath"),
    ("alg", "onednn.alg"),
    ("problem", "onednn.problem"),
    ("mds", "onednn.mds"),
    ("attrs", "onednn.attrs"),
    ("aux", "onednn.aux"),
    ("layer", "dnnprof.layer"),
    ("layer_type", "dnnprof.layer_type"),
    ("phase", "dnnprof.phase"),
)
# problem dimensions of the per-descriptor table, when the Trace has one
DIMENSION_COLUMNS = (
    "mb", "g", "ic", "oc", "id", "ih", "iw", "od", "oh", "ow", "kd", "kh", "kw",
    "sd", "sh", "sw", "dd", "dh", "dw", "pd", "ph", "pw", "m", "n", "k", "batch",
)


def plain(value: Any) -> AttributeValue | None:
    """A value every span format can carry (str/bool/int/float), or None for 'absent'."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    text = str(value)
    return text if text else None


def dimension_lookup(trace: Trace) -> dict[int, dict[str, AttributeValue]]:
    """desc_id -> problem dimensions, from `trace.descriptors` when the Trace has it."""
    # getattr: only traces whose parser stored a per-descriptor table have one
    descriptors = getattr(trace, "descriptors", None)
    if not isinstance(descriptors, pd.DataFrame) or descriptors.empty:
        return {}
    columns = [c for c in DIMENSION_COLUMNS if c in descriptors]
    ids = descriptors["desc_id"] if "desc_id" in descriptors else descriptors.index
    lookup: dict[int, dict[str, AttributeValue]] = {}
    for desc_id, (_, row) in zip(ids, descriptors[columns].iterrows(), strict=True):
        dims = {f"onednn.dims.{c}": plain(row[c]) for c in columns}
        lookup[int(desc_id)] = {k: v for k, v in dims.items() if v is not None}
    return lookup


def primitive_name(kind: str, api: str, post_ops: str) -> str:
    """`convolution`, `convolution+sum+eltwise_relu` (fused), `graph:convolution_post_ops`."""
    if api == "graph":
        return f"graph:{kind}"
    return f"{kind}+{post_ops}" if post_ops else kind


ROW_COLUMNS = ("layer", "layer_type", "phase")  # per call; every other column is per descriptor


class PrimitiveAttributes:
    """Span attributes of primitive rows. The descriptor part (kind, impl, types, formats,
    problem, FLOPs ...) is the same for thousands of calls, so it is built once per distinct
    descriptor and copied; only the timing, line, iteration and layer change per call."""

    def __init__(self, dims: dict[int, dict[str, AttributeValue]]) -> None:
        self.dims = dims
        self.static_columns = [(c, k) for c, k in PRIMITIVE_COLUMNS if c not in ROW_COLUMNS]
        self.row_columns = [(c, k) for c, k in PRIMITIVE_COLUMNS if c in ROW_COLUMNS]
        self.cache: dict[tuple[Any, ...], dict[str, AttributeValue]] = {}

    def descriptor_part(self, row: Any) -> dict[str, AttributeValue]:
        """The attributes every call of this row's descriptor shares (built once, cached)."""
        key = tuple(getattr(row, c, None) for c, _ in self.static_columns) + (
            row.has_scales,
            row.has_zero_points,
            row.flops,
            row.desc_id,
        )
        cached = self.cache.get(key)
        if cached is None:
            cached = {"dnnprof.level": "primitive"}
            for column, attr in self.static_columns:
                value = plain(getattr(row, column, None))
                if value is not None:
                    cached[attr] = value
            cached["onednn.fused"] = bool(str(getattr(row, "post_ops", "") or ""))
            cached["onednn.reorder"] = str(row.kind) == "reorder"
            cached["onednn.has_scales"] = bool(row.has_scales)
            cached["onednn.has_zero_points"] = bool(row.has_zero_points)
            flops = plain(row.flops)
            if flops is not None:
                cached["onednn.flops"] = flops
            cached.update(self.dims.get(int(row.desc_id), {}))
            self.cache[key] = cached
        return cached

    def __call__(self, row: Any) -> dict[str, AttributeValue]:
        """The attributes of one primitive span (an `itertuples` row of trace.events)."""
        attrs = dict(self.descriptor_part(row))
        for column, attr in self.row_columns:
            value = plain(getattr(row, column, None))
            if value is not None:
                attrs[attr] = value
        duration_ms = plain(row.duration_ms)
        if duration_ms is not None:
            attrs["onednn.exec_time_ms"] = duration_ms
            flops = attrs.get("onednn.flops")
            if flops is not None and duration_ms:
                attrs["onednn.gflops_per_s"] = float(flops) / (duration_ms * 1e6)
        attrs["dnnprof.line"] = int(row.line)
        attrs["dnnprof.iteration"] = int(row.iteration)
        return attrs


# (TraceMetadata attribute, span attribute key) of the run span
RUN_METADATA = (
    ("model", "dnnprof.model"),
    ("variant", "dnnprof.variant"),
    ("framework", "dnnprof.framework"),
    ("framework_version", "dnnprof.framework_version"),
    ("batch", "dnnprof.batch"),
    ("threads", "onednn.threads"),
    ("onednn_version", "onednn.version"),
    ("onednn_commit", "onednn.commit"),
    ("isa", "onednn.isa"),
    ("runtime", "onednn.runtime"),
    ("dialect", "onednn.verbose_dialect"),
    ("source", "dnnprof.source"),
    ("command", "dnnprof.command"),
)


def run_name(metadata: TraceMetadata) -> str:
    """`resnet50 int8`, else `dnnprof <log file name>`, else `dnnprof run`."""
    parts = [str(value) for value in (metadata.model, metadata.variant) if value]
    if parts:
        return " ".join(parts)
    source = str(metadata.source or "")
    return f"dnnprof {source.rsplit('/', 1)[-1]}" if source else "dnnprof run"


def run_attributes(metadata: TraceMetadata) -> dict[str, AttributeValue]:
    """The run span's attributes: the model, the run's settings and the oneDNN build."""
    attrs: dict[str, AttributeValue] = {"dnnprof.level": "run"}
    for name, attr in RUN_METADATA:
        value = getattr(metadata, name)
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        value = plain(value)
        if value is not None:
            attrs[attr] = value
    attrs["dnnprof.timeline"] = str(metadata.timeline or "synthetic")
    attrs["dnnprof.version"] = str(metadata.dnnprof_version or __version__)
    return attrs
