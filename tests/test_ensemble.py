"""Bootstrap ensembles (betenet.ensemble; the resamples themselves: test_bootstrap.py): mean/std
aggregation, saved predictions, and real tiny e3nn ensembles trained through a Dask LocalCluster
(in-process, 1 worker thread: the test process has already paid the torch/e3nn import), with a
kill after the first member and a resume that trains only the missing one, and stale detection."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from betenet.constants import MU_STAR_DEFAULT
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
    assert back.ids == ids and back.variant == "CSO" and back.profile == "smoke" and back.ddof == 0
    ps.ddof = 1  # EnsembleConfig.ddof travels with the saved predictions and sets the spread
    s1 = ens.load_predictions(ens.save_predictions(tmp_path / "CSO1.npz", ps)).summary()
    np.testing.assert_allclose(s1.std, ps.pred_a2f.astype(np.float32).astype(float).std(0, ddof=1), rtol=1e-6)
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


# ----------------------------------------------------------------------------- generated text


def test_spread_calibration_and_findings_on_known_numbers(records):
    from betenet.metrics import reference_properties, table1_rows

    ids = [r.material_id for r in records[:4]]
    ref = reference_properties(records[:4])
    # two members predicting the (binned) DFT α²F scaled by 0.9 and 1.1: mean exact, spread ±10 %
    from betenet.dataset import target_a2f

    t = np.stack([target_a2f(r) for r in records[:4]])
    ps = ens.PredictionSet("CSO", "smoke", "test", ids, np.asarray(TARGET_GRID_MEV), np.array([0, 1]),
                           np.stack([0.9 * t, 1.1 * t]), t, ref)
    cal = ens.spread_calibration([ps])
    lam = cal.set_index(["model", "property"]).loc[("CSO", "lambda")]
    pred_lam = ps.predicted("of_mean")["lambda"].to_numpy()
    np.testing.assert_allclose(lam["MAE"], np.mean(np.abs(pred_lam - ref["lambda"].to_numpy())))
    # λ is linear: members' λ are 0.9 and 1.1 times the mean's, so their population std is 0.1 λ_mean
    np.testing.assert_allclose(lam["mean_std"], np.mean(0.1 * pred_lam), rtol=1e-6)
    assert 0.0 <= lam["within_1std"] <= 1.0 and lam["n"] == 4
    rows = table1_rows("CSO", ref, ps.predicted("of_mean"), n_train=4, data="t")
    rows += table1_rows("Mean", ref, ref * 0 + ref.mean(), n_train=4, data="t")
    text = ens.findings_markdown(rows, cal)
    assert "CSO" in text and "Mean" in text and "T_c (Allen–Dynes) MAE" in text and "68 %" in text
    mae_cso = [r for r in rows if r["model"] == "CSO" and r["metric"] == "MAE"][0]["tc_mae_K"]
    assert f"CSO {mae_cso:.2f} K" in text
    assert ens.findings_markdown([r for r in rows if r["model"] == "Mean"]) == "- no ensemble rows to describe"


# ----------------------------------------------------------------------------- real tiny ensembles


def _tiny_profile():
    return get_profile("smoke").with_overrides(
        model={"embedding_dim": 8, "irreps_multiplicity": 4, "radial_neurons": 16, "n_layers": 1},
        train={"max_epochs": 6, "min_epochs": 1, "patience": 2, "smoothing_window": 3},
        execution={"checkpoint_every": 2},
        ensemble={"n_members": 2, "seed": 7, "variants": ("CSO", "CPD"), "train_overrides": ()},
        dask={"n_workers": 1, "threads_per_worker": 1, "processes": False},
    )


TRAIN = slice(0, 6)  # 6 training materials (Al, Pb, Nb, V, NbTi, NbN), 2 test materials (MgB2, Cu)


@pytest.fixture(scope="module")
def dask_client():
    """A real ``LocalCluster`` from :func:`betenet.cluster.dask_client` (in-process, one 1-thread worker)."""
    from betenet.cluster import dask_client as make

    with make(_tiny_profile().dask) as client:
        yield client


@pytest.fixture(scope="module")
def trained(tmp_path_factory, records, dask_client):
    """Real 2-member CSO and CPD ensembles (e3nn models, real training) on 6 of the 8 test records."""
    root = tmp_path_factory.mktemp("artifacts")
    mp = pytest.MonkeyPatch()
    mp.setenv("BETENET_ARTIFACTS", str(root))
    prof = _tiny_profile()
    train_ids = [r.material_id for r in records[TRAIN]]
    runs = ens.run_ensembles(records, prof, train_ids, client=dask_client, progress=False)
    yield prof, train_ids, runs, root
    mp.undo()


def test_real_ensembles_train_every_member_with_self_describing_files(trained):
    prof, train_ids, runs, root = trained
    assert sorted(runs) == ["CPD", "CSO"]
    for variant, run in runs.items():
        assert run.directory == root / "smoke" / "ensembles" / variant
        assert run.n_members == 2 and sorted(run.trained) == [0, 1] and run.reused == []
        for k, meta in enumerate(run.members):
            d = run.directory / f"member-{k:03d}"
            assert ens.member_status(d, run.fingerprint) == "complete"
            boot = ens.bootstrap_sample(train_ids, k, prof.ensemble.seed)
            assert meta["variant"] == variant and meta["member"] == k
            assert meta["bootstrap"]["sample_ids"] == list(boot.sample_ids) and len(boot.sample_ids) == 6
            assert meta["bootstrap"]["oob_ids"] == list(boot.oob_ids)
            assert meta["bootstrap"]["oob_fraction"] == pytest.approx(len(boot.oob_ids) / 6)
            assert meta["seed"] == ens.member_seed(7, k)
            assert meta["checkpoint"]["used"] in ("modern", "best_val") and meta["checkpoint"]["reason"]
            assert 1 <= meta["regimes"]["epochs_trained"] <= 6
            assert meta["timings"]["wall_s"] > 0 and meta["timings"]["attempts"] == 1
            assert meta["oob"]["n"] == len(boot.oob_ids) and np.isfinite(meta["oob"]["mse"])
            # a finished member's resume point is deleted (keep_resume_checkpoint=False); its model stays
            assert not (d / "train" / "last.pt").exists() and not prof.ensemble.keep_resume_checkpoint
            assert (d / "oob.npz").exists() and (d / "model.pt").exists()
            assert (d / "train" / meta["checkpoint"]["source"].split("/", 1)[1]).exists()
        info = json.loads((run.directory / "ensemble.json").read_text())
        assert info["fingerprint"] == run.fingerprint and info["n_train"] == 6 and info["variant"] == variant
    assert runs["CSO"].fingerprint != runs["CPD"].fingerprint
    df = ens.oob_summary(runs["CPD"].directory)
    assert list(df["member"]) == [0, 1] and (df["oob_fraction"] > 0).all()
    assert [row["state"] for row in ens.ensemble_status(prof, "CSO")] == ["complete", "complete"]


def test_cli_status_lists_finished_members(trained, capsys):
    from betenet.cli.ensemble import cli_main

    assert cli_main(["status", "--profile", "smoke", "--variant", "CPD"]) == 0
    out = capsys.readouterr().out
    assert "smoke/CPD: 2/2 members complete" in out and "member-001  complete" in out


def test_member_config_ignores_single_model_study_and_execution_settings(records):
    p = get_profile("smoke")
    assert ens.member_train_config(p).max_epochs == 40
    fp = ens.recipe_fingerprint(p, "CSO", records[:4])[0]
    swept = p.with_overrides(study={"dd_sweep": (("longer", (("train.max_epochs", 9),)),)})
    assert ens.recipe_fingerprint(swept, "CSO", records[:4])[0] == fp
    moved = p.with_overrides(execution={"device": "cuda", "compile": True, "checkpoint_every": 7})
    assert ens.recipe_fingerprint(moved, "CSO", records[:4])[0] == fp
    assert ens.recipe_fingerprint(p.with_overrides(train={"lr": 0.004}), "CSO", records[:4])[0] != fp


def test_ensemble_mean_and_std_match_a_manual_computation(trained, records):
    from betenet import physics
    from betenet.dataset import graphs_for
    from betenet.model import load_model, predict

    prof, train_ids, runs, root = trained
    members = ens.load_ensemble(runs["CPD"].directory)
    assert [m.index for m in members] == [0, 1] and members[0].variant == "CPD"
    test = records[6:]
    pred = ens.predict_ensemble(members, test)
    assert pred.shape == (2, len(test), 51) and np.all(pred >= 0) and np.all(np.isfinite(pred))
    assert not np.allclose(pred[0], pred[1])  # different resamples and initialisations
    # member by member, by hand, each model built from its own checkpoint (load_ensemble copies member 0's
    # architecture for the others and loads their weights into it: same numbers)
    for k, m in enumerate(members):
        own, _, _ = load_model(m.directory / "model.pt")
        np.testing.assert_allclose(pred[k], predict(own, graphs_for(test, "CPD", 4.0)), rtol=1e-6)
    s = ens.summarise(pred, mu_star=MU_STAR_DEFAULT)
    w = TARGET_GRID_MEV
    mean = (pred[0] + pred[1]) / 2
    std = np.abs(pred[0] - pred[1]) / 2  # population std of two numbers
    np.testing.assert_allclose(s.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(s.std, std, rtol=1e-9, atol=1e-15)
    for i in range(len(test)):
        lam_k = [physics.lambda_from_a2f(w, pred[k, i]) for k in range(2)]
        tc_k = [physics.tc_allen_dynes_from_a2f(w, pred[k, i], 0.1) for k in range(2)]
        assert s.moments_mean.lambda_[i] == pytest.approx(np.mean(lam_k))
        assert s.moments_std.lambda_[i] == pytest.approx(abs(lam_k[0] - lam_k[1]) / 2, abs=1e-12)
        assert s.tc_mean_K[i] == pytest.approx(np.mean(tc_k), abs=1e-9)
        assert s.tc_std_K[i] == pytest.approx(abs(tc_k[0] - tc_k[1]) / 2, abs=1e-9)
        assert s.moments_of_mean.omega_log_K[i] == pytest.approx(physics.omega_log_K(w, mean[i]))
        assert s.tc_of_mean_K[i] == pytest.approx(physics.tc_allen_dynes_from_a2f(w, mean[i], 0.1), abs=1e-9)
    # members spread over two Dask workers (each loads its members' model.pt): the same numbers, in order
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cl, Client(cl) as c2:
        np.testing.assert_allclose(ens.predict_ensemble(members, test, client=c2), pred, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="bare structure"):
        ens.predict_ensemble(members, [test[0].structure])
    assert ens.predict_ensemble(ens.load_ensemble(runs["CSO"].directory), [test[0].structure]).shape == (2, 1, 51)


def test_saved_test_predictions_are_reused_by_notebook_06(trained, records, monkeypatch):
    from betenet import screening

    prof, train_ids, runs, root = trained
    test_ids = [r.material_id for r in records[6:]]
    sets = ens.predict_runs(runs, records, test_ids, profile=prof, mu_star=MU_STAR_DEFAULT)
    assert sorted(sets) == ["CPD", "CSO"]
    back = ens.load_predictions(ens.predictions_path("smoke", "CPD"))
    np.testing.assert_allclose(back.pred_a2f, sets["CPD"].pred_a2f.astype(np.float32))
    assert back.ids == test_ids and back.target_a2f.shape == (2, 51) and list(back.member_index) == [0, 1]
    rows = ens.table1_ensemble_rows(sets.values(), n_train=6, data="unit test")
    assert [r["model"] for r in rows] == ["CSO"] * 3 + ["CPD"] * 3
    # the figures of notebook 05 (Agg backend), with the best/worst groups kept disjoint on 2 materials
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from betenet.plots import ensemble as pe

    best, worst, errors = pe.select_best_worst(list(sets.values()), k=6)
    assert len(best) == len(worst) == 1 and set(best) | set(worst) == set(test_ids)
    assert list(errors.columns) == ["CSO", "CPD", "mean_error"]
    figs = [pe.plot_parity_grid(list(sets.values())), pe.plot_best_worst(list(sets.values()), best, worst, records=records,
                                                                         errors=errors),
            pe.plot_oob_summary(pd.concat([r.timings() for r in runs.values()]), expected_fraction=0.335)]
    assert len(figs[0].axes) == 6
    for f in figs:
        plt.close(f)
    # notebook 06 must read these files, not train (nor even load) the ensembles again
    monkeypatch.setattr(ens, "run_ensembles", lambda *a, **k: pytest.fail("notebook 06 retrained an ensemble"))
    for v in ("CSO", "CPD"):
        ps = screening.ensemble_predictions(prof, v, records, train_ids, test_ids, mu_star=0.1, progress=False)
        np.testing.assert_allclose(ps.pred_a2f, sets[v].pred_a2f, rtol=1e-6)


def test_kill_after_first_member_then_resume_trains_only_the_missing_one(trained, records, dask_client, tmp_path,
                                                                           monkeypatch):
    """Member 1 is killed after 2 epochs (what a crash leaves: bootstrap.json, train/last.pt, no member.json).
    The rerun reuses member 0 without touching its files and resumes member 1 from its last checkpoint;
    every member equals the one trained without interruption (same seed: determinism)."""
    import betenet.train as train_mod

    prof, train_ids, runs, root = trained
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path))
    real = train_mod.train_model

    def killed(data, profile, run_dir, **kw):
        if "member-001" in str(run_dir):
            real(data, profile, run_dir, **{**kw, "stop_after": 2})
            raise RuntimeError("simulated kill of member 1")
        return real(data, profile, run_dir, **kw)

    monkeypatch.setattr(train_mod, "train_model", killed)
    with pytest.raises(ens.EnsembleError, match="member 1 .*simulated kill"):
        ens.run_ensemble(records, prof, "CSO", train_ids, client=dask_client, progress=False)
    edir = tmp_path / "smoke" / "ensembles" / "CSO"
    assert ens.member_status(edir / "member-000", runs["CSO"].fingerprint) == "complete"
    assert ens.member_status(edir / "member-001", runs["CSO"].fingerprint) == "partial"
    assert (edir / "member-001" / "train" / "last.pt").exists() and not (edir / "member-001" / "member.json").exists()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (edir / "member-000").rglob("*") if p.is_file()}
    monkeypatch.setattr(train_mod, "train_model", real)

    again = ens.run_ensemble(records, prof, "CSO", train_ids, client=dask_client, progress=False)
    assert again.trained == [1] and again.reused == [0] and again.fingerprint == runs["CSO"].fingerprint
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (edir / "member-000").rglob("*") if p.is_file()}
    assert after == before
    m1 = again.members[1]
    assert m1["timings"]["attempts"] == 2 and m1["timings"]["resumed_from_epoch"] == 2
    # determinism: same (seed, member) -> same bootstrap and same trained model as the uninterrupted run
    for k in (0, 1):
        assert again.members[k]["bootstrap"] == runs["CSO"].members[k]["bootstrap"]
        with np.load(edir / f"member-{k:03d}" / "oob.npz") as a, \
                np.load(runs["CSO"].directory / f"member-{k:03d}" / "oob.npz") as b:
            np.testing.assert_allclose(a["pred_a2f"], b["pred_a2f"], rtol=1e-5, atol=1e-7)
    # a third call finds everything finished and needs no cluster at all
    third = ens.run_ensemble(records, prof, "CSO", train_ids, client=None, progress=False)
    assert third.trained == [] and third.reused == [0, 1]


def test_stale_and_corrupt_members_are_detected_and_archived(trained, records, dask_client, tmp_path, monkeypatch):
    prof, train_ids, runs, root = trained
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path))
    edir = tmp_path / "smoke" / "ensembles" / "CPD"
    shutil.copytree(runs["CPD"].directory, edir)
    old_fp = runs["CPD"].fingerprint
    by_id = {r.material_id: r for r in records}
    new_fp, _ = ens.recipe_fingerprint(prof, "CPD", [by_id[m] for m in train_ids[:5]])
    assert new_fp != old_fp
    assert ens.member_status(edir / "member-000", old_fp) == "complete"
    assert ens.member_status(edir / "member-000", new_fp) == "stale"
    # an altered checkpoint is detected by its SHA-256
    ck = edir / "member-001" / "model.pt"
    ck.write_bytes(ck.read_bytes() + b"\0")
    assert ens.member_status(edir / "member-001", old_fp) == "corrupt"
    with pytest.raises(ens.StaleMemberError, match="member-000"):
        ens.run_ensemble(records, prof, "CPD", train_ids[:5], n_members=1, client=dask_client, progress=False,
                         on_stale="error")
    assert (edir / "member-000" / "member.json").exists()  # nothing moved
    with pytest.warns(UserWarning, match="moved to"):
        new = ens.run_ensemble(records, prof, "CPD", train_ids[:5], n_members=1, client=dask_client, progress=False)
    assert new.trained == [0] and new.fingerprint == new_fp
    assert json.loads((edir / "stale" / old_fp[:12] / "member-000" / "member.json").read_text())["fingerprint"] == old_fp
    assert ens.member_status(edir / "member-000", new_fp) == "complete"
    # the corrupt member is skipped with a warning when loading, never used
    with pytest.warns(UserWarning, match="member-001: member is (stale|corrupt)"):
        loaded = ens.load_ensemble(edir)
    assert [m.index for m in loaded] == [0]


def test_screen_cli_spreads_members_over_workers_with_the_same_ranking(trained, records, tmp_path, capsys):
    """`betenet screen --workers 2` (two 1-thread process workers) ranks exactly like the in-process run."""
    import pandas as pd


    prof, train_ids, runs, root = trained
    files = []
    for r in records[6:]:
        path = tmp_path / f"{r.material_id}.vasp"
        r.structure.to(filename=str(path), fmt="poscar")
        files.append(str(path))
    run_dir = str(runs["CSO"].directory)
    from betenet.cli.screen import cli_main as screen_cli

    assert screen_cli([*files, "--run-dir", run_dir, "--csv", str(tmp_path / "serial.csv")]) == 0
    assert screen_cli([*files, "--run-dir", run_dir, "--workers", "2", "--csv", str(tmp_path / "dask.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "serial.csv"), pd.read_csv(tmp_path / "dask.csv")
    assert len(a) == len(files) and list(a["file"]) == list(b["file"])
    np.testing.assert_allclose(a[["tc_K", "lambda", "omega_log_K"]], b[["tc_K", "lambda", "omega_log_K"]], rtol=1e-5, atol=1e-8)
    assert "2 CSO member(s)" in capsys.readouterr().out


def test_ensemble_prediction_is_model_predict_of_each_member_with_fixed_seeds():
    """The one inference path: every member's row is :func:`betenet.model.predict` (float64); with fixed seeds
    the numbers are those of the former ensemble-only inference loop (recorded when it was removed)."""
    import dataclasses

    from model_structures import make_records as model_records

    from betenet.dataset import graphs_for
    from betenet.model import build_model, predict

    recs = model_records()
    golden = {"CSO": (0.006175796984656756, [4.689060131113365e-05, 0.00018221931350126397]),
              "CPD": (0.08068832543418125, [0.000893465868102794, 0.0002873485491363681])}
    for variant, (total, bin1) in golden.items():
        cfg = dataclasses.replace(get_profile("smoke").model, variant=variant)
        members = [ens.EnsembleMember(k, build_model(cfg, seed=3 + k), {"variant": variant, "r_max_A": 4.0}, None)
                   for k in range(2)]
        pred = ens.predict_ensemble(members, recs)
        assert pred.dtype == np.float64 and pred.shape == (2, len(recs), 51)
        for k, m in enumerate(members):
            np.testing.assert_array_equal(pred[k], predict(m.model, graphs_for(recs, variant, 4.0), batch_size=256))
        np.testing.assert_allclose(pred.sum(), total, rtol=1e-5)
        np.testing.assert_allclose(pred[:, :, 1].sum(axis=1), bin1, rtol=1e-5)
