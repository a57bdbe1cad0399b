"""The empirical effective receptive field (Luo et al. 2016).

Oracle: for a stack of n linear 3x3 convolutions with uniform weights, the gradient of the
centre unit with respect to the input is the n-fold convolution of a 3x3 box, separable, and its
marginal along each axis is the n-fold convolution of the uniform distribution on {-1, 0, 1},
whose variance is 2/3; so sigma = sqrt(2n/3) exactly (hand computation, Luo et al. section 2.1:
"the standard deviation grows as sqrt(n)"), while the theoretical field is 2n + 1.
"""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import torch
from torch import nn

from rflint.engine.erf import (
    ErfError,
    gaussian_sigma,
    load_weights,
    measure_erf,
    peak,
    square_side,
)
from rflint.errors import UsageError


def linear_stack(n: int, channels: int = 1) -> nn.Sequential:
    """n 3x3 convolutions, weights 1/9 per input channel, no bias, no non-linearity."""
    convs = [nn.Conv2d(channels if i == 0 else 1, 1, 3, padding=1, bias=False) for i in range(n)]
    with torch.no_grad():
        for c in convs:
            c.weight.fill_(1.0 / c.weight[0].numel())
    return nn.Sequential(*convs)


# --------------------------------------------------------------------------- statistics


def test_statistics_of_known_maps():
    delta = torch.zeros(9, 9, dtype=torch.float64)
    delta[4, 4] = 1
    assert square_side(delta) == 1
    assert peak(delta) == (4, 4)
    assert gaussian_sigma(delta) == (0.0, 0.0)
    uniform = torch.ones(9, 9, dtype=torch.float64) / 81
    assert square_side(uniform) == 9  # 7x7 holds only 49/81
    # uniform on 0..8: variance (9^2 - 1) / 12
    assert gaussian_sigma(uniform) == pytest.approx((math.sqrt(80 / 12),) * 2)
    # a 5x5 plateau plus one outlying pixel two columns to its left
    m = torch.zeros(11, 11, dtype=torch.float64)
    m[3:8, 3:8] = 1.0
    m[5, 1] = 0.5  # 2 % of the mass outside the 5x5 square, but within the 9x9 one
    assert square_side(m) == 5  # 25 / 25.5 = 98 % >= 95 %
    m[5, 1] = 2.0  # now 25 / 27 = 92.6 %: the square must reach column 1
    assert square_side(m) == 9


# --------------------------------------------------------------------------- Luo et al. 2.1


def test_erf_sigma_grows_like_sqrt_n_while_r_max_grows_like_n():
    small = measure_erf(linear_stack(4), input_shape=(1, 1, 64, 64), samples=2)
    large = measure_erf(linear_stack(16), input_shape=(1, 1, 64, 64), samples=2)
    for n, res in ((4, small), (16, large)):
        assert res.sigma == pytest.approx((math.sqrt(2 * n / 3),) * 2, abs=1e-4)
        assert res.r_max == (2 * n + 1, 2 * n + 1)  # rflint's analysis of the same model
    # sqrt(16 / 4) = 2 (tolerance 1 %), while r_max grows 33 / 9 = 3.67
    assert large.sigma[0] / small.sigma[0] == pytest.approx(2.0, rel=0.01)
    assert large.r_max[0] / small.r_max[0] == pytest.approx(33 / 9)
    # so the effective field is a shrinking share of the theoretical one
    assert large.ratio[0] < small.ratio[0] < 1
    assert large.sigma_ratio[0] < small.sigma_ratio[0]


def test_heatmap_peak_is_at_the_centre():
    res = measure_erf(linear_stack(6), input_shape=(1, 1, 48, 48), samples=2)
    assert res.centre == (24, 24)
    assert res.peak == (24, 24)  # padding 1, stride 1: output pixel 24 sits over input pixel 24
    assert res.centroid == pytest.approx((24.0, 24.0), abs=1e-6)
    assert float(res.grad_map.sum()) == pytest.approx(1.0)
    # nothing outside the theoretical field (13 x 13 around the centre)
    outside = res.grad_map.clone()
    outside[18:31, 18:31] = 0
    assert float(outside.sum()) == 0.0


def test_named_layer_is_measured():
    res = measure_erf(linear_stack(5), input_shape=(1, 1, 32, 32), layer="1", samples=1)
    assert res.layer == "1"
    assert res.r_max == (5, 5)
    assert res.sigma == pytest.approx((math.sqrt(4 / 3),) * 2, abs=1e-4)


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ErfError, match="no layer named 'conv9'"):
        measure_erf(linear_stack(2), input_shape=(1, 1, 16, 16), layer="conv9", samples=1)


# --------------------------------------------------------------------------- weights, meta, images


def test_meta_model_is_materialised_and_weights_load_from_a_state_dict(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(linear_stack(4).state_dict(), path)
    with torch.device("meta"):
        model = linear_stack(4)
    assert all(p.is_meta for p in model.parameters())
    res = measure_erf(model, input_shape=(1, 1, 32, 32), weights=path, samples=1)
    assert not any(p.is_meta for p in model.parameters())
    assert res.sigma == pytest.approx((math.sqrt(8 / 3),) * 2, abs=1e-4)  # the loaded uniform weights


def test_whole_pickled_model_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(linear_stack(2), path)  # a pickled module, not a state_dict
    with pytest.raises(ErfError, match="weights_only"):
        load_weights(linear_stack(2), path)


def test_mismatched_state_dict_is_refused(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(linear_stack(3).state_dict(), path)
    with pytest.raises(ErfError, match="do not match"):
        load_weights(linear_stack(2), path)


def test_images_from_a_folder(tmp_path):
    from PIL import Image

    gen = torch.Generator().manual_seed(1)
    for i in range(3):
        pixels = (torch.rand(40, 50, 3, generator=gen) * 255).to(torch.uint8)
        Image.fromarray(pixels.numpy()).save(tmp_path / f"img{i}.png")
    res = measure_erf(linear_stack(4, channels=3), input_shape=(1, 3, 32, 32), images=tmp_path, samples=10)
    assert res.samples == 3
    assert res.inputs.startswith("3 images")
    assert res.sigma == pytest.approx((math.sqrt(8 / 3),) * 2, abs=1e-4)  # linear: input-independent


def test_cuda_is_used_when_available_and_refused_otherwise():
    if torch.cuda.is_available():
        gpu = measure_erf(linear_stack(4), input_shape=(1, 1, 32, 32), device="cuda", samples=1)
        assert gpu.device.startswith("cuda")
        assert gpu.sigma == pytest.approx((math.sqrt(8 / 3),) * 2, abs=1e-4)
    else:
        with pytest.raises(UsageError, match="CUDA is not available"):
            measure_erf(linear_stack(4), input_shape=(1, 1, 32, 32), device="cuda", samples=1)


# --------------------------------------------------------------------------- a real network


def test_random_init_resnet18_erf_is_smaller_than_r_max():
    import torchvision
    with torch.device("meta"):  # as rflint.sources.load builds it: exercises materialise()
        model = torchvision.models.resnet18()
    # 448 > r_max 435, so the 95 % square could be as large as r_max if the ERF filled the field
    res = measure_erf(model, input_size=(448,), samples=4, batch_size=4, name="resnet18")
    assert res.layer == "layer4.1.relu_1"  # last spatial layer before global pooling
    assert res.r_max == (435, 435)
    assert res.output_size == (14, 14)
    assert res.side < 435
    assert res.ratio[0] < 0.75
    assert all(s < 435 / 4 for s in res.sigma)
    # peak and centroid near the centre unit's field centre (7 * 32 = 224, within one jump)
    assert all(abs(p - 224) <= 16 for p in res.peak)
    assert all(abs(c - 224) <= 16 for c in res.centroid)


# --------------------------------------------------------------------------- CLI


MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def build_model():
        convs = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(4)]
        return nn.Sequential(*convs)
    """
)


def test_erf_command_json_and_heatmap(tmp_path):
    from typer.testing import CliRunner

    from rflint.cli import app

    (tmp_path / "net.py").write_text(MODEL)
    weights = tmp_path / "w.pt"
    torch.save(linear_stack(4).state_dict(), weights)
    heat = tmp_path / "erf.png"
    result = CliRunner().invoke(
        app,
        ["erf", str(tmp_path / "net.py"), "--input-shape", "1,1,40,40", "--samples", "2",
         "--weights", str(weights), "-o", str(heat), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["r_max"] == [9, 9]
    assert data["erf_sigma"] == pytest.approx([math.sqrt(8 / 3)] * 2, abs=1e-3)
    assert data["peak"] == [20, 20]
    assert len(data["map"]) == 40 and len(data["map"][0]) == 40
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = CliRunner().invoke(app, ["erf", str(tmp_path / "net.py"), "--input-shape", "1,1,40,40", "--samples", "1"])
    assert text.exit_code == 0, text.output
    assert "theoretical r_max" in text.stdout and "ERF size" in text.stdout
    nocuda = CliRunner().invoke(app, ["erf", str(tmp_path / "net.py"), "-s", "40", "--device", "tpu"])
    assert nocuda.exit_code == 2
