"""`rflint suggest` on torchvision models: the refinement advisor finds verified edits, and the
published refinements of Richter & Pal (2022) come out with the published numbers.

Oracles: [A.5] = /work/shared/reference/receptive-field-prior-art.md, section A.5 (I_min / I_max of
the author's ``better_*`` models, computed with rfa-toolbox; rflint's ``i_min`` has no k x J
feature-map term, which is below the r_min term on all of these models, so the numbers agree);
[B.2] = the same brief, section B.2. Models are built on the meta device (no weights) except
where the emitted code is run on real weights.
"""

from __future__ import annotations

import functools
import json

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from rflint.advise.advisor import Advice, advise, evaluate, feature_map_term
from rflint.advise.edits import Change, Edit
from rflint.rf.algebra import analyse
from rflint.cli import app
from rflint.frontend.fx import trace_graph
from rflint.sources.load import load_model
from rflint.advise.refine import apply_edit_to_module, emit_python, verify_advice, verify_candidate

pytestmark = pytest.mark.slow


@functools.lru_cache(maxsize=None)
def traced(name: str, size: int):
    module = load_model(f"torchvision:{name}").module
    graph = trace_graph(module, input_size=(size,), name=name)
    return module, analyse(graph)


@functools.lru_cache(maxsize=None)
def advice_for(name: str, size: int) -> Advice:
    return advise(traced(name, size)[1], top=None)


def _v(values):
    return tuple(int(v) for v in values)


@pytest.mark.parametrize(
    "name, base_i_min",
    [
        ("convnext_tiny", 224),  # [A.5]
        ("mobilenet_v3_large", 263),  # [A.5]
        ("mobilenet_v3_small", 303),  # [A.5]
        ("mnasnet1_0", 283),  # [A.5]
        ("efficientnet_b0", 299),  # [A.5] / [B.1]
        ("vgg19_bn", 268),  # [A.5]
    ],
)
def test_unrefined_models_get_a_verified_edit_below_224(name, base_i_min):
    module, analysis = traced(name, 224)
    assert _v(analysis.i_min) == (base_i_min, base_i_min)
    advice = advice_for(name, 224)
    assert not advice.already_refined
    assert advice.seconds < 5.0  # IR only: typically well under a second (see docs/advisor.md)
    checked = verify_advice(advice, module, top=1, name=name)
    assert len(checked.performance) == 1
    best = checked.performance[0]
    assert best.verified is True
    assert all(m < 224 for m in best.i_min)
    assert best.note == ""  # the re-traced MACs are within 1% of the IR's prediction


# The paper's single edits ([A.5]): (model, module, change, I_min after, I_max after)
PAPER_EDITS = [
    ("convnext_tiny", "features.0.0", {"kernel": (2, 2), "stride": (2, 2)}, 112, 844),
    ("mobilenet_v3_large", "features.13.block.1.0", {"stride": (1, 1)}, 199, 467),  # block C4, index 12
    ("mnasnet1_0", "layers.12.0.layers.3", {"stride": (1, 1)}, 219, 619),  # fifth stack, first block
    ("mobilenet_v3_small", "features.4.block.1.0", {"stride": (1, 1)}, 175, 351),  # block C3, index 3
]


@pytest.mark.parametrize("name, qualname, change, i_min, i_max", PAPER_EDITS)
def test_advisor_finds_the_papers_single_edits(name, qualname, change, i_min, i_max):
    module, analysis = traced(name, 224)
    advice = advice_for(name, 224)
    found = [
        c
        for c in advice.performance
        if len(c.edit.changes) == 1
        and c.edit.changes[0].qualname == qualname
        and all(getattr(c.edit.changes[0], k) == v for k, v in change.items())
    ]
    assert len(found) == 1
    cand = found[0]
    assert _v(cand.i_min) == (i_min, i_min)
    assert _v(cand.i_max) == (i_max, i_max)
    checked = verify_candidate(module, cand, (224, 224), advice.base_macs)
    assert checked.verified is True, checked.note


def test_efficientnet_perf3_is_two_kernel_edits_the_advisor_finds_half_of():
    module, analysis = traced("efficientnet_b0", 224)
    best = advice_for("efficientnet_b0", 224).performance[0]
    # the advisor's best single edit is the stage-6 half of perf3: all four 5x5 depthwise convs
    # of features.6 -> 3x3. By hand: features.6.0 (s2, input r_min 107, J 16): 107 + 2*16 = 139;
    # features.6.1-3 (J 32): 139 + 2*32 = 203; features.7.0 reads the stage output (r_min 139
    # through the skips): 139 + 2*32 = 203; every earlier layer is below (features.5.x: 171).
    assert {c.qualname for c in best.edit.changes} == {f"features.6.{b}.block.1.0" for b in range(4)}
    assert _v(best.i_min) == (203, 203)
    assert best.macs_ratio < 1
    # perf3 adds early depthwise 3 -> 7 (stage 1 and 2), which raises I_min again: [A.5] 219 / 659
    by = {layer.qualname: layer for layer in analysis.graph.layers}
    changes = [
        Change(q, "Conv2d", kernel=(3, 3), padding=(1, 1), old_kernel=(5, 5), old_stride=tuple(int(s) for s in by[q].stride))
        for q in (f"features.6.{b}.block.1.0" for b in range(4))
    ] + [
        Change(q, "Conv2d", kernel=(7, 7), padding=(3, 3), old_kernel=(3, 3), old_stride=tuple(int(s) for s in by[q].stride))
        for q in ("features.1.0.block.0.0", "features.2.0.block.1.0", "features.2.1.block.1.0")
    ]
    perf3 = evaluate(analysis, Edit("kernel", tuple(changes)))
    assert perf3 is not None
    assert _v(perf3.i_min) == (219, 219) and _v(perf3.i_max) == (659, 659)
    assert verify_candidate(module, perf3, (224, 224), advice_for("efficientnet_b0", 224).base_macs).verified


def test_feature_map_term_is_not_binding_on_the_zoo():
    # rfa-toolbox adds max k x J to I_min; on these models it is at most the r_min term
    # (ConvNeXt-T: 7 x 32 = 224 = its r_min term, [A.5])
    for name in ("convnext_tiny", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet1_0", "efficientnet_b0", "vgg19_bn"):
        analysis = traced(name, 224)[1]
        assert all(f <= m for f, m in zip(feature_map_term(analysis), analysis.i_min)), name
    assert _v(feature_map_term(traced("convnext_tiny", 224)[1])) == (224, 224)


def test_resnet18_at_32_cuts_the_unproductive_tail():
    module, analysis = traced("resnet18", 32)
    advice = advice_for("resnet18", 32)
    assert advice.base_unproductive == 3  # [B.2]: layer3.1.conv2, layer4.0.conv2, layer4.1.conv2
    checked = verify_advice(advice, module, top=1, name="resnet18")
    best = checked.efficiency[0]
    assert best.edit.kind == "cut" and best.verified is True
    assert best.edit.text == "remove layer3.1, layer4 (the tail after layer3.0); fc reads 256 features"
    assert best.unproductive == 0
    assert best.macs_ratio < 0.7
    assert best.params_delta < 0


def test_refined_resnet18_at_224_gets_nothing_to_change():
    advice = advice_for("resnet18", 224)
    assert _v(advice.base.i_min) == (139, 139)  # [B.2]
    assert advice.nothing_to_change
    assert advice.performance == () and advice.efficiency == ()


def test_emitted_code_runs_on_real_weights():
    # the emitted refine(model) on a CPU model with weights: a stage kernel change (new convs)
    # and a tail cut (new head) both still run forward with the expected output shape
    small = advice_for("mobilenet_v3_small", 224).performance[0]
    assert small.edit.kind == "kernel"
    model = apply_edit_to_module(torchvision.models.mobilenet_v3_small(), small.edit).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    cut = advice_for("resnet18", 32).efficiency[0]
    model = apply_edit_to_module(torchvision.models.resnet18(), cut.edit).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)
    assert "def refine(model: nn.Module) -> nn.Module:" in emit_python(cut.edit)


def test_cli_suggest_json_and_emit_python():
    runner = CliRunner()
    result = runner.invoke(app, ["suggest", "torchvision:resnet18", "--input-size", "224", "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["nothing_to_change"] is True and payload["performance"] == []
    result = runner.invoke(app, ["suggest", "torchvision:resnet18", "--input-size", "32", "--emit-python", "--top", "1"])
    assert result.exit_code == 0, result.output
    namespace: dict = {}
    exec(compile(result.stdout, "<emitted>", "exec"), namespace)
    model = namespace["refine"](torchvision.models.resnet18()).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_hint_for_rf103_on_mobilenet_v3_large():
    from rflint.advise.advisor import hint_for_rf103

    hint = hint_for_rf103(traced("mobilenet_v3_large", 224)[1])
    assert hint is not None
    assert hint.startswith("try features.13.block.1.0 .. features.15.block.1.0 (3 convs): kernel 5 -> 3 (I_min 263 -> 167")
    assert hint_for_rf103(traced("resnet18", 224)[1]) is None


def test_candidates_failing_verification_are_dropped_and_counted():
    from dataclasses import replace

    module, analysis = traced("resnet18", 32)
    advice = advice_for("resnet18", 32)
    good = advice.efficiency[0]
    # the conv alone, without its shortcut: the add gets a 2x2 and a 1x1 map (torch broadcasts,
    # so it traces) and the re-traced I_min is not the candidate's
    broken = replace(
        good,
        edit=Edit("stride", (Change("layer4.0.conv1", "Conv2d", stride=(1, 1), old_kernel=(3, 3), old_stride=(2, 2)),)),
    )
    # a right edit with a wrong prediction (the base analysis): the I_min comparison fails
    wrong = replace(good, analysis=analysis)
    checked = verify_advice(replace(advice, efficiency=(broken, wrong, good)), module, top=1, name="resnet18")
    assert checked.dropped == 2
    assert [c.verified for c in checked.failures] == [False, False]
    assert checked.failures[1].note == "re-traced I_min 59 != predicted 139"
    assert checked.efficiency[0].edit == good.edit and checked.efficiency[0].verified
