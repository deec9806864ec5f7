"""What a model calls, in order: the layer table, parameter counts and FLOPs."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

# Constructor attributes worth recording, whichever module type has them.
_PARAM_ATTRIBUTES = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "groups", "dilation",
    "in_features", "out_features", "num_features", "normalized_shape", "output_size",
    "num_embeddings", "embedding_dim", "mode", "dim",
)  # fmt: skip


def leaf_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(qualified name, module) for every module without children, in definition order."""
    for name, module in model.named_modules():
        if name and next(module.children(), None) is None:
            yield name, module


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, list | tuple | torch.Size):
        return [_jsonable(item) for item in value]
    return str(value)


def module_params(module: nn.Module) -> dict[str, Any]:
    """The shape-defining attributes of a module (conv geometry, Linear widths...)."""
    params: dict[str, Any] = {}
    for attribute in _PARAM_ATTRIBUTES:
        value = getattr(module, attribute, None)
        if value is not None and not callable(value):
            params[attribute] = _jsonable(value)
    bias = getattr(module, "bias", "absent")
    if (isinstance(bias, torch.Tensor) or bias is None) and (
        "in_channels" in params or "in_features" in params
    ):
        params["bias"] = bias is not None
    return params


def describe_call(name: str, module: nn.Module, inputs: Any, output: Any) -> dict[str, Any]:
    """One layer-table row from a forward hook's view of a call."""
    in_tensors = list(_tensors(inputs))
    out_tensors = list(_tensors(output))
    return {
        "name": name,
        "type": type(module).__name__,
        "module": type(module).__module__,
        "in_shapes": [list(t.shape) for t in in_tensors],
        "out_shape": list(out_tensors[0].shape) if out_tensors else None,
        "in_dtype": str(in_tensors[0].dtype).replace("torch.", "") if in_tensors else None,
        "out_dtype": str(out_tensors[0].dtype).replace("torch.", "") if out_tensors else None,
        "params": module_params(module),
    }


def _to_device(value: Any, device: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list | tuple):
        return type(value)(_to_device(item, device) for item in value)
    return value


def _on_device(model: nn.Module, device: str) -> bool:
    tensors = list(model.parameters()) + list(model.buffers())
    return bool(tensors) and all(t.device.type == device for t in tensors)


def _copy_to(model: nn.Module, device: str) -> nn.Module:
    """A deep copy whose parameters and buffers are created on ``device`` directly.

    Pre-filling deepcopy's memo means the weights are never copied on the CPU first
    (VGG-16 would otherwise duplicate 550 MB just to be thrown away).
    """
    memo: dict[int, Any] = {}
    for param in model.parameters():
        memo[id(param)] = nn.Parameter(
            torch.empty_like(param, device=device), requires_grad=param.requires_grad
        )
    for buffer in model.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device=device)
    return copy.deepcopy(model, memo)


@torch.no_grad()
def layer_table(model: nn.Module, example_input: Any, device: str | None = "meta") -> list[dict]:
    """Ordered leaf-module calls of one forward pass.

    Each row: ``name``, ``type``, ``module`` (Python module of the class), ``in_shapes``,
    ``out_shape``, ``in_dtype``, ``out_dtype`` and ``params`` (in/out channels, kernel,
    stride, padding, groups, dilation, in/out features, ...). A module called twice gives
    two rows.

    With ``device="meta"`` (the default) the pass runs on a meta-device copy: no kernel
    runs, so nothing reaches oneDNN and the log stays clean. ``device=None`` runs the model
    as it is. ``example_input`` is a tensor or a tuple of positional arguments.
    """
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    if device is not None and not _on_device(model, device):
        model = _copy_to(model, device)
        args = _to_device(args, device)
    rows: list[dict] = []
    handles = []
    for name, module in leaf_modules(model):

        def record(module: nn.Module, inputs: Any, output: Any, name: str = name) -> None:
            rows.append(describe_call(name, module, inputs, output))

        handles.append(module.register_forward_hook(record))
    try:
        model(*args)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def row_flops(row: dict) -> int:
    """2 x multiply-accumulates of a conv or Linear row; 0 for everything else."""
    params, out_shape = row.get("params") or {}, row.get("out_shape")
    if not out_shape:
        return 0
    outputs = math.prod(out_shape)
    if "kernel_size" in params and "in_channels" in params:
        kernel = params["kernel_size"]
        kernel_volume = math.prod(kernel) if isinstance(kernel, list) else kernel
        return 2 * outputs * (params["in_channels"] // params.get("groups", 1)) * kernel_volume
    if "in_features" in params:
        return 2 * outputs * params["in_features"]
    return 0


def count_flops(table: list[dict]) -> int:
    """Conv and Linear FLOPs (2 x MACs) of a layer table; functional matmuls are not counted."""
    return sum(row_flops(row) for row in table)
