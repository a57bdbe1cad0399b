"""``rflint.analyze`` on a CPU-built module: traced as a meta-device copy, against tracing the
CPU module itself (what the API did before: the shape run computed every convolution), in one
run on one machine.

    python benchmarks/api_module.py              # a 3-D U-Net with a transposed decoder, 64^3
    python benchmarks/api_module.py --size 96 --width 32 --repeat 3

Both paths are warmed first (imports and the meta kernels' one-off set-up, about 2 s here, which
the first call of a process pays either way); the table gives the minimum of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import rflint
from rflint.engine import pipeline as engine
from rflint.spec import ModelSpec


class UNet3D(nn.Module):
    def __init__(self, c: int = 16):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv3d(1, c, 3, padding=1), nn.Conv3d(c, c, 3, padding=1))
        self.down = nn.Conv3d(c, 2 * c, 2, stride=2)
        self.mid = nn.Conv3d(2 * c, 2 * c, 7, padding=3, groups=2 * c)  # Rep3D's large depthwise kernel
        self.up = nn.ConvTranspose3d(2 * c, c, 2, stride=2)
        self.head = nn.Conv3d(2 * c, 2, 1)

    def forward(self, x):
        e = self.enc(x)
        return self.head(torch.cat([e, self.up(self.mid(self.down(e)))], 1))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = UNet3D(args.width)
    spec = ModelSpec("unet3d", (args.size,), name="unet3d")
    for warm in (UNet3D(2), UNet3D(2)):
        rflint.analyze(warm, input_size=8)
        engine.lint_module(warm, ModelSpec("w", (8,), name="w"))
    cpu = best(lambda: engine.lint_module(model, spec), args.repeat)
    meta = best(lambda: rflint.analyze(model, input_size=args.size), args.repeat)
    print(f"{'path':<40} {'min s':>8}")
    print(f"{'trace the CPU module (reference)':<40} {cpu:>8.2f}")
    print(f"{'rflint.analyze (meta-device copy)':<40} {meta:>8.2f}   {cpu / meta:.0f}x")


if __name__ == "__main__":
    main()
