"""ResNet v1 (He et al. 2015), 18/34/50/101/152 (and a 10-layer one for tests), plain PyTorch.

Module names follow torchvision (``conv1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``,
``avgpool``, ``fc``), with two differences that make every call a leaf module so that
markers and the layer table see it:

* each block owns one ReLU per use (``relu1``, ``relu2``, ``relu3``) instead of one
  shared ``relu`` called several times;
* the flatten before ``fc`` is an ``nn.Flatten`` called ``flatten``.

Bottleneck blocks put the stride on the FIRST 1x1 conv (the original v1 layout, which the
reference corpus ``torch_resnet50_*`` logs use), not on the 3x3 conv as torchvision's v1.5.
"""

from __future__ import annotations

from torch import Tensor, nn

from dnnprof.profiler.models.pruning import PruneGroup


class ResidualBlock(nn.Module):
    """A residual block: convs with batch norm (ReLU between them), plus the shortcut.

    One class for both block types, which differ only in their convs' kernel sizes and in
    how much wider the block's output is than its inner width (`expansion`). Modules are
    registered in torchvision's order and names (``conv1, bn1, relu1, conv2, ...``,
    ``downsample``, then the last ReLU after the addition).
    """

    expansion = 1
    kernels: tuple[int, ...] = ()

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        last = len(self.kernels)
        widths = [in_planes] + [planes] * (last - 1) + [planes * self.expansion]
        for index, kernel in enumerate(self.kernels, start=1):
            # v1: the stride sits on the block's first conv (for a bottleneck, its 1x1)
            conv = nn.Conv2d(widths[index - 1], widths[index], kernel,
                             stride if index == 1 else 1, kernel // 2, bias=False)
            setattr(self, f"conv{index}", conv)
            setattr(self, f"bn{index}", nn.BatchNorm2d(widths[index]))
            if index < last:
                setattr(self, f"relu{index}", nn.ReLU(inplace=True))
        self.downsample = _downsample(in_planes, planes * self.expansion, stride)
        setattr(self, f"relu{last}", nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        out, last = x, len(self.kernels)
        for index in range(1, last + 1):
            out = getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(out))
            if index < last:
                out = getattr(self, f"relu{index}")(out)
        identity = x if self.downsample is None else self.downsample(x)
        return getattr(self, f"relu{last}")(out + identity)

    def prune_groups(self, prefix: str) -> list[PruneGroup]:
        # Only the block's inner width: the last conv and the downsample keep the residual
        # shape, so each group is a conv whose outputs feed the next conv.
        return [
            PruneGroup(f"{prefix}conv{index}", f"{prefix}bn{index}", f"{prefix}conv{index + 1}")
            for index in range(1, len(self.kernels))
        ]


class BasicBlock(ResidualBlock):
    """Two 3x3 convs (ResNet-18/34)."""

    kernels = (3, 3)


class Bottleneck(ResidualBlock):
    """1x1 down, 3x3, 1x1 up to four times the inner width (ResNet-50/101/152)."""

    expansion = 4
    kernels = (1, 3, 1)


def _downsample(in_planes: int, out_planes: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class ResNet(nn.Module):
    def __init__(
        self, block: type[ResidualBlock], layers: list[int], num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_planes = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if index == 0 else 2
            stage = []
            for block_index in range(blocks):
                stage.append(block(in_planes, planes, stride if block_index == 0 else 1))
                in_planes = planes * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(in_planes, num_classes)
        init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))

    def prune_groups(self) -> list[PruneGroup]:
        groups: list[PruneGroup] = []
        for name, module in self.named_modules():
            if isinstance(module, ResidualBlock):
                groups.extend(module.prune_groups(f"{name}."))
        return groups


def init_like_torchvision(model: nn.Module) -> None:
    """Kaiming-normal conv weights, BN weight 1 and bias 0: torchvision's initialization."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


_DEPTHS: dict[int, tuple[type[ResidualBlock], list[int]]] = {
    10: (BasicBlock, [1, 1, 1, 1]),  # not in the paper: a small model for quick tests
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def resnet(depth: int, num_classes: int = 1000) -> ResNet:
    block, layers = _DEPTHS[depth]
    return ResNet(block, layers, num_classes)
