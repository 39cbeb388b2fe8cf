"""Typed configuration (betenet.config): one list of variants, μ* and the high-T_c threshold named once, and a
run's identity kept apart from how it executes -- with the fingerprints of existing runs unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing

import numpy as np
import pytest

from betenet import config, constants, dataset, double_descent, ensemble, paths, train
from betenet.config import PROFILES, ExecutionConfig, ScreeningConfig, StudyConfig, TrainConfig, get_profile

PACKAGE = paths.REPO_ROOT / "betenet"

#: Computed before the execution settings (device, compile, checkpoint_every) and the notebook-03 sweep left
#: TrainConfig: trained runs and ensembles on disk carry these, so they must never change by accident.
RECIPE_FINGERPRINTS = {  # ensemble.recipe_fingerprint(profile, variant, []) (config part of the recipe)
    ("smoke", "CSO"): "1ad0da313835a4f655b5f1157a0f16304d4f00a3ad1172581750ceb0d9b01f36",
    ("smoke", "CPD"): "d6b4f53c6eea4c7724bf7b2485549c1e3ee890dda88c08dbe086844806848a47",
    ("smoke", "FPD"): "71c05eb367da70eb98e65a982815e31ebc4ab1ab19655e2f22d3481c6b97aa7d",
    ("default", "CSO"): "4e586accb8e7a08ce9486a6ba1e05bc8fc36cfa8bf6c7e62bb4c047539149e72",
    ("default", "CPD"): "97b1bc0af1e5236f27cb9f7d270ea1a133281dd15a03448425e6069f03ce3c6d",
    ("default", "FPD"): "029161bae5ff3091e99fde8776fee4d0f88c28c43a8aa6efd0e0a7c988e3d196",
    ("paper", "CSO"): "f9c7d3db71b92a1fa1cfdeacbb85b1b38e7f31bf57015ced7786c3a63f196d63",
    ("paper", "CPD"): "2c173a97ec4eb64b1c89473fde6ebd9180548475d0686b2090737f88380d3c4e",
    ("paper", "FPD"): "3f06de6321163f135568fc5621b02b2e59192653bb3256d9bab959cd16064747",
}
RUN_KEYS = {  # double_descent.run_key(profile, ["a", "b"], variant): the directory names of trained runs
    ("smoke", "CSO"): "b9266108da", ("smoke", "CPD"): "b132366b00", ("smoke", "FPD"): "85a121636b",
    ("default", "CSO"): "21e60d9d31", ("default", "CPD"): "05bcf57598", ("default", "FPD"): "5f9eb21c7c",
    ("paper", "CSO"): "21e60d9d31", ("paper", "CPD"): "05bcf57598", ("paper", "FPD"): "5f9eb21c7c",
}
RUN_IDENTITIES = {  # sha256 of train.run_identity(model, train, data with train id "a", val id "b"): run.json
    "smoke": "abf6521f6956395018492a4b57f4c56d483453dd29ec1ba5626451772efbf190",
    "default": "ba4d39c6b24b819037e872be8bfccdc8ca2b133a5e9bc98387c1957706b4168f",
    "paper": "ba4d39c6b24b819037e872be8bfccdc8ca2b133a5e9bc98387c1957706b4168f",
}


@pytest.mark.parametrize("name,variant", sorted(RECIPE_FINGERPRINTS))
def test_ensemble_recipe_fingerprints_of_existing_runs_are_unchanged(name, variant):
    assert ensemble.recipe_fingerprint(PROFILES[name], variant, [])[0] == RECIPE_FINGERPRINTS[name, variant]
    assert double_descent.run_key(PROFILES[name], ["a", "b"], variant) == RUN_KEYS[name, variant]


@pytest.mark.parametrize("name", sorted(RUN_IDENTITIES))
def test_train_run_identity_of_existing_runs_is_unchanged(name):
    p = PROFILES[name]
    data = train.TrainData([], np.zeros((0, 51)), ["a"], [], np.zeros((0, 51)), ["b"], 0)
    ident = train.run_identity(p.model, p.train, data)
    assert hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest() == RUN_IDENTITIES[name]


def test_execution_and_study_settings_are_not_part_of_any_identity():
    p = PROFILES["default"]
    other = p.with_overrides(execution={"device": "cuda", "compile": True, "checkpoint_every": 3},
                             study={"dd_sweep": ()})
    assert ensemble.recipe_fingerprint(other, "CSO", [])[0] == ensemble.recipe_fingerprint(p, "CSO", [])[0]
    assert double_descent.run_key(other, ["a"]) == double_descent.run_key(p, ["a"])
    # the limits continue a run; every other train field is its identity
    assert double_descent.run_key(p.with_overrides(train={"max_epochs": 5}), ["a"]) == double_descent.run_key(p, ["a"])
    assert double_descent.run_key(p.with_overrides(train={"lr": 0.001}), ["a"]) != double_descent.run_key(p, ["a"])
    assert set(TrainConfig().identity()) == {f.name for f in dataclasses.fields(TrainConfig)} - set(TrainConfig.LIMITS)


def test_execution_settings_live_only_in_their_section():
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert not train_fields & {f.name for f in dataclasses.fields(ExecutionConfig)}
    assert not train_fields & {f.name for f in dataclasses.fields(StudyConfig)}
    with pytest.raises(ValueError, match="unknown field.*device"):
        get_profile("smoke", train={"device": "cpu"})
    assert get_profile("smoke", execution={"device": "cuda"}).execution.device == "cuda"
    assert PROFILES["smoke"].execution.device == "cpu" and PROFILES["paper"].execution.device == "auto"
    # no exemption list of "fields that do not count" is left in the package
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for name in ("RESUMABLE_FIELDS", "_FINGERPRINT_IGNORED_TRAIN_FIELDS", "_MEMBER_CLEARED_TRAIN_FIELDS"):
            assert name not in text, f"{path.relative_to(PACKAGE)} still defines or uses {name}"


def test_the_variants_are_listed_once():
    assert config.VARIANTS == typing.get_args(config.Variant) == ("CSO", "CPD", "FPD")
    assert dataset.VARIANTS is config.VARIANTS and ensemble.VARIANTS is config.VARIANTS
    assert config.EnsembleConfig().variants == config.VARIANTS
    literal = re.compile(r"""["']CSO["']\s*,\s*["']CPD["']\s*,\s*["']FPD["']""")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "config.py" and literal.search(p.read_text())]
    assert offenders == [], f"a literal list of the variants outside config.py: {offenders}"


def test_mu_star_and_the_high_tc_threshold_are_named_once():
    names = {f.name for f in dataclasses.fields(ScreeningConfig)}
    assert "mu_star" not in names and "tc_threshold_K" not in names
    cfg = PROFILES["paper"].screening
    assert not hasattr(cfg, "mu_star") and not hasattr(cfg, "tc_threshold_K")
    assert (constants.MU_STAR_DEFAULT, constants.HIGH_TC_THRESHOLD_K) == (0.1, 5.0)  # the paper's values


def test_one_profile_resolver():
    p = PROFILES["smoke"]
    assert config.resolve_profile(p) is p and config.resolve_profile("smoke") is p
    with pytest.raises(ValueError, match="unknown profile"):
        config.resolve_profile("nope")
    with pytest.raises(TypeError):
        config.resolve_profile(3)
    inline = re.compile(r"isinstance\(\s*profile\s*,\s*str\s*\)")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "config.py" and inline.search(p.read_text())]
    assert offenders == [], f"profile names resolved outside config.resolve_profile: {offenders}"
