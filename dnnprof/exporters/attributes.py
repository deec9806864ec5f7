"""Span attributes and names: what a primitive span carries from its row, a layer span from
its primitives, and the run span and the resource from the Trace's metadata. Keys are
`onednn.*` (the log's facts) and `dnnprof.*` (dnnprof's own labels); values are
str/bool/int/float so that every span format can hold them.

Names are what Jaeger lists and lines up: the run span is the model, an iteration span is
`iteration`, a layer span is the layer's module name, a primitive span its kind (with the
fused post-ops). None carries a variant, an iteration number or a time, so the FP32 and the
INT8 trace of one model have the same operation names and Jaeger's trace comparison pairs
them layer by layer; those facts are attributes, and the run's identity (model, variant,
framework, oneDNN build, host ...) is on the resource, where Jaeger's search finds it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dnnprof import __version__
from dnnprof.metadata import TraceMetadata
from dnnprof.reconstruct.primitives import describe
from dnnprof.trace import Trace
from dnnprof.vocabulary import COMPUTE_KINDS, INT8_TYPES

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
    ("fused_layers", "dnnprof.fused_layers"),  # set by reconstruct: the layers it also covers
    ("reorder_class", "dnnprof.reorder_class"),  # weight_prepack, boundary ... (reorders)
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


def _dims_text(dims: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in dims)


def human_shape(kind: str, problem: str, alg: str = "") -> str:
    """What a primitive computes, as a reader says it: `1x64x56x56 -> 1x256x56x56, kernel
    1x1`, `1x2048 x 2048x1000 -> 1x1000`, `1x64x112x112`; '' when the problem has no sizes."""
    shape = describe(kind, problem, alg)
    if not shape.src:
        return ""
    src, dst = _dims_text(shape.src), _dims_text(shape.dst)
    if kind == "matmul" and shape.weights:
        src = f"{src} x {_dims_text(shape.weights[0])}"
    # an element-wise primitive is one shape; a convolution keeps its arrow
    text = src if src == dst and not shape.is_compute else f"{src} -> {dst}"
    dims = shape.dims
    if shape.category in ("conv", "deconv", "pool") and "kh" in dims:
        text += f", kernel {dims['kh']}x{dims['kw']}"
        stride_h, stride_w = dims.get("sh", 1), dims.get("sw", 1)
        if (stride_h, stride_w) != (1, 1):
            text += f" stride {stride_h}" + ("" if stride_h == stride_w else f"x{stride_w}")
    if dims.get("g", 1) > 1:
        text += f", {dims['g']} groups"
    return text


def data_types(attrs: dict[str, AttributeValue]) -> str:
    """`src:u8 wei:s8 dst:f32` from a primitive span's `onednn.*_dt` attributes."""
    roles = ("src", "wei", "dst")
    return " ".join(f"{r}:{attrs[f'onednn.{r}_dt']}" for r in roles if f"onednn.{r}_dt" in attrs)


def _main_primitive(primitives: list[dict[str, AttributeValue]]) -> dict[str, AttributeValue]:
    """The primitive a layer is about: its longest compute primitive, else its longest
    primitive that is not a reorder, else its longest."""
    def exec_ms(attrs: dict[str, AttributeValue]) -> float:
        return float(attrs.get("onednn.exec_time_ms", 0.0))

    compute = [a for a in primitives if a.get("onednn.kind") in COMPUTE_KINDS]
    others = [a for a in primitives if not a.get("onednn.reorder")]
    return max(compute or others or primitives, key=exec_ms)


def layer_attributes(
    primitives: list[dict[str, AttributeValue]], layer: str, layer_type: str
) -> dict[str, AttributeValue]:
    """A layer span's attributes from its primitives' (in time order): type, shape and data
    types of its main primitive, the post-ops fused into it, reorders, time and GFLOP/s.
    The share of its iteration is added by the iteration (`share_of`)."""
    fused_ops = sorted({str(a["onednn.post_ops"]) for a in primitives if "onednn.post_ops" in a})
    reorders = [a for a in primitives if a.get("onednn.reorder")]
    exec_ms = sum(float(a.get("onednn.exec_time_ms", 0.0)) for a in primitives)
    attrs: dict[str, AttributeValue] = {
        "dnnprof.level": "layer",
        "dnnprof.layer": layer,
        "dnnprof.primitives": len(primitives),
        "dnnprof.reorders": len(reorders),
        "dnnprof.reorder_time_ms": sum(
            (float(a.get("onednn.exec_time_ms", 0.0)) for a in reorders), 0.0
        ),
        "dnnprof.fused": bool(fused_ops),
        "dnnprof.exec_time_ms": exec_ms,
    }
    if layer_type:
        attrs["dnnprof.layer_type"] = layer_type
    if fused_ops:
        attrs["dnnprof.fused_ops"] = ",".join(fused_ops)
    fused_layers = sorted(
        {name for a in primitives for name in str(a.get("dnnprof.fused_layers", "")).split("+")}
        - {""}
    )
    if fused_layers:
        attrs["dnnprof.fused_layers"] = "+".join(fused_layers)
    main = _main_primitive(primitives)
    if "dnnprof.shape" in main:
        attrs["dnnprof.shape"] = main["dnnprof.shape"]
    types = data_types(main)
    if types:
        attrs["dnnprof.data_types"] = types
    flops = sum(float(a["onednn.flops"]) for a in primitives if "onednn.flops" in a)
    if flops:
        attrs["dnnprof.flops"] = flops
        if exec_ms > 0:
            attrs["dnnprof.gflops_per_s"] = flops / (exec_ms * 1e6)
    return attrs


def share_of(part_ms: float, whole_ms: float) -> float:
    """`part_ms` as a percentage of `whole_ms`, to 0.01 (0 when the whole took no time)."""
    return round(100.0 * part_ms / whole_ms, 2) if whole_ms > 0 else 0.0


# per call; every other column is per descriptor
ROW_COLUMNS = ("layer", "layer_type", "phase", "fused_layers", "reorder_class")


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
            plain(row.flops),  # not the float: NaN != NaN, so every unknown count missed
            row.desc_id,
        )
        cached = self.cache.get(key)
        if cached is None:
            cached = {"dnnprof.level": "primitive"}
            for column, attr in self.static_columns:
                value = plain(getattr(row, column, None))
                if value is not None:
                    cached[attr] = value
            shape = human_shape(str(row.kind), str(row.problem or ""), str(row.alg or ""))
            if shape:
                cached["dnnprof.shape"] = shape
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


# (TraceMetadata attribute, attribute key) of what identifies a run: on the resource, where
# Jaeger's search filters by it, and on the run span
RUN_IDENTITY = (
    ("model", "dnnprof.model"),
    ("route", "dnnprof.route"),
    ("framework", "dnnprof.framework"),
    ("framework_version", "dnnprof.framework_version"),
    ("batch", "dnnprof.batch"),
    ("threads", "onednn.threads"),
    ("onednn_version", "onednn.version"),
    ("onednn_commit", "onednn.commit"),
    ("isa", "onednn.isa"),
    ("host", "host.name"),  # recorded by `dnnprof trace`; a captured log's host is unknown
    ("git_commit", "dnnprof.git_commit"),
)
# ... and what only the run span carries
RUN_DETAILS = (
    ("runtime", "onednn.runtime"),
    ("dialect", "onednn.verbose_dialect"),
    ("source", "dnnprof.source"),
    ("command", "dnnprof.command"),
)


def run_name(metadata: TraceMetadata) -> str:
    """The model (`resnet50`), else `run`: the same for every variant of one model."""
    return str(metadata.model) if metadata.model else "run"


def _metadata_attributes(
    metadata: TraceMetadata, pairs: tuple[tuple[str, str], ...]
) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {}
    for name, attr in pairs:
        value = getattr(metadata, name)
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        value = plain(value)
        if value is not None:
            attrs[attr] = value
    return attrs


def run_identity(metadata: TraceMetadata, rows: pd.DataFrame) -> dict[str, AttributeValue]:
    """What identifies the run: model, variant (inferred from `rows` when the trace does not
    say), route, framework, oneDNN build, ISA, threads, batch, host and commit when recorded,
    dnnprof version, timeline, and the run-conditions verdict when recorded."""
    attrs = _metadata_attributes(metadata, RUN_IDENTITY)
    attrs["dnnprof.variant"] = str(metadata.variant or infer_variant(rows))
    attrs["dnnprof.variant_inferred"] = not metadata.variant
    attrs["dnnprof.version"] = str(metadata.dnnprof_version or __version__)
    attrs["dnnprof.timeline"] = str(metadata.timeline or "synthetic")
    if metadata.conditions is not None:  # quiet, busy, unreliable: how far to trust the times
        attrs["dnnprof.run_verdict"] = metadata.conditions.verdict
    return attrs


def run_details(metadata: TraceMetadata) -> dict[str, AttributeValue]:
    """What the run span carries beside the identity: runtime, dialect, source, command."""
    return _metadata_attributes(metadata, RUN_DETAILS)


def resource_attributes(
    identity: dict[str, AttributeValue], service_name: str
) -> dict[str, AttributeValue]:
    """The OTLP resource (Jaeger's "process"): the service, and the run's identity."""
    return {"service.name": service_name, "service.version": __version__, **identity}


def infer_variant(rows: pd.DataFrame) -> str:
    """The numeric path the rows show: the data type that took most of the compute time
    (int8, bf16, f16, else fp32), and `fused` for fp32 whose compute time is mostly in
    primitives with post-ops. Compute primitives are convolutions, inner products, matmuls
    and RNNs; a log without any is judged on all its primitives."""
    compute = rows[rows["kind"].astype(str).isin(COMPUTE_KINDS)]
    if compute.empty:
        compute = rows
    if compute.empty:
        return "fp32"
    src, wei = compute["src_dt"].astype(str), compute["wei_dt"].astype(str)
    path = np.select(
        [src.isin(INT8_TYPES) | wei.isin(INT8_TYPES), (src == "bf16") | (wei == "bf16"),
         (src == "f16") | (wei == "f16")],
        ["int8", "bf16", "f16"],
        "fp32",
    )
    weight = compute["duration_ms"].fillna(0.0).to_numpy(dtype=float)
    if not weight.sum() > 0:  # no times (or all zero): count the calls
        weight = np.ones(len(compute))
    totals = pd.Series(weight).groupby(path).sum()
    dominant = str(totals.idxmax())
    fused = (compute["post_ops"].astype(str) != "").to_numpy()
    if dominant == "fp32" and weight[fused].sum() > 0.5 * weight.sum():
        return "fused"
    return dominant
