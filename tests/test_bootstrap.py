"""Bootstrap resamples (betenet.bootstrap): equal-size draws with replacement and their out-of-bag complement,
determinism (a pure function of the seed, the member index and the sorted ids), the 1/e OOB fraction; the ensembles
(betenet.ensemble) and the paper's split reader (betenet.upstream_split) both use them."""

from __future__ import annotations

import numpy as np
import pytest

from betenet import bootstrap
from betenet import ensemble


def test_the_ensemble_package_re_exports_the_resamples():
    for name in bootstrap.__all__:
        assert getattr(ensemble, name) is getattr(bootstrap, name)
        assert name in ensemble.__all__


def test_bootstrap_is_an_equal_size_resample_with_oob_complement():
    ids = [f"m{i:03d}" for i in range(50)]
    b = bootstrap.bootstrap_sample(ids, 3, seed=11)
    assert len(b.sample_ids) == len(ids) == b.n_train
    assert set(b.sample_ids) <= set(ids)
    assert set(b.oob_ids) == set(ids) - set(b.sample_ids)
    assert list(b.oob_ids) == sorted(b.oob_ids)
    assert len(set(b.sample_ids)) < len(ids)  # with replacement: repeats
    assert b.oob_fraction + b.unique_fraction == pytest.approx(1.0)
    d = b.to_dict()
    assert d["n_oob"] == len(b.oob_ids) and d["n_unique"] == len(set(b.sample_ids))


def test_bootstrap_is_deterministic_order_independent_and_differs_per_member():
    ids = [f"m{i:03d}" for i in range(40)]
    a = bootstrap.bootstrap_sample(ids, 0, seed=5)
    assert a == bootstrap.bootstrap_sample(list(reversed(ids)), 0, seed=5)
    assert a.sample_ids != bootstrap.bootstrap_sample(ids, 1, seed=5).sample_ids
    assert a.sample_ids != bootstrap.bootstrap_sample(ids, 0, seed=6).sample_ids
    assert a.seed == bootstrap.member_seed(5, 0) != bootstrap.member_seed(5, 1)
    # growing the ensemble keeps the first members
    assert bootstrap.bootstrap_samples(ids, 2, 5) == bootstrap.bootstrap_samples(ids, 5, 5)[:2]


def test_oob_fraction_approaches_one_over_e():
    n = 2000
    ids = [f"m{i:05d}" for i in range(n)]
    fr = np.array([bootstrap.bootstrap_sample(ids, k, seed=1).oob_fraction for k in range(20)])
    assert bootstrap.expected_oob_fraction(n) == pytest.approx((1 - 1 / n) ** n)
    assert bootstrap.expected_oob_fraction(n) == pytest.approx(np.exp(-1), abs=1e-3)
    # std of one member's OOB fraction ~ sqrt(e^-1 (1 - e^-1) ... ) / sqrt(n) ~ 0.011; mean of 20 ~ 0.0025
    assert fr.mean() == pytest.approx(bootstrap.expected_oob_fraction(n), abs=0.01)
    assert np.all(np.abs(fr - np.exp(-1)) < 0.05)
    assert bootstrap.expected_oob_fraction(2) == 0.25


def test_bootstrap_always_leaves_an_oob_material_and_rejects_bad_input():
    for k in range(30):
        b = bootstrap.bootstrap_sample(["a", "b"], k, seed=0)
        assert len(b.oob_ids) == 1 and len(b.sample_ids) == 2
    assert any(bootstrap.bootstrap_sample(["a", "b"], k, seed=0).redraws > 0 for k in range(30))
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap.bootstrap_sample(["a"], 0, seed=0)
    with pytest.raises(ValueError, match="duplicates"):
        bootstrap.bootstrap_sample(["a", "b", "a"], 0, seed=0)
