"""Double-descent policy (pure regime detection on analytic curves) and the resumable training loop."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from betenet.regimes import REGIMES, DoubleDescentPolicy, detect_regimes, smooth_val_curve
from betenet.train import RunMismatchError

# ----------------------------------------------------------------------------- synthetic curves

T = np.arange(800, dtype=float)
#: log10 val loss, piecewise linear with known extrema: minimum at 100, maximum at 250, second minimum at 600.
KNOTS_T = [0, 100, 250, 600, 799]
KNOTS_LOG = [0.0, -1.0, -0.6, -1.3, -1.25]


def _piecewise(knots_t=KNOTS_T, knots_log=KNOTS_LOG):
    return 10.0 ** np.interp(T, knots_t, knots_log)


def _smooth_dd():
    """Analytic double descent: exponential first descent, Gaussian bump, slow second descent."""
    return 0.2 + np.exp(-T / 25) + 0.15 * np.exp(-(((T - 180) / 50) ** 2)) - 0.12 * (1 - np.exp(-np.clip(T - 180, 0, None) / 120))


def _noisy(curve, seed, sigma=0.03, spikes=8):
    rng = np.random.default_rng(seed)
    out = curve * np.exp(rng.normal(0.0, sigma, curve.size))
    idx = rng.choice(np.arange(20, curve.size), size=spikes, replace=False)
    out[idx] *= rng.uniform(2.0, 5.0, size=spikes)  # isolated Adam-like spikes
    return out


def test_smoothing_median_properties():
    v = 10.0 ** np.linspace(0, -2, 50)
    np.testing.assert_allclose(smooth_val_curve(v, 1), np.log10(v))
    np.testing.assert_allclose(smooth_val_curve(v, 11), np.log10(v), atol=1e-12)  # monotone: unchanged
    spiky = v.copy()
    spiky[25] *= 100.0
    step = 2.0 / 49  # one epoch of the log curve
    dev = np.abs(smooth_val_curve(spiky, 5) - np.log10(v))
    assert dev.max() <= step + 1e-12 and dev[25] <= step + 1e-12  # the 2-decade spike is gone
    with pytest.raises(ValueError, match="odd"):
        smooth_val_curve(v, 4)
    with pytest.raises(ValueError, match="epoch"):
        smooth_val_curve([1.0, np.nan, 0.5], 3)


def test_piecewise_double_descent_found_at_known_epochs():
    r = detect_regimes(_piecewise(), window=21, prominence=0.05)
    assert r.found == REGIMES
    # the running median of a V with unequal slopes moves the vertex towards the shallow side, by < window/2
    assert 90 <= r.classical_epoch <= 100 and 240 <= r.critical_epoch <= 250 and 590 <= r.modern_epoch <= 600
    assert r.double_descent
    assert r.second_descent_ratio == pytest.approx(10 ** (-0.3), rel=0.05)
    # the rise closes the classical regime once the smoothed log10 v is up by log10(1.05)
    s = r.smoothed
    assert s[r.rise_epoch] - s[r.classical_epoch] >= np.log10(1.05) > s[r.rise_epoch - 1] - s[r.classical_epoch]
    assert s[r.critical_epoch] - s[r.fall_epoch] >= np.log10(1.05) > s[r.critical_epoch] - s[r.fall_epoch - 1]
    assert "double descent" in r.summary()
    # window=1 (no smoothing) on the noise-free curve: the exact knots
    r1 = detect_regimes(_piecewise(), window=1, prominence=0.05)
    assert (r1.classical_epoch, r1.critical_epoch, r1.modern_epoch) == (100, 250, 600)


def test_smooth_analytic_double_descent():
    r = detect_regimes(_smooth_dd(), window=21, prominence=0.05)
    v = _smooth_dd()
    true_min1 = int(np.argmin(v[:150]))
    true_max = 150 + int(np.argmax(v[150:400]))
    assert abs(r.classical_epoch - true_min1) <= r.window // 2  # flat minimum: median shift < half a window
    assert abs(r.critical_epoch - true_max) <= r.window // 2
    assert r.modern_epoch > 600 and r.double_descent


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_noise_robustness(seed):
    r = detect_regimes(_noisy(_piecewise(), seed), window=21, prominence=0.05)
    assert r.found == REGIMES and r.double_descent
    assert abs(r.classical_epoch - 100) <= 15
    assert abs(r.critical_epoch - 250) <= 20
    assert abs(r.modern_epoch - 600) <= 40
    # a noisy *monotone* curve: no regimes invented
    mono = _noisy(0.1 + np.exp(-T / 80), seed)
    rm = detect_regimes(mono, window=21, prominence=0.05)
    assert rm.found == () and not rm.double_descent
    assert "No classical minimum" in rm.summary()
    # without smoothing the same noise does produce spurious regimes: the smoothing is what helps
    assert detect_regimes(mono, window=1, prominence=0.05).found != ()


def test_monotone_and_classical_only_and_shallow_second_descent():
    mono = 0.05 + np.exp(-T / 100)
    r = detect_regimes(mono)
    assert r.found == () and r.second_descent_ratio is None and not r.double_descent
    # U shape: minimum then a rise that never comes down -> classical only
    u = 10.0 ** np.interp(T, [0, 200, 799], [0.0, -1.0, -0.5])
    ru = detect_regimes(u)
    assert abs(ru.classical_epoch - 200) <= 10 and ru.critical_epoch is None and ru.modern_epoch is None
    assert "classical overfitting only" in ru.summary()
    # peak and a second descent that stays well above the classical minimum: reported, not called double descent
    shallow = 10.0 ** np.interp(T, [0, 100, 250, 500, 799], [0.0, -1.0, -0.4, -0.7, -0.7])
    rs = detect_regimes(shallow)
    assert rs.found == REGIMES and not rs.double_descent
    assert rs.second_descent_ratio == pytest.approx(10 ** 0.3, rel=0.1)  # smoothed V vertices sit slightly higher
    assert "stays above" in rs.summary()


def test_settled_only_ignores_the_unsettled_tail():
    v = _piecewise()[:110]  # minimum at 100 and a short rise at the very end
    assert detect_regimes(v, window=21).n_settled == 100
    assert detect_regimes(v, window=21).classical_epoch is None
    with pytest.raises(ValueError, match="prominence"):
        detect_regimes(v, prominence=0.0)


def test_policy_online_decisions_match_offline_and_lag():
    curve = _noisy(_piecewise(), 5)
    pol = DoubleDescentPolicy(window=21, prominence=0.05, patience=100, min_epochs=10)
    saves: dict[str, list[tuple[int, int]]] = {r: [] for r in REGIMES}
    stop_epoch = None
    for t, v in enumerate(curve):
        step = pol.update(v)
        for name, e in step.save.items():
            assert e == t - pol.lag  # the trainer only has to hold lag + 1 model states
            saves[name].append((t, e))
        if step.stop:
            stop_epoch = t
            assert "patience" in step.reason
            break
    assert stop_epoch is not None
    offline = detect_regimes(curve[: stop_epoch + 1], window=21, prominence=0.05)
    for name in REGIMES:
        assert saves[name], name
        assert saves[name][-1][1] == offline.epoch(name)
    # classical and critical epochs are final once found: saved later only while still being tracked
    assert saves["classical"][-1][0] < saves["critical"][0][0] + 200
    # never stopped before the modern regime existed; stopped patience settled epochs after its minimum
    assert (stop_epoch - pol.lag) - offline.modern_epoch == 100


def test_policy_runs_to_max_epochs_without_double_descent_and_state_round_trip():
    mono = 0.05 + np.exp(-T / 100)
    pol = DoubleDescentPolicy(window=11, prominence=0.05, patience=5, min_epochs=0, max_epochs=300)
    steps = [pol.update(v) for v in mono[:300]]
    assert not any(s.stop for s in steps[:-1]) and steps[-1].stop and "max_epochs" in steps[-1].reason
    state = json.loads(json.dumps(pol.state_dict()))
    other = DoubleDescentPolicy(window=11, prominence=0.05, patience=5, max_epochs=400)
    other.load_state_dict(state)
    assert other.val_losses == pol.val_losses and other.stop_decision() == (False, "")
    with pytest.raises(ValueError, match="window"):
        DoubleDescentPolicy(window=21).load_state_dict(state)
    with pytest.raises(ValueError, match="epoch 300"):
        pol.update(float("nan"))


# ----------------------------------------------------------------------------- the training loop (real e3nn model)


@pytest.fixture(scope="module")
def records():
    from analysis_records import make_records

    return make_records(24, seed=3)


def _tiny_profile(**train):
    from betenet.config import ExecutionConfig, get_profile

    base = {"max_epochs": 12, "patience": 5, "min_epochs": 2, "smoothing_window": 3, "seed": 11}
    base.update(train)
    execution = {"checkpoint_every": 4}
    execution.update({k: base.pop(k) for k in list(base) if k in {f.name for f in dataclasses.fields(ExecutionConfig)}})
    return get_profile(
        "smoke",
        model={"embedding_dim": 8, "irreps_multiplicity": 4, "radial_neurons": 8, "n_layers": 1},
        train=base,
        execution=execution,
    )


def test_training_resume_reproduces_uninterrupted_history(records, tmp_path):
    from betenet.model import load_checkpoint
    from betenet.train import train_model

    prof = _tiny_profile()
    full = train_model(records, prof, tmp_path / "full", progress=False)
    assert full.epochs_trained == 12 and "max_epochs" in full.stop_reason
    assert full.history["val_loss"].iloc[-1] < full.history["val_loss"].iloc[0]  # it learns
    part = train_model(records, prof, tmp_path / "resumed", progress=False, stop_after=5)
    assert part.epochs_trained == 5 and part.stop_reason.startswith("interrupted")
    assert not (tmp_path / "resumed" / "result.json").exists()
    rest = train_model(records, prof, tmp_path / "resumed", progress=False)
    assert rest.resumed_from_epoch == 5 and rest.epochs_trained == 12
    np.testing.assert_array_equal(rest.history["train_loss"].to_numpy(), full.history["train_loss"].to_numpy())
    np.testing.assert_array_equal(rest.history["val_loss"].to_numpy(), full.history["val_loss"].to_numpy())
    assert rest.best_epoch == full.best_epoch
    # ... and identical weights: the final models of both runs are bit-for-bit equal
    import torch

    w_full = load_checkpoint(full.checkpoint("final"))[0].state_dict()
    w_rest = load_checkpoint(rest.checkpoint("final"))[0].state_dict()
    assert w_full.keys() == w_rest.keys() and all(torch.equal(w_full[k], w_rest[k]) for k in w_full)
    _, _, fmeta = load_checkpoint(rest.checkpoint("final"))
    assert fmeta["regime"] == "final" and fmeta["epoch"] == 11 and "max_epochs" in fmeta["stop_reason"]
    assert "final" not in part.checkpoints  # an interrupted run has no final model
    # the best checkpoint is self-describing and holds the weights of its epoch
    model, cfg, meta = load_checkpoint(rest.checkpoint("best"))
    assert meta["regime"] == "best" and meta["epoch"] == full.best_epoch and cfg.embedding_dim == 8
    assert meta["val_loss"] == pytest.approx(full.history["val_loss"].min())
    # a finished run is returned without training; extending max_epochs continues it
    mtime = (tmp_path / "full" / "last.pt").stat().st_mtime_ns
    again = train_model(records, prof, tmp_path / "full", progress=False)
    assert again.epochs_trained == 12 and again.resumed_from_epoch == 12
    assert (tmp_path / "full" / "last.pt").stat().st_mtime_ns == mtime  # no epoch was trained
    longer = train_model(records, prof, tmp_path / "full", progress=False, max_epochs=14)
    assert longer.epochs_trained == 14 and longer.resumed_from_epoch == 12
    saved = json.loads((tmp_path / "full" / "result.json").read_text())
    assert saved["epochs_trained"] == 14
    hist = (tmp_path / "full" / "history.csv").read_text().splitlines()
    assert hist[0] == "epoch,train_loss,val_loss,val_smoothed,seconds" and len(hist) == 15


def test_regime_checkpoints_hold_the_weights_of_their_epoch(records, tmp_path, monkeypatch):
    """Force a detection with a tiny prominence; each regime file is the model of the epoch the policy chose."""
    import torch

    from betenet.model import load_checkpoint
    from betenet.train import evaluate_loss, make_loss_fn, prepare_data, train_model

    prof = _tiny_profile(max_epochs=30, regime_prominence=1e-4, patience=3, lr=0.05)
    res = train_model(records, prof, tmp_path / "run", progress=False)
    reg = res.regimes
    td = prepare_data(records, "CSO", prof.model.r_max_A, val_fraction=prof.train.val_fraction, seed=prof.train.seed)
    loss_fn = make_loss_fn(td.val_graphs, td.val_targets)
    assert reg.found, "the lr=0.05 run should show some non-monotone validation curve"
    for name in reg.found:
        model, _, meta = load_checkpoint(res.checkpoint(name))
        assert meta["epoch"] == reg.epoch(name) and meta["regime"] == name
        assert loss_fn(model) == pytest.approx(res.history["val_loss"].iloc[meta["epoch"]], rel=1e-5)
    assert torch.is_tensor(next(load_checkpoint(res.checkpoint("best"))[0].parameters()))
    assert evaluate_loss  # exported


def test_run_dir_of_another_config_is_not_overwritten(records, tmp_path):
    from betenet.train import train_model

    train_model(records, _tiny_profile(max_epochs=2), tmp_path / "run", progress=False)
    with pytest.raises(RunMismatchError, match="lr"):
        train_model(records, _tiny_profile(max_epochs=2, lr=0.001), tmp_path / "run", progress=False)
    with pytest.raises(RunMismatchError, match="ids_hash"):
        train_model(records[:-2], _tiny_profile(max_epochs=2), tmp_path / "run", progress=False)


def test_minibatch_and_pair_input_with_bootstrap_repeats(records, tmp_path):
    from betenet.train import train_model

    sample = [records[i] for i in [0, 0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8]]
    oob = records[9:14]
    res = train_model((sample, oob), _tiny_profile(max_epochs=3, batch_size=5), tmp_path / "boot", progress=False)
    assert res.train_ids[:2] == [records[0].material_id] * 2 and len(res.train_ids) == 12
    assert len(res.val_ids) == 5 and res.epochs_trained == 3
    with pytest.raises(TypeError, match="MaterialRecords"):
        train_model([1, 2, 3], _tiny_profile(), tmp_path / "bad", progress=False)


def test_cli(records, tmp_path, monkeypatch):
    from betenet.records import save_record
    from betenet.cli.train import cli_main

    rec_dir = tmp_path / "records"
    for r in records:
        save_record(r, rec_dir)
    run = tmp_path / "cli-run"
    rc = cli_main(["--profile", "smoke", "--run-dir", str(run), "--epochs", "2", "--records", str(rec_dir),
                   "--split-dir", str(tmp_path / "splits"), "--no-progress"])
    assert rc == 0
    assert json.loads((run / "result.json").read_text())["epochs_trained"] == 2
    assert (tmp_path / "splits" / "default.json").exists()
    # without --run-dir: the run notebook 03 reloads (double_descent.regime_run's directory)
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "art"))
    rc = cli_main(["--profile", "smoke", "--epochs", "1", "--records", str(rec_dir),
                   "--split-dir", str(tmp_path / "splits"), "--no-progress"])
    assert rc == 0
    from betenet.double_descent import run_key
    from betenet.splits import load_or_make_split

    train_ids, _ = load_or_make_split(records, directory=tmp_path / "splits")
    expected = tmp_path / "art" / "smoke" / "train" / f"main-CSO-{run_key('smoke', train_ids)}"
    assert json.loads((expected / "result.json").read_text())["epochs_trained"] == 1


def test_bad_data_and_corrupt_resume_point_give_clear_errors(records, tmp_path):
    import dataclasses

    from betenet.dataset import DatasetError
    from betenet.train import prepare_data, train_model

    r = records[3]
    nan_a2f = r.a2f.copy()
    nan_a2f[5] = np.nan
    bad = dataclasses.replace(r, a2f=nan_a2f)
    with pytest.raises(DatasetError, match=r.material_id):
        prepare_data(records[:3] + [bad] + records[4:], "CSO", 4.0)
    with pytest.raises(ValueError, match="validation data: no materials"):
        prepare_data((records[:5], []), "CSO", 4.0)
    with pytest.raises(ValueError, match="share material_id"):
        prepare_data((records[:5] + [dataclasses.replace(records[0], a2f=records[0].a2f * 2)], records[6:8]), "CSO", 4.0)
    with pytest.raises(ValueError, match="max_epochs must be >= 1"):
        train_model(records, _tiny_profile(max_epochs=0), tmp_path / "zero", progress=False)
    run = tmp_path / "run"
    train_model(records, _tiny_profile(max_epochs=1), run, progress=False)
    (run / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunMismatchError, match="last.pt"):
        train_model(records, _tiny_profile(max_epochs=2), run, progress=False)


# ----------------------------------------------------------------------------- device (CPU here; CUDA where a GPU is seen)


def test_torch_device_resolution_and_errors():
    import torch

    from betenet.config import PROFILES
    from betenet.seeding import torch_device

    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "gpu0", "mps"):
        with pytest.raises(ValueError, match="ExecutionConfig.device"):
            torch_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            torch_device("cuda")
    else:
        with pytest.raises(ValueError, match="CUDA device"):
            torch_device(f"cuda:{torch.cuda.device_count()}")
    # smoke (CI, golden numbers) never depends on the machine having a GPU
    assert PROFILES["smoke"].execution.device == "cpu" and PROFILES["paper"].execution.device == "auto"


def test_device_is_not_part_of_a_runs_identity_and_resume_files_are_cpu(records, tmp_path):
    """A run started with device='cpu' resumes with device='auto' (a GPU where one is seen); last.pt holds
    only CPU tensors, so a resume point written on a GPU machine loads on a laptop."""
    import torch

    from betenet.train import train_model

    part = train_model(records, _tiny_profile(device="cpu"), tmp_path / "run", progress=False, stop_after=3)
    assert part.epochs_trained == 3
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    devices = set()

    def walk(x):
        if isinstance(x, torch.Tensor):
            devices.add(x.device.type)
        elif isinstance(x, dict):
            [walk(v) for v in x.values()]
        elif isinstance(x, (list, tuple)):
            [walk(v) for v in x]

    walk({k: state[k] for k in ("model", "optimizer", "buffer")})
    assert devices == {"cpu"} and state["schema"] == "betenet.train.last"
    rest = train_model(records, _tiny_profile(device="auto"), tmp_path / "run", progress=False)
    assert rest.resumed_from_epoch == 3 and rest.epochs_trained == 12


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu(records, tmp_path):
    """Same seed, same data: the GPU run starts from the CPU run's weights and follows its loss curve
    (float64, so the only differences are summation order)."""
    from betenet.train import train_model

    cpu = train_model(records, _tiny_profile(device="cpu", dtype="float64"), tmp_path / "cpu", progress=False)
    gpu = train_model(records, _tiny_profile(device="cuda", dtype="float64"), tmp_path / "gpu", progress=False)
    np.testing.assert_allclose(gpu.history["train_loss"].to_numpy(), cpu.history["train_loss"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(gpu.history["val_loss"].to_numpy(), cpu.history["val_loss"].to_numpy(), rtol=1e-6)


def test_supercell_record_and_training_benchmark(records, tmp_path):
    from betenet.train_benchmark import benchmark_training, supercell_record

    r = records[0]
    sc = supercell_record(r, (2, 1, 2))
    assert len(sc.structure) == 4 * len(r.structure) and sc.material_id == r.material_id
    assert abs(sc.structure.volume - 4 * r.structure.volume) < 1e-8
    for f in ("phdos_site", "phdos_coarse_site"):
        a, b = getattr(r, f), getattr(sc, f)
        if a is not None:
            assert b.shape[0] == 4 * a.shape[0]
            np.testing.assert_allclose(b.sum(axis=0), a.sum(axis=0))  # per-cell total unchanged
    np.testing.assert_array_equal(sc.a2f, r.a2f)
    assert supercell_record(r, (1, 1, 1)) is r
    with pytest.raises(ValueError, match="three positive integers"):
        supercell_record(r, (2, 0, 1))

    prof = _tiny_profile(device="cpu")
    one = benchmark_training(records, prof, tmp_path, n_train=10, n_val=4, epochs=2, warmup=1)
    two = benchmark_training(records, prof, tmp_path, n_train=10, n_val=4, epochs=2, warmup=1, supercell=(2, 1, 1))
    assert one["epochs_timed"] == 2 and one["s_per_epoch"] > 0 and one["device"] == "cpu"
    assert (one["n_train"], one["n_val"]) == (10, 4)
    # the same seeded draw, each crystal doubled: twice the atoms per crystal
    assert two["atoms_per_crystal"] == pytest.approx(2 * one["atoms_per_crystal"])
    assert two["edges_per_crystal"] > 1.9 * one["edges_per_crystal"]
    assert one["run_dir"] != two["run_dir"]
    # without rattling the drawn copies are the records' own graphs: same sizes as rattled ones (σ small)
    exact = benchmark_training(records, prof, tmp_path, n_train=10, n_val=4, epochs=1, warmup=0, rattle_A=0.0)
    assert exact["rattle_A"] == 0.0 and exact["atoms_per_crystal"] == pytest.approx(one["atoms_per_crystal"])
    with pytest.raises(ValueError, match="epochs >= 1"):
        benchmark_training(records, prof, tmp_path, n_train=10, n_val=4, epochs=0)
