"""The model registry: name -> ModelSpec (how to build the model and its inputs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dnnprof.profiler.models import bert, classic, dlrm, mobilenet, resnet
from dnnprof.profiler.models.introspect import count_flops, count_params, layer_table

IMAGE, TOKENS, RECSYS = "image", "tokens", "recsys"


@dataclass(frozen=True)
class ModelSpec:
    """How to build one zoo model and a batch of inputs for it.

    ``builder(width=..., mlp_reduced=...)`` returns the model (random weights, train mode;
    ``build_model`` seeds and calls ``eval()``). ``input_kind`` says what ``input_size``
    means: the image side for ``image`` models, the sequence length for ``tokens``, nothing
    for ``recsys`` (DLRM's inputs have a fixed width). ``linear_heavy`` models spend their
    time in ``nn.Linear``, which fp32 eager PyTorch runs in MKL, not oneDNN.
    """

    name: str
    description: str
    family: str
    input_kind: str
    default_input_size: int | None
    builder: Callable[..., nn.Module]
    widths: tuple[float, ...] | None = None  # accepted width multipliers, None = no width
    mlp_reduced_note: str = ""  # what mlp_reduced does here; "" = nothing to reduce
    linear_heavy: bool = False

    def input_shapes(self, batch: int = 1, input_size: int | None = None) -> list[list[int]]:
        size = input_size or self.default_input_size
        if self.input_kind == IMAGE:
            return [[batch, 3, size, size]]
        if self.input_kind == TOKENS:
            return [[batch, size]]
        return [[batch, dlrm.DENSE_FEATURES], [batch, dlrm.SPARSE_FEATURES]]

    def make_input(
        self,
        batch: int = 1,
        input_size: int | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> tuple[torch.Tensor, ...]:
        """Positional arguments for ``model(*inputs)``: random, reproducible from ``seed``."""
        size = input_size or self.default_input_size
        if self.input_kind == IMAGE:
            generator = torch.Generator().manual_seed(seed)
            return (torch.randn(batch, 3, size, size, generator=generator).to(device),)
        if self.input_kind == TOKENS:
            return bert.make_inputs(batch, size, bert.BERT_BASE.vocab, device, seed)
        return dlrm.make_inputs(batch, device=device, seed=seed)

    def build(self, width: float | None = None, mlp_reduced: bool = False) -> nn.Module:
        if width is not None and self.widths is None:
            raise ValueError(f"{self.name} has no width multiplier")
        if width is not None and self.widths and width not in self.widths:
            raise ValueError(
                f"{self.name}: width {width} not in {', '.join(map(str, self.widths))}"
            )
        return self.builder(width=width, mlp_reduced=mlp_reduced)


def _resnet(depth: int) -> Callable[..., nn.Module]:
    return lambda width=None, mlp_reduced=False: resnet.resnet(depth)


def _classic(cls: type) -> Callable[..., nn.Module]:
    return lambda width=None, mlp_reduced=False: cls(hidden=2048 if mlp_reduced else 4096)


def _mobilenet(width: float | None = None, mlp_reduced: bool = False) -> nn.Module:
    return mobilenet.MobileNetV1(alpha=1.0 if width is None else width)


def _dlrm(reduced: bool) -> Callable[..., nn.Module]:
    return lambda width=None, mlp_reduced=False: dlrm.DLRM(mlp_reduced=reduced or mlp_reduced)


def _bert(config: bert.BertConfig) -> Callable[..., nn.Module]:
    return lambda width=None, mlp_reduced=False: bert.BertModel(config, mlp_reduced=mlp_reduced)


_RESNET_PARAMS = {10: "5.4M", 18: "11.7M", 34: "21.8M", 50: "25.6M", 101: "44.5M", 152: "60.2M"}
_DLRM_REDUCED = "bottom MLP 13-128-64, top MLP 415-128-64-1"

MODELS: dict[str, ModelSpec] = {
    **{
        f"resnet{depth}": ModelSpec(
            f"resnet{depth}",
            f"ResNet-{depth} v1 ({_RESNET_PARAMS[depth]} params"
            + (
                "; stride on the first 1x1 conv of down-sampling bottlenecks)"
                if depth >= 50
                else ")"
            ),
            "resnet",
            IMAGE,
            224,
            _resnet(depth),
        )
        for depth in (10, 18, 34, 50, 101, 152)
    },
    "alexnet": ModelSpec(
        "alexnet",
        "AlexNet, torchvision layout (61.1M params); mlp_reduced: classifier 4096 -> 2048",
        "alexnet",
        IMAGE,
        224,
        _classic(classic.AlexNet),
        mlp_reduced_note="classifier hidden width 4096 -> 2048",
    ),
    "vgg16": ModelSpec(
        "vgg16",
        "VGG-16, torchvision layout (138.4M params); mlp_reduced: classifier 4096 -> 2048",
        "vgg",
        IMAGE,
        224,
        _classic(classic.VGG16),
        mlp_reduced_note="classifier hidden width 4096 -> 2048",
    ),
    "mobilenet_v1": ModelSpec(
        "mobilenet_v1",
        "MobileNet v1, width multiplier alpha in {0.25, 0.5, 0.75, 1.0} (4.2M params at 1.0)",
        "mobilenet",
        IMAGE,
        224,
        _mobilenet,
        widths=mobilenet.WIDTHS,
    ),
    "dlrm": ModelSpec(
        "dlrm",
        "DLRM, Criteo Kaggle shape: 26 embedding bags (dim 64), bottom MLP 13-512-256-64, "
        "dot interaction, top MLP 415-512-256-1",
        "dlrm",
        RECSYS,
        None,
        _dlrm(False),
        mlp_reduced_note=_DLRM_REDUCED,
        linear_heavy=True,
    ),
    "dlrm_mlp_reduced": ModelSpec(
        "dlrm_mlp_reduced",
        f"DLRM with reduced MLPs ({_DLRM_REDUCED}), same embeddings and dot interaction",
        "dlrm",
        RECSYS,
        None,
        _dlrm(True),
        mlp_reduced_note=_DLRM_REDUCED,
        linear_heavy=True,
    ),
    "bert_base": ModelSpec(
        "bert_base",
        "BERT-base encoder (12 layers, hidden 768, 12 heads, FFN 3072; 109M params), "
        "input = sequence length",
        "bert",
        TOKENS,
        128,
        _bert(bert.BERT_BASE),
        mlp_reduced_note="feed-forward width 3072 -> 1536",
        linear_heavy=True,
    ),
    "bert_small": ModelSpec(
        "bert_small",
        "small BERT encoder (4 layers, hidden 512, 8 heads, FFN 2048), input = sequence length",
        "bert",
        TOKENS,
        128,
        _bert(bert.BERT_SMALL),
        mlp_reduced_note="feed-forward width 2048 -> 1024",
        linear_heavy=True,
    ),
}

_ALIASES = {"mobilenet": "mobilenet_v1", "bert": "bert_base", "dlrm_reduced": "dlrm_mlp_reduced"}


def get_spec(name: str) -> ModelSpec:
    """Look a model up by name (case, ``-`` and ``_`` do not matter)."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[key]


def build_model(
    name: str, *, width: float | None = None, mlp_reduced: bool = False, seed: int = 0
) -> nn.Module:
    """Build a zoo model with reproducible random weights, in eval mode."""
    torch.manual_seed(seed)
    return get_spec(name).build(width=width, mlp_reduced=mlp_reduced).eval()


def summarize(
    name: str,
    *,
    batch: int = 1,
    input_size: int | None = None,
    width: float | None = None,
    mlp_reduced: bool = False,
    with_table: bool = False,
) -> dict[str, Any]:
    """Params, FLOPs and shapes of a model, computed on the meta device (no memory, no kernels)."""
    spec = get_spec(name)
    with torch.device("meta"):
        model = spec.build(width=width, mlp_reduced=mlp_reduced).eval()
    inputs = spec.make_input(batch, input_size, device="meta")
    table = layer_table(model, inputs)
    summary: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "input_shapes": spec.input_shapes(batch, input_size),
        "params": count_params(model),
        "flops": count_flops(table),
        "layers": len(table),
        "conv_layers": sum(1 for row in table if "Conv" in row["type"]),
        "linear_layers": sum(1 for row in table if "Linear" in row["type"]),
    }
    if with_table:
        summary["layer_table"] = table
    return summary
