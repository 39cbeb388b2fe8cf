"""Δ gauge (Birch-Murnaghan E(V), Δ between two equations of state) and the PBE cross-check of the all-electron
protocol against WIEN2k (real pw.x and Elk runs of fcc Al at small settings)."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from betenet.qe import pseudodojo as pd
from betenet.qe import pseudodojo_pbe as pbe
from betenet.qe.pseudo import PseudoError
from betenet.qe.pseudo.allelectron import ElkSettings, elk_input
from betenet.qe.pseudo.delta import (
    WIEN2K_PBE,
    BirchMurnaghan,
    birch_murnaghan_energy,
    delta_meV,
)
from betenet.qe.pseudo.solids import reference_structure

needs_codes = pytest.mark.skipif(shutil.which("pw.x") is None or (shutil.which("elk-lapw") or shutil.which("elk")) is None,
                                 reason="pw.x and Elk (Debian quantum-espresso, elk-lapw) not installed: make qe-deps")
MG = WIEN2K_PBE["Mg"]


def test_the_birch_murnaghan_curve_has_its_minimum_at_v0_and_curvature_b0():
    h = 1e-4 * MG.v0_A3
    e = birch_murnaghan_energy(MG, [MG.v0_A3 - h, MG.v0_A3, MG.v0_A3 + h])
    assert e[1] == 0.0 and e[0] > 0 and e[2] > 0
    assert (e[2] - e[0]) / (2 * h) == pytest.approx(0.0, abs=1e-7)  # dE/dV = -P = 0 (P at 0.99 V0: ~2e-3 eV/Å^3)
    b0 = MG.v0_A3 * (e[0] - 2 * e[1] + e[2]) / h**2 * 160.21766208  # V d2E/dV2 = B0 (eV/Å^3 -> GPa)
    assert b0 == pytest.approx(MG.b0_GPa, rel=1e-5)
    # B1 = dB/dP: B(V) = V E''(V) at V0 (1 -/+ 1e-3); dP = -E' ... checked through the pressure at a compressed volume
    v = 0.95 * MG.v0_A3
    p = -(birch_murnaghan_energy(MG, [v + h])[0] - birch_murnaghan_energy(MG, [v - h])[0]) / (2 * h) * 160.21766208
    eta = (MG.v0_A3 / v) ** (2 / 3)  # third-order BM pressure, closed form
    p_bm = 1.5 * MG.b0_GPa * (eta**3.5 - eta**2.5) * (1 + 0.75 * (MG.b1 - 4) * (eta - 1))
    assert p == pytest.approx(p_bm, rel=1e-6)


def test_delta_is_zero_for_one_curve_symmetric_and_matches_an_independent_quadrature():
    other = BirchMurnaghan(MG.v0_A3 * 1.012, MG.b0_GPa * 0.93, 4.3)
    assert delta_meV(MG, MG) == 0.0
    d = delta_meV(MG, other)
    assert d == pytest.approx(delta_meV(other, MG), rel=1e-12)
    vm = 0.5 * (MG.v0_A3 + other.v0_A3)
    f = lambda v: (birch_murnaghan_energy(MG, [v])[0] - birch_murnaghan_energy(other, [v])[0]) ** 2
    ref = 1e3 * math.sqrt(quad(f, 0.94 * vm, 1.06 * vm, epsabs=1e-16)[0] / (0.12 * vm))
    assert d == pytest.approx(ref, rel=1e-8)
    # E is linear in B0 at fixed V0, B1: Δ between B0 and (1 + ε) B0 is ε x the RMS of E over the interval
    soft = BirchMurnaghan(MG.v0_A3, MG.b0_GPa * 1.1, MG.b1)
    rms = 1e3 * math.sqrt(quad(lambda v: birch_murnaghan_energy(MG, [v])[0] ** 2, 0.94 * MG.v0_A3, 1.06 * MG.v0_A3)[0]
                          / (0.12 * MG.v0_A3))
    assert delta_meV(MG, soft) == pytest.approx(0.1 * rms, rel=1e-8)
    assert 1.0 < d < 5.0  # +1.2 % V0, -7 % B0 for a soft metal: a few meV/atom, the scale of the Δ test's outliers


def test_bad_equations_of_state_and_integration_grids_are_refused():
    with pytest.raises(PseudoError, match="B0 > 0 GPa.*B0 -3"):
        BirchMurnaghan(20.0, -3.0, 4.0)
    with pytest.raises(ValueError, match="odd"):
        delta_meV(MG, MG, points=100)


def test_elk_runs_pbe_when_asked_and_old_entries_count_as_pbesol():
    st, _ = reference_structure("Al")
    assert "xctype\n  20\n" in elk_input(st, (4, 4, 4), 7.0, ElkSettings(xctype=20), species=Path("/sp"))
    assert ElkSettings(xctype=20).functional == "PBE (xctype 20)" and ElkSettings().functional == "PBEsol (xctype 22)"
    with pytest.raises(ValueError, match="xctype 21"):
        ElkSettings(xctype=21)
    old = {k: v for k, v in dataclasses.asdict(ElkSettings()).items() if k not in ("xctype", "rgkmax_fallback")}
    assert ElkSettings().same_run(old) and not ElkSettings(xctype=20).same_run(old)
    assert not ElkSettings().same_run({k: v for k, v in old.items() if k != "gmaxvr"})  # a run field missing


def test_crosscheck_refuses_an_element_without_a_wien2k_crystal_here(tmp_path):
    with pytest.raises(PseudoError, match="Na: no WIEN2k PBE reference"):
        pbe.crosscheck("Na", tmp_path)
    with pytest.raises(PseudoError, match="expected ElkSettings.xctype 20"):
        pbe.crosscheck("Al", tmp_path, es=ElkSettings(), ecutwfc_Ry=20.0)


@needs_codes
def test_a_real_pbe_crosscheck_of_fcc_al_is_saved_and_reused(tmp_path, monkeypatch):
    """pw.x (PseudoDojo PBE Al, 20 Ry, 6^3 k) and Elk PBE (small basis) E(V) on the same cells, each against
    WIEN2k's PBE Al; a second call reuses both scans."""
    s = dataclasses.replace(pd.DojoSettings(), eos_kspacing_invA=0.5)
    es = ElkSettings(rgkmax=6.5, rgkmax_check=6.0, rgkmax_fallback=5.5, gmaxvr=12.0, nempty=4, epsengy=1e-6,
                     epspot=1e-6, xctype=20)
    logs: list[str] = []
    e = pbe.crosscheck("Al", tmp_path, s, es, ecutwfc_Ry=20.0, log=logs.append)
    assert e["pwx"]["kpoints"] == [6, 6, 6] == e["elk"]["kpoints"] and e["elk"]["functional"] == "PBE (xctype 20)"
    assert e["elk"]["scales"] == e["pwx"]["scales"]
    # coarse settings, yet both within a few % of WIEN2k's 16.48 Å^3 (PBEsol would be ~1 % smaller)
    assert abs(e["elk_vs_wien2k"]["v0_error_pct"]) < 4 and abs(e["pwx_vs_wien2k"]["v0_error_pct"]) < 4
    assert e["pwx_vs_elk"]["delta_meV"] == pytest.approx(
        delta_meV(BirchMurnaghan(e["pwx"]["v0_A3_per_atom"], e["pwx"]["b0_GPa"], e["pwx"]["b1"]),
                  BirchMurnaghan(e["elk"]["v0_A3_per_atom"], e["elk"]["b0_GPa"], pbe._b1(e["elk"]))))
    assert pbe.load_index(tmp_path)["elements"]["Al"] == e
    [row] = pbe.rows(tmp_path)
    assert row["element"] == "Al" and row["v0_wien2k"] == WIEN2K_PBE["Al"].v0_A3 and np.isfinite(row["pwx_elk_delta_meV"])

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(pbe.pd, "eos_check", boom)
    monkeypatch.setattr(pbe, "allelectron_eos", boom)
    assert pbe.crosscheck("Al", tmp_path, s, es, ecutwfc_Ry=20.0, log=logs.append) == e


def test_the_cli_names_an_element_it_cannot_check(capsys):
    from betenet.cli.pseudo import cli_main

    assert cli_main(["dojo", "pbe-check", "Xx"]) == 1
    assert "Xx: no WIEN2k PBE reference" in capsys.readouterr().err


def _cross(elk_dv: float, pw_dv: float = 0.2) -> dict:
    return {"elk_vs_wien2k": {"v0_error_pct": elk_dv, "b0_error_pct": 0.0, "delta_meV": 1.0},
            "pwx_vs_wien2k": {"v0_error_pct": pw_dv, "b0_error_pct": 0.0, "delta_meV": 0.1}}


def test_a_protocol_that_misses_wien2k_is_not_used_to_judge():
    from betenet.qe.pseudo.allelectron import eos_verdict, used_comparison
    from betenet.qe.pseudodojo_pbe import protocol_refusal

    assert protocol_refusal(None) is None and protocol_refusal({"pwx": {}}) is None
    assert protocol_refusal(_cross(-0.99)) is None and protocol_refusal(_cross(0.4)) is None
    why = protocol_refusal(_cross(-4.2, 0.23))
    assert why == ("Elk's PBE V0 is -4.20 % from WIEN2k's (> 1 %), pw.x's +0.23 %: the all-electron protocol "
                   "is off for this solid")
    eos = {"a0_error_pct": -0.96, "b0_error_pct": 4.0,
           "allelectron": {"converged": True, "a0_error_pct": 0.59, "b0_error_pct": -10.9}}
    assert used_comparison(eos) is eos["allelectron"]
    assert eos_verdict(eos, (1.5, 15.0, 30.0))[0] == ["a0 +0.59 % from all-electron (> 0.5 %)",
                                                      "B0 -11 % from all-electron (> 10 %)"]
    eos["allelectron"]["refused"] = why
    assert used_comparison(eos) is None
    bad, note = eos_verdict(eos, (1.5, 15.0, 30.0))
    assert bad == [] and note == f"a0 -0.96 %, B0 +4 % vs exp. (all-electron not used: {why})"


def test_the_committed_crosschecks_are_those_of_their_scans_and_refuse_mg():
    """Every committed cross-check's comparisons follow from its own scans and WIEN2k's table; hcp Mg's Elk
    protocol misses WIEN2k's PBE V0 by more than 1 % while pw.x's PBE file is within it, so Mg's PBEsol
    all-electron comparison is refused and Mg is judged against experiment."""
    from betenet.qe.pseudo.allelectron import used_comparison

    index = pbe.load_index()
    assert "Mg" in index["elements"]
    for el, e in index["elements"].items():
        if "elk" not in e:  # in progress: the pw.x scan saved, Elk's not yet
            assert set(e) == {"pwx"}, el
            continue
        ref = WIEN2K_PBE[el]
        assert e["wien2k"]["v0_A3"] == ref.v0_A3 and e["elk"]["functional"] == "PBE (xctype 20)"
        assert e["elk_vs_wien2k"] == pytest.approx(pbe.compare_to(e["elk"]["v0_A3_per_atom"], e["elk"]["b0_GPa"],
                                                                  pbe._b1(e["elk"]), ref))
        assert e["pwx_vs_wien2k"] == pytest.approx(pbe.compare_to(e["pwx"]["v0_A3_per_atom"], e["pwx"]["b0_GPa"],
                                                                  e["pwx"]["b1"], ref))
    mg = index["elements"]["Mg"]
    assert mg["elk_vs_wien2k"]["v0_error_pct"] < -1.0 and abs(mg["pwx_vs_wien2k"]["v0_error_pct"]) < 0.5
    why = pbe.protocol_refusal(mg)
    rec = pd.load_index()["elements"]["Mg"]
    assert rec["eos"]["allelectron"]["refused"] == why and used_comparison(rec["eos"]) is None
    assert rec["status"] == "validated" and "all-electron not used" in rec["note"]
