"""Baselines: keyed by (model, layer, rule) with counts, never lines; a ratchet; stale entries."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rflint.project.baseline import StaleEntry, apply_baseline, baseline_from, dumps, loads, read_baseline, update_baseline, write_baseline
from rflint.errors import ConfigError
from rflint.ir import Finding, Severity, Source


def f(code: str, layer: str, model: str = "net", line: int = 10) -> Finding:
    return Finding(code, "x", Severity.ERROR, "m", model=model, layer=layer, source=Source("/repo/net.py", line))


def test_baseline_keys_are_model_layer_code_with_counts():
    findings = [f("RF101", "layer4.0.conv1"), f("RF101", "layer4.0.conv1"), f("RF103", ""), f("RF101", "x", model="other")]
    assert baseline_from(findings) == {
        "net": {"layer4.0.conv1": {"RF101": 2}, "": {"RF103": 1}},
        "other": {"x": {"RF101": 1}},
    }


def test_round_trip_through_the_file(tmp_path):
    b = baseline_from([f("RF101", "a"), f("RF103", "")])
    path = tmp_path / "rflint-baseline.json"
    write_baseline(path, b)
    assert json.loads(path.read_text())["version"] == 1
    assert read_baseline(path) == b
    assert dumps(b) == dumps(read_baseline(path))  # stable text: reviewable diffs


def test_baselined_findings_are_hidden_and_new_ones_reported():
    b = baseline_from([f("RF101", "a"), f("RF101", "b")])
    result = apply_baseline([f("RF101", "a"), f("RF101", "b"), f("RF101", "c"), f("RF102", "a")], b)
    assert [(x.code, x.layer) for x in result.new] == [("RF101", "c"), ("RF102", "a")]
    assert len(result.baselined) == 2 and result.stale == []


def test_line_moves_do_not_matter():
    b = baseline_from([f("RF101", "a", line=10)])
    assert apply_baseline([f("RF101", "a", line=99)], b).new == []


def test_counts_limit_how_many_findings_one_entry_hides():
    b = baseline_from([f("RF101", "a")])
    result = apply_baseline([f("RF101", "a"), f("RF101", "a")], b)
    assert len(result.new) == 1 and len(result.baselined) == 1


def test_fixed_entries_are_reported_stale_for_checked_models_only():
    b = baseline_from([f("RF101", "a"), f("RF101", "b"), f("RF101", "z", model="other")])
    result = apply_baseline([f("RF101", "a")], b, checked_models={"net"})
    assert result.stale == [StaleEntry("net", "b", "RF101", 1)]
    assert len(apply_baseline([f("RF101", "a")], b).stale) == 2  # every model counts when not told


def test_rewriting_only_removes_fixed_entries_unless_forced():
    old = baseline_from([f("RF101", "a"), f("RF101", "a"), f("RF101", "b"), f("RF101", "z", model="other")])
    now = [f("RF101", "a"), f("RF101", "c")]  # one of a fixed, b fixed, c is new
    ratchet = update_baseline(old, now, checked_models={"net"})
    assert ratchet == {"net": {"a": {"RF101": 1}}, "other": {"z": {"RF101": 1}}}  # c NOT added; other kept
    assert update_baseline(old, now, force=True) == {"net": {"a": {"RF101": 1}, "c": {"RF101": 1}}}
    assert update_baseline(None, now) == baseline_from(now)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"version": 2, "models": {}}', "not an rflint baseline"),
        ('{"version": 1, "models": {"net": {"a": {"RF101": 0}}}}', "not an rflint baseline"),
        ('{"version": 1, "models": {"net": {"a": {"rf101": 1}}}}', "not an rflint baseline"),
        ('{"net": {"a": {"RF101": 1}}}', "not an rflint baseline"),
    ],
)
def test_invalid_baselines_are_config_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        loads(text, "b.json")


def test_missing_baseline_file(tmp_path):
    with pytest.raises(ConfigError, match="baseline file not found"):
        read_baseline(tmp_path / "nope.json")


def test_baseline_ignores_severity_changes():
    b = baseline_from([f("RF101", "a")])
    assert apply_baseline([replace(f("RF101", "a"), severity=Severity.WARN)], b).new == []
