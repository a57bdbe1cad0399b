"""RF106 checkerboard overlap: the per-phase number of inputs rflint tracks (rflint.rf.overlap)
equals the oracle's count of input positions with a non-zero gradient (tests/oracle.py via
tests/unit_oracle.py) for each output phase of the chain, and only an uneven chain is flagged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from unit_oracle import terms_per_unit

from rflint.engine.pipeline import lint_module
from rflint.rf.overlap import uneven_overlaps
from rflint.spec import ModelSpec


def deconv(k, s, p=0, d=2):
    return (nn.ConvTranspose2d if d == 2 else nn.ConvTranspose1d)(2, 2, k, stride=s, padding=p)


class Chain(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class Resized(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode=self.mode))


class UNetUp(nn.Module):
    """A decoder step: the uneven deconvolution's output is concatenated with a skip."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(2, 2, 2, stride=2)
        self.up = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1)
        self.out = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        return self.out(torch.cat([x, self.up(self.down(x))], dim=1))


CASES = {  # name: (model, input shape, flagged layers with their per-phase counts)
    # hand (Dumoulin & Visin): output 2m reads inputs m-1..m, output 2m+1 reads m alone
    "k3_s2": (lambda: Chain(deconv(3, 2)), (1, 2, 12, 12), {"layers.0": [2, 1]}),
    "k4_s2_p1": (lambda: Chain(deconv(4, 2, 1)), (1, 2, 12, 12), {}),
    "k5_s2": (lambda: Chain(deconv(5, 2)), (1, 2, 12, 12), {"layers.0": [3, 2]}),
    "k3_s3": (lambda: Chain(deconv(3, 3)), (1, 2, 12, 12), {}),
    "k2_s3_leaves_gaps": (lambda: Chain(deconv(2, 3)), (1, 2, 12, 12), {"layers.0": [1, 1, 0]}),
    "k3_s2_then_k2_evens_out": (lambda: Chain(deconv(3, 2), nn.ReLU(), nn.Conv2d(2, 2, 2)), (1, 2, 12, 12), {}),
    "k3_s2_then_k3_stays_uneven": (
        # hand: even outputs read deconv units 2m-1..2m+1 = inputs m-1..m (2), odd ones m-1..m+1 (3)
        lambda: Chain(deconv(3, 2), nn.Conv2d(2, 2, 3, padding=1)), (1, 2, 12, 12), {"layers.0": [2, 3]},
    ),
    "two_uneven_deconvs": (lambda: Chain(deconv(3, 2), deconv(3, 2)), (1, 2, 8, 8), {"layers.0": [2, 1], "layers.1": [2, 1]}),
    "one_d": (lambda: Chain(deconv(3, 2, d=1)), (1, 2, 16), {"layers.0": [2, 1]}),
    "nearest_then_conv": (lambda: Resized("nearest"), (1, 2, 12, 12), {}),
    "bilinear_then_conv": (lambda: Resized("bilinear"), (1, 2, 12, 12), {}),
}


def flagged(name):
    build, shape, _ = CASES[name]
    r = lint_module(build(), ModelSpec(name, shape[2:], shape))
    found = {}
    for f in r.findings:
        if f.code == "RF106":
            found.setdefault(f.layer, set()).add(tuple(f.receptive_field["phase_counts"]))
    return found, r


@pytest.mark.parametrize("name", CASES)
def test_only_uneven_chains_are_flagged_with_their_phase_counts(name):
    found, _ = flagged(name)
    expected = CASES[name][2]
    assert found == {layer: {tuple(counts)} for layer, counts in expected.items()}


@pytest.mark.parametrize(
    "name", ["k3_s2", "k5_s2", "k2_s3_leaves_gaps", "k3_s2_then_k2_evens_out", "k3_s2_then_k3_stays_uneven", "one_d", "k4_s2_p1"]
)
def test_phase_counts_equal_the_oracle(name):
    build, shape, _ = CASES[name]
    r = lint_module(build(), ModelSpec(name, shape[2:], shape))
    first = next(l for l in r.analysis.graph.layers if l.op.startswith("ConvTranspose"))
    (taps,) = {t.period for t in first.taps if t is not None}
    period = taps
    for axis in range(len(shape) - 2):
        n_out = r.analysis.layers[-1].layer.out_size[axis]
        start = (n_out // 2) // period * period
        # the other axes at a phase-0 unit: with k < s a phase reads nothing along them too
        oracle = terms_per_unit(build(), shape, axis=axis, units=range(start, start + period), other=start)
        found = [o for o in uneven_overlaps(r.analysis.graph) if o.layer.name == first.name and o.axis == axis]
        if len(set(oracle)) == 1:
            assert not found
        else:
            (overlap,) = found
            assert list(overlap.counts) == oracle


def test_the_message_names_the_layer_the_counts_and_the_fix():
    found, r = flagged("k3_s2")
    f = next(f for f in r.findings if f.code == "RF106")
    assert f.severity.value == "info" and f.layer == "layers.0"
    assert "2, 1 per phase" in f.message and "kernel 3 is not divisible by stride 2" in f.message
    assert "kernel divisible by the stride (4 for stride 2)" in f.hint


def test_a_decoder_merging_the_uneven_output_with_a_skip_is_flagged():
    r = lint_module(UNetUp(), ModelSpec("u", (16, 16), (1, 2, 16, 16)))
    findings = [f for f in r.findings if f.code == "RF106"]
    assert {f.layer for f in findings} == {"up"}
    assert all(sorted(f.receptive_field["phase_counts"]) == [1, 2] for f in findings)
