"""Traces for exporter tests: tiny hand-made ones, and real corpus runs labelled from truth.

`labelled_corpus_trace` parses a real log with `dnnprof.parse` and fills the iteration,
phase and layer columns from the corpus ground truth, the way the layer reconstructor
will, so exporter tests do not depend on the reconstructor's heuristics.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from support.corpus import CORPUS

PRIMITIVE_DEFAULTS: dict[str, Any] = {
    "op": "exec",
    "cache": "",
    "api": "primitive",
    "engine": "cpu",
    "kind": "convolution",
    "impl": "brg_conv_fwd:avx512_core",
    "isa": "avx512_core",
    "prop": "forward_inference",
    "src_dt": "f32",
    "wei_dt": "f32",
    "dst_dt": "f32",
    "src_fmt": "acdb",
    "wei_fmt": "AcdB16a",
    "dst_fmt": "acdb",
    "mds": "src:f32::blocked:acdb::f0 wei:f32:a:blocked:AcdB16a::f0 bia:f32:a:blocked:a::f0 dst:f32::blocked:acdb::f0",
    "attrs": "attr-scratchpad:user",
    "post_ops": "",
    "has_scales": False,
    "has_zero_points": False,
    "fpmath": "",
    "alg": "convolution_direct",
    "aux": "alg:convolution_direct",
    "problem": "mb1_ic16oc32_ih28oh26kh3sh1dh0ph0_iw28ow26kw3sw1dw0pw0",
    "flops": 2 * 32 * 16 * 26 * 26 * 9.0,
    "message": "",
    "desc_id": 0,
    "iteration": -1,
    "phase": "",
    "layer": "",
    "layer_type": "",
}


def make_trace(rows: list[dict[str, Any]], metadata: dict[str, Any] | None = None):
    """A Trace from row dicts (missing fields take PRIMITIVE_DEFAULTS).

    Rows need `duration_ms`; `start_ms` defaults to the exec times laid end to end, and
    `ts_ms` (when given for every row) switches the timeline to "timestamps".
    """
    from dnnprof.trace import Trace, normalize_events

    full = [{**PRIMITIVE_DEFAULTS, "line": i + 1, **row} for i, row in enumerate(rows)]
    frame = pd.DataFrame(full)
    has_ts = "ts_ms" in frame and frame["ts_ms"].notna().all()
    if "start_ms" not in frame or frame["start_ms"].isna().any():
        if has_ts:
            frame["start_ms"] = frame["ts_ms"] - frame["ts_ms"].min()
        else:
            durations = frame["duration_ms"].fillna(0.0).to_numpy()
            frame["start_ms"] = np.concatenate(([0.0], np.cumsum(durations)[:-1]))
    if "ts_ms" not in frame:
        frame["ts_ms"] = np.nan
    meta = {
        "format_version": 1,
        "source": "<test>",
        "onednn_version": "v3.12.0",
        "dialect": "onednn_v1",
        "isa": "Intel AVX-512",
        "runtime": "OpenMP",
        "threads": 2,
        "timeline": "timestamps" if has_ts else "synthetic",
        "counts": {"lines": len(rows), "exec": len(rows)},
        "warnings": [],
    }
    meta.update(metadata or {})
    return Trace(normalize_events(frame), meta)


def small_run(
    timestamps: bool = True, iterations: int = 4, t0_ms: float = 1_795_230_460_599.983887
):
    """A made-up run: per iteration a conv layer (reorder + fused conv), a layer-less reorder,
    and a relu layer; iteration 0 is the warm-up. Gaps between primitives, like a real log."""
    rows: list[dict[str, Any]] = []
    t = t0_ms
    for it in range(iterations):
        phase = "warmup" if it == 0 else "measure"
        for kind, layer, layer_type, post_ops, dur in (
            ("reorder", "conv1", "Conv2d", "", 0.0123),
            ("convolution", "conv1", "Conv2d", "eltwise_relu", 0.5117),
            ("reorder", "", "", "", 0.002),
            ("eltwise", "relu", "ReLU", "", 0.0417),
        ):
            row = {
                "kind": kind,
                "layer": layer,
                "layer_type": layer_type,
                "post_ops": post_ops,
                "duration_ms": dur,
                "iteration": it,
                "phase": phase,
                "has_scales": kind == "convolution",
            }
            if kind == "reorder":
                row.update(
                    impl="jit:uni",
                    isa="uni",
                    prop="undef",
                    alg="",
                    aux="",
                    flops=np.nan,
                    problem="64x3x7x7",
                    wei_dt="",
                    wei_fmt="",
                    mds="src:f32::blocked:abcd::f0 dst:f32::blocked:Acdb16a::f0",
                )
            if kind == "eltwise":
                row.update(
                    impl="jit:avx512_core",
                    alg="eltwise_relu",
                    aux="alg:eltwise_relu alpha:0 beta:0",
                    flops=np.nan,
                    problem="1x32x26x26",
                    wei_dt="",
                    wei_fmt="",
                    mds="data:f32::blocked:acdb::f0 diff:undef::undef:::",
                )
            if post_ops:
                row["attrs"] = (
                    "attr-scratchpad:user attr-scales:src0:0:f32+wei:1:f32 attr-post-ops:eltwise_relu"
                )
            if timestamps:
                row["ts_ms"] = t
            rows.append(row)
            t += dur + 0.0071  # framework time between oneDNN calls
        t += 0.25  # between iterations
    return make_trace(rows, {"model": "tiny", "variant": "fp32", "framework": "test"})


# --------------------------------------------------------------- corpus ----

PHASE_OF_ITERATION_KIND = {"warmup": "warmup", "measure": "measure"}


@cache
def _parsed(name: str):
    import dnnprof

    return dnnprof.parse(CORPUS / f"{name}.log")


def labelled_corpus_trace(name: str):
    """A real corpus log, parsed, with iteration/phase/layer filled from its truth file."""
    from dnnprof.trace import normalize_events

    trace = copy.deepcopy(_parsed(name))
    truth = json.loads((CORPUS / f"{name}.truth.json").read_text())
    base = int(truth.get("line_index_base", 0))
    by_line = {entry["line"] - base + 1: entry for entry in truth["exec_lines"]}
    events = trace.events.copy()
    iteration, phase, layer, layer_type = [], [], [], []
    for line in events["line"].to_numpy():
        entry = by_line.get(int(line))
        if entry is None:
            iteration.append(-1), phase.append(""), layer.append(""), layer_type.append("")
            continue
        it = entry.get("iter")
        iteration.append(-1 if it is None else int(it))
        kind = entry.get("iter_kind")
        phase.append(PHASE_OF_ITERATION_KIND.get(kind, entry.get("phase") or ""))
        layer.append(entry.get("module") or "")
        layer_type.append(entry.get("module_type") or "")
    events["iteration"] = np.asarray(iteration, dtype=np.int32)
    for column, values in (("phase", phase), ("layer", layer), ("layer_type", layer_type)):
        events[column] = pd.Categorical(values)
    trace.events = normalize_events(events)
    meta = json.loads((CORPUS / f"{name}.meta.json").read_text())
    for key in ("model", "variant", "framework", "framework_version", "batch"):
        if key in meta and not isinstance(meta[key], (dict, list)):
            setattr(trace.metadata, key, meta[key])
    return trace


def with_timestamps(trace, t0_ms: float = 1_795_230_460_599.983887, gap_ms: float = 0.0137):
    """The same trace as if captured with ONEDNN_VERBOSE_TIMESTAMP=1: a start timestamp on
    every exec line, with framework time between calls."""
    out = copy.deepcopy(trace)
    events = out.events
    is_exec = (events["op"].astype(str) == "exec").to_numpy()
    durations = np.where(is_exec, events["duration_ms"].fillna(0.0).to_numpy(), 0.0)
    steps = np.where(is_exec, durations + gap_ms, 0.0)
    starts = np.concatenate(([0.0], np.cumsum(steps)[:-1]))
    events["ts_ms"] = np.where(is_exec, t0_ms + starts, np.nan)
    events["start_ms"] = starts
    out.metadata.timeline = "timestamps"
    return out
