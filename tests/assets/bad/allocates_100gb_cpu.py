"""Allocates 100 GB at construction on an explicit CPU device, so the meta device cannot help."""

import torch
from torch import nn


class Huge(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.register_buffer("table", torch.zeros(25_000_000_000, device="cpu"))  # 100 GB of float32

    def forward(self, x):
        return self.conv(x)


def build_model():
    return Huge()
