"""The interpolation-dip check without Quantum ESPRESSO: the dip of a real matdyn mesh, the verdict, the
imaginary-mode filter with a DFPT check, the ph.x single-q input and the reopening of an old rejection.
(The check's real ph.x run: ``tests/test_qe_real.py::test_interpolation_dip_is_checked_by_dfpt``.)"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from betenet.config import QE_CI, QE_VALIDATED, QEConfig
from betenet.qe.dipcheck import DIP_STEP, dip_candidate, dip_verdict, find_dip
from betenet.qe.filters import quality_report
from betenet.qe.inputs import QEInputError, ph_input
from betenet.qe.parsers import QEParseError
from betenet.qe.status import load_status, reopen_for_dip_check

#: matdyn.x 6.7 on the 24^3 mesh from B2 ScAl's q 3^3 force constants (validated level, upstream row 518):
#: q2r.x + matdyn.x rerun on the dynamical matrices archived in data/qe-validated/up0518-ScAl/ph_elph.q
SCAL_FREQ = Path(__file__).parent / "data" / "qe" / "scal" / "matdyn-24.freq.gz"


def test_the_dip_of_scal_is_on_the_transverse_acoustic_branch_near_gamma():
    dip = find_dip(SCAL_FREQ)
    assert dip.q_cart_2pi_alat == pytest.approx((0.0, 0.125, 0.125))  # [0ξξ], ξ = 1/8
    assert dip.min_freq_meV == pytest.approx(-2.0176, abs=2e-3)  # = status.json's matdyn min_freq_meV
    assert (dip.n_below, dip.n_points) == (3, 455)
    assert dip.fraction == pytest.approx(3 / 455)


def _dip_step(dfpt_meV: float, n_below: int = 3, n_points: int = 455) -> dict:
    return {"done": True, "q_cart_2pi_alat": [0.0, 0.125, 0.125], "matdyn_min_freq_meV": -2.02,
            "matdyn_points_below": n_below, "matdyn_points": n_points, "min_freq_meV": dfpt_meV}


def test_dip_verdict():
    ok, detail = dip_verdict(_dip_step(3.1), QE_VALIDATED)
    assert ok and "interpolation artefact" in detail and "3/455" in detail and "3.10 meV" in detail
    ok, detail = dip_verdict(_dip_step(-1.5), QE_VALIDATED)
    assert not ok and "DFPT there gives -1.50 meV: unstable between the ph.x q points" in detail
    ok, detail = dip_verdict(_dip_step(3.1, n_below=20), QE_VALIDATED)  # 4.4 % of the mesh > 2 %
    assert not ok and "qe refine" in detail
    assert dip_verdict(_dip_step(3.1, n_below=20), dataclasses.replace(QE_VALIDATED, dip_max_fraction=0.05))[0]
    ok, detail = dip_verdict({**_dip_step(3.1, n_below=20), "min_freq_meV": None}, QE_VALIDATED)  # DFPT not run
    assert not ok and "DFPT at the dip not run" in detail and "qe refine" in detail
    with pytest.raises(QEParseError, match=r"steps\['ph_dip'\]: expected min_freq_meV"):
        dip_verdict({"done": True, "min_freq_meV": 1.0}, QE_VALIDATED)


def test_dip_candidate_needs_the_level_stable_ph_points_and_a_matdyn_dip():
    steps = {"ph_elph": {"min_freq_meV": 6.2}, "matdyn": {"min_freq_meV": -2.0}}
    assert dip_candidate(steps, QE_VALIDATED) and not dip_candidate(steps, QEConfig())  # off by default
    assert not dip_candidate({**steps, "ph_elph": {"min_freq_meV": -1.5}}, QE_VALIDATED)  # ph.x itself unstable
    assert not dip_candidate({**steps, "matdyn": {"min_freq_meV": -0.5}}, QE_VALIDATED)  # no dip
    assert not dip_candidate({"ph_elph": {"min_freq_meV": 6.2}}, QE_VALIDATED)


def _run_dir(d: Path, steps: dict, state: str = "running", reason: str | None = None) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "status.json").write_text(json.dumps({"material_id": d.name, "state": state, "reason": reason,
                                               "detail": "lowest frequency -2.02 meV < -1.0 meV" if reason else None,
                                               "steps": steps, "formula": "ScAl", "n_atoms": 2}))
    w = np.linspace(0.05, 40.0, 400)
    a2f = 0.5 * np.exp(-((w - 20.0) / 4.0) ** 2)
    with gzip.open(d / "a2f.dat.gz", "wt") as fh:
        np.savetxt(fh, np.column_stack([w] + [a2f] * 10), header="omega (meV), alpha2F (Ry): " + " ".join(["0.005"] * 10))


@pytest.mark.parametrize("dfpt, n_below, kept", [(3.1, 3, True), (-1.5, 3, False), (3.1, 20, False)])
def test_the_phonon_filter_takes_dfpt_at_the_dip(tmp_path, dfpt, n_below, kept):
    steps = {"ph_elph": {"done": True, "min_freq_meV": 6.24}, "matdyn": {"done": True, "min_freq_meV": -2.02}}
    d = tmp_path / "up0518-ScAl"
    _run_dir(d, steps)
    cfg = dataclasses.replace(QE_VALIDATED, elph_sigma_selection="index")
    before = quality_report(d, cfg, stage="phonons")  # the check has not run: the dip rejects
    assert not before.kept and before.reason == "imaginary_modes" and "interpolation_dip" not in before.checks
    _run_dir(d, {**steps, DIP_STEP: _dip_step(dfpt, n_below)})
    q = quality_report(d, cfg, stage="phonons")
    assert q.kept is kept and q.checks["interpolation_dip"].startswith("matdyn dips to -2.02 meV")
    if not kept:
        assert q.reason == "imaginary_modes" and q.detail == q.checks["interpolation_dip"]


def _structure() -> Structure:
    return Structure(Lattice.cubic(3.35), ["Sc", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_ph_input_for_one_q_point():
    text = ph_input(_structure(), prefix="bn", outdir="./out", q=None, xq=(0.0, 1 / 24, 0.125), fildyn="dip.dyn",
                    elph=False, tr2_ph=1e-12).to_str()
    assert "ldisp = .false." in text and "nq1" not in text and "electron_phonon" not in text
    assert text.endswith("/\n0.0000000000 0.0416666667 0.1250000000\n")
    with pytest.raises(QEInputError, match="either a q mesh"):
        ph_input(_structure(), prefix="bn", outdir=".", q=(2, 2, 2), xq=(0, 0, 0.5), fildyn="d", elph=False)
    with pytest.raises(QEInputError, match="phonons only"):
        ph_input(_structure(), prefix="bn", outdir=".", q=None, xq=(0, 0, 0.5), fildyn="d", elph=True)
    with pytest.raises(QEInputError, match="three finite numbers"):
        ph_input(_structure(), prefix="bn", outdir=".", q=None, xq=(0, np.nan, 0.5), fildyn="d", elph=False)


def test_reopen_for_dip_check(tmp_path):
    runs = tmp_path / "qe-validated"
    steps = {"relax": {"done": True}, "ph_elph": {"done": True, "min_freq_meV": 6.24},
             "matdyn": {"done": True, "min_freq_meV": -2.02}}
    d = runs / "up0518-ScAl"
    _run_dir(d, steps, state="rejected", reason="imaginary_modes")
    with pytest.raises(ValueError, match="no archived el-ph q points"):
        reopen_for_dip_check("up0518-ScAl", QE_VALIDATED, runs_dir=runs)
    (d / "ph_elph.q").mkdir()
    (d / "ph_elph.q" / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="the ci level has no dip check"):
        reopen_for_dip_check("up0518-ScAl", QE_CI, runs_dir=runs)
    detail = reopen_for_dip_check("up0518-ScAl", QE_VALIDATED, runs_dir=runs)
    st = load_status("up0518-ScAl", runs)
    assert st.state == "pending" and st.reason is None and st.detail == detail and "was rejected" in detail
    assert st.quality["reopened"]["state"] == "rejected" and st.quality["reopened"]["detail"].startswith("lowest")
    (bak,) = d.glob("status.json.bak-*")
    assert json.loads(bak.read_text())["state"] == "rejected" and st.quality["reopened"]["status_backup"] == bak.name
    with pytest.raises(ValueError, match="state 'pending'"):  # once only
        reopen_for_dip_check("up0518-ScAl", QE_VALIDATED, runs_dir=runs)
    # a genuine ph.x instability, or a material whose check already ran, is not reopened
    _run_dir(runs / "up0001-X", {**steps, "ph_elph": {"done": True, "min_freq_meV": -3.0}}, "rejected", "imaginary_modes")
    with pytest.raises(ValueError, match="not an interpolation dip"):
        reopen_for_dip_check("up0001-X", QE_VALIDATED, runs_dir=runs)
    _run_dir(runs / "up0002-Y", {**steps, DIP_STEP: _dip_step(-1.5)}, "rejected", "imaginary_modes")
    with pytest.raises(ValueError, match="the dip check already ran"):
        reopen_for_dip_check("up0002-Y", QE_VALIDATED, runs_dir=runs)


def test_status_lists_the_checked_dips(tmp_path, capsys):
    from betenet.cli.qe import cli_main
    from betenet.qe.summary import dip_checks

    runs = tmp_path / "qe"
    steps = {"ph_elph": {"done": True, "min_freq_meV": 6.24}, "matdyn": {"done": True, "min_freq_meV": -2.02}}
    _run_dir(runs / "up0518-ScAl", {**steps, DIP_STEP: _dip_step(3.1)}, state="kept")
    _run_dir(runs / "Al1-fcc", {**steps, DIP_STEP: {"done": True, "wall_s": 0.0, "skipped": "no interpolation dip"}}, state="kept")
    st = json.loads((runs / "up0518-ScAl" / "status.json").read_text())
    st["quality"] = {"interpolation_dip": dip_verdict(_dip_step(3.1), QE_VALIDATED)[1]}
    (runs / "up0518-ScAl" / "status.json").write_text(json.dumps(st))
    (row,) = dip_checks(runs)  # the skipped check of Al is not listed
    assert row["material_id"] == "up0518-ScAl" and row["dfpt_min_freq_meV"] == 3.1 and "artefact" in row["verdict"]
    assert cli_main(["status", "--runs-dir", str(runs)]) == 0
    assert "up0518-ScAl (kept): matdyn dips to -2.02 meV" in capsys.readouterr().out


def test_a_dip_too_wide_to_be_saved_is_not_checked_by_dfpt(tmp_path):
    """ScAl's dip (3 of 455 points, 0.66 %) under a 0.5 % limit: rejected without running ph.x (no ``qe`` call)."""
    from types import SimpleNamespace

    from betenet.qe.dipcheck import run_dip_check

    (tmp_path / "matdyn.freq").write_bytes(gzip.decompress(SCAL_FREQ.read_bytes()))
    marked = {}
    steps = {"ph_elph": {"min_freq_meV": 6.24}, "matdyn": {"min_freq_meV": -2.02}}
    cfg = dataclasses.replace(QE_VALIDATED, dip_max_fraction=0.005)

    def no_qe(*args, **kwargs):
        raise AssertionError("ph.x must not run")

    run = SimpleNamespace(status=SimpleNamespace(steps=steps), cfg=cfg, scratch=tmp_path, qe=no_qe,
                          mark=lambda step, wall, **extra: marked.update({step: {"done": True, "wall_s": wall, **extra}}))
    assert run_dip_check(run) is True
    step = marked[DIP_STEP]
    assert step["min_freq_meV"] is None and step["matdyn_points_below"] == 3 and "0.7% of the mesh" in step["skipped"]
    ok, detail = dip_verdict(step, cfg)
    assert not ok and "DFPT at the dip not run" in detail
    marked.clear()  # a level without the check: skipped, no verdict
    run.cfg = dataclasses.replace(QE_VALIDATED, dip_check=False)
    assert run_dip_check(run) is False and marked[DIP_STEP]["skipped"] == "dip check off at this level"
