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


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(in_planes, planes * self.expansion, stride)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + identity)

    def prune_groups(self, prefix: str) -> list[PruneGroup]:
        return [PruneGroup(f"{prefix}conv1", f"{prefix}bn1", f"{prefix}conv2")]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # v1: the stride sits on the first 1x1 conv.
        self.conv1 = nn.Conv2d(in_planes, planes, 1, stride, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = _downsample(in_planes, planes * self.expansion, stride)
        self.relu3 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(out + identity)

    def prune_groups(self, prefix: str) -> list[PruneGroup]:
        # Only the block's inner width: conv3 and the downsample keep the residual shape.
        return [
            PruneGroup(f"{prefix}conv1", f"{prefix}bn1", f"{prefix}conv2"),
            PruneGroup(f"{prefix}conv2", f"{prefix}bn2", f"{prefix}conv3"),
        ]


def _downsample(in_planes: int, out_planes: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class ResNet(nn.Module):
    def __init__(
        self, block: type[BasicBlock | Bottleneck], layers: list[int], num_classes: int = 1000
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
            if isinstance(module, BasicBlock | Bottleneck):
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


_DEPTHS: dict[int, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
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
