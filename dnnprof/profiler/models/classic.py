"""AlexNet and VGG-16 with torchvision's module names (``features.N``, ``classifier.N``).

The only addition is ``flatten`` (an ``nn.Flatten``) between ``avgpool`` and the
classifier, so that every call is a leaf module. ``hidden`` is the width of the two hidden
classifier layers: 4096 as published, 2048 for the ``mlp_reduced`` variant.
"""

from __future__ import annotations

from torch import Tensor, nn

from dnnprof.profiler.models.pruning import PruneGroup


class _ConvClassifierNet(nn.Module):
    """features -> avgpool -> flatten -> classifier, the shape AlexNet and VGG share."""

    features: nn.Sequential
    classifier: nn.Sequential
    pooled: int  # side of the adaptive avgpool output

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))

    def prune_groups(self) -> list[PruneGroup]:
        convs = [f"features.{i}" for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d)]
        linears = [
            f"classifier.{i}" for i, m in enumerate(self.classifier) if isinstance(m, nn.Linear)
        ]
        groups = [PruneGroup(a, None, b) for a, b in zip(convs, convs[1:], strict=False)]
        # The last conv feeds the first Linear through a flattened pooled map.
        groups.append(PruneGroup(convs[-1], None, linears[0], consumer_in_factor=self.pooled**2))
        groups += [PruneGroup(a, None, b) for a, b in zip(linears[:-1], linears[1:], strict=False)]
        return groups


class AlexNet(_ConvClassifierNet):
    def __init__(self, num_classes: int = 1000, hidden: int = 4096, dropout: float = 0.5) -> None:
        super().__init__()
        self.pooled = 6
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16(_ConvClassifierNet):
    def __init__(self, num_classes: int = 1000, hidden: int = 4096, dropout: float = 0.5) -> None:
        super().__init__()
        self.pooled = 7
        layers: list[nn.Module] = []
        in_channels = 3
        for item in _VGG16:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                in_channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)
