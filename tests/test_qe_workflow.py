"""QE workflow bookkeeping without Quantum ESPRESSO: quality filters, the funnel, timing tables,
failure reporting (fake executables), input errors, resume detection and the Dask dataset runner."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import stat
import time

import numpy as np
import pandas as pd
import pytest

from betenet.config import QE_CI, DaskConfig, QEConfig, get_profile
from betenet.qe import dataset, summary
from betenet.qe.filters import a2f_checks, funnel, funnel_table, imaginary_check, quality_report
from betenet.qe.inputs import QEInputError
from betenet.qe.parsers import QEParseError
from betenet.qe.prototypes import build
from betenet.qe.runner import QEError, run_qe
from betenet.qe.status import load_status
from betenet.qe.workflow import check_settings, run_material

CFG = QEConfig()


# --------------------------------------------------------------------------------------------
# Synthetic run directories
# --------------------------------------------------------------------------------------------


def _edos(d, dos_at_ef: float) -> None:
    e = np.linspace(-1000.0, 1000.0, 101)  # meV around E_F
    tot = np.where(np.abs(e) < 300, dos_at_ef, 1.0)
    with gzip.open(d / "edos.dat.gz", "wt") as fh:
        np.savetxt(fh, np.column_stack([e, tot, tot]), header="E-E_F (meV), total, site 1")


def _a2f(d, a2f: np.ndarray) -> None:
    w = np.linspace(0.05, 40.0, a2f.size)
    cols = [w] + [a2f] * 10
    with gzip.open(d / "a2f.dat.gz", "wt") as fh:
        np.savetxt(fh, np.column_stack(cols), header="omega (meV), alpha2F ... (Ry): " + " ".join(["0.005"] * 10))


def _status(d, state="running", reason=None, steps=None, **extra) -> None:
    d.mkdir(parents=True, exist_ok=True)
    s = {"material_id": d.name, "state": state, "reason": reason, "steps": steps or {}, "formula": d.name.split("-")[0],
         "prototype": d.name.split("-")[-1], "n_atoms": 1, **extra}
    (d / "status.json").write_text(json.dumps(s))


def _peak(n=400):
    w = np.linspace(0.05, 40.0, n)
    return 0.5 * np.exp(-((w - 20.0) / 4.0) ** 2)


def test_imaginary_check_and_a2f_checks():
    assert imaginary_check([0.0, -0.99, None])
    assert not imaginary_check([5.0, -1.01])
    assert imaginary_check([-1.5], threshold_meV=2.0)
    w = np.linspace(0, 10, 11)
    assert a2f_checks(w, np.ones(11)) == {"has_nan": False, "negative_fraction": 0.0, "a2f_min": 1.0}
    assert a2f_checks(w, np.r_[np.nan, np.ones(10)])["has_nan"]
    c = a2f_checks(w, np.r_[-np.ones(5), np.ones(6)])
    assert 0.5 < c["negative_fraction"] < 1.5 and c["a2f_min"] == -1.0


def test_band_gap_filter(tmp_path):
    metal, insulator = tmp_path / "Al1-fcc", tmp_path / "NaCl-B1"
    for d, dos in ((metal, 0.4), (insulator, 0.0)):
        _status(d)
        _edos(d, dos)
    q = quality_report(metal, CFG, stage="edos")
    assert q.kept and q.checks["dos_ef_per_eV"] == pytest.approx(0.4)
    q = quality_report(insulator, CFG, stage="edos")
    assert not q.kept and q.reason == "band_gap" and "eDOS at E_F" in q.detail
    with pytest.raises(ValueError, match="unknown filter stage 'x'"):
        quality_report(metal, CFG, stage="x")


@pytest.mark.parametrize(
    "case, ph_min, a2f, reason",
    [
        ("kept", 3.0, _peak(), None),
        ("imaginary_ph", -2.5, _peak(), "imaginary_modes"),
        ("imaginary_matdyn", 3.0, _peak(), "imaginary_modes"),
        ("nan", 3.0, np.r_[_peak()[:-1], np.nan], "nan"),
        ("negative", 3.0, _peak() - 0.1, "negative_a2f"),
        ("small_negative_noise", 3.0, np.r_[-1e-4 * np.ones(5), _peak()[5:]], None),
    ],
)
def test_phonon_filters(tmp_path, case, ph_min, a2f, reason):
    d = tmp_path / "X1-fcc"
    md_min = -4.0 if case == "imaginary_matdyn" else 0.0
    _status(d, steps={"ph_elph": {"done": True, "min_freq_meV": ph_min}, "matdyn": {"done": True, "min_freq_meV": md_min}})
    _a2f(d, a2f)
    q = quality_report(d, CFG, stage="phonons")
    assert q.kept == (reason is None) and q.reason == reason
    if reason == "imaginary_modes":
        assert "< -1.0 meV" in q.detail
    assert q.checks["min_freq_ph_meV"] == ph_min


def _funnel_dir(root):
    ok = {"relax": {"done": True, "wall_s": 100.0}, "ph_elph": {"done": True, "wall_s": 200.0}}
    _status(root / "Al1-fcc", "kept", steps=ok)
    _status(root / "Nb1-bcc", "kept", steps={"relax": {"done": True, "wall_s": 50.0}, "ph_elph": {"done": True, "wall_s": 50.0}})
    _status(root / "NaCl-B1", "rejected", "band_gap")
    _status(root / "Li1-fcc", "rejected", "imaginary_modes")
    _status(root / "K1-fcc", "rejected", "nan")
    _status(root / "Ca1-bcc", "rejected", "negative_a2f")
    _status(root / "Fe1-bcc", "rejected", "not_converged")
    _status(root / "Cs1-bcc", "failed", "pw.x failed", detail="... tail ...")
    _status(root / "W1-bcc", "running", steps={"relax": {"done": True, "wall_s": 10.0}})
    (root / "no-status-dir").mkdir()
    # what `qe run --force` leaves of K's earlier run: a backup, not a tenth material
    _status(root / "K1-fcc.bak-20261126T094506", "rejected", "nan")


def test_funnel_counts_every_stage_with_reasons(tmp_path):
    _funnel_dir(tmp_path)
    f = funnel(tmp_path)
    assert (f["submitted"], f["finished"], f["converged"], f["metallic"], f["dynamically_stable"], f["kept"]) == (9, 8, 6, 5, 4, 2)
    assert f["in_progress"] == 1
    assert f["reasons"] == {"band_gap": 1, "imaginary_modes": 1, "nan": 1, "negative_a2f": 1, "not_converged": 1, "failed": 1}
    assert sorted(f["kept_wall_s"]) == [100.0, 300.0]
    t = funnel_table(tmp_path).set_index("stage")["materials"]
    assert t["submitted"] == 9 and t["kept"] == 2 and t["QE failed / not converged"] == 2
    assert t["dynamically stable"] == 4 and t["band gap (eDOS at E_F)"] == 1 and t["NaN in α²F"] == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert funnel(empty)["submitted"] == 0 and funnel_table(empty)["materials"].sum() == 0


def test_material_and_timing_tables(tmp_path):
    _funnel_dir(tmp_path)
    m = summary.material_table(tmp_path)
    assert len(m) == 9 and set(m["state"]) == {"kept", "rejected", "failed", "running"}
    assert m.set_index("material_id").loc["Al1-fcc", "wall_s"] == 300.0
    t = summary.timing_table(tmp_path)
    assert t.loc["total per material", "n"] == 2
    assert t.loc["total per material", "median_s"] == 200.0 and t.loc["total per material", "max_s"] == 300.0
    assert t.loc["ph_elph", "max_s"] == 200.0
    s = summary.timing_summary(tmp_path)
    assert s["n"] == 2 and s["median_min"] == pytest.approx(200 / 60)


def test_pearson_r2():
    from betenet.metrics import pearson_r2

    x = np.arange(10.0)
    assert pearson_r2(x, 2 * x + 1) == pytest.approx(1.0)
    assert np.isnan(pearson_r2([1, 2], [1, 2]))
    assert np.isnan(pearson_r2([1, 1, 1, 1], [1, 2, 3, 4]))
    assert pearson_r2(np.r_[x, np.nan], np.r_[x, 5.0]) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Settings, input errors, failures (fake QE executables)
# --------------------------------------------------------------------------------------------


def test_check_settings_names_the_field():
    import dataclasses

    check_settings(CFG)
    check_settings(QE_CI)
    check_settings(get_profile("paper").qe)
    with pytest.raises(QEInputError, match="n_elph_smearings=30"):
        check_settings(dataclasses.replace(CFG, n_elph_smearings=30))
    with pytest.raises(QEInputError, match="elph_smearing_index=11"):
        check_settings(dataclasses.replace(CFG, elph_smearing_index=11))
    with pytest.raises(QEInputError, match="coarse_q_grid"):
        check_settings(dataclasses.replace(CFG, coarse_q_grid=(2, 2)))


def _fake_qe(bin_dir, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for exe in ("pw.x", "ph.x", "q2r.x", "matdyn.x", "projwfc.x"):
        p = bin_dir / exe
        p.write_text("#!/bin/sh\n" + body)
        p.chmod(p.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_failing_qe(tmp_path, monkeypatch):
    """pw.x & co. that print a QE-like error, count their calls and exit 1."""
    bin_dir = tmp_path / "bin"
    calls = tmp_path / "calls.txt"
    _fake_qe(bin_dir, f"echo run >> {calls}\necho ' Program PWSCF v.6.7'\n"
             "echo ' %%%%%%%%%%%%%%'\necho '  Error in routine fake_routine (1):'\n"
             "echo '  fake QE failure for the test'\nexit 1\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def _cfg(tmp_path):
    import dataclasses

    return dataclasses.replace(QE_CI, scratch_dir=str(tmp_path / "scratch"))


def test_run_qe_errors(tmp_path, fake_failing_qe, monkeypatch):
    with pytest.raises(QEError, match="pw.x failed \\(exit code 1\\)") as err:
        run_qe("pw.x", "&control\n/\n", tmp_path / "w", "scf")
    assert "fake QE failure for the test" in err.value.tail and err.value.returncode == 1
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(QEError, match="make qe-deps"):
        run_qe("pw.x", "", tmp_path / "w", "scf")


def test_run_qe_without_job_done(tmp_path, monkeypatch):
    _fake_qe(tmp_path / "bin", "echo 'half an output'\nexit 0\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(QEError, match="ended without 'JOB DONE'") as err:
        run_qe("pw.x", "", tmp_path / "w", "scf")
    assert "half an output" in err.value.tail


def test_failed_step_is_recorded_with_the_tail_and_not_rerun(tmp_path, fake_failing_qe):
    cfg = _cfg(tmp_path)
    dirs = {"runs_dir": tmp_path / "qe", "records_dir": tmp_path / "rec"}
    st = run_material("Al1-fcc", build(["Al"], "fcc"), cfg, **dirs)
    assert st.state == "failed" and st.reason == "pw.x failed"
    assert "fake QE failure for the test" in st.detail and "Error in routine fake_routine" in st.detail
    assert not st.steps  # failed in the first step (relax); nothing marked done
    saved = load_status("Al1-fcc", dirs["runs_dir"])
    assert saved.state == "failed" and saved.finished_at
    d = dirs["runs_dir"] / "Al1-fcc"
    assert (d / "relax.in").exists()
    with gzip.open(d / "relax.out.gz", "rt") as fh:
        assert "fake QE failure" in fh.read()
    assert (tmp_path / "scratch" / "Al1-fcc" / ".betenet-token").exists()  # kept: --retry-failed resumes from it
    assert fake_failing_qe.read_text().count("run") == 1
    # a finished (failed) material is not rerun ...
    assert run_material("Al1-fcc", build(["Al"], "fcc"), cfg, **dirs).state == "failed"
    assert fake_failing_qe.read_text().count("run") == 1
    # ... unless asked to retry
    assert run_material("Al1-fcc", build(["Al"], "fcc"), cfg, retry_failed=True, **dirs).state == "failed"
    assert fake_failing_qe.read_text().count("run") == 2
    # force backs the old directory up
    run_material("Al1-fcc", build(["Al"], "fcc"), cfg, force=True, **dirs)
    assert len(list(dirs["runs_dir"].glob("Al1-fcc.bak-*"))) == 1


def test_input_errors_raise_before_running(tmp_path, fake_failing_qe):
    from pymatgen.core import Lattice, Structure

    cfg = _cfg(tmp_path)
    dirs = {"runs_dir": tmp_path / "qe", "records_dir": tmp_path / "rec"}
    overlap = Structure(Lattice.cubic(4.0), ["Al", "Al"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(QEInputError, match="overlapping"):
        run_material("Al2-bad", overlap, cfg, **dirs)
    with pytest.raises(QEInputError, match="no pseudopotential for element 'Al'"):
        run_material("Al1-fcc", build(["Al"], "fcc"), cfg, library=tmp_path / "empty", **dirs)
    assert not fake_failing_qe.exists()  # QE never started


# --------------------------------------------------------------------------------------------
# Dask dataset runner (in-process LocalCluster)
# --------------------------------------------------------------------------------------------


def test_run_dataset_resumes_and_reports_failures(tmp_path, fake_failing_qe):
    import dataclasses

    from dask.distributed import Client, LocalCluster

    runs, recs = tmp_path / "qe", tmp_path / "rec"
    _status(runs / "Nb1-bcc", "kept", steps={"relax": {"done": True, "wall_s": 12.0}})  # finished earlier
    profile = dataclasses.replace(get_profile("smoke"), qe=_cfg(tmp_path), dask=DaskConfig(n_workers=1, processes=False))
    cands = dataset.CandidateList([("Nb1-bcc", ("Nb",), "bcc"), ("Al1-fcc", ("Al",), "fcc")])
    sel = dataset.select_candidates(cands, limit=5, runs_dir=runs)
    log = tmp_path / "run.jsonl"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cl, Client(cl) as client:
        res = dataset.run_dataset(sel, profile, client, runs_dir=runs, records_dir=recs, progress=False, log_path=log)
    by = {r["material_id"]: r for r in res}
    assert by["Nb1-bcc"]["state"] == "kept" and by["Nb1-bcc"]["wall_s"] == 12.0  # skipped, not recomputed
    assert by["Al1-fcc"]["state"] == "failed" and by["Al1-fcc"]["reason"] == "pw.x failed"
    assert fake_failing_qe.read_text().count("run") == 1
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert {x["material_id"] for x in lines} == {"Nb1-bcc", "Al1-fcc"} and all("time" in x for x in lines)
    # a second selection with include_finished=False has nothing left to do
    assert dataset.select_candidates(cands, runs_dir=runs, include_finished=False) == []
    assert dataset.run_dataset([], profile, runs_dir=runs) == []


_STARTED: list[str] = []
_FINISHED: list[str] = []
_TASK_S = [0.0]


def _fake_run_one(mid, *args, **kwargs):
    """Module level so that Dask can pickle it by reference (in-process cluster: same list)."""
    _STARTED.append(mid)
    time.sleep(_TASK_S[0])
    _FINISHED.append(mid)
    return {"material_id": mid, "state": "kept", "reason": None, "wall_s": 0.0}


def test_run_dataset_follows_the_candidate_order(tmp_path, monkeypatch):
    """One task per worker thread is in flight, so materials start in priority order (before, Dask ran a
    43-material batch's independent tasks in its own order; with two per thread, the second waited in a
    busy worker's queue while the other worker took later candidates)."""
    import dataclasses

    from dask.distributed import Client, LocalCluster

    started = _STARTED
    started.clear()
    _TASK_S[0] = 0.0
    monkeypatch.setattr(dataset, "run_one", _fake_run_one)
    ids = [f"{el}1-fcc" for el in ("Al", "Cu", "Ag", "Au", "Pd", "Pt", "Rh", "Ir", "Ca", "Sr", "Pb")]
    cands = dataset.CandidateList([(m, (m.split("1-")[0],), "fcc") for m in ids])
    profile = dataclasses.replace(get_profile("smoke"), qe=_cfg(tmp_path))
    in_flight: list[int] = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cl, Client(cl) as client:
        real_submit = client.submit

        def counting_submit(*args, **kwargs):
            in_flight.append(len(in_flight) - len(started))  # submitted so far minus already run
            return real_submit(*args, **kwargs)

        monkeypatch.setattr(client, "submit", counting_submit)
        res = dataset.run_dataset(list(cands), profile, client, runs_dir=tmp_path / "qe", records_dir=tmp_path / "r",
                                  progress=False)
    assert sorted(r["material_id"] for r in res) == sorted(ids) and sorted(started) == sorted(ids)
    # 1 worker thread -> a window of 1: each material is submitted after the one before it ran
    assert len(in_flight) == len(ids) and max(in_flight) <= 1, in_flight
    assert started == ids


def test_run_dataset_widens_its_window_when_workers_join(tmp_path, monkeypatch):
    """dask-jobqueue workers arrive while the batch runs: the number of materials in flight follows the
    worker threads there are, checked on every completion and every WINDOW_POLL_S."""
    import dataclasses
    import threading

    from dask.distributed import Client, LocalCluster

    _STARTED.clear()
    _FINISHED.clear()
    _TASK_S[0] = 0.4
    monkeypatch.setattr(dataset, "run_one", _fake_run_one)
    monkeypatch.setattr(dataset, "WINDOW_POLL_S", 0.05)
    ids = [f"{el}1-fcc" for el in ("Al", "Cu", "Ag", "Au", "Pd", "Pt", "Rh", "Ir", "Ca", "Sr", "Pb", "Ba")]
    cands = dataset.CandidateList([(m, (m.split("1-")[0],), "fcc") for m in ids])
    profile = dataclasses.replace(get_profile("smoke"), qe=_cfg(tmp_path))
    in_flight: list[int] = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cl, \
            Client(cl) as client:
        real_submit = client.submit

        def counting_submit(*args, **kwargs):
            in_flight.append(len(in_flight) - len(_FINISHED))  # submitted so far minus finished
            return real_submit(*args, **kwargs)

        monkeypatch.setattr(client, "submit", counting_submit)
        joiner = threading.Timer(0.2, lambda: cl.scale(3))  # two workers join while the first material runs
        joiner.start()
        res = dataset.run_dataset(list(cands), profile, client, runs_dir=tmp_path / "qe", records_dir=tmp_path / "r",
                                  progress=False)
        joiner.join()
    _TASK_S[0] = 0.0
    assert sorted(r["material_id"] for r in res) == sorted(ids)
    assert in_flight[0] == 0 and max(in_flight) == 2, in_flight  # 3 in flight once the workers are there
    assert _STARTED[0] == "Al1-fcc"


def test_run_one_reports_invalid_input(tmp_path):
    from pymatgen.core import Lattice, Structure

    overlap = Structure(Lattice.cubic(4.0), ["Al", "Al"], [[0, 0, 0], [0.01, 0, 0]])
    r = dataset.run_one("Al2-bad", overlap.as_dict(), None, _cfg(tmp_path), str(tmp_path / "qe"), str(tmp_path / "rec"))
    assert r["state"] == "invalid" and r["reason"] == "QEInputError" and "overlapping" in r["detail"]


def test_lattice_check_compares_relaxed_cells_with_experiment(tmp_path):
    from betenet.qe.pseudo import reference_structure

    for mid, el, proto, scale in (("Nb1-bcc", "Nb", "bcc", 0.99), ("Mg1-hcp", "Mg", "hcp", 1.0), ("Nb1-fcc", "Nb", "fcc", 1.0)):
        d = tmp_path / mid
        _status(d, "kept", prototype=proto)
        st, _ = reference_structure(el, scale) if proto != "fcc" else (build(["Nb"], "fcc"), None)
        (d / "relaxed.json").write_text(json.dumps(st.as_dict()))
    _status(tmp_path / "Al1-fcc", "failed", prototype="fcc")  # no relaxed.json: skipped
    t = summary.lattice_check(tmp_path).set_index("material_id")
    assert list(t.index) == ["Mg1-hcp", "Nb1-bcc"]  # fcc Nb is not Nb's reference solid
    assert t.loc["Nb1-bcc", "error_pct"] == pytest.approx(-1.0, abs=1e-6)
    assert t.loc["Nb1-bcc", "a_calc_A"] == pytest.approx(3.3 * 0.99, abs=1e-4)
    assert t.loc["Mg1-hcp", "error_pct"] == pytest.approx(0.0, abs=1e-6)


def test_cutoff_check_table_lists_the_elements_of_kept_materials(tmp_path):
    runs, pseudo = tmp_path / "qe", tmp_path / "pseudo"
    _status(runs / "Nb1-bcc", "kept")
    _status(runs / "CuPd-B2", "kept")
    _status(runs / "Au1-fcc", "rejected", reason="imaginary_modes")  # not kept: Au not listed
    pseudo.mkdir()
    check = {"reference": "Cu fcc", "ecutwfc_Ry": 35.0, "ecutrho_Ry": 280.0, "delta_E_mRy_per_atom": 3.581,
             "delta_P_kbar": -2.64, "converged": False}
    (pseudo / "validation.json").write_text(json.dumps({"functional": "PBESOL", "elements": {
        "Cu": {"cutoff_check": check}, "Nb": {"cutoff_check": {**check, "reference": "Nb bcc", "ecutwfc_Ry": 50.0,
                                                               "delta_E_mRy_per_atom": 0.44, "converged": True}},
        "Pd": {}, "Au": {"cutoff_check": check}}}))
    t = summary.cutoff_check(runs, pseudo).set_index("element")
    assert list(t.index) == ["Cu", "Nb", "Pd"]
    assert list(t["n_kept"]) == [1, 1, 1]
    assert t.loc["Cu", "dE_mRy_per_atom"] == 3.58 and t.loc["Cu", "dP_kbar"] == -2.6 and not t.loc["Cu", "converged"]
    assert t.loc["Nb", "ecutwfc_Ry"] == 50.0 and t.loc["Nb", "converged"]
    assert np.isnan(t.loc["Pd", "dE_mRy_per_atom"]) and t.loc["Pd", "converged"] is None  # never checked


def test_status_markdown_snapshot(tmp_path, capsys):
    from betenet.cli.qe import cli_main

    _funnel_dir(tmp_path)
    text = summary.status_markdown(tmp_path)
    assert "| submitted | 9 |" in text and "| kept | 2 |" in text
    assert "| Cs1-bcc | failed | pw.x failed |" in text and "| W1-bcc | running |" in text
    assert "| min_freq_ph_meV | min_freq_matdyn_meV |" in text  # true instability vs interpolation artefact
    assert "| total per material | 2 | 200.0 |" in text
    assert cli_main(["status", "--runs-dir", str(tmp_path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| kept | 2 |" in out and "Kept materials" not in out  # no records dir given
    # with the records: the physics of each kept material, to review (bcc V's 82 meV phonons were caught so)
    import shutil

    from betenet.paths import RECORDS_DIR
    from betenet.records import load_record

    recs = tmp_path / "records"
    recs.mkdir()
    shutil.copyfile(RECORDS_DIR / "Al1-fcc.json", recs / "Al1-fcc.json")
    al = load_record(recs / "Al1-fcc.json")
    text = summary.status_markdown(tmp_path, recs)
    row = next(line for line in text.splitlines() if line.startswith("| Al1-fcc | 0."))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[1]) == pytest.approx(summary.record_moments(al)["lambda"], abs=1e-3)
    assert 30.0 < float(cells[-1]) < 50.0  # fcc Al's highest phonon ~ 40 meV


def test_summary_plots_and_findings_on_empty_data(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    data = summary.correlation_data([])
    assert len(data) == 0 and data["lambda"].dtype == float
    from betenet.plots.dataset import plot_correlations, plot_gallery, plot_timings
    from betenet.plots.style import save_figure

    save_figure(plot_correlations(data), tmp_path / "fig2.png")
    save_figure(plot_gallery([]), tmp_path / "gallery.png")
    save_figure(plot_timings(tmp_path), tmp_path / "timings.png")
    assert (tmp_path / "fig2.png").exists() and (tmp_path / "timings.png").exists()
    f = summary.findings(tmp_path, [])
    assert f["submitted"] == 0 and f["n_records"] == 0 and np.isnan(f["r2_wlog"])
    g = summary.grid_demo(["Al1-fcc", "Mg1-hcp"], CFG)
    assert g["k % q == 0"].all() and list(g["q"]) == ["4×4×4", "3×3×2"]


def test_cpu_times_from_qe_clock_lines(tmp_path):
    d = tmp_path / "Al1-fcc"
    _status(d, "kept", steps={"relax": {"done": True, "wall_s": 130.0}, "ph_elph": {"done": True, "wall_s": 3800.0}})
    with gzip.open(d / "relax.out.gz", "wt") as fh:
        fh.write("     PWSCF        :      1m 2.50s CPU   2m10.00s WALL\n\n   This run was terminated on: ...\n")
    with gzip.open(d / "ph_elph.out.gz", "wt") as fh:
        fh.write("     PHONON       :     20.00s CPU     40.00s WALL\n     PHONON       :   1h 0m CPU   1h 3m WALL\n")
    assert summary.qe_cpu_seconds(d / "relax.out.gz") == (62.5, 130.0)
    assert summary.qe_cpu_seconds(d / "ph_elph.out.gz") == (3600.0, 3780.0)  # last clock line
    assert summary.qe_cpu_seconds(d / "missing.out.gz") is None
    (d / "cut.out.gz").write_bytes(gzip.compress(b"     PWSCF        :      1.00s CPU      2.00s WALL\n")[:-12])
    with pytest.raises(QEParseError, match="cut.out.gz"):  # a log that cannot be read is an error, not "no cost"
        summary.qe_cpu_seconds(d / "cut.out.gz")
    # a step run as one ph.x call per q point: the final clock line of each call, summed
    banner = "     Program PHONON v.6.7MaX starts on 26Nov2026 at  3:19: 8 \n"
    with gzip.open(d / "ph_split.out.gz", "wt") as fh:
        for cpu, wall in (("10.00s", "12.00s"), ("1m 0.50s", "1m 2.00s")):
            fh.write(f"==> betenet: ph_elph.qN.out <==\n{banner}     PHONON       :      1.00s CPU      1.00s WALL\n")
            fh.write(f"     PHONON       :     {cpu} CPU     {wall} WALL\n")
    assert summary.qe_cpu_seconds(d / "ph_split.out.gz") == (70.5, 74.0)
    c = summary.cpu_table(tmp_path)
    assert c.loc["total per material", "median_cpu_s"] == 3662.5
    assert c.loc["cpu_over_wall (median)", "median_cpu_s"] == pytest.approx(3662.5 / 3910.0, abs=0.01)
    assert summary.findings(tmp_path)["median_cpu_min"] == pytest.approx(61.0, abs=0.1)
    # where the CPU went: one rejected material (ph.x stopped early) and one still running (not counted)
    r = tmp_path / "Nb1-bcc"
    _status(r, "rejected", steps={"relax": {"done": True, "wall_s": 50.0}})
    with gzip.open(r / "relax.out.gz", "wt") as fh:
        fh.write("     PWSCF        :   1m 0.00s CPU   1m 5.00s WALL\n")
    _status(tmp_path / "Pb1-fcc", "running", steps={})
    o = summary.cpu_by_outcome(tmp_path)
    assert o.loc["kept", "cpu_s"] == 3662.5 and o.loc["rejected", "cpu_s"] == 60.0
    assert o.loc["rejected", "share"] == pytest.approx(60.0 / 3722.5, abs=1e-3) and o.loc["all", "materials"] == 2
    assert o.attrs["cpu_per_kept_label_s"] == 3722.5 and o.attrs["cpu_per_kept_run_s"] == 3662.5
    m = summary.cpu_by_material(tmp_path)  # the running one is left out; by atoms, then CPU
    assert list(m.material_id) == ["Nb1-bcc", d.name] and list(m.cpu_s) == [60.0, 3662.5]
    assert m.ph_elph_cpu_s.iloc[1] == 3600.0 and np.isnan(m.ph_elph_cpu_s.iloc[0])


def test_unfinished_runs_show_their_kept_q_points(tmp_path, capsys):
    from betenet.cli import main

    _status(tmp_path / "Al1-fcc", "kept", steps={"relax": {"done": True, "wall_s": 1.0}})
    _status(tmp_path / "Nb1-bcc", "running", steps={"relax": {"done": True}, "scf_dense": {"done": True}})
    c = tmp_path / "up0732-NbC"
    _status(c, "running", steps={n: {"done": True} for n in ("relax", "scf_dense", "nscf_edos", "projwfc", "scf")})
    (c / "ph_elph.q").mkdir()
    (c / "ph_elph.q" / "manifest.json").write_text(json.dumps({"n_q": 8, "q_wall_s": {"1": 184.0, "8": 655.25}}))
    u = summary.unfinished_table(tmp_path).set_index("material_id")
    assert list(u.index) == ["Nb1-bcc", "up0732-NbC"]  # the kept one is finished
    assert u.loc["Nb1-bcc", "last_step_done"] == "scf_dense" and u.loc["Nb1-bcc", "q_points_kept"] == "0/?"
    assert u.loc["up0732-NbC", "last_step_done"] == "scf" and u.loc["up0732-NbC", "q_points_kept"] == "2/8"
    assert u.loc["up0732-NbC", "q_wall_s"] == pytest.approx(839.2, abs=0.1)
    assert pd.isna(u.loc["up0732-NbC", "elph_k_left"])  # no relaxed structure here to count its k points
    assert main(["qe", "status", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Unfinished runs" in out and "2/8" in out


def test_cli_run_selects_lazily_and_names_unknown_ids(tmp_path, capsys):
    from betenet.cli.qe import cli_main

    args = ["run", "--profile", "smoke", "--runs-dir", str(tmp_path / "qe"), "--records-dir", str(tmp_path / "rec")]
    assert cli_main(args + ["--limit", "0"]) == 0
    assert "0 materials" in capsys.readouterr().out
    assert cli_main(args + ["--ids", "Xx1-fcc", "AgLi-B2", "AlRu-B2", "RuAl-B2", "Nb1-B9", "up0256-AlPd"]) == 2
    err = capsys.readouterr().err
    assert "Xx1-fcc: no usable pseudopotential for Xx" in err
    assert re.search(r"'up0256-AlPd' names a row of the paper's structures.*--candidates upstream", err)
    assert "AgLi-B2: no usable pseudopotential for Li" in err  # Li failed review
    assert "RuAl-B2: the project writes this material 'AlRu-B2'" in err
    assert "unknown prototype 'B9'" in err
    assert "AlRu-B2" not in err.replace("'AlRu-B2'", "")  # a real candidate is not reported
    assert cli_main(["plan", "--profile", "smoke", "--runs-dir", str(tmp_path / "qe"), "--ids", "AgLi-B2"]) == 2
    assert "no usable pseudopotential for Li" in capsys.readouterr().err
    # the upstream source explains its own ids: the element that failed, the wrong formula, the other source
    plan_up = ["plan", "--profile", "smoke", "--accuracy", "validated", "--candidates", "upstream", "--runs-dir", str(tmp_path / "qe")]
    assert cli_main(plan_up + ["--ids", "up0280-CuPd", "up0256-AlCu", "Nb1-bcc", "up9999-Nb"]) == 2
    err = capsys.readouterr().err
    assert "up0280-CuPd: no usable pseudopotential for Cu in this level's library" in err
    assert "--candidates upstream" not in err  # already the source: not told to choose it
    assert "row 256 of the paper's structures is AlPd, id 'up0256-AlPd'" in err
    assert re.search(r"'Nb1-bcc' is not one of the paper's structures.*--candidates prototypes", err)
    assert "no row 9999 among the paper's structures" in err


def test_each_accuracy_level_has_its_own_directories():
    from betenet import paths

    assert dataset.dataset_dirs(get_profile("default").qe) == (paths.QE_RUNS_DIR, paths.RECORDS_DIR)
    runs, recs = dataset.dataset_dirs(get_profile("paper").qe)
    assert runs.name == "qe-paper" and recs.name == "records-paper" and runs.parent == paths.QE_RUNS_DIR.parent
    assert dataset.dataset_dirs(QE_CI)[0].name == "qe-ci"


def test_reject_after_review_keeps_everything_and_updates_the_funnel(tmp_path):
    from betenet.qe.status import reject_after_review

    runs, recs = tmp_path / "qe", tmp_path / "records"
    _funnel_dir(runs)
    recs.mkdir()
    (recs / "Nb1-bcc.json").write_text('{"material_id": "Nb1-bcc"}')
    st = reject_after_review("Nb1-bcc", "pseudopotential", "phonons 2.5x experiment", runs_dir=runs, records_dir=recs)
    assert st.state == "rejected" and st.reason == "pseudopotential" and "reviewed_at" in st.quality
    assert not (recs / "Nb1-bcc.json").exists()
    assert json.loads((runs / "Nb1-bcc" / "record.rejected.json").read_text()) == {"material_id": "Nb1-bcc"}
    f = funnel(runs)
    assert (f["dynamically_stable"], f["kept"], f["reasons"]["pseudopotential"]) == (4, 1, 1)
    assert funnel_table(runs).set_index("stage")["materials"]["pseudopotential failed review"] == 1
    with pytest.raises(ValueError, match=r"Nb1-bcc.*status\.json.*'rejected'"):
        reject_after_review("Nb1-bcc", "pseudopotential", "again", runs_dir=runs, records_dir=recs)
    with pytest.raises(ValueError, match="reason and a detail"):
        reject_after_review("Al1-fcc", "", "x", runs_dir=runs, records_dir=recs)


def test_refilter_reopens_a_material_rejected_for_gamma_asr_violation(tmp_path, capsys):
    """hcp Zn (a real run) was rejected by the old Γ rule: ph.x's ASR violation at Γ (-6.6 meV) was
    taken for an instability while every q ≠ Γ is stable and matdyn (ASR imposed) gives 0."""
    import shutil

    from betenet.config import get_profile
    from betenet.paths import QE_RUNS_DIR
    from betenet.cli.qe import cli_main
    from betenet.qe.status import load_status, refilter

    runs = tmp_path / "qe"
    for mid in ("Zn1-hcp", "Pb1-fcc", "Al1-fcc"):
        shutil.copytree(QE_RUNS_DIR / mid, runs / mid)
    # the committed Zn directory may already be re-filtered: put the old rule's value back
    st = json.loads((runs / "Zn1-hcp" / "status.json").read_text())
    st.update(state="rejected", reason="imaginary_modes", detail="lowest frequency -6.60 meV < -1.0 meV")
    st["steps"]["ph_elph"]["min_freq_meV"] = -6.598966496094607
    for k in ("ph_coarse", "q2r_coarse", "matdyn_coarse", "record"):
        st["steps"].pop(k, None)
    (runs / "Zn1-hcp" / "status.json").write_text(json.dumps(st))
    for p in (runs / "Zn1-hcp").glob("status.json.bak-*"):
        p.unlink()
    cfg = get_profile("default").qe
    before, after = refilter("Zn1-hcp", cfg, runs_dir=runs)
    assert before == ("rejected", "imaginary_modes") and after == ("pending", None)
    zn = load_status("Zn1-hcp", runs)
    assert zn.steps["ph_elph"]["min_freq_meV"] == pytest.approx(5.0442)  # lowest mode off Γ
    assert zn.steps["ph_elph"]["min_freq_meV_previous_rule"] == pytest.approx(-6.599, abs=1e-3)
    assert zn.quality["min_freq_ph_meV"] == pytest.approx(5.0442) and "refiltered_at" in zn.quality
    assert zn.done("matdyn") and not zn.final and "was rejected (imaginary_modes" in zn.detail
    (backup,) = (runs / "Zn1-hcp").glob("status.json.bak-*")
    assert json.loads(backup.read_text())["state"] == "rejected"  # the old status is kept
    # idempotent; a real instability off Γ (fcc Pb: -5.6 meV at X) and a kept material do not move
    assert refilter("Zn1-hcp", cfg, runs_dir=runs) == (("pending", None), ("pending", None))
    assert cli_main(["refilter", "--runs-dir", str(runs)]) == 0
    assert capsys.readouterr().out.strip().endswith("0 of 3 materials changed state")
    assert load_status("Pb1-fcc", runs).state == "rejected" and load_status("Al1-fcc", runs).state == "kept"
    # same value up to ph_freqs.json's 4 decimals: status.json untouched, no backup written
    for mid in ("Pb1-fcc", "Al1-fcc"):
        assert not list((runs / mid).glob("status.json.bak-*"))
        assert (runs / mid / "status.json").read_text() == (QE_RUNS_DIR / mid / "status.json").read_text()


def test_an_upstream_row_already_run_under_a_prototype_id_is_not_run_again(tmp_path):
    """bcc Nb kept (or rejected) as Nb1-bcc is row 305 of the paper's structures: the upstream source skips
    up0305-Nb, and asked for by id it is refused naming Nb1-bcc and its state, until it has a run of its own
    (which resumes); an unfinished run does not count."""
    from pymatgen.core import Lattice, Structure

    a = 3.27  # our relaxed cell, not the paper's: matched up to scale
    nb = Structure(Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]]), ["Nb"], [[0, 0, 0]])
    _status(tmp_path / "Nb1-bcc", "rejected", reason="imaginary_modes")
    (tmp_path / "Nb1-bcc" / "relaxed.json").write_text(json.dumps(nb.as_dict()))
    _status(tmp_path / "up0256-AlPd", "kept")
    _status(tmp_path / "Pb1-fcc", "running")  # not final: no row
    assert dataset.rows_computed(tmp_path) == {305: "Nb1-bcc", 256: "up0256-AlPd"}
    cands = [("up0305-Nb", nb, "upstream"), ("up0732-NbC", nb, "upstream")]  # structures unused here
    picked = dataset.select_candidates(cands, runs_dir=tmp_path, include_finished=False)
    assert [c[0] for c in picked] == ["up0732-NbC"]
    assert [c[0] for c in dataset._unfinished(cands, tmp_path)] == ["up0732-NbC"]
    assert dataset.computed_elsewhere(["up0305-Nb", "up0732-NbC"], tmp_path) == {"up0305-Nb": "Nb1-bcc"}
    with pytest.raises(QEInputError, match=r"up0305-Nb: the crystal of Nb1-bcc \(rejected, .*Nb1-bcc\)"):
        dataset.select_candidates(cands, ids=["up0732-NbC", "up0305-Nb"], runs_dir=tmp_path)
    _status(tmp_path / "up0305-Nb", "running")  # begun under its own id before: it resumes
    assert dataset.computed_elsewhere(["up0305-Nb"], tmp_path) == {}
    assert [c[0] for c in dataset.select_candidates(cands, ids=["up0305-Nb"], runs_dir=tmp_path)] == ["up0305-Nb"]
    assert dataset.rows_computed(tmp_path / "none") == {}


def test_a_prototype_already_run_under_a_paper_id_is_not_run_again(tmp_path):
    """CsCl AlPd kept as up0256-AlPd is the prototype candidate AlPd-B2: the prototype source skips it and
    refuses it by id (a second label of one crystal); the other decorations still run."""
    from betenet.qe.prototypes import build

    alpd = build(["Al", "Pd"], "B2")
    alpd.scale_lattice(alpd.volume * 0.96)  # our relaxed cell, not the prototype's
    _status(tmp_path / "up0256-AlPd", "kept")
    (tmp_path / "up0256-AlPd" / "relaxed.json").write_text(json.dumps(alpd.as_dict()))
    _status(tmp_path / "up0999-AlPd", "running")  # unfinished: does not count
    (tmp_path / "up0999-AlPd" / "relaxed.json").write_text(json.dumps(alpd.as_dict()))
    assert list(dataset.crystals_computed(tmp_path)) == ["AlPd"]
    cands = [(m, None, m.split("-")[1]) for m in ("AlPd-B2", "AlNb-B2", "AlPd-L10")]
    picked = dataset.select_candidates(cands, runs_dir=tmp_path, include_finished=False)
    assert [c[0] for c in picked] == ["AlNb-B2", "AlPd-L10"]
    assert [c[0] for c in dataset._unfinished(cands, tmp_path)] == ["AlNb-B2", "AlPd-L10"]
    with pytest.raises(QEInputError, match=r"AlPd-B2: the crystal of up0256-AlPd \(kept"):
        dataset.select_candidates(cands, ids=["AlPd-B2"], runs_dir=tmp_path)
    assert [c[0] for c in dataset.select_candidates(cands, ids=["AlPd-L10"], runs_dir=tmp_path)] == ["AlPd-L10"]


def test_the_already_computed_checks_read_each_finished_run_once(tmp_path, monkeypatch):
    """rows_computed and crystals_computed share one pass (started_runs: the finished runs and the begun ones):
    a candidate list with a paper row and a prototype reads each run's relaxed.json once."""
    from betenet.qe.prototypes import build

    alpd = build(["Al", "Pd"], "B2")
    _status(tmp_path / "up0256-AlPd", "kept")
    (tmp_path / "up0256-AlPd" / "relaxed.json").write_text(json.dumps(alpd.as_dict()))
    _status(tmp_path / "Nb1-bcc", "failed")  # finished without a relaxed cell
    _status(tmp_path / "up0999-AlPd", "running")
    (tmp_path / "up0999-AlPd" / "relaxed.json").write_text(json.dumps(alpd.as_dict()))
    runs = dataset.finished_runs(tmp_path)
    assert [(mid, st is None) for mid, st in runs] == [("Nb1-bcc", True), ("up0256-AlPd", False)]
    assert dataset.crystals_computed(tmp_path, runs) == dataset.crystals_computed(tmp_path)
    assert dataset.rows_computed(tmp_path, runs) == dataset.rows_computed(tmp_path) == {256: "up0256-AlPd"}
    reads: list[str] = []
    real = dataset.Structure.from_dict
    monkeypatch.setattr(dataset.Structure, "from_dict", lambda d: reads.append(d["lattice"]["a"]) or real(d))
    assert dataset._run_under_another_id(["up0256-AlPd", "up0257-AlPd", "AlPd-B2", "AlNb-B2"], tmp_path) == {"AlPd-B2"}
    # up0256-AlPd's and the running up0999-AlPd's relaxed.json, each once for the paper-row and prototype checks
    assert len(reads) == 2
    assert dataset.finished_runs(tmp_path / "none") == []


def test_mpi_launch_line_and_its_refusals(tmp_path, monkeypatch):
    from betenet.qe.runner import POOLED_EXECUTABLES, mpi_argv, run_qe

    argv = mpi_argv("/usr/bin/ph.x", 4, "/usr/bin/mpirun")
    assert argv[:5] == ["/usr/bin/mpirun", "-np", "4", "--bind-to", "none"]
    assert argv[-3:] == ["/usr/bin/ph.x", "-npool", "4"]
    assert ("--allow-run-as-root" in argv) == (os.geteuid() == 0)
    assert set(POOLED_EXECUTABLES) == {"pw.x", "ph.x", "projwfc.x"}
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(ValueError, match=r"mpi_procs=2 for q2r\.x"):
        run_qe("q2r.x", "&input /\n", tmp_path, "q2r", mpi_procs=2)
    with pytest.raises(Exception, match="QEConfig.mpi_procs=0"):
        check_settings(dataclasses.replace(CFG, mpi_procs=0))


def test_qe_run_with_ids_runs_all_of_them(tmp_path, monkeypatch):
    """`betenet qe run --ids A B` runs both (in that order) on the default profile, whose n_new_materials
    is 0; --limit still caps them, and without ids the profile's cap applies."""
    from betenet.cli import qe as cli
    from betenet.qe.dataset import candidate_source

    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "run_dataset", lambda cands, *a, **k: seen.append([c[0] for c in cands]) or [])
    ids = candidate_source("prototypes", cli.profile_from_args(cli._parser().parse_args(["run"])).qe).ids[:2]
    common = ["run", "--runs-dir", str(tmp_path / "qe"), "--records-dir", str(tmp_path / "r")]
    assert cli.cli_main([*common, "--ids", ids[1], ids[0]]) == 0
    assert cli.cli_main([*common, "--ids", *ids, "--limit", "1"]) == 0
    assert cli.cli_main(common) == 0
    assert seen == [[ids[1], ids[0]], [ids[0]], []]
