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

from dnnprof.parsers.events import Problem

_RNN_GATES = {
    "vanilla_rnn": 1,
    "vanilla_lstm": 4,
    "vanilla_gru": 3,
    "lbr_gru": 3,
    "vanilla_augru": 3,
    "lbr_augru": 3,
}


def _taps_inside(out_size: int, in_size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    """Count (output position, kernel tap) pairs whose input index is inside [0, in_size).

    In closed form: a descriptor may name any size (`kh999999999`), so nothing loops over one.
    Tap k reaches input o*stride + k*step - pad; the outputs it serves are those o in
    [ceil((pad - k*step)/stride), floor((in_size - 1 + pad - k*step)/stride)] within
    [0, out_size); summed over k as floor sums, each in O(log) steps.
    """
    step = max(dilation, 0) + 1  # verbose dilation is 0-based
    stride = max(stride, 1)
    if out_size <= 0 or in_size <= 0 or kernel <= 0:
        return 0
    last_out = out_size - 1
    reach = in_size - 1 + pad  # o*stride <= reach - k*step
    # taps that serve at least one output: reach - k*step >= 0 and pad - k*step <= last_out*stride
    k_lo = max(0, _ceil_div(pad - last_out * stride, step))
    k_hi = min(kernel - 1, reach // step)
    if k_lo > k_hi:
        return 0
    # tap k serves every output up to last_out while k <= k_full_hi, and every output from 0
    # once k >= k_full_lo
    k_full_hi = (reach - last_out * stride) // step
    k_full_lo = _ceil_div(pad, step)
    upper = _span(k_lo, min(k_hi, k_full_hi)) * last_out
    lo, hi = max(k_lo, k_full_hi + 1), k_hi
    if lo <= hi:  # sum of floor((reach - k*step)/stride), k = lo..hi, reindexed j = hi - k
        upper += _floor_sum(hi - lo + 1, stride, step, reach - hi * step)
    lower = 0
    lo, hi = k_lo, min(k_hi, k_full_lo - 1)
    if lo <= hi:  # sum of ceil((pad - k*step)/stride) = -sum of floor((k*step - pad)/stride)
        lower = -_floor_sum(hi - lo + 1, stride, step, lo * step - pad)
    return upper - lower + _span(k_lo, k_hi)


def _span(lo: int, hi: int) -> int:
    return max(0, hi - lo + 1)


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _floor_sum(n: int, m: int, a: int, b: int) -> int:
    """Sum of floor((a*i + b) / m) for i in [0, n), m >= 1, any a and b (Euclid-like, O(log))."""
    total = 0
    if not 0 <= a < m:
        quotient, a = divmod(a, m)
        total += quotient * (n * (n - 1) // 2)
    if not 0 <= b < m:
        quotient, b = divmod(b, m)
        total += quotient * n
    while True:
        if a >= m:
            total += (n * (n - 1) // 2) * (a // m)
            a %= m
        if b >= m:
            total += n * (b // m)
            b %= m
        y_max = a * n + b
        if y_max < m:
            return total
        n, b = divmod(y_max, m)
        m, a = a, m


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
    """FLOPs for any primitive kind, or None where no convention exists (or it overflows a float)."""
    try:
        return _flops(kind, problem, aux, prop)
    except OverflowError:  # a hostile descriptor's product beyond 1e308
        return None


def _flops(
    kind: str, problem: Problem, aux: tuple[tuple[str, str], ...], prop: str
) -> float | None:
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
