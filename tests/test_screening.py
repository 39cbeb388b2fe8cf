"""Screening: PR/AP against scikit-learn, random-selector AP, thresholds, two-step strategy, LCB, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from betenet.constants import TARGET_BIN_WIDTH_MEV, TARGET_GRID_MEV
from betenet.plots.screening import plot_confusion, plot_pr_curves, plot_precision_recall_vs_threshold
from betenet.screening import (
    average_precision,
    choose_threshold,
    confusion_matrix,
    ensemble_tc,
    positive_threshold,
    precision_recall,
    precision_recall_at,
    random_average_precision,
    two_step_screen,
)


def test_precision_recall_known_small_case():
    y = np.array([1, 0, 1, 0, 0], dtype=bool)
    s = np.array([9.0, 8.0, 7.0, 2.0, 2.0])
    c = precision_recall(y, s)
    np.testing.assert_allclose(c.thresholds, [2.0, 7.0, 8.0, 9.0])
    np.testing.assert_allclose(c.precision, [2 / 5, 2 / 3, 1 / 2, 1.0])
    np.testing.assert_allclose(c.recall, [1.0, 1.0, 0.5, 0.5])
    np.testing.assert_array_equal(c.n_selected, [5, 3, 2, 1])
    assert c.average_precision == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert c.prevalence == pytest.approx(0.4) and c.n_positive == 2
    assert c.at(7.0) == pytest.approx((2 / 3, 1.0, 3))
    assert c.at(7.5) == pytest.approx((0.5, 0.5, 2))
    assert precision_recall_at(y, s, 7.5) == pytest.approx((0.5, 0.5, 2))
    assert choose_threshold(c, 1.0) == 9.0
    assert choose_threshold(c, 0.6) == 7.0
    assert choose_threshold(precision_recall(~y | True, s), 1.1) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curve_and_ap_match_sklearn(seed):
    from sklearn.metrics import average_precision_score, precision_recall_curve

    rng = np.random.default_rng(seed)
    y = rng.random(60) < 0.3
    s = np.round(rng.normal(size=60) + 1.2 * y, 1)  # rounded: ties included
    c = precision_recall(y, s)
    assert c.average_precision == pytest.approx(average_precision_score(y, s))
    p, r, t = precision_recall_curve(y, s)
    # sklearn: ascending thresholds, with a final (precision=1, recall=0) point; it may drop
    # thresholds below the lowest-scored positive (recall already 1) — compare on the common ones
    sk = dict(zip(np.round(t, 9), zip(p[:-1], r[:-1])))
    mine = dict(zip(np.round(c.thresholds, 9), zip(c.precision, c.recall)))
    common = set(sk) & set(mine)
    assert len(common) >= len(sk) - 1
    for th in common:
        assert mine[th] == pytest.approx(sk[th])


def test_random_selector_ap_is_the_prevalence():
    rng = np.random.default_rng(0)
    y = np.zeros(200, dtype=bool)
    y[:30] = True
    aps = [average_precision(y, rng.random(200)) for _ in range(300)]
    assert random_average_precision(y) == pytest.approx(0.15)
    assert np.mean(aps) == pytest.approx(0.15, abs=0.02)
    assert average_precision(y, y.astype(float)) == pytest.approx(1.0)


def test_confusion_matrix_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk_cm

    rng = np.random.default_rng(3)
    y, p = rng.random(40) < 0.4, rng.random(40) < 0.5
    np.testing.assert_array_equal(confusion_matrix(y, p), sk_cm(y, p, labels=[False, True]))


def test_positive_threshold_adaptation():
    tc = np.array([0.1, 0.5, 1.5, 2.0, 6.0])
    d = positive_threshold(tc, tc_threshold_K=5.0, min_positives=3, adapted_tc_threshold_K=1.0)
    assert d["n_paper"] == 1 and d["use_adapted"] and d["n_adapted"] == 3
    d2 = positive_threshold(tc, tc_threshold_K=1.0, min_positives=3, adapted_tc_threshold_K=0.3)
    assert d2["n_paper"] == 3 and not d2["use_adapted"]


def test_two_step_strategy_thresholds_and_cascade():
    tc_true = np.array([10.0, 8.0, 6.0, 1.0, 0.5, 0.2, 7.0, 3.0])
    cso = np.array([9.0, 3.0, 2.0, 4.0, 0.0, 0.1, 1.0, 2.5])  # only the top one is certain
    cpd = np.array([9.5, 7.0, 6.5, 2.0, 0.3, 0.1, 5.5, 6.0])
    out = two_step_screen(tc_true, cso, cpd, tc_threshold_K=5.0, min_precision_step1=1.0, min_precision_step2=0.8)
    assert out["threshold_step1_K"] == 9.0
    assert out["step1"]["precision"] == 1.0 and out["step1"]["recall"] == pytest.approx(0.25)
    assert out["threshold_step2_K"] == 5.5  # selects 5: 4 positives + 1 (3 K): precision 0.8
    assert out["step2"]["precision"] == pytest.approx(0.8) and out["step2"]["recall"] == 1.0
    np.testing.assert_array_equal(out["step2"]["confusion"], [[3, 1], [0, 4]])
    assert out["cascade"]["n_after_step1"] == 1 and out["cascade"]["n_after_step2"] == 1


def test_ensemble_tc_lcb_on_einstein_spectra():
    # 3 members x 2 materials: material 0 members agree, material 1 members disagree
    a = np.zeros((3, 2, 51))
    k = 10  # 20.25 meV
    a[:, 0, k] = 8.0 / TARGET_BIN_WIDTH_MEV  # area 8: λ = 16 / 20.25 ≈ 0.79
    for m, area in enumerate([4.0, 8.0, 12.0]):
        a[m, 1, k] = area / TARGET_BIN_WIDTH_MEV
    e = ensemble_tc(a, z=1.0)
    assert e.tc_members_K.shape == (3, 2)
    assert e.tc_std_K[0] == pytest.approx(0.0, abs=1e-12)
    assert e.tc_std_K[1] > 1.0
    np.testing.assert_allclose(e.lcb_K, e.tc_mean_K - e.tc_std_K)
    # the mean α²F of material 1 equals material 0's spectrum -> same T_c of the mean
    assert e.tc_of_mean_K[1] == pytest.approx(e.tc_of_mean_K[0])
    assert e.lcb_K[1] < e.lcb_K[0]
    with pytest.raises(ValueError, match="n_members"):
        ensemble_tc(a[0])


def test_plots_run():
    import matplotlib.pyplot as plt

    y = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    s = np.array([9.0, 8.0, 7.0, 2.0, 1.0, 0.5])
    c = precision_recall(y, s)
    figs = [plot_pr_curves({"CSO": c, "LCB": c}, markers={"CSO": 9.0}), plot_precision_recall_vs_threshold(c, marker=7.0),
            plot_confusion(confusion_matrix(y, s >= 7))]
    assert len(figs[0].axes[0].lines) >= 2
    for f in figs:
        plt.close(f)


# ----------------------------------------------------------------------------- reports


def test_screening_report_summary_and_two_step():
    import pandas as pd

    from betenet.plots.screening import plot_screening
    from betenet.screening import screening_report

    ids = [f"m{i}" for i in range(8)]
    tc = pd.Series([10.0, 8.0, 6.0, 1.0, 0.5, 0.2, 7.0, 3.0], index=ids)
    scores = pd.DataFrame({"Base": [2.0, 1.0, 3.0, 4.0, 0.0, 0.1, 1.0, 2.5],
                           "CSO": [9.0, 3.0, 2.0, 4.0, 0.0, 0.1, 1.0, 2.5],
                           "CSO LCB": [8.0, 2.0, 1.0, 0.5, 0.0, 0.0, 0.5, 0.5],
                           "CPD": [9.5, 7.0, 6.5, 2.0, 0.3, 0.1, 5.5, 6.0]}, index=ids)
    rep = screening_report(tc, scores, 5.0, label="(paper)")
    s = rep.summary.set_index("score")
    assert s.loc["CSO", "threshold_K"] == 9.0 and s.loc["CSO", "precision"] == 1.0
    assert s.loc["CPD", "threshold_K"] == 5.5 and s.loc["CPD", "TP"] == 4 and s.loc["CPD", "FP"] == 1
    assert s.loc["CSO", "AP_random"] == pytest.approx(0.5)
    assert rep.two_step["threshold_step2_K"] == 5.5
    d = rep.to_dict()
    assert d["n_positive"] == 4 and d["scores"]["CPD"]["TP"] == 4
    import json

    json.dumps(d)  # JSON-ready
    import matplotlib.pyplot as plt

    plt.close(plot_screening(rep))
    # no positives: AP undefined but the report and figure still work
    empty = screening_report(tc, scores, 50.0)
    assert np.isnan(empty.summary["AP"]).all() and empty.two_step is None
    plt.close(plot_screening(empty))


# ----------------------------------------------------------------------------- structures and the CLI


@pytest.fixture()
def structure_files(tmp_path):
    from pymatgen.core import Lattice, Structure

    nb = Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    al = Structure(Lattice([[0, 2.02, 2.02], [2.02, 0, 2.02], [2.02, 2.02, 0]]), ["Al"], [[0, 0, 0]])
    d = tmp_path / "structs"
    d.mkdir()
    nb.to(filename=str(d / "Nb.cif"))
    al.to(filename=str(d / "POSCAR_Al"), fmt="poscar")
    (d / "broken.cif").write_text("data_broken\n_cell_length_a oops\nthis is not a CIF\n")
    return d


def _einstein_predictor(members, structures):
    """A deterministic stand-in predictor: one peak at 160/sqrt(mass) meV, strength differing per member."""
    from pymatgen.core import Element

    out = np.zeros((len(members), len(structures), 51))
    for j, st in enumerate(structures):
        if any(el.symbol == "Al" for el in st.composition.elements):
            raise ValueError("graph has an isolated atom")  # exercised: one failing structure is isolated
        mass = np.mean([Element(el.symbol).atomic_mass for el in st.composition.elements])
        k = int(np.clip(round(160 / np.sqrt(mass) / 2), 1, 50))
        for m in range(len(members)):
            out[m, j, k] = (6.0 + m) / TARGET_BIN_WIDTH_MEV
    return out


def test_read_structures_reports_bad_files_by_name(structure_files):
    from betenet.structure_screening import read_structures

    ok, bad = read_structures([structure_files, structure_files / "missing.cif"])
    assert sorted(p.name for p, _ in ok) == ["Nb.cif", "POSCAR_Al"]
    names = {p.name: why for p, why in bad}
    assert "broken.cif" in names and "cannot read" in names["broken.cif"]
    assert "missing.cif" in names and "no such file" in names["missing.cif"]


def test_screen_structures_ranks_and_isolates_failures(structure_files):
    from betenet.structure_screening import read_structures, screen_structures

    ok, _ = read_structures([structure_files])
    table, failures = screen_structures([0, 1, 2], ok, predict=_einstein_predictor)
    assert list(table["formula"]) == ["Nb"] and table["rank"].tolist() == [1]
    assert table.loc[0, "tc_std_K"] > 0 and table.loc[0, "tc_lcb_K"] < table.loc[0, "tc_K"] + table.loc[0, "tc_std_K"]
    assert [p.name for p, _ in failures] == ["POSCAR_Al"] and "isolated atom" in failures[0][1]


def test_cli_skips_bad_files_and_fails_only_when_nothing_screened(structure_files, tmp_path, capsys):
    from betenet.cli.screen import cli_main

    assert cli_main([str(structure_files / "broken.cif")]) == 1
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.cif" in err and "nothing screened" in err
    # readable structures but no ensemble at the given directory: a clear message, exit 1
    assert cli_main([str(structure_files), "--run-dir", str(tmp_path / "no-ensemble")]) == 1
    err = capsys.readouterr().err
    assert "broken.cif" in err and "cannot load the ensemble" in err and "betenet ensemble run" in err


def _prediction_set(variant, ids, tc_like_areas, seed=0):
    """A real betenet.ensemble.PredictionSet of Einstein-spike members (3 members, member spread ~10 %)."""
    import pandas as pd

    from betenet.ensemble import PredictionSet
    from betenet.metrics import derived_properties

    rng = np.random.default_rng(seed)
    n = len(ids)
    pred = np.zeros((3, n, 51))
    k = 10
    for m in range(3):
        pred[m, np.arange(n), k] = np.asarray(tc_like_areas) * (1 + 0.1 * rng.normal(size=n)) / TARGET_BIN_WIDTH_MEV
    target = np.zeros((n, 51))
    target[np.arange(n), k] = np.asarray(tc_like_areas) / TARGET_BIN_WIDTH_MEV
    ref = pd.DataFrame(derived_properties(target), index=pd.Index(ids, name="material_id"))
    return PredictionSet(variant, "smoke", "test", list(ids), np.asarray(TARGET_GRID_MEV),
                         np.arange(3), pred, target, ref)


def test_scores_reports_findings_and_files(tmp_path):
    import json

    import pandas as pd

    from betenet.config import ScreeningConfig
    from betenet.screening import findings_markdown, report_numbers, save_reports, screening_reports, screening_scores

    ids = [f"m{i}" for i in range(10)]
    areas = np.linspace(1.0, 10.0, 10)  # λ from ~0.1 to ~1: T_c from 0 to ~10 K
    sets = {"CSO": _prediction_set("CSO", ids, areas, 0), "CPD": _prediction_set("CPD", ids, areas, 1)}
    base = pd.DataFrame({"tc_K": np.linspace(0, 5, 10)}, index=ids)
    tc, scores = screening_scores(sets, base=base, z=1.0)
    assert list(scores.columns) == ["Base", "CSO", "CSO LCB", "CPD", "CPD LCB"]
    assert (scores["CSO LCB"] <= scores["CSO"] + 1.0).all()
    n_pos5 = int((tc >= 5).sum())
    cfg = ScreeningConfig(min_positives=n_pos5 + 1, adapted_tc_threshold_K=1.0)
    reports = screening_reports(tc, scores, cfg)
    assert [r.threshold_K for r in reports] == [5.0, 1.0] and "adaptation" in reports[1].label
    assert len(screening_reports(tc, scores, ScreeningConfig(min_positives=1))) == 1
    nums = report_numbers(reports[0])
    assert nums["n_positive"] == n_pos5 and "AP_CSOLCB" in nums
    text = findings_markdown(reports)
    assert "T_c ≥ 5 K" in text and "our adaptation" in text and "Two-step" in text
    pj, pc = save_reports(reports, tmp_path)
    assert len(json.loads(pj.read_text())) == 2
    assert set(pd.read_csv(pc)["threshold_K_definition"]) == {5.0, 1.0}
    # a baseline that misses materials is left out rather than misaligned
    _, s2 = screening_scores(sets, base=base.iloc[:5])
    assert "Base" not in s2.columns
