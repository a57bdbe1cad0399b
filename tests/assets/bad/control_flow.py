"""Data-dependent control flow: torch.fx cannot trace ``if x.sum() > 0``."""

from torch import nn


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3)
        self.b = nn.Conv2d(3, 8, 5, padding=1)

    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return self.b(x)


def build_model():
    return Branchy()
