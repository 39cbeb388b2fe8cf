"""Bootstrap ensembles (betenet.ensemble): resamples, OOB, summaries, saved predictions, a tiny real
2-member ensemble through Dask, and resume (only missing members retrain; finished files untouched)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from betenet import ensemble as ens
from betenet.config import get_profile
from betenet.constants import TARGET_GRID_MEV
from betenet.records import MaterialRecord

# ----------------------------------------------------------------------------- fixtures


def _gauss(omega, centres, weights, width):
    out = np.zeros_like(omega)
    for c, w in zip(centres, weights):
        out += w * np.exp(-0.5 * ((omega - c) / width) ** 2) / (width * np.sqrt(2 * np.pi))
    return out


def _structures() -> list[tuple[str, Structure]]:
    fcc = lambda a: Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])  # noqa: E731
    bcc = lambda a: Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]])  # noqa: E731
    return [
        ("Al", Structure(fcc(4.05), ["Al"], [[0, 0, 0]])),
        ("Pb", Structure(fcc(4.95), ["Pb"], [[0, 0, 0]])),
        ("Nb", Structure(bcc(3.30), ["Nb"], [[0, 0, 0]])),
        ("V", Structure(bcc(3.03), ["V"], [[0, 0, 0]])),
        ("NbTi", Structure(Lattice.cubic(3.28), ["Nb", "Ti"], [[0, 0, 0], [0.5, 0.5, 0.5]])),
        ("NbN", Structure(fcc(4.39), ["Nb", "N"], [[0, 0, 0], [0.5, 0.5, 0.5]])),
        ("MgB2", Structure(Lattice.hexagonal(3.09, 3.52), ["Mg", "B", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]])),
        ("Cu", Structure(fcc(3.61), ["Cu"], [[0, 0, 0]])),
    ]


def make_records() -> list[MaterialRecord]:
    """Real pymatgen structures with α²F / PhDOS of simple physical shapes (Gaussian phonon peaks at
    ω ∝ 1/√M, strength setting λ).  Not QE data: for unit tests only."""
    omega = np.arange(0.1, 110.0, 0.1)
    out = []
    for i, (name, st) in enumerate(_structures()):
        centres = [float(np.clip(180.0 / np.sqrt(s.specie.atomic_mass), 4.0, 95.0)) for s in st]
        lam = 0.3 + 0.15 * i
        g = np.full(len(centres), lam / (2.0 * np.sum(1.0 / np.array(centres))))
        site = np.stack([_gauss(omega, [c], [3.0], 3.0) for c in centres])
        out.append(MaterialRecord(
            material_id=f"e{i:02d}-{name}", structure=st, a2f_omega_meV=omega, a2f=_gauss(omega, centres, g, 2.0),
            phdos_omega_meV=omega, phdos_total=site.sum(0), phdos_site=site,
            phdos_coarse_omega_meV=omega, phdos_coarse_total=1.05 * site.sum(0), phdos_coarse_site=1.05 * site,
            source="test",
        ))
    return out


@pytest.fixture(scope="module")
def records():
    return make_records()


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_an_equal_size_resample_with_oob_complement():
    ids = [f"m{i:03d}" for i in range(50)]
    b = ens.bootstrap_sample(ids, 3, seed=11)
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
    a = ens.bootstrap_sample(ids, 0, seed=5)
    assert a == ens.bootstrap_sample(list(reversed(ids)), 0, seed=5)
    assert a.sample_ids != ens.bootstrap_sample(ids, 1, seed=5).sample_ids
    assert a.sample_ids != ens.bootstrap_sample(ids, 0, seed=6).sample_ids
    assert a.seed == ens.member_seed(5, 0) != ens.member_seed(5, 1)
    # growing the ensemble keeps the first members
    assert ens.bootstrap_samples(ids, 2, 5) == ens.bootstrap_samples(ids, 5, 5)[:2]


def test_oob_fraction_approaches_one_over_e():
    n = 2000
    ids = [f"m{i:05d}" for i in range(n)]
    fr = np.array([ens.bootstrap_sample(ids, k, seed=1).oob_fraction for k in range(20)])
    assert ens.expected_oob_fraction(n) == pytest.approx((1 - 1 / n) ** n)
    assert ens.expected_oob_fraction(n) == pytest.approx(np.exp(-1), abs=1e-3)
    # std of one member's OOB fraction ~ sqrt(e^-1 (1 - e^-1) ... ) / sqrt(n) ~ 0.011; mean of 20 ~ 0.0025
    assert fr.mean() == pytest.approx(ens.expected_oob_fraction(n), abs=0.01)
    assert np.all(np.abs(fr - np.exp(-1)) < 0.05)
    assert ens.expected_oob_fraction(2) == 0.25


def test_bootstrap_always_leaves_an_oob_material_and_rejects_bad_input():
    for k in range(30):
        b = ens.bootstrap_sample(["a", "b"], k, seed=0)
        assert len(b.oob_ids) == 1 and len(b.sample_ids) == 2
    assert any(ens.bootstrap_sample(["a", "b"], k, seed=0).redraws > 0 for k in range(30))
    with pytest.raises(ValueError, match="at least 2"):
        ens.bootstrap_sample(["a"], 0, seed=0)
    with pytest.raises(ValueError, match="duplicates"):
        ens.bootstrap_sample(["a", "b", "a"], 0, seed=0)


# ----------------------------------------------------------------------------- summarise


def test_summarise_mean_std_and_moments_on_known_arrays():
    # two members predicting Einstein spikes of different heights at the same bin: λ ∝ height
    n_bins = TARGET_GRID_MEV.size
    j = 10  # ω_E = 20.25 meV
    pred = np.zeros((2, 3, n_bins))
    pred[0, :, j] = [2.0, 4.0, 6.0]
    pred[1, :, j] = [6.0, 4.0, 2.0]
    s = ens.summarise(pred)
    np.testing.assert_allclose(s.mean[:, j], [4.0, 4.0, 4.0])
    np.testing.assert_allclose(s.std[:, j], [2.0, 0.0, 2.0])
    assert s.mean.shape == s.std.shape == (3, n_bins) and s.n_members == 2
    # λ = 2 A / ω_E with area A = height * Δω (trapezoid with a single nonzero node: Δω = 2 meV)
    lam = 2 * pred[:, :, j] * 2.0 / TARGET_GRID_MEV[j]
    np.testing.assert_allclose(s.moments_mean.lambda_, lam.mean(0))
    np.testing.assert_allclose(s.moments_std.lambda_, lam.std(0))
    np.testing.assert_allclose(s.moments_of_mean.lambda_, lam.mean(0))  # λ is linear in α²F
    # ω_log = ω₂ = ω_E for every member: zero spread
    w_K = TARGET_GRID_MEV[j] / 8.617333262e-2
    np.testing.assert_allclose(s.moments_of_mean.omega_log_K, w_K, rtol=1e-12)
    np.testing.assert_allclose(s.moments_std.omega_2_K, 0.0, atol=1e-9)
    assert np.all(s.tc_std_K[[0, 2]] > 0.5) and s.tc_std_K[1] == pytest.approx(0.0, abs=1e-12)
    # T_c is not linear in α²F: the mean of the members' T_c differs from the T_c of the mean α²F
    assert s.tc_mean_K[0] != pytest.approx(s.tc_of_mean_K[0], rel=1e-3)
    assert s.tc_mean_K[1] == pytest.approx(s.tc_of_mean_K[1])
    s1 = ens.summarise(pred, ddof=1)
    np.testing.assert_allclose(s1.std[:, j], [2.0 * np.sqrt(2), 0.0, 2.0 * np.sqrt(2)])
    props = s.properties("member_std")
    assert set(props) == {"lambda", "omega_log_K", "omega_2_K", "tc_K"}


def test_summarise_rejects_bad_shapes():
    with pytest.raises(ValueError, match="n_members, n_materials, n_bins"):
        ens.summarise(np.zeros((3, 51)))
    with pytest.raises(ValueError, match="bins"):
        ens.summarise(np.zeros((2, 3, 40)))
    with pytest.raises(ValueError, match="ddof"):
        ens.summarise(np.zeros((1, 3, 51)), ddof=1)


def test_predictions_round_trip(tmp_path, records):
    from betenet.metrics import reference_properties

    ids = [r.material_id for r in records[:4]]
    rng = np.random.default_rng(0)
    ps = ens.PredictionSet("CSO", "smoke", "test", ids, np.asarray(TARGET_GRID_MEV), np.array([0, 1, 2]),
                           rng.random((3, 4, 51)), rng.random((4, 51)), reference_properties(records[:4]))
    path = ens.save_predictions(tmp_path / "CSO.npz", ps)
    back = ens.load_predictions(path)
    assert back.ids == ids and back.variant == "CSO" and back.profile == "smoke"
    np.testing.assert_allclose(back.pred_a2f, ps.pred_a2f.astype(np.float32))
    np.testing.assert_allclose(back.reference["lambda"], ps.reference["lambda"])
    rows = ens.table1_ensemble_rows([back], n_train=10, data="unit test")
    assert [r["metric"] for r in rows] == ["R2", "MAE", "RMSE"] and rows[0]["model"] == "CSO"
    bad = tmp_path / "bad.npz"
    np.savez(bad, ids=np.array(ids))
    with pytest.raises(ValueError, match="bad.npz.*schema"):
        ens.load_predictions(bad)


def test_member_train_config_applies_overrides_and_rejects_unknown():
    prof = get_profile("smoke").with_overrides(ensemble={"train_overrides": (("max_epochs", 7),)})
    cfg = ens.member_train_config(prof, seed=3)
    assert cfg.max_epochs == 7 and cfg.seed == 3
    bad = get_profile("smoke").with_overrides(ensemble={"train_overrides": (("epochs", 7),)})
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        ens.member_train_config(bad)


def test_fingerprint_depends_on_data_and_config_not_on_n_members(records):
    p = get_profile("smoke")
    fp, recipe = ens.recipe_fingerprint(p, "CSO", records[:5])
    assert recipe["train_ids"] == sorted(r.material_id for r in records[:5])
    assert ens.recipe_fingerprint(p.with_overrides(ensemble={"n_members": 9}), "CSO", records[:5])[0] == fp
    assert ens.recipe_fingerprint(p, "CSO", records[:6])[0] != fp
    assert ens.recipe_fingerprint(p, "CPD", records[:5])[0] != fp
    assert ens.recipe_fingerprint(p.with_overrides(train={"lr": 0.001}), "CSO", records[:5])[0] != fp
