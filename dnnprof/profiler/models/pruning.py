"""Magnitude pruning for the model zoo.

Two modes, with very different effects on a oneDNN log:

* ``unstructured``: ``torch.nn.utils.prune.l1_unstructured`` on every Conv2d/Linear weight,
  made permanent. Shapes and dense kernels are unchanged, so the log looks exactly like the
  dense model's (only the numbers in the weights differ). That is expected, not a bug.
* ``structured``: output channels (or Linear rows) with the smallest L1 norm are physically
  removed, together with the matching BatchNorm entries, any depthwise conv in between, and
  the matching input channels of the consumer. Shapes shrink, so problem descriptors show
  the narrower ``ic``/``oc``. Each model says which channels may be removed without breaking
  a residual or a fixed interface (``model.prune_groups()``): for ResNet only the inner widths
  of each block, for MLPs only hidden widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class PruneGroup:
    """One prunable width: the producer's outputs feed, through ``norm`` and the optional
    ``depthwise`` (conv, norm) pairs, into the consumer's inputs.

    ``consumer_in_factor`` is the number of consumer inputs per producer channel, for a
    Linear that reads a flattened ``C x H x W`` map (``H * W``).
    """

    producer: str
    norm: str | None
    consumer: str
    depthwise: tuple[tuple[str, str | None], ...] = field(default_factory=tuple)
    consumer_in_factor: int = 1


PRUNE_MODES = ("unstructured", "structured")


def prune_model(model: nn.Module, sparsity: float, mode: str = "unstructured") -> dict:
    """Prune ``model`` in place; return a summary (JSON-serialisable) of what changed."""
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    if mode == "unstructured":
        return _prune_unstructured(model, sparsity)
    if mode == "structured":
        groups_of = getattr(model, "prune_groups", None)
        if groups_of is None:
            raise ValueError(
                f"{type(model).__name__} declares no prunable widths; use --prune-mode unstructured"
            )
        return prune_structured(model, groups_of(), sparsity)
    raise ValueError(f"unknown prune mode {mode!r}; choose one of {', '.join(PRUNE_MODES)}")


def _prune_unstructured(model: nn.Module, sparsity: float) -> dict:
    from torch.nn.utils import prune

    pruned = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            prune.l1_unstructured(module, "weight", amount=sparsity)
            prune.remove(module, "weight")  # make it permanent: a plain dense weight again
            pruned.append(name)
    return {"mode": "unstructured", "sparsity": sparsity, "modules": len(pruned)}


@torch.no_grad()
def prune_structured(model: nn.Module, groups: list[PruneGroup], sparsity: float) -> dict:
    changes = []
    for group in groups:
        producer = model.get_submodule(group.producer)
        width = _out_width(producer)
        kept_count = max(1, width - round(sparsity * width))
        if kept_count == width:
            continue
        norms = producer.weight.detach().abs().flatten(1).sum(dim=1)
        keep = torch.topk(norms, kept_count).indices.sort().values
        _keep_outputs(producer, keep)
        if group.norm is not None:
            _keep_norm(model.get_submodule(group.norm), keep)
        for conv_name, norm_name in group.depthwise:
            _keep_depthwise(model.get_submodule(conv_name), keep)
            if norm_name is not None:
                _keep_norm(model.get_submodule(norm_name), keep)
        _keep_inputs(model.get_submodule(group.consumer), keep, group.consumer_in_factor)
        changes.append([group.producer, width, kept_count])
    return {"mode": "structured", "sparsity": sparsity, "widths": changes}


def _out_width(module: nn.Module) -> int:
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    raise TypeError(f"cannot prune the outputs of {type(module).__name__}")


def _keep_outputs(module: nn.Module, keep: torch.Tensor) -> None:
    module.weight = nn.Parameter(module.weight[keep].clone())
    if module.bias is not None:
        module.bias = nn.Parameter(module.bias[keep].clone())
    if isinstance(module, nn.Conv2d):
        module.out_channels = len(keep)
    else:
        module.out_features = len(keep)


def _keep_norm(norm: nn.Module, keep: torch.Tensor) -> None:
    if not isinstance(norm, nn.BatchNorm2d | nn.BatchNorm1d):
        raise TypeError(f"cannot prune a {type(norm).__name__}")
    norm.weight = nn.Parameter(norm.weight[keep].clone())
    norm.bias = nn.Parameter(norm.bias[keep].clone())
    norm.running_mean = norm.running_mean[keep].clone()
    norm.running_var = norm.running_var[keep].clone()
    norm.num_features = len(keep)


def _keep_depthwise(conv: nn.Module, keep: torch.Tensor) -> None:
    if not (isinstance(conv, nn.Conv2d) and conv.groups == conv.in_channels == conv.out_channels):
        raise TypeError("only depthwise convolutions can sit between a producer and a consumer")
    _keep_outputs(conv, keep)
    conv.in_channels = conv.groups = len(keep)


def _keep_inputs(module: nn.Module, keep: torch.Tensor, factor: int) -> None:
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise TypeError("a grouped conv cannot be a pruning consumer")
        module.weight = nn.Parameter(module.weight[:, keep].clone())
        module.in_channels = len(keep)
    elif isinstance(module, nn.Linear):
        columns = (keep[:, None] * factor + torch.arange(factor)[None, :]).flatten()
        module.weight = nn.Parameter(module.weight[:, columns].clone())
        module.in_features = len(columns)
    else:
        raise TypeError(f"cannot prune the inputs of {type(module).__name__}")
