"""betenet.qe.convergence on the committed fcc Al run: real pw.x + ph.x at one q (seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from betenet.paths import REPO_ROOT
from betenet.qe.convergence import lowest_q, single_q_phonons
from betenet.qe.inputs import QEInputError
from betenet.qe.runner import qe_available

AL = REPO_ROOT / "data" / "qe" / "Al1-fcc"


def test_lowest_q_and_input_errors(tmp_path):
    ph = json.loads((AL / "ph_freqs.json").read_text())
    q = lowest_q(AL)
    i = [tuple(x) for x in ph["q_cart_2pi_alat"]].index(q)
    assert np.linalg.norm(q) > 0 and min(ph["freq_meV"][i]) == pytest.approx(12.1979)  # Γ is skipped (ASR -6.5 meV)
    with pytest.raises(FileNotFoundError, match="ph_freqs.json"):
        lowest_q(tmp_path)
    with pytest.raises(FileNotFoundError, match="scf.in"):
        single_q_phonons(tmp_path, q, k_scf=4, workdir=tmp_path / "w")
    with pytest.raises(ValueError, match="k_scf"):
        single_q_phonons(AL, q, k_scf=(4, 4), workdir=tmp_path / "w")
    with pytest.raises(QEInputError, match="not found"):
        single_q_phonons(AL, q, k_scf=4, workdir=tmp_path / "w", pseudo_dir=tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        single_q_phonons(AL, q, k_scf=4, workdir=tmp_path / "busy")
    assert (tmp_path / "busy" / "x").read_text() == "keep me"


@pytest.mark.qe
@pytest.mark.skipif(not qe_available(), reason="Quantum ESPRESSO not on PATH: run `make qe-deps`")
def test_dataset_settings_reproduce_the_stored_frequencies_and_the_k_mesh_changes_them(tmp_path):
    """At the dataset's own scf mesh (6x6x6) the check reproduces data/qe/Al1-fcc/ph_freqs.json at that q;
    a 4x4x4 mesh gives a different (unconverged) LA mode: the tool measures the setting, not itself."""
    q = lowest_q(AL)
    ph = json.loads((AL / "ph_freqs.json").read_text())
    stored = ph["freq_meV"][[tuple(x) for x in ph["q_cart_2pi_alat"]].index(q)]
    same = single_q_phonons(AL, q, k_scf=6, workdir=tmp_path / "k6")
    np.testing.assert_allclose(same.freq_meV, stored, atol=0.02)
    assert same.k_scf == (6, 6, 6) and same.ecutwfc_Ry == 25.0 and same.degauss_Ry == 0.02
    assert json.loads((tmp_path / "k6" / "result.json").read_text())["freq_meV"] == same.freq_meV
    coarse = single_q_phonons(AL, q, k_scf=4, workdir=tmp_path / "k4")
    assert abs(coarse.freq_meV[2] - stored[2]) > 5.0  # LA: 14.7 meV at 4^3 against 33.3 at 6^3 (measured)


def test_relaxed_volume_input_errors(tmp_path):
    from betenet.qe.convergence import relaxed_volume

    with pytest.raises(FileNotFoundError, match="relax.in"):
        relaxed_volume(tmp_path, workdir=tmp_path / "w")
    with pytest.raises(QEInputError, match="not found"):
        relaxed_volume(AL, workdir=tmp_path / "w", pseudo_dir=tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        relaxed_volume(AL, workdir=tmp_path / "busy")


@pytest.mark.qe
@pytest.mark.skipif(not qe_available(), reason="Quantum ESPRESSO not on PATH: run `make qe-deps`")
def test_relaxed_volume_reproduces_the_dataset_cell_and_measures_a_cutoff(tmp_path):
    from betenet.qe.convergence import relaxed_volume

    same = relaxed_volume(AL, workdir=tmp_path / "same", ecutwfc_Ry=25.0, ecutrho_Ry=100.0)
    assert same.volume_A3_per_atom == pytest.approx(same.dataset_volume_A3_per_atom, abs=2e-3)
    assert abs(same.delta_a_pct) < 0.005 and same.ecutwfc_Ry == 25.0
    low = relaxed_volume(AL, workdir=tmp_path / "low", ecutwfc_Ry=12.0, ecutrho_Ry=48.0)
    # measured 2026-11-26: 16.258 vs 16.228 Å^3/atom, +0.06 % in a (Al's soft pseudopotential barely cares)
    assert low.delta_a_pct == pytest.approx(0.06, abs=0.02)
    assert json.loads((tmp_path / "low" / "result.json").read_text())["delta_a_pct"] == low.delta_a_pct
    assert not (tmp_path / "low" / "out").exists()  # the scratch is removed, the input/output kept
    assert (tmp_path / "low" / "relax.out").exists()


@pytest.mark.qe
@pytest.mark.skipif(not qe_available(), reason="Quantum ESPRESSO not on PATH: run `make qe-deps`")
def test_a_single_q_check_freezes_ph_xs_highest_mode_on_the_same_k_points(tmp_path):
    """fcc Al (the ld1.x set, 25/100 Ry) at the zone-boundary q = (1/2, 1/2, 0) of its cell (X), 4^3 k: ph.x's highest
    mode frozen in the 2-atom cell gives 36.86 meV, ph.x 37.12 meV (+0.70 %; 6^3: 40.67 against 40.90, +0.56 %;
    the u -> 0 limit from 0.02/0.01 Å and from 0.01/0.005 Å agree to 0.001 meV, so the gap is the linear response's).
    A q off the zone boundary or an odd mesh is refused."""
    import dataclasses

    from betenet.qe.convergence import frozen_single_q
    from betenet.qe.inputs import PWInput
    from betenet.qe.pseudo import PseudoLibrary

    st = PWInput.from_str((AL / "scf.in").read_text()).structure
    alat = np.linalg.norm(st.lattice.matrix[0])
    q = np.array([0.5, 0.5, 0.0]) @ st.lattice.reciprocal_lattice.matrix * alat / (2 * np.pi)
    res = single_q_phonons(AL, q, k_scf=4, workdir=tmp_path / "k4")
    fz = frozen_single_q(res, PseudoLibrary.default())
    assert fz["phx_meV"] == pytest.approx(37.12, abs=0.01) and fz["frozen_meV"] == pytest.approx(36.86, abs=0.02)
    assert fz["diff_pct"] == pytest.approx(0.70, abs=0.05) and fz["omega_at_u_meV"][0] < fz["omega_at_u_meV"][1]
    assert fz["force_alignment"] > 0.9999 and fz["q_frac"] == [0.5, 0.5, 0.0] and fz["n_k"] == 32
    assert json.loads((tmp_path / "k4" / "frozen.json").read_text())["frozen_meV"] == fz["frozen_meV"]
    with pytest.raises(ValueError, match=r"does not hold k \+ q"):
        frozen_single_q(dataclasses.replace(res, k_scf=(3, 3, 3)), PseudoLibrary.default())
    with pytest.raises(ValueError, match="a frozen mode needs each to be 0 or 1/2"):
        frozen_single_q(dataclasses.replace(res, q_cart_2pi_alat=tuple(q / 2)), PseudoLibrary.default())


def test_frozen_audits_read_the_committed_study():
    """Chapter 00's table of the linear-response audits: B2 AlPd (paper row 256) at X, its validated 85/340 Ry,
    6^3 k: ph.x and the frozen mode agree to 0.04 % (measured), forces along the mass-weighted pattern."""
    from betenet.qe.convergence import frozen_audits

    alpd = next(r for r in frozen_audits() if r["material"] == "up0256-AlPd")
    assert alpd["level"] == "validated" and alpd["q (crystal)"] == "0.5 0 0" and alpd["k"] == "6x6x6"
    assert alpd["cutoffs_Ry"] == "85/340" and alpd["force_alignment"] > 0.99999
    assert alpd["phx_meV"] == pytest.approx(42.641, abs=1e-3) and alpd["frozen_meV"] == pytest.approx(42.625, abs=1e-3)
    assert alpd["diff_pct"] == pytest.approx(0.037, abs=0.005)


@pytest.mark.qe
@pytest.mark.skipif(not qe_available(), reason="Quantum ESPRESSO not on PATH: run `make qe-deps`")
def test_check_q_frozen_saves_once(tmp_path, monkeypatch, capsys):
    """`betenet qe check-q ... --frozen --save` on fcc Al at X keeps the result in the study and never overwrites it."""
    from betenet.cli import qe as cli

    monkeypatch.setattr(cli, "FROZEN_STUDY_DIR", tmp_path / "study")
    argv = ["check-q", "Al1-fcc", "--k", "4", "--q", "0", "0", "-0.70710678", "--frozen", "--save"]
    assert cli.cli_main([*argv, "--workdir", str(tmp_path / "w1")]) == 0
    saved = json.loads((tmp_path / "study" / "runs" / "Al1-fcc-q0.5-0.5-0-k4.json").read_text())
    assert saved["accuracy"] == "screening" and saved["phx_meV"] == pytest.approx(37.11, abs=0.01)
    assert saved["frozen_meV"] == pytest.approx(36.86, abs=0.02)
    assert cli.cli_main([*argv, "--workdir", str(tmp_path / "w2")]) == 2
    assert "exists (nothing is overwritten)" in capsys.readouterr().err


def test_snap_q_puts_ph_x_printed_q_back_on_its_mesh_point():
    """ph.x prints q with seven decimals; check-q runs ph.x at the exact mesh point (a q 4e-6 off H moved Mo's
    zone-boundary phonon by 0.7 meV), and leaves a q that is no mesh point alone."""
    import numpy as np

    from betenet.qe.convergence import snap_q

    a = 3.147
    bcc = np.array([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]])
    q = snap_q(bcc, (0.0, 0.0, 0.8660254))  # H as ph.x prints it
    assert q == pytest.approx((0.0, 0.0, 3**0.5 / 2), abs=1e-13) and q[2] != 0.8660254
    alat = np.linalg.norm(bcc[0])
    printed = np.round(np.linalg.solve(bcc, np.array([0.2, 0.0, 0.4]) * alat), 7)  # a point of a 5^3 mesh, as printed
    frac = bcc @ np.array(snap_q(bcc, printed)) / alat
    assert frac == pytest.approx([0.2, 0.0, 0.4], abs=1e-13)
    assert abs(bcc @ printed / alat - [0.2, 0.0, 0.4]).max() > 1e-9  # the printed q was off
    assert snap_q(bcc, (0.0, 0.0, 0.3141)) == (0.0, 0.0, 0.3141)  # crystal 0.18135: 3e-4 from 2/11, the nearest <= 60


def test_check_q_k_meshes_are_n_or_nxnxn(capsys):
    """`--k` takes N (N x N x N) or NxNxN (hcp Zr's A point needs 12x12x7, not 12^3); anything else is refused
    by name before any QE runs."""
    from betenet.cli import qe as cli

    for bad in ("12x7", "12x12x0", "twelve"):
        with pytest.raises(SystemExit) as exc:
            cli.cli_main(["check-q", "Al1-fcc", "--k", bad])
        assert exc.value.code == 2
        assert f"expected N or NxNxN with positive integers (e.g. 12 or 12x12x7), got {bad!r}" in capsys.readouterr().err


@pytest.mark.qe
@pytest.mark.skipif(not qe_available(), reason="Quantum ESPRESSO not on PATH: run `make qe-deps`")
def test_check_q_runs_a_non_cubic_mesh(tmp_path, capsys):
    """fcc Al at X with `--k 4x4x4` and `--k 4x4x6`: the first is the cubic 4 (work dir k4, 37.11 meV as in the
    frozen test), the second a mesh of its own (work dir k4x4x6, its own k points)."""
    from betenet.cli import qe as cli

    argv = ["check-q", "Al1-fcc", "--k", "4x4x4", "4x4x6", "--q", "0", "0", "-0.70710678", "--workdir", str(tmp_path)]
    assert cli.cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "k=4x4x4" in out and "k=4x4x6" in out
    cubic = json.loads((tmp_path / "k4" / "result.json").read_text())
    other = json.loads((tmp_path / "k4x4x6" / "result.json").read_text())
    assert cubic["k_scf"] == [4, 4, 4] and other["k_scf"] == [4, 4, 6]
    assert max(cubic["freq_meV"]) == pytest.approx(37.11, abs=0.01) and max(other["freq_meV"]) != pytest.approx(37.11, abs=0.01)
