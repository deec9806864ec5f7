"""Human shapes: `conv 3×3 256→256 @14×14 s1` from a problem descriptor or a layer-table row.

The terminal has room for a few words per layer, not for oneDNN's descriptor
(`mb1_ic256oc256_ih14oh14kh3sh1dh0ph1_iw14ow14kw3sw1dw0pw1`, kept whole in `--json`, the
report and `--events`). Both sources say the same thing the same way: kernel, channels
in→out, output size after `@`, stride after `s`; `dw` marks a depthwise convolution and
`g4` a grouped one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from dnnprof.parsers.fields import parse_problem
from dnnprof.vocabulary import COMPUTE_KINDS

# primitive kind -> the word shown
KIND_WORDS = {
    "convolution": "conv", "deconvolution": "deconv", "inner_product": "fc",
    "matmul": "matmul", "pooling": "pool", "pooling_v2": "pool",
    "batch_normalization": "bn", "layer_normalization": "layernorm",
    "layer_normalization_v2": "layernorm", "group_normalization": "groupnorm",
    "softmax": "softmax", "softmax_v2": "softmax", "logsoftmax": "logsoftmax",
}  # fmt: skip
# layer-table (framework module) type -> the word shown; others are lower-cased
TYPE_WORDS = {
    "Conv1d": "conv", "Conv2d": "conv", "Conv3d": "conv", "ConvTranspose2d": "deconv",
    "Linear": "fc", "BatchNorm2d": "bn", "BatchNorm1d": "bn", "MaxPool2d": "maxpool",
    "AvgPool2d": "avgpool", "AdaptiveAvgPool2d": "avgpool", "LayerNorm": "layernorm",
    "EmbeddingBag": "embedding", "Embedding": "embedding", "ReLU": "relu", "ReLU6": "relu6",
}  # fmt: skip


def primitive_shape(kind: str, problem: str) -> str:
    """The human shape of one primitive (its kind and problem descriptor)."""
    word = KIND_WORDS.get(kind, kind)
    try:
        parsed = parse_problem(problem)
    except ValueError:  # a descriptor the grammar keeps as text
        return f"{word} {problem}".strip()
    try:
        return _primitive_shape(word, kind, parsed)
    except KeyError:  # a descriptor missing a dimension its kind needs (a damaged line)
        return f"{word} {problem}".strip()


def _primitive_shape(word: str, kind: str, parsed: Any) -> str:
    values = parsed.values
    if "kh" in values and "oc" in values:
        return _conv(word, _spatial(values, "k"), values["ic"], values["oc"],
                     _spatial(values, "o"), _spatial(values, "s"), values.get("g", 1))
    if "kh" in values:
        return _pool(word, _spatial(values, "k"), _spatial(values, "o"), _spatial(values, "s"))
    if "oc" in values:
        return f"{word} {values['ic']}→{values['oc']}"
    if "ic" in values:
        return _feature_map(word, [values.get("mb", 1), values["ic"], *_spatial(values, "i")])
    if kind == "reorder" and parsed.dims:  # data or weights: its dims say which
        return f"{word} {'×'.join(map(str, parsed.dims[0]))}"
    if kind == "matmul" and len(parsed.dims) >= 2:
        return f"{word} " + "·".join("×".join(map(str, dims)) for dims in parsed.dims[:2])
    if parsed.dims:
        return _feature_map(word, list(parsed.dims[0]))
    return word


def layer_shape(row: Mapping[str, Any]) -> str:
    """The human shape of one layer-table row (`type`, `params`, `out_shape`)."""
    kind = str(row.get("type") or "")
    word = TYPE_WORDS.get(kind, kind.lower() or "layer")
    params = row.get("params") or {}
    out_shape = [int(d) for d in row.get("out_shape") or [] if isinstance(d, int)]
    spatial = out_shape[2:]
    if "kernel_size" in params and "in_channels" in params:
        return _conv(word, _pair(params["kernel_size"]), params["in_channels"],
                     params["out_channels"], spatial, _pair(params.get("stride", 1)),
                     params.get("groups", 1))
    if "kernel_size" in params:
        return _pool(word, _pair(params["kernel_size"]), spatial,
                     _pair(params.get("stride") or params["kernel_size"]))
    if "in_features" in params:
        return f"{word} {params['in_features']}→{params['out_features']}"
    if kind.startswith("Adaptive") and spatial:
        return f"{word} →{'×'.join(map(str, spatial))}"
    return _feature_map(word, out_shape) if out_shape else word


def layer_shapes(layer_table: Iterable[Any] | None, rows: pd.DataFrame) -> dict[str, str]:
    """Each layer's human shape: from its layer-table row, else from its slowest compute
    primitive (else its slowest primitive); `rows` are exec rows with layer, kind, problem
    and duration_ms."""
    table = {str(r.get("name")): r for r in layer_table or [] if isinstance(r, dict)}
    shapes = {name: layer_shape(table[name]) for name in pd.unique(rows["layer"].astype(str))
              if name in table}
    missing = rows[~rows["layer"].astype(str).isin(list(shapes))]
    if not missing.empty:
        compute = missing["kind"].astype(str).isin(COMPUTE_KINDS).to_numpy()
        ranked = missing.assign(compute=compute).sort_values(
            ["compute", "duration_ms"], ascending=False)
        for row in ranked.drop_duplicates("layer").itertuples():
            shapes[str(row.layer)] = primitive_shape(str(row.kind), str(row.problem))
    return shapes


def _conv(word: str, kernel: Sequence[int], ic: int, oc: int, out: Sequence[int],
          stride: Sequence[int], groups: int) -> str:
    if groups > 1 and groups == ic == oc:
        channels, word = str(oc), f"dw{word}"
    else:
        channels = f"{ic}→{oc}" + (f" g{groups}" if groups > 1 else "")
    at = f" @{'×'.join(map(str, out))}" if out else ""
    return f"{word} {'×'.join(map(str, kernel))} {channels}{at} s{_stride(stride)}"


def _pool(word: str, kernel: Sequence[int], out: Sequence[int], stride: Sequence[int]) -> str:
    at = f" @{'×'.join(map(str, out))}" if out else ""
    return f"{word} {'×'.join(map(str, kernel))}{at} s{_stride(stride)}"


def _feature_map(word: str, dims: Sequence[int]) -> str:
    """`bn 64 @112×112` for batch × channels × spatial, else the dims after the batch."""
    if len(dims) >= 3:
        return f"{word} {dims[1]} @{'×'.join(map(str, dims[2:]))}"
    return f"{word} {'×'.join(map(str, dims[1:] or dims))}"


def _spatial(values: Mapping[str, int], prefix: str) -> list[int]:
    # depth (3-D), height, width as the descriptor has them: kd/kh/kw, od/oh/ow, sd/sh/sw
    return [values[prefix + axis] for axis in ("d", "h", "w") if prefix + axis in values]


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)] * 2


def _stride(stride: Sequence[int]) -> str:
    if not stride:  # not printed (a line cut short): oneDNN's default stride
        return "1"
    return str(stride[0]) if len(set(stride)) <= 1 else "×".join(map(str, stride))
