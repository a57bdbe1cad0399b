"""The tiling halo, proven by tiling: real models on random data, on CPU, in eval mode.

For each model and axis, the input is cut along that axis into cores of ``granularity``
multiples; each core is run widened by the reported halo (rounded up to the granularity, cut
at the image border) and its outputs are stitched back. That must equal the whole-image
output (float64). To show the raw halo is exact, not only enough, the same tiles are run with
the pixels beyond the raw halo zeroed (still equal) and with one pixel less of real context on
one side (different).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import warnings
from collections.abc import Callable

import pytest
import torch
from torch import nn

import rflint
from rflint.rf import tiling
from rflint.engine.pipeline import lint_module
from rflint.ir import INF
from rflint.spec import ModelSpec


class TinyUNet(nn.Module):
    """Two 2x max-pool downsamplings, nearest upsampling and concatenated skips: granularity 4."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(1, 4, 3, padding=1)
        self.enc2 = nn.Conv2d(4, 8, 3, padding=1)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.dec2 = nn.Conv2d(16, 4, 3, padding=1)
        self.dec1 = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = torch.relu(self.enc1(x))
        e2 = torch.relu(self.enc2(nn.functional.max_pool2d(e1, 2)))
        m = torch.relu(self.mid(nn.functional.max_pool2d(e2, 2)))
        d2 = torch.relu(self.dec2(torch.cat([nn.functional.interpolate(m, scale_factor=2.0), e2], 1)))
        return self.dec1(torch.cat([nn.functional.interpolate(d2, scale_factor=2.0), e1], 1))


def conv_stack() -> nn.Module:
    # asymmetric padding on W (0 on the left of the last conv is a crop): halo differs per side
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 5, padding=2, dilation=1),
        nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, (3, 3), padding=(1, 0)),
    )


def strided_stack() -> nn.Module:
    # output jump 4: one output unit per 4 input pixels; tiles on a grid of 4
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 4, stride=2, padding=1))


def monai_unet() -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1, norm="batch")


def smp_unet() -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet18", encoder_weights=None, classes=2, encoder_depth=3, decoder_channels=(16, 8, 4))


#: name -> (builder, input channels, image size per axis for the tiling run)
MODELS: dict[str, tuple[Callable[[], nn.Module], int, int]] = {
    "conv_stack": (conv_stack, 1, 40),
    "strided_stack": (strided_stack, 1, 48),
    "tiny_unet": (TinyUNet, 1, 64),
    "monai_unet": (monai_unet, 1, 96),
    "smp_unet": (smp_unet, 3, 320),
}


@functools.cache
def built(name: str) -> nn.Module:
    build, _, _ = MODELS[name]
    torch.manual_seed(0)
    model = build().double().eval()
    for m in model.modules():  # non-trivial running statistics, so BatchNorm is not an identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model


@functools.cache
def analysed(name: str):
    build, channels, size = MODELS[name]
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        return lint_module(build(), ModelSpec(name, input_shape=(1, channels, size, size))).analysis


def halo_of(name: str) -> tuple[tiling.HaloAxis, ...]:
    return tiling.halo(analysed(name))


def output_jump(name: str) -> tuple[int, ...]:
    (field,) = tiling.output_fields(analysed(name))
    return tuple(int(j) for j in field.jump)


def run_tiled(
    model: nn.Module, x: torch.Tensor, axis: int, h: tiling.HaloAxis, keep: tuple[int, int], jump: int, out_len: int
) -> torch.Tensor:
    """Tiles along spatial ``axis`` with cores of two granularity steps, crops widened by the
    aligned halo (cut at the border); inside each crop only ``keep`` = (before, after) pixels
    of context around the core are real, the rest is zeroed."""
    dim = axis + 2
    n = x.shape[dim]
    core = 2 * h.granularity
    parts = []
    for c0 in range(0, n, core):
        c1 = min(n, c0 + core)
        t0, t1 = max(0, c0 - h.before_aligned), min(n, c1 + h.after_aligned)
        tile = x.narrow(dim, t0, t1 - t0).clone()
        positions = torch.arange(t0, t1)
        outside = (positions < c0 - keep[0]) | (positions >= c1 + keep[1])
        index = [slice(None)] * x.dim()
        index[dim] = outside
        tile[tuple(index)] = 0
        out = model(tile)
        # a model without padding has fewer outputs than pixels: the last cores lose units
        length = min((c1 - c0) // jump, out_len - c0 // jump)
        if length > 0:
            parts.append(out.narrow(dim, (c0 - t0) // jump, length))
    return torch.cat(parts, dim)


PARAMS = [pytest.param(name, axis, id=f"{name}-axis{axis}") for name in MODELS for axis in (0, 1)]


@pytest.mark.parametrize(("name", "axis"), PARAMS)
def test_tiles_with_the_reported_halo_equal_the_whole_image_and_one_pixel_less_does_not(name, axis):
    model = built(name)
    _, channels, size = MODELS[name]
    h = halo_of(name)[axis]
    jump = output_jump(name)[axis]
    assert h.exact and h.before != INF and h.after != INF
    assert size % (2 * h.granularity) == 0 and h.before_aligned % h.granularity == 0 and h.after_aligned % h.granularity == 0
    torch.manual_seed(1)
    x = torch.randn(1, channels, size, size, dtype=torch.float64)
    with torch.no_grad():
        whole = model(x)
        n = whole.shape[axis + 2]
        same = run_tiled(model, x, axis, h, (h.before, h.after), jump, n)
        less_before = run_tiled(model, x, axis, h, (h.before - 1, h.after), jump, n)
        less_after = run_tiled(model, x, axis, h, (h.before, h.after - 1), jump, n)
    assert same.shape == whole.shape
    torch.testing.assert_close(same, whole, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(less_before, whole, rtol=1e-6, atol=1e-6), "the first pixel of the halo before is not needed"
    assert not torch.allclose(less_after, whole, rtol=1e-6, atol=1e-6), "the last pixel of the halo after is not needed"


def test_hand_derived_halo_of_a_conv_stack():
    # H: pads 1 + 2 + 1 = 4 before; fields 3 + 4 + 2 = 9, so 9 - 1 - 4 = 4 after.
    # W: the last conv has no padding: 1 + 2 + 0 = 3 before, 8 - 3 = 5 after. Stride 1: grid 1.
    h = halo_of("conv_stack")
    assert [(a.before, a.after, a.granularity) for a in h] == [(4, 4, 1), (3, 5, 1)]


def test_hand_derived_halo_and_grid_of_a_strided_stack():
    # conv 3/2 pad 1, then conv 4/2 pad 1: unit i reads [4i - 3, 4i + 5]; it stands for
    # pixels [4i, 4i + 3], so 3 before and 2 after, on a grid of 4 (aligned: 4 and 4)
    (h, _) = halo_of("strided_stack")
    assert (h.before, h.after, h.granularity, h.before_aligned, h.after_aligned) == (3, 2, 4, 4, 4)


def test_a_global_path_makes_the_halo_infinite():
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y * y.mean((2, 3), keepdim=True).sigmoid()

    a = lint_module(Gated(), ModelSpec("gated", input_shape=(1, 1, 32, 32))).analysis
    assert all(h.before == INF and h.after == INF for h in tiling.halo(a))


def test_analyze_reports_the_halo():
    report = rflint.analyze(conv_stack(), input_shape=(1, 1, 40, 40))
    assert [(a.before, a.after) for a in report.halo] == [(4, 4), (3, 5)]
    assert report.to_dict()["halo"][1]["after"] == 5


def test_halo_command_prints_one_line_per_axis_and_json(tmp_path):
    model = tmp_path / "net.py"
    model.write_text(
        "from torch import nn\n"
        "def Net():\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 4, stride=2, padding=1))\n"
    )
    env = {"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "rflint", "halo", f"{model}:Net", "--input-shape", "1,1,64,64"]
    text = subprocess.run(cmd, capture_output=True, text=True, env={**__import__("os").environ, **env}, check=True).stdout
    lines = [ln for ln in text.splitlines() if ln.startswith(("H:", "W:"))]
    assert len(lines) == 2 and "before 3" in lines[0] and "after 2" in lines[0] and "grid 4" in lines[0]
    data = json.loads(subprocess.run([*cmd, "--output-format", "json"], capture_output=True, text=True, env={**__import__("os").environ, **env}, check=True).stdout)
    assert [a["before"] for a in data["halo"]] == [3, 3] and [a["granularity"] for a in data["halo"]] == [4, 4]
