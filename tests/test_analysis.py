"""Normalised per-material error, per-element aggregation, best/worst selection, plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from betenet.analysis import (
    absolute_errors,
    best_worst,
    normalisation_bounds,
    normalised_errors,
    per_element_error,
)
from betenet.plots.analysis import plot_error_inset, plot_per_element_error, plot_periodic_table


@pytest.fixture()
def frames():
    idx = ["a", "b", "c", "d"]
    true = pd.DataFrame({"lambda": [0.5, 1.0, 0.3, 0.8], "omega_log_K": [100, 200, 300, 150.0],
                         "omega_2_K": [120, 220, 330, 170.0]}, index=idx)
    pred = true.copy()
    pred["lambda"] += [0.0, 0.2, -0.1, 0.4]  # |Δλ| = 0, .2, .1, .4
    pred["omega_log_K"] += [10.0, 0.0, -30.0, 20.0]  # 10, 0, 30, 20
    pred["omega_2_K"] += [0.0, 5.0, 5.0, 10.0]  # 0, 5, 5, 10
    return true, pred


def test_normalised_errors_known_values(frames):
    true, pred = frames
    e = normalised_errors(true, pred)
    np.testing.assert_allclose(e["lambda"], [0.0, 0.2, 0.1, 0.4], atol=1e-12)
    np.testing.assert_allclose(e["lambda_norm"], [0.0, 0.5, 0.25, 1.0])
    np.testing.assert_allclose(e["omega_log_K_norm"], [1 / 3, 0.0, 1.0, 2 / 3])
    np.testing.assert_allclose(e["omega_2_K_norm"], [0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(e["mean_error"], [(0 + 1 / 3 + 0) / 3, 1 / 3, (0.25 + 1 + 0.5) / 3, (1 + 2 / 3 + 1) / 3])
    assert e["mean_error"].between(0, 1).all()


def test_common_bounds_make_models_comparable(frames):
    true, pred = frames
    worse = true + 2 * (pred - true)  # errors doubled
    ea, eb = absolute_errors(true, pred), absolute_errors(true, worse)
    bounds = normalisation_bounds(ea, eb)
    na = normalised_errors(true, pred, bounds=bounds)["mean_error"]
    nb = normalised_errors(true, worse, bounds=bounds)["mean_error"]
    assert (nb >= na).all() and nb.mean() > na.mean()
    # with separate bounds the doubled errors would look identical (scale-free normalisation)
    np.testing.assert_allclose(normalised_errors(true, worse)["mean_error"], normalised_errors(true, pred)["mean_error"])
    with pytest.raises(ValueError, match="aligned"):
        absolute_errors(true, pred.iloc[::-1])


def test_per_element_error_and_best_worst(frames):
    true, pred = frames
    e = normalised_errors(true, pred)
    elements = {"a": ("Al",), "b": ("Al", "Nb"), "c": ("C", "Nb"), "d": ("Nb",)}
    pe = per_element_error(elements, e)
    assert list(pe["element"]) == ["C", "Al", "Nb"]  # ordered by Z
    row = pe.set_index("element")
    assert row.loc["Al", "count"] == 2 and row.loc["Nb", "count"] == 3 and row.loc["C", "count"] == 1
    assert row.loc["Al", "mean_error"] == pytest.approx(e.loc[["a", "b"], "mean_error"].mean())
    assert np.isnan(row.loc["C", "std_error"])
    best, worst = best_worst(e, k=2)
    assert best == ["a", "b"] and worst == ["d", "c"]
    with pytest.raises(KeyError, match="no element list"):
        per_element_error({"a": ("Al",)}, e)


def test_plots(frames):
    import matplotlib.pyplot as plt

    true, pred = frames
    e = normalised_errors(true, pred)
    pe = per_element_error({"a": ("Al",), "b": ("Al", "Nb"), "c": ("C", "Nb"), "d": ("La", "Nb")}, e)
    fig = plot_per_element_error(pe, min_count=2)
    hatched = [p.get_hatch() for p in fig.axes[0].patches]
    assert hatched.count("///") == 2  # C and La have one material each
    fig2 = plot_periodic_table(dict(zip(pe.element, pe.mean_error)), dict(zip(pe.element, pe["count"])))
    fig3 = plot_error_inset(e)
    for f in (fig, fig2, fig3):
        plt.close(f)


def test_model_errors_share_one_scale(frames):
    from betenet.analysis import model_errors

    true, pred = frames
    worse = true + 2 * (pred - true)
    errs = model_errors({"A": (true, pred), "B": (true, worse)})
    assert errs["B"]["lambda_norm"].max() == pytest.approx(1.0) and errs["A"]["lambda_norm"].max() == pytest.approx(0.5)
    np.testing.assert_allclose(errs["A"]["lambda_norm"], errs["B"]["lambda_norm"] / 2)


def test_per_element_errors_long_table_and_panels(frames):
    import matplotlib.pyplot as plt

    from betenet.analysis import model_errors, per_element_errors
    from betenet.plots.analysis import plot_per_element_models

    true, pred = frames
    errs = model_errors({"CSO": (true, pred), "CPD": (true, true + 0.5 * (pred - true))})
    pe = per_element_errors({"a": ("Al",), "b": ("Al", "Nb"), "c": ("C", "Nb"), "d": ("Nb",)}, errs)
    assert set(pe["model"]) == {"CSO", "CPD"} and len(pe) == 6
    cso, cpd = (pe[pe.model == m].set_index("element")["mean_error"] for m in ("CSO", "CPD"))
    assert (cpd <= cso + 1e-12).all()
    for kind in ("periodic", "bar"):
        plt.close(plot_per_element_models(pe, ["CSO", "CPD"], kind=kind))
    with pytest.raises(ValueError, match="none of the requested"):
        plot_per_element_models(pe, ["FPD"])
