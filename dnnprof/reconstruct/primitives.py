"""What a primitive computes, in the terms a layer table speaks: category and dimensions.

One `PrimitiveShape` per distinct descriptor (a run repeats a few hundred of them), decoded
from the events-frame columns only, so the reconstructor never re-parses a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod

from dnnprof.parsers.fields import FieldError, parse_problem
from dnnprof.vocabulary import COMPUTE_CATEGORIES, category_of

# Plain (user) layouts: what a framework hands to oneDNN and expects back.
_PLAIN_FORMAT = re.compile(r"^(a|ab|abc|abcd|abcde|ba|acb|acdb|acdeb|x|nc|ncw|nchw|ncdhw|nwc|nhwc|ndhwc|oi|io|oihw|hwio|any)$")


@dataclass(frozen=True)
class PrimitiveShape:
    """Category and dimensions of one descriptor, for matching and data-flow checks."""

    kind: str
    category: str
    alg: str = ""
    dims: dict[str, int] = field(default_factory=dict, compare=False)  # benchdnn keys
    src: tuple[int, ...] = ()  # activation dims in (mb, c, spatial...) order, or matmul src
    dst: tuple[int, ...] = ()
    weights: tuple[tuple[int, ...], ...] = ()  # weight dims a reorder may be printed with
    src_fmt: str = ""
    dst_fmt: str = ""
    post_ops: str = ""
    has_bias: bool = False

    @property
    def is_compute(self) -> bool:
        """Convolution, deconvolution, inner product, matmul or rnn."""
        return self.category in COMPUTE_CATEGORIES


def is_plain_format(tag: str) -> bool:
    """A user layout such as `abcd`/`nchw`/`acdb` rather than a blocked oneDNN one."""
    return bool(_PLAIN_FORMAT.match(tag or ""))


def _spatial(values: dict[str, int], prefix: str) -> tuple[int, ...]:
    """(d, h, w) present in a kv descriptor for `i`/`o`/`k`/`s`/`p`, w defaulting to h."""
    d, h, w = values.get(prefix + "d"), values.get(prefix + "h"), values.get(prefix + "w")
    if h is None and w is None:
        return ()
    if h is None:
        h = w
    if w is None:
        w = h
    return (d, h, w) if d is not None else (h, w)


def _kv_dims(text: str) -> dict[str, int]:
    try:
        problem = parse_problem(text)
    except (FieldError, ValueError):
        return {}
    return {k: int(v) for k, v in problem.values.items() if float(v).is_integer()}


def _dims_lists(text: str) -> tuple[tuple[int, ...], ...]:
    try:
        problem = parse_problem(text)
    except (FieldError, ValueError):
        return ()
    return tuple(tuple(d or 0 for d in dims) for dims in problem.dims)


def _conv_shape(values: dict[str, int]) -> tuple[dict[str, int], tuple, tuple, tuple]:
    mb, g = values.get("mb", 1), values.get("g", 1)
    ic, oc = values.get("ic", 0), values.get("oc", 0)
    isp, osp, ksp = _spatial(values, "i"), _spatial(values, "o"), _spatial(values, "k")
    dims = dict(values)
    dims.setdefault("g", 1)
    for key, seq in (("ih", isp), ("oh", osp), ("kh", ksp)):
        if seq:
            dims[key], dims[key[0] + "w"] = seq[-2], seq[-1]
    for prefix in ("s", "p"):
        seq = _spatial(values, prefix)
        if seq:
            dims[prefix + "h"], dims[prefix + "w"] = seq[-2], seq[-1]
        else:
            dims[prefix + "h"] = dims[prefix + "w"] = 1 if prefix == "s" else 0
    src = (mb, ic, *isp)
    dst = (mb, oc, *osp)
    per_group = (oc // g if g else oc, ic // g if g else ic, *ksp)
    weights = [(oc, ic // max(g, 1), *ksp), (ic, oc // max(g, 1), *ksp)]
    if g > 1:
        weights += [(g, *per_group), (g, oc // g, 1, *ksp), (g, 1, 1, *ksp)]
    return dims, src, dst, tuple(weights)


def describe(
    kind: str, problem: str, alg: str = "", src_fmt: str = "", dst_fmt: str = "",
    post_ops: str = "", mds: str = "",
) -> PrimitiveShape:
    """Decode one descriptor's category and dimensions from its events-frame columns."""
    category = category_of(kind)
    if kind == "binary":  # a binary add is the residual add a layer table names
        category = "add" if alg == "binary_add" else "binary"
    has_bias = bool(re.search(r"\bbia[_:](f|s|u|bf)\d", mds))
    common = {"kind": kind, "category": category, "alg": alg, "src_fmt": src_fmt,
              "dst_fmt": dst_fmt, "post_ops": post_ops, "has_bias": has_bias}
    if category in ("conv", "deconv"):
        dims, src, dst, weights = _conv_shape(_kv_dims(problem))
        return PrimitiveShape(dims=dims, src=src, dst=dst, weights=weights, **common)
    if kind == "inner_product":
        values = _kv_dims(problem)
        mb, ic, oc = values.get("mb", 1), values.get("ic", 0), values.get("oc", 0)
        isp = _spatial(values, "i")
        features = ic * prod(isp) if isp else ic
        dims = {"ic": features, "oc": oc}
        weights = ((oc, ic, *isp), (oc, features), (features, oc))
        return PrimitiveShape(dims=dims, src=(mb, features), dst=(mb, oc), weights=weights, **common)
    if kind == "matmul":
        lists = _dims_lists(problem)
        if len(lists) >= 2 and lists[0] and lists[1]:
            src, wei = lists[0], lists[1]
            k, n = wei[-2] if len(wei) >= 2 else wei[-1], wei[-1]
            dst = (*src[:-1], n)
            dims = {"ic": k, "oc": n, "m": prod(src[:-1]) if len(src) > 1 else 1}
            if len(wei) >= 3:
                # activation x activation (attention scores, DLRM's interaction): no Linear
                common["category"] = "bmm"
                return PrimitiveShape(dims=dims, src=src, dst=dst, **common)
            return PrimitiveShape(dims=dims, src=src, dst=dst, weights=(wei, wei[::-1]), **common)
        return PrimitiveShape(**common)
    if category == "pool":
        values = _kv_dims(problem)
        mb, ic = values.get("mb", 1), values.get("ic", 0)
        dims, src, dst, _ = _conv_shape({**values, "oc": ic})
        dims["c"] = ic
        return PrimitiveShape(dims=dims, src=(mb, ic, *src[2:]), dst=(mb, ic, *dst[2:]), **common)
    # element-wise, normalisation, sum, binary, softmax, reorder...: a tensor shape
    lists = _dims_lists(problem)
    if lists:
        shape = lists[0]
        out = lists[-1] if kind in ("concat",) else shape
        return PrimitiveShape(dims=_tensor_dims(shape), src=shape, dst=out, **common)
    values = _kv_dims(problem)
    if values:
        mb, ic = values.get("mb", 1), values.get("ic", values.get("c", 0))
        shape = (mb, ic, *_spatial(values, "i"))
        return PrimitiveShape(dims=_tensor_dims(shape), src=shape, dst=shape, **common)
    return PrimitiveShape(**common)


def _tensor_dims(shape: tuple[int, ...]) -> dict[str, int]:
    dims: dict[str, int] = {}
    if len(shape) >= 2:
        dims["c"] = shape[1]
    if len(shape) >= 4:
        dims["oh"], dims["ow"] = shape[-2], shape[-1]
    dims["numel_per_mb"] = prod(shape[1:]) if len(shape) > 1 else (shape[0] if shape else 0)
    return dims


def same_layout(a: str, b: str) -> bool:
    """Two format tags that are the same memory layout for our purposes."""
    return a == b or (is_plain_format(a) and is_plain_format(b) and _rank_free(a) == _rank_free(b))


def _rank_free(tag: str) -> str:
    # `ab`, `abcd`, `nchw`, `nc` are all "plain row-major"; `acdb`/`nhwc` are channels-last
    return "cl" if tag in ("acdb", "acdeb", "nhwc", "ndhwc", "nwc", "acb") else "rm"
