"""Notebook 03/04 study helpers (betenet.double_descent) on tiny models and synthetic records."""

from __future__ import annotations

import numpy as np
import pytest

from betenet import double_descent as dd
from betenet.plots.training import plot_regime_a2f, plot_training_curves


@pytest.fixture(scope="module")
def records():
    from analysis_records import make_records

    return make_records(16, seed=5)


def _profile(**train):
    from betenet.config import get_profile

    base = {"max_epochs": 6, "patience": 3, "min_epochs": 1, "smoothing_window": 3, "seed": 2}
    base.update(train)
    return get_profile("smoke", model={"embedding_dim": 8, "irreps_multiplicity": 4, "radial_neurons": 8, "n_layers": 1},
                       train=base, execution={"checkpoint_every": 3},
                       study={"dd_sweep": (("longer", (("train.max_epochs", 9),)), ("half data", (("data.fraction", 0.5),)))})


@pytest.fixture(scope="module")
def study(records, tmp_path_factory):
    root = tmp_path_factory.mktemp("dd")
    ids = [r.material_id for r in records[:12]]
    prof = _profile()
    res = dd.regime_run(records, ids, prof, progress=False, root=root)
    return root, ids, prof, res


def test_regime_run_is_keyed_on_config_and_data(records, study):
    root, ids, prof, res = study
    assert res.run_dir.parent == root and res.run_dir.name.startswith("main-CSO-")
    assert res.epochs_trained == 6 and sorted(res.train_ids + res.val_ids) == sorted(ids)
    again = dd.regime_run(records, ids, prof, progress=False, root=root)  # reloaded, not retrained
    assert again.run_dir == res.run_dir and again.epochs_trained == 6 and again.resumed_from_epoch == 6
    assert dd.run_key(prof, ids) == dd.run_key(prof, list(reversed(ids)))
    assert dd.run_key(prof, ids) != dd.run_key(prof, ids[:-1])
    assert dd.run_key(prof, ids) == dd.run_key(_profile(max_epochs=50, patience=9), ids)  # limits are resumable
    assert dd.run_key(prof, ids) != dd.run_key(_profile(lr=0.01), ids)
    with pytest.raises(ValueError, match="at least 2 training-split records"):
        dd.regime_run(records, ids[:1], prof, progress=False, root=root)
    with pytest.raises(KeyError, match="not among the records"):
        dd.regime_run(records, ids + ["nope"], prof, progress=False, root=root)


def test_sweep_continues_main_run_and_subsamples(records, study):
    root, ids, prof, res = study
    table = dd.sweep(records, ids, prof, main=res, progress=False)
    assert list(table["run"]) == ["main", "longer", "half data"]
    longer = table.set_index("run").loc["longer"]
    assert longer["epochs"] == 9 and longer["n_train"] + longer["n_val"] == len(ids)
    # "longer" continued a copy of the main run: its first 6 epochs are the main run's, the main run is untouched
    import pandas as pd

    cont = pd.read_csv(next(root.glob("longer-CSO-*")) / "history.csv")
    np.testing.assert_array_equal(cont["val_loss"].to_numpy()[:6], res.history["val_loss"].to_numpy())
    assert len(pd.read_csv(res.run_dir / "history.csv")) == 6
    assert len(list(root.glob("half-data-CSO-*"))) == 1  # next to the main run, not in artifacts/
    half = table.set_index("run").loc["half data"]
    assert half["n_train"] + half["n_val"] == 6  # ceil(0.5 * 12)
    assert {"classical_epoch", "second_descent_ratio", "double_descent", "summary"} <= set(table.columns)
    with pytest.raises(ValueError, match="data.fraction"):
        dd.apply_overrides(prof, [("data.fraction", 1.5)])
    with pytest.raises(ValueError, match="section.field"):
        dd.apply_overrides(prof, [("max_epochs", 5)])


def test_predictions_rows_and_findings_are_measured(records, study):
    from betenet.dataset import MaterialDataset
    from betenet.metrics import derived_properties, table1_rows
    from betenet.model import load_checkpoint, predict

    root, ids, prof, res = study
    test_ids = [r.material_id for r in records[12:]]
    ckpts = dd.regime_checkpoints(res)
    assert list(ckpts)[-2:] == ["best", "final"]
    preds = dd.regime_predictions(ckpts, records, test_ids)
    model = load_checkpoint(ckpts["final"])[0]
    a2f = predict(model, MaterialDataset(records[12:], "CSO", 4.0, with_targets=False))
    np.testing.assert_allclose(preds["final"]["a2f"], a2f, rtol=1e-6)
    np.testing.assert_allclose(preds["final"]["properties"]["lambda"], derived_properties(a2f)["lambda"], rtol=1e-6)
    assert preds["final"]["epoch"] == 5
    ref = dd.reference(records, test_ids)
    rows = dd.regime_rows(preds, ref, variant="CSO", n_train=len(res.train_ids), data="synthetic")
    assert len(rows) == 3 * len(preds) and rows[0]["model"] == f"CSO {list(preds)[0]}"
    expected = table1_rows("CSO final", ref, preds["final"]["properties"])
    got = [r for r in rows if r["model"] == "CSO final"]
    assert [r["lambda"] for r in got] == pytest.approx([r["lambda"] for r in expected])
    text = dd.findings(res, rows)
    assert f"{res.epochs_trained} epochs" in text and f"epoch {res.best_epoch}" in text
    assert res.regimes.summary() in text
    assert ("No double descent" in text) == (not res.regimes.double_descent)
    mae = {r["model"]: r["lambda"] for r in rows if r["metric"] == "MAE"}
    assert f"Lowest λ MAE: {min(mae, key=mae.get)}" in text
    assert "Test split (4 materials)" in text and "say little" in text  # 4 test materials: flagged


def test_landscapes_and_plots(records, study):
    import matplotlib

    matplotlib.use("Agg")
    from betenet.config import LandscapeConfig

    root, ids, prof, res = study
    ckpts = dd.regime_checkpoints(res)
    loss_fn = dd.loss_fn_for(res, records)
    ls = dd.regime_landscapes(ckpts, loss_fn, LandscapeConfig(n_grid=3, span=0.2, seed=1), progress=False, out_dir=root)
    assert set(ls) == set(ckpts) and (root / "landscape-final.npz").exists()
    assert ls["final"].center_loss == pytest.approx(res.history["train_loss"].iloc[-1], rel=0.5)
    assert np.isfinite(ls["final"].center_curvature)
    text = dd.landscape_findings(ls)
    assert "**final** (epoch 5)" in text and "Flattest" in text
    assert plot_training_curves(res).axes
    assert len(plot_regime_a2f(dd.regime_predictions(ckpts, records, ids[:4]), records, ids[:4]).axes) == 3
