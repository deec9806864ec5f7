"""MobileNet v1 (Howard et al. 2017) with a width multiplier ``alpha``.

Names: ``stem.{conv,bn,relu}``, then 13 depthwise-separable blocks
``blocks.<i>.dw.{conv,bn,relu}`` (3x3 depthwise) and ``blocks.<i>.pw.{conv,bn,relu}``
(1x1 pointwise), then ``avgpool``, ``flatten``, ``fc``. Channel counts are
``int(c * alpha)`` as in the paper (alpha=0.25 gives an 8-channel stem).
"""

from __future__ import annotations

from torch import Tensor, nn

from dnnprof.profiler.models.pruning import PruneGroup
from dnnprof.profiler.models.resnet import init_like_torchvision

# (output channels, stride of the depthwise conv) for the 13 blocks
_BLOCKS = [
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
]  # fmt: skip

WIDTHS = (0.25, 0.5, 0.75, 1.0)


class ConvBNReLU(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.dw = ConvBNReLU(in_ch, in_ch, 3, stride, groups=in_ch)
        self.pw = ConvBNReLU(in_ch, out_ch, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.dw(x))


class MobileNetV1(nn.Module):
    def __init__(self, alpha: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"width multiplier must be positive, got {alpha}")
        self.alpha = alpha
        in_ch = int(32 * alpha)
        self.stem = ConvBNReLU(3, in_ch, 3, 2)
        blocks = []
        for out, stride in _BLOCKS:
            blocks.append(DepthwiseSeparable(in_ch, int(out * alpha), stride))
            in_ch = int(out * alpha)
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(in_ch, num_classes)
        init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.avgpool(self.blocks(self.stem(x)))))

    def prune_groups(self) -> list[PruneGroup]:
        """Each pointwise output width (and the stem's), carried through the next depthwise conv."""
        producers = ["stem"] + [f"blocks.{i}.pw" for i in range(len(self.blocks))]
        groups = []
        for index, producer in enumerate(producers[:-1]):
            nxt = f"blocks.{index}"
            groups.append(
                PruneGroup(
                    f"{producer}.conv",
                    f"{producer}.bn",
                    f"{nxt}.pw.conv",
                    depthwise=((f"{nxt}.dw.conv", f"{nxt}.dw.bn"),),
                )
            )
        groups.append(PruneGroup(f"{producers[-1]}.conv", f"{producers[-1]}.bn", "fc"))
        return groups
