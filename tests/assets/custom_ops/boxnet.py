"""A box filter written as an integral image between two 3x3 convolutions (box convolutions
are built this way): its field is 3 + 8 + 2 = 13 pixels per axis, which no static tool can see
through the subtraction of prefix sums without being told."""

import torch.nn.functional as F
from torch import nn


class BoxFilter(nn.Module):
    """Mean over a size x size box (odd size), computed from an integral image."""

    def __init__(self, size: int = 9) -> None:
        super().__init__()
        self.size = size

    def forward(self, x):
        r = self.size // 2
        s = F.pad(x, (r + 1, r, r + 1, r)).cumsum(-1).cumsum(-2)
        k = self.size
        return (s[..., k:, k:] - s[..., :-k, k:] - s[..., k:, :-k] + s[..., :-k, :-k]) / (k * k)


def box_blur(x, size: int = 5):
    """A function version (a custom kernel stand-in): the mean over a 5x5 box."""
    return F.avg_pool2d(x, size, stride=1, padding=size // 2)


class BoxNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.box = BoxFilter(9)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.c2(self.box(self.c1(x)))


class BlurNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return box_blur(self.c1(x))


class BoxNetNoFx(BoxNet):
    """The same, with a ``len(x)`` that torch.fx refuses: checked through torch.export."""

    def forward(self, x):
        n = len(x)
        return self.c2(self.box(self.c1(x))).reshape(n, 4, x.shape[2], x.shape[3])


def build_model():
    return BoxNet()
