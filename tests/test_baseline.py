"""Linear baseline and mean model: exact recovery on constructed data, PhDOS moments, Table 1 rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from betenet.baseline import (
    FEATURES,
    LinearBaseline,
    MeanModel,
    baseline_features,
    one_metric_comparison,
    phdos_moments,
    run_baseline,
    tc_from_moments,
)
from betenet.constants import K_PER_MEV
from betenet.metrics import r2_score
from betenet.plots.baseline import plot_feature_correlations
from betenet.records import RecordError


def test_linear_baseline_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.uniform(0.5, 3.0, size=(40, 4)), columns=list(FEATURES))
    coef = np.array([[0.3, -0.1, 0.0, 0.02], [1.0, 5.0, 0.8, 0.0], [0.0, 2.0, 0.1, 0.9]])
    intercept = np.array([0.1, 20.0, -5.0])
    Y = pd.DataFrame(X.to_numpy() @ coef.T + intercept, columns=["lambda", "omega_log_K", "omega_2_K"])
    model = LinearBaseline().fit(X, Y)
    np.testing.assert_allclose(model.coef, coef, atol=1e-10)
    np.testing.assert_allclose(model.intercept, intercept, atol=1e-9)
    np.testing.assert_allclose(model.predict(X).to_numpy(), Y.to_numpy(), atol=1e-9)
    assert list(model.coefficients().columns) == ["intercept", *FEATURES]


def test_mean_model_has_zero_r2_on_training_data():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(25, 4)), columns=list(FEATURES))
    Y = pd.DataFrame(rng.normal(size=(25, 3)) * [0.3, 50, 60] + [0.5, 200, 250], columns=["lambda", "omega_log_K", "omega_2_K"])
    mm = MeanModel().fit(X, Y)
    pred = mm.predict(X)
    for c in Y.columns:
        assert r2_score(Y[c], pred[c]) == pytest.approx(0.0, abs=1e-12)
        assert pred[c].nunique() == 1


def test_phdos_moments_of_an_einstein_dos_and_normalisation_invariance():
    omega = np.arange(0.0, 60.0, 0.1)
    dos = np.zeros_like(omega)
    k = 250  # 25 meV
    dos[k] = 7.0  # any area
    m = phdos_moments(omega, dos)
    assert m.omega_log_K == pytest.approx(omega[k] * K_PER_MEV)
    assert m.omega_2_K == pytest.approx(omega[k] * K_PER_MEV)
    assert m.lambda_ == pytest.approx(2.0 / omega[k])  # 2<1/ω> of a unit-area δ
    m2 = phdos_moments(omega, 3.0 * dos - 1e-4)  # scaled, with small negative noise clipped
    assert m2.lambda_ == pytest.approx(m.lambda_, rel=1e-9)
    with pytest.raises(ValueError, match="no weight"):
        phdos_moments(omega, np.zeros_like(omega))


def test_missing_feature_names_material_and_field(records):
    bad = records[0]
    import dataclasses

    broken = dataclasses.replace(bad, edos_ef_per_eV=None)
    with pytest.raises(RecordError, match=rf"{bad.material_id}.*edos_ef_per_eV"):
        baseline_features([broken] + records[1:])
    no_ph = dataclasses.replace(bad, phdos_coarse_total=None)
    with pytest.raises(RecordError, match="phdos_coarse_total"):
        baseline_features([no_ph])
    X = baseline_features([broken] + records[1:], skip_incomplete=True)
    assert bad.material_id not in X.index and bad.material_id in X.attrs["skipped"]


def test_run_baseline_table_rows_and_one_metric_point(records):
    ids = [r.material_id for r in records]
    train, test = ids[:20], ids[20:]
    res = run_baseline(records, train, test, data="synthetic test records")
    table = res.table()
    assert set(table["model"]) == {"Base", "Mean"}
    assert (table["n_test"] == len(test)).all() and (table["n_train"] == len(train)).all()
    base = table[(table.model == "Base") & (table.metric == "R2")].iloc[0]
    mean = table[(table.model == "Mean") & (table.metric == "R2")].iloc[0]
    # the constructed PhDOS carries the α²F peak positions: ω moments are well predicted
    assert base["omega_log_K"] > 0.8 and base["omega_2_K"] > 0.8
    assert base["omega_log_K"] > mean["omega_log_K"]
    assert mean["lambda"] <= 0.0  # a constant prediction cannot beat the test mean
    # T_c of predictions via Allen-Dynes from predicted moments
    np.testing.assert_allclose(res.predictions["Base"]["tc_K"], tc_from_moments(res.predictions["Base"]))
    cmp = one_metric_comparison(res.rows, res.targets.loc[test])
    assert set(cmp.index) == {"lambda", "omega_log_K", "omega_2_K", "tc_K"}
    assert cmp.loc["omega_log_K", "MAE_gain"] > 0.3
    import matplotlib.pyplot as plt

    fig = plot_feature_correlations(res.features, res.targets, split={m: "train" for m in train} | {m: "test" for m in test})
    assert len(fig.axes) == 3
    plt.close(fig)


def test_tc_from_moments_clips_negative_predictions():
    tc = tc_from_moments({"lambda": np.array([-0.2, 1.0]), "omega_log_K": np.array([100.0, -5.0]), "omega_2_K": np.array([120.0, 10.0])})
    assert tc[0] == 0.0 and tc[1] == 0.0


@pytest.fixture(scope="module")
def records():
    from analysis_records import make_records

    return make_records(30)


def test_underdetermined_fit_warns_and_interpolates_the_training_points():
    import pandas as pd

    from betenet.baseline import FEATURES, TARGETS, LinearBaseline

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(3, len(FEATURES))), columns=list(FEATURES), index=["a", "b", "c"])
    Y = pd.DataFrame(rng.normal(size=(3, len(TARGETS))), columns=list(TARGETS), index=["a", "b", "c"])
    with pytest.warns(UserWarning, match="underdetermined"):
        lin = LinearBaseline().fit(X, Y)
    assert lin.underdetermined
    np.testing.assert_allclose(lin.predict(X).to_numpy(), Y.to_numpy(), atol=1e-8)  # exact interpolation
    with pytest.raises(ValueError, match="at least 2 training materials"):
        LinearBaseline().fit(X.iloc[:1], Y.iloc[:1])
