"""ResNet-18 for CIFAR-10 (32x32 inputs) as many code bases write it: the ImageNet stem
(7x7 stride-2 convolution, then a 3x3 stride-2 max-pool) and four stages of two basic blocks.

The stem divides the 32 px image by 4 before the first block, so by the third stage the input
of some convolutions already sees the whole image: `rflint check examples/cifar_resnet.py
--input-size 32` exits 1 and lists `layers.2.1.conv2`, `layers.3.0.conv2` and
`layers.3.1.conv2` as unproductive. `cifar_resnet_refined.py` is the variant that passes.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) skip connection."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for small images; ``stages`` gives (planes, blocks, stride) per stage."""

    def __init__(
        self,
        stages: tuple[tuple[int, int, int], ...] = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)),
        num_classes: int = 10,
        imagenet_stem: bool = True,
    ) -> None:
        super().__init__()
        if imagenet_stem:  # 7x7/2 conv + 3x3/2 max-pool: the jump is 4 before the first block
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:  # 3x3/1 conv, no pooling: the usual CIFAR stem
            self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(64)
        layers, in_planes = [], 64
        for planes, blocks, stride in stages:
            strides = [stride] + [1] * (blocks - 1)
            blocks_ = []
            for s in strides:
                blocks_.append(BasicBlock(in_planes, planes, s))
                in_planes = planes
            layers.append(nn.Sequential(*blocks_))
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


def build_model(num_classes: int = 10) -> CifarResNet:
    """ResNet-18 with the ImageNet stem, for 10 classes."""
    return CifarResNet(num_classes=num_classes)
