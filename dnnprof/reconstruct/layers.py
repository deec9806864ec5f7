"""Layer tables: load them (JSON, zoo name, runner metadata) and normalise their rows.

A layer table is the ordered list of a model's leaf calls. Two spellings are accepted:

* the zoo's / runner's (PyTorch hooks): ``{name, type, in_shapes, out_shape, params{...}}``
* an MXNet symbol's nodes: ``{name, op, attrs{kernel: "(7, 7)", num_filter: "64"...}, out_shape}``

Both become `LayerSpec`s with one category (`conv`, `linear`, `bn`, `act`, `pool`, `add`...)
and the dimensions a primitive can be checked against. Tables for the zoo models ship as
JSON under ``tables/`` so that the analyzer never imports torch; see tables/README.md.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

TABLES = Path(__file__).with_name("tables")

# Type or op name (lower case, without a trailing 1d/2d/3d) -> category.
_TYPE_CATEGORY = {
    "conv": "conv", "convolution": "conv", "convrelu": "conv", "convbn": "conv",
    "convbnrelu": "conv", "convadd": "conv", "convaddrelu": "conv",
    "convtranspose": "deconv", "deconvolution": "deconv",
    "linear": "linear", "linearrelu": "linear", "fullyconnected": "linear",
    "mkldnnlinear": "linear", "bmm": "bmm", "matmul": "bmm", "dotinteraction": "bmm",
    "interaction": "bmm",
    "batchnorm": "bn", "bnrelu": "bn", "syncbatchnorm": "bn",
    "layernorm": "layernorm", "groupnorm": "groupnorm",
    "localresponsenorm": "lrn", "lrn": "lrn",
    "relu": "act", "relu6": "act", "gelu": "act", "silu": "act", "sigmoid": "act",
    "tanh": "act", "hardswish": "act", "hardsigmoid": "act", "leakyrelu": "act", "elu": "act",
    "prelu": "act", "activation": "act", "leakyrelu_": "act", "mish": "act",
    "maxpool": "pool", "avgpool": "pool", "adaptiveavgpool": "pool", "adaptivemaxpool": "pool",
    "pooling": "pool",
    "elemwise_add": "add", "_plus": "add", "broadcast_add": "add", "add": "add",
    "floatfunctional": "add", "qfunctional": "add",
    "softmax": "softmax", "logsoftmax": "softmax", "softmaxoutput": "softmax",
    "concat": "concat", "rnn": "rnn", "lstm": "rnn", "gru": "rnn",
    "dropout": "passive", "flatten": "passive", "identity": "passive", "reshape": "passive",
    "quantstub": "passive", "dequantstub": "passive", "embeddingbag": "embedding",
    "embedding": "embedding",
}
# Activation names as oneDNN's eltwise algorithms spell them (`eltwise_logistic`...).
_ELTWISE_ALIASES = {"sigmoid": "logistic", "silu": "swish", "relu6": "clip",
                    "leakyrelu": "relu", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid"}
# Layers that vanish at inference or never reach oneDNN; skipping them costs nothing.
PASSIVE_CATEGORIES = frozenset({"passive", "embedding"})


@dataclass(frozen=True)
class LayerSpec:
    """One row of a layer table, normalised."""

    index: int
    name: str
    type: str
    category: str
    dims: dict[str, int] = field(default_factory=dict, compare=False)
    alg: str = ""  # relu/gelu/max/avg... when the row says
    bias: bool | None = None  # None: the table does not say
    out_shape: tuple[int, ...] = ()


class LayerTableError(ValueError):
    """A layer table that cannot be used; the message says what to do."""


def _category(type_name: str) -> str:
    key = type_name.lower()
    key = re.sub(r"(1d|2d|3d)$", "", key)
    if key in _TYPE_CATEGORY:
        return _TYPE_CATEGORY[key]
    for prefix, category in (("conv", "conv"), ("linear", "linear"), ("batchnorm", "bn"),
                             ("quantizedconv", "conv"), ("quantizedlinear", "linear")):
        if key.startswith(prefix):
            return category
    return "other"


def _pair(value: Any) -> tuple[int, int] | None:
    """(h, w) from 3, [3, 3], (3, 3) or the MXNet string "(3, 3)"."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return (value[-2], value[-1]) if len(value) >= 2 else (value[0], value[0])
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _boolish(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("True", "False", "true", "false"):
        return value.lower() == "true"
    return None


def normalize_row(index: int, row: dict[str, Any]) -> LayerSpec:
    """One table row (torch hook style or MXNet node style) as a LayerSpec."""
    name = str(row.get("name") or f"layer{index}")
    type_name = str(row.get("type") or row.get("op") or "")
    params = dict(row.get("params") or {})
    attrs = dict(row.get("attrs") or {})
    category = _category(type_name)
    out_shape = tuple(int(d) for d in (row.get("out_shape") or []) if isinstance(d, int))
    in_shapes = row.get("in_shapes") or []
    in_shape = tuple(in_shapes[0]) if in_shapes and isinstance(in_shapes[0], list) else ()
    dims: dict[str, int] = {}
    alg = ""
    bias = None
    lowered = type_name.lower()
    if category in ("conv", "deconv", "pool"):
        kernel = _pair(params.get("kernel_size", attrs.get("kernel")))
        stride = _pair(params.get("stride", attrs.get("stride")))
        padding = _pair(params.get("padding", attrs.get("pad")))
        if category == "pool" and stride is None and kernel is not None and "kernel_size" in params:
            stride = kernel  # torch pools default their stride to the kernel
        for key, pair in (("k", kernel), ("s", stride), ("p", padding)):
            if pair is not None:
                dims[key + "h"], dims[key + "w"] = pair
        groups = _int(params.get("groups", attrs.get("num_group")))
        if groups is not None:
            dims["g"] = groups
        oc = _int(params.get("out_channels", attrs.get("num_filter")))
        if oc is not None:
            dims["oc"] = oc
        ic = _int(params.get("in_channels"))
        if ic is not None:
            dims["ic"] = ic
        if category == "pool":
            global_pool = _boolish(attrs.get("global_pool"))
            output_size = _pair(params.get("output_size"))
            if global_pool or (output_size is not None and "adaptive" in lowered):
                dims.pop("kh", None), dims.pop("kw", None), dims.pop("sh", None), dims.pop("sw", None)
                dims.pop("ph", None), dims.pop("pw", None)
            pool_type = str(attrs.get("pool_type", "")).lower()
            alg = "max" if ("max" in lowered or pool_type == "max") else (
                "avg" if ("avg" in lowered or pool_type == "avg") else "")
        no_bias = _boolish(attrs.get("no_bias"))
        bias = _boolish(params.get("bias")) if "bias" in params else (
            None if no_bias is None else not no_bias)
    elif category == "linear":
        fin = _int(params.get("in_features"))
        fout = _int(params.get("out_features", attrs.get("num_hidden")))
        if fin is not None:
            dims["ic"] = fin
        elif in_shape:
            dims["ic"] = in_shape[-1]
        if fout is not None:
            dims["oc"] = fout
        no_bias = _boolish(attrs.get("no_bias"))
        bias = _boolish(params.get("bias")) if "bias" in params else (
            None if no_bias is None else not no_bias)
    elif category == "act":
        act = re.sub(r"[^a-z0-9]", "", str(attrs.get("act_type", "")).lower() or lowered)
        alg = _ELTWISE_ALIASES.get(act, act)
    if in_shape and len(in_shape) >= 2 and category in ("conv", "deconv", "pool"):
        dims.setdefault("ic", in_shape[1])
        if len(in_shape) >= 4:
            dims["ih"], dims["iw"] = in_shape[-2], in_shape[-1]
    if out_shape:
        if len(out_shape) >= 2:
            dims["c"] = out_shape[1]
            if category in ("conv", "deconv"):
                dims.setdefault("oc", out_shape[1])
        if len(out_shape) >= 4:
            dims["oh"], dims["ow"] = out_shape[-2], out_shape[-1]
        dims["numel_per_mb"] = prod(out_shape[1:]) if len(out_shape) > 1 else out_shape[0]
    return LayerSpec(index, name, type_name, category, dims, alg, bias, out_shape)


def normalize_table(rows: list[dict[str, Any]]) -> list[LayerSpec]:
    """A whole layer table (list of row dicts) as LayerSpecs, in call order."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise LayerTableError(
            "a layer table is a JSON list of objects such as "
            '{"name": "conv1", "type": "Conv2d", "out_shape": [1, 64, 112, 112], "params": {...}}'
        )
    return [normalize_row(i, row) for i, row in enumerate(rows)]


def available_models() -> list[str]:
    """Model names with a shipped layer table (usable with `--model`)."""
    names = {p.name.split(".")[0] for p in TABLES.glob("*.json*")}
    return sorted(names)


def model_table(name: str) -> list[dict[str, Any]]:
    """The shipped layer table of a zoo model (batch 1, default input), as row dicts."""
    key = name.strip().lower().replace("-", "_")
    for candidate in (TABLES / f"{key}.json", TABLES / f"{key}.json.gz"):
        if candidate.exists():
            opener = gzip.open if candidate.suffix == ".gz" else open
            with opener(candidate, "rt", encoding="utf-8") as handle:
                return json.load(handle)["layers"]
    raise LayerTableError(
        f"no layer table for model {name!r}; known: {', '.join(available_models())}. "
        "Pass the model's table with --layers table.json (a JSON list of layer rows, "
        "e.g. from dnnprof.profiler.models.layer_table under torch)"
    )


def load_table(source: Any) -> list[dict[str, Any]]:
    """Row dicts from a list, a JSON file path, or a dict with a 'layers'/'layer_table' key."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                source = json.load(handle)
        except OSError as exc:
            raise LayerTableError(f"cannot read layer table {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise LayerTableError(f"{path} is not JSON ({exc})") from None
    if isinstance(source, dict):
        for key in ("layers", "layer_table"):
            if key in source:
                return list(source[key])
        raise LayerTableError("a layer-table object needs a 'layers' or 'layer_table' list")
    if isinstance(source, list):
        return source
    raise LayerTableError(f"cannot use {type(source).__name__} as a layer table")


def choose_table(layers: Any, model: str | None, marked: list[Any] | None,
                 stored: Any) -> tuple[list[dict[str, Any]] | None, str]:
    """The layer table to align with and where it came from, first found of: `layers=`,
    `model=`, the log's `meta,layer_table` marker, the trace metadata's table."""
    if layers is not None:
        source = f"'{layers}'" if isinstance(layers, str) else "(given)"
        return load_table(layers), source
    if model:
        return model_table(model), f"'{model}'"
    if marked is not None:
        return marked, "(from the log's meta marker)"
    if isinstance(stored, list):
        return stored, "(from the trace metadata)"
    return None, ""
