"""A YOLOv5-like detector for ``fallback.py``: the layout of ultralytics' ``DetectionModel``
(a list of layers, each reading the previous output or earlier ones by index, ``Conv`` =
conv + BatchNorm + SiLU, ``C3`` bottleneck blocks, ``SPPF``, nearest upsampling and
concatenation into a three-scale ``Detect`` head), written here so that the benchmark needs
no download.

``Detect.forward`` is YOLOv5's: it unpacks ``x.shape`` and compares the cached grid's shape
with the feature map's, Python control flow on values that torch.fx only has as proxies, so
fx cannot trace it and rflint falls back to torch.export. ``StaticDetect`` is the same head
with the shapes known at construction (as an exported YOLOv5 has them): fx traces it, and
its layers and receptive fields are the same.

Targets: ``yolo_like.py:build_export_only`` and ``yolo_like.py:build_fx_traceable``
(``width`` and ``depth`` scale it like YOLOv5's ``n/s/m/l``, default ``s``).
"""

from __future__ import annotations

import torch
from torch import nn


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True):
        super().__init__()
        self.cv1 = Conv(c1, c2, 1)
        self.cv2 = Conv(c2, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c1, c_, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c_ * 4, c2, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, x):
        return torch.cat(x, 1)


class Detect(nn.Module):
    """YOLOv5's head: per scale a 1x1 conv, reshaped to (batch, anchors, ny, nx, outputs), and
    the grid rebuilt when its cached shape differs from the feature map's."""

    def __init__(self, nc=80, ch=(), na=3):
        super().__init__()
        self.no, self.nl, self.na = nc + 5, len(ch), na
        self.grid = [torch.empty(0) for _ in range(self.nl)]
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)

    def forward(self, x):
        z = []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if self.grid[i].shape[2:4] != x[i].shape[2:4]:
                self.grid[i] = self._make_grid(nx, ny, x[i])
            z.append(self._decode(x[i], self.grid[i]).view(bs, self.na * nx * ny, self.no))
        return torch.cat(z, 1)

    @staticmethod
    def _decode(x, grid):
        return torch.cat((x[..., :2].sigmoid() * 2 + grid, x[..., 2:].sigmoid()), -1)

    def _make_grid(self, nx, ny, like):
        yv, xv = torch.meshgrid(torch.arange(ny, device=like.device), torch.arange(nx, device=like.device), indexing="ij")
        return torch.stack((xv, yv), 2).expand(1, self.na, ny, nx, 2).to(like.dtype)


class StaticDetect(Detect):
    """The same head with each scale's grid size fixed at construction (``sizes``)."""

    def __init__(self, nc=80, ch=(), na=3, sizes=()):
        super().__init__(nc, ch, na)
        self.sizes = tuple(sizes)
        for i, (ny, nx) in enumerate(self.sizes):
            self.register_buffer(f"grid{i}", self._make_grid(nx, ny, torch.empty(0)))

    def forward(self, x):
        z = []
        for i, (ny, nx) in enumerate(self.sizes):
            y = self.m[i](x[i]).view(-1, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            z.append(self._decode(y, getattr(self, f"grid{i}")).view(-1, self.na * nx * ny, self.no))
        return torch.cat(z, 1)


class DetectionModel(nn.Module):
    """``self.model``: layers with ``f`` (where the input comes from: -1 the previous layer,
    or a list of indices) and ``i`` (their index); outputs listed in ``save`` are kept."""

    def __init__(self, width=0.5, depth=0.33, static_head=False, image=640, nc=80):
        super().__init__()

        def ch(c):
            return max(8, int(c * width) // 8 * 8)

        def n(k):
            return max(round(k * depth), 1)

        layers = [  # (from, module): YOLOv5 v6's backbone and PAN head
            (-1, Conv(3, ch(64), 6, 2, 2)), (-1, Conv(ch(64), ch(128), 3, 2)), (-1, C3(ch(128), ch(128), n(3))),
            (-1, Conv(ch(128), ch(256), 3, 2)), (-1, C3(ch(256), ch(256), n(6))),
            (-1, Conv(ch(256), ch(512), 3, 2)), (-1, C3(ch(512), ch(512), n(9))),
            (-1, Conv(ch(512), ch(1024), 3, 2)), (-1, C3(ch(1024), ch(1024), n(3))), (-1, SPPF(ch(1024), ch(1024))),
            (-1, Conv(ch(1024), ch(512), 1)), (-1, nn.Upsample(scale_factor=2, mode="nearest")), ([-1, 6], Concat()),
            (-1, C3(ch(1024), ch(512), n(3), False)),
            (-1, Conv(ch(512), ch(256), 1)), (-1, nn.Upsample(scale_factor=2, mode="nearest")), ([-1, 4], Concat()),
            (-1, C3(ch(512), ch(256), n(3), False)),
            (-1, Conv(ch(256), ch(256), 3, 2)), ([-1, 14], Concat()), (-1, C3(ch(512), ch(512), n(3), False)),
            (-1, Conv(ch(512), ch(512), 3, 2)), ([-1, 10], Concat()), (-1, C3(ch(1024), ch(1024), n(3), False)),
        ]
        heads = (ch(256), ch(512), ch(1024))
        if static_head:
            head = StaticDetect(nc, heads, sizes=[(image // s, image // s) for s in (8, 16, 32)])
        else:
            head = Detect(nc, heads)
        layers.append(([17, 20, 23], head))
        modules = []
        for i, (f, m) in enumerate(layers):
            m.f, m.i = f, i
            modules.append(m)
        self.model = nn.Sequential(*modules)
        self.save = {j for f, _ in layers if isinstance(f, list) for j in f if j != -1}

    def forward(self, x):
        y = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x


def build_export_only(width=0.5, depth=0.33, image=640):
    return DetectionModel(width, depth, static_head=False, image=image)


def build_fx_traceable(width=0.5, depth=0.33, image=640):
    return DetectionModel(width, depth, static_head=True, image=image)
