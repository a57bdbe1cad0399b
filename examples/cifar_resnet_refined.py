"""The CIFAR ResNet-18 of `cifar_resnet.py`, refined for 32x32 inputs.

Receptive-field refinement (Richter & Pal, 2022; Richter et al., 2021): with the ImageNet stem
the jump is 4 before the first block, and the last stages see the whole 32 px image at their
input. This variant slows the receptive-field growth instead (the README of the papers' toolbox
gives the same recipe for ResNet-18 on 16 px inputs): a 3x3 stride-1 stem without max-pool, and
a "shorter and wider" body, where the 512-channel stage is dropped and the third stage is widened
to 384 channels. Every layer's own receptive field stays below 32 px (I_min 19), so no layer is
unproductive or even critical.

`rflint check examples/cifar_resnet_refined.py --input-size 32` exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar_resnet import CifarResNet  # noqa: E402


def build_model(num_classes: int = 10) -> CifarResNet:
    """Stages 64-128-384 with 2, 2 and 2 blocks: no layer's input already sees the whole image."""
    return CifarResNet(stages=((64, 2, 1), (128, 2, 2), (384, 2, 2)), num_classes=num_classes, imagenet_stem=False)
