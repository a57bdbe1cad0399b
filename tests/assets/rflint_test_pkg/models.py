"""An importable package module for ``package.module:attr`` targets (tests put tests/assets on sys.path)."""

from torch import nn


def small(width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3))
