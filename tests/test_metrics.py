"""Table 1 metrics: known values, sklearn agreement, derived properties of analytic spectra, table layout."""

from __future__ import annotations

import numpy as np
import pytest

from betenet.constants import K_PER_MEV, TARGET_BIN_WIDTH_MEV, TARGET_GRID_MEV
from betenet.metrics import (
    TABLE1_COLUMNS,
    derived_properties,
    property_metrics,
    r2_score,
    reference_properties,
    smoothing_floor_rows,
    table1_frame,
    table1_rows,
)
from betenet.plots.metrics import plot_parity


def test_property_metrics_known_values():
    s = property_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
    assert s["MAE"] == pytest.approx(0.25)
    assert s["RMSE"] == pytest.approx(0.5)
    assert s["R2"] == pytest.approx(1.0 - 1.0 / 5.0)  # SS_res = 1, SS_tot = 5
    assert s["n"] == 4
    # predicting the mean gives R2 = 0; worse than the mean gives R2 < 0
    assert r2_score([1, 2, 3], [2, 2, 2]) == pytest.approx(0.0)
    assert r2_score([1, 2, 3], [3, 2, 1]) == pytest.approx(-3.0)
    assert np.isnan(r2_score([1.0], [1.5])) and np.isnan(r2_score([1.0], [1.0]))  # undefined for one value


def test_r2_matches_sklearn_on_random_data():
    from sklearn.metrics import mean_absolute_error, mean_squared_error
    from sklearn.metrics import r2_score as sk_r2

    rng = np.random.default_rng(0)
    t, p = rng.normal(size=50), rng.normal(size=50)
    s = property_metrics(t, p)
    assert s["R2"] == pytest.approx(sk_r2(t, p))
    assert s["MAE"] == pytest.approx(mean_absolute_error(t, p))
    assert s["RMSE"] == pytest.approx(np.sqrt(mean_squared_error(t, p)))


def test_property_metrics_rejects_nan_and_mismatch():
    with pytest.raises(ValueError, match="omega_log_K: 1 non-finite predicted"):
        property_metrics([1.0, 2.0], [1.0, np.nan], name="omega_log_K")
    with pytest.raises(ValueError, match="2 true values but 3"):
        property_metrics([1.0, 2.0], [1.0, 2.0, 3.0])


def test_derived_properties_of_einstein_spikes_on_the_51_bin_grid():
    # single-bin spikes of area A at bin k: an exact δ-peak for the trapezoid rule on the uniform grid
    a2f = np.zeros((3, 51))
    ks, areas = [5, 10, 20], [0.5, 1.0, 2.0]
    for i, (k, a) in enumerate(zip(ks, areas)):
        a2f[i, k] = a / TARGET_BIN_WIDTH_MEV
    d = derived_properties(a2f)
    w = TARGET_GRID_MEV[ks]
    np.testing.assert_allclose(d["lambda"], 2 * np.array(areas) / w, rtol=1e-12)
    np.testing.assert_allclose(d["omega_log_K"], w * K_PER_MEV, rtol=1e-12)
    np.testing.assert_allclose(d["omega_2_K"], w * K_PER_MEV, rtol=1e-12)
    assert d["tc_K"].shape == (3,) and np.all(d["tc_K"] >= 0)
    # a zero prediction: ω undefined -> 0 K (counted as an error), T_c 0
    z = derived_properties(np.zeros(51))
    assert float(z["lambda"]) == 0.0 and float(z["omega_log_K"]) == 0.0 and float(z["tc_K"]) == 0.0


def test_table1_rows_layout_and_values():
    true = {"lambda": [0.5, 1.0], "omega_log_K": [100.0, 200.0], "omega_2_K": [150.0, 250.0], "tc_K": [1.0, 9.0]}
    pred = {"lambda": [0.6, 1.0], "omega_log_K": [100.0, 180.0], "omega_2_K": [150.0, 250.0], "tc_K": [2.0, 7.0]}
    rows = table1_rows("Base", true, pred, n_train=8, data="test data")
    df = table1_frame(rows)
    assert list(df.columns) == list(TABLE1_COLUMNS)
    assert list(df["metric"]) == ["R2", "MAE", "RMSE"]
    mae = df.set_index("metric").loc["MAE"]
    assert mae["lambda"] == pytest.approx(0.05)
    assert mae["omega_log_K"] == pytest.approx(10.0)
    assert mae["omega_2_K"] == pytest.approx(0.0)
    assert mae["tc_K"] == pytest.approx(1.5)
    np.testing.assert_allclose(df["tc_mae_K"], 1.5)
    assert (df["n_test"] == 2).all() and (df["n_train"] == 8).all()
    # without T_c, the T_c columns are NaN
    no_tc = table1_rows("X", {k: v for k, v in true.items() if k != "tc_K"}, pred)
    assert np.isnan(no_tc[0]["tc_K"]) and np.isnan(no_tc[0]["tc_mae_K"])


def test_reference_properties_raw_and_smoothing_floor(records):
    raw = reference_properties(records, "raw")
    assert list(raw.index) == [r.material_id for r in records]
    assert (raw["lambda"] > 0).all() and (raw["tc_K"] >= 0).all()
    # the test spectra are built with a target λ; Gaussian peaks of width 2 meV away from 0 keep it closely
    pytest.importorskip("betenet.spectra")
    binned = reference_properties(records, "binned")
    assert np.allclose(binned["lambda"], raw["lambda"], rtol=0.15)
    rows = smoothing_floor_rows(records)
    assert rows[0]["model"] == "DFT 51-bin"
    assert 0 < rows[1]["lambda"] < 0.1  # smoothing/binning loses little λ on smooth spectra


def test_plot_parity_returns_three_panels(records):
    import matplotlib.pyplot as plt

    raw = reference_properties(records, "raw")
    fig = plot_parity(raw, raw * 1.1, title="test")
    assert len(fig.axes) == 3
    plt.close(fig)


@pytest.fixture(scope="module")
def records():
    from analysis_records import make_records

    return make_records(12)


def test_glue_keys_are_stable_identifiers():
    from betenet.metrics import glue_table1, glue_values

    seen = {}

    def fake_glue(key, value, display=True):
        assert display is False
        seen[key] = value

    glue_values({"n test": np.int64(3)}, fake_glue, prefix="paper")
    assert seen == {"paper_ntest": 3} and type(seen["paper_ntest"]) is int
    true = {"lambda": [0.5, 1.0], "omega_log_K": [100.0, 200.0], "omega_2_K": [150.0, 250.0]}
    glue_table1(table1_rows("DFT 51-bin", true, true), fake_glue)
    assert seen["DFT51bin_MAE_lambda"] == 0.0 and "DFT51bin_R2_omega_log_K" in seen
