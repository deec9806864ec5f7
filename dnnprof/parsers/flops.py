"""Operation counts from problem descriptors, by benchdnn's conventions.

Convolution and deconvolution count only the kernel taps that land inside the
input (taps over padding are not counted), as benchdnn's `conv_aux.cpp` does;
for a 7x7 map with 3x3 kernels that is ~18 % below the naive
`2*mb*oc*ic/g*oh*ow*kh*kw`. Inner product is `2*mb*ic*oc*id*ih*iw`, matmul
`2*prod(dst_dims)*K`, rnn `n_dir*L*T*2*(n_gates*dhc)*mb*(sic+slc)` (x2 backward).
Other primitives have no FLOPs (NaN): they are memory-bound and measured in time.
"""

from __future__ import annotations

import math
from functools import lru_cache

from dnnprof.parsers.events import Problem

_RNN_GATES = {
    "vanilla_rnn": 1,
    "vanilla_lstm": 4,
    "vanilla_gru": 3,
    "lbr_gru": 3,
    "vanilla_augru": 3,
    "lbr_augru": 3,
}


@lru_cache(maxsize=4096)  # a model has few distinct (size, kernel, stride, pad) per dimension
def _taps_inside(out_size: int, in_size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    """Count (output position, kernel tap) pairs whose input index is inside [0, in_size)."""
    step = dilation + 1  # verbose dilation is 0-based
    total = 0
    for k in range(kernel):
        offset = k * step - pad
        # o*stride + offset must fall in [0, in_size): o in [lo, hi]
        lo = max(0, -(offset // stride))
        hi = min(out_size - 1, (in_size - 1 - offset) // stride)
        if hi >= lo:
            total += hi - lo + 1
    return total


def conv_flops(problem: Problem, deconv: bool = False) -> float | None:
    """FLOPs of a (de)convolution descriptor, padding taps excluded; None if incomplete."""
    v = problem.values
    try:
        mb, ic, oc = v["mb"], v["ic"], v["oc"]
    except KeyError:
        return None
    groups = v.get("g", 1)
    spatial = 1
    for i_key, o_key, k_key, s_key, d_key, p_key in _SPATIAL_KEYS:
        if k_key not in v and i_key not in v:
            continue
        i_size, o_size = v.get(i_key, 1), v.get(o_key, 1)
        if deconv:  # a deconvolution is the transposed convolution: swap in and out
            i_size, o_size = o_size, i_size
        spatial *= _taps_inside(
            int(o_size), int(i_size), int(v.get(k_key, 1)), int(v.get(s_key, 1)) or 1,
            int(v.get(d_key, 0)), int(v.get(p_key, 0)),
        )
    return 2.0 * mb * oc * (ic / groups) * spatial


_SPATIAL_KEYS = tuple(tuple(f"{key}{d}" for key in "ioksdp") for d in "dhw")


def ip_flops(problem: Problem) -> float | None:
    """FLOPs of an inner product: 2*mb*ic*oc*id*ih*iw."""
    v = problem.values
    if not all(k in v for k in ("mb", "ic", "oc")):
        return None
    return 2.0 * v["mb"] * v["ic"] * v["oc"] * v.get("id", 1) * v.get("ih", 1) * v.get("iw", 1)


def matmul_flops(problem: Problem) -> float | None:
    """FLOPs of a matmul `[B..x]MxK:[B..x]KxN`: 2*prod(dst dims)*K; None for runtime dims."""
    if len(problem.dims) < 2:
        return None
    src, wei = problem.dims[0], problem.dims[1]
    if None in src or None in wei or len(src) < 2 or len(wei) < 2:
        return None
    rank = max(len(src), len(wei))
    src_b = (1,) * (rank - len(src)) + tuple(src)
    wei_b = (1,) * (rank - len(wei)) + tuple(wei)
    batch = [max(a, b) for a, b in zip(src_b[:-2], wei_b[:-2], strict=True)]
    m, k, n = src_b[-2], src_b[-1], wei_b[-1]
    return 2.0 * math.prod(batch) * m * n * k


def rnn_flops(problem: Problem, alg: str, direction: str, prop: str) -> float | None:
    """FLOPs of an rnn descriptor `l..t..mb..sic..slc..dhc..dic..`."""
    v = problem.values
    if not all(k in v for k in ("l", "t", "mb", "slc", "dhc")):
        return None
    gates = _RNN_GATES.get(alg, 1)
    n_dir = 2 if direction.startswith("bidirectional") else 1
    sic = v.get("sic", v["dhc"])
    ops = n_dir * v["l"] * v["t"] * 2 * gates * v["dhc"] * v["mb"] * (sic + v["slc"])
    return float(ops * (2 if prop.startswith("backward") else 1))


def descriptor_flops(
    kind: str, problem: Problem, aux: tuple[tuple[str, str], ...], prop: str
) -> float | None:
    """FLOPs for any primitive kind, or None where no convention exists."""
    if kind == "convolution":
        return conv_flops(problem)
    if kind == "deconvolution":
        return conv_flops(problem, deconv=True)
    if kind == "inner_product":
        return ip_flops(problem)
    if kind in ("matmul", "gemm_api", "gemm"):
        return matmul_flops(problem)
    if kind == "rnn":
        values = dict(aux)
        return rnn_flops(problem, values.get("alg", ""), values.get("direction", ""), prop)
    return None
