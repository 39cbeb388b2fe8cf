"""Gaussian fallback for the coarse phonon DOS (matdyn's tetrahedra give NaN for degenerate meshes).

Real matdyn.x runs on force constants this project computed for fcc Al (``tests/data/Al1-fcc.fc``,
computed for this test with the Debian example pseudopotential Al.pz-vbc.UPF: pw.x ecut 15 Ry, 8^3 k, ph.x on a 4x4x4 q mesh, q2r.x): the Gaussian site DOS integrates to
3N and agrees with matdyn's own tetrahedron DOS once both are smoothed to the 2 meV target bins.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from betenet.constants import CMM1_IN_MEV
from betenet.qe.parsers import QEParseError, parse_phdos
from betenet.qe.parsers import parse_matdyn_eig
from betenet.qe.phonon_dos import COARSE_DOS_SIGMA_MEV, dos_file_finite, gaussian_site_dos

FC = Path(__file__).parent / "data" / "Al1-fcc.fc"
AL_MASS = 26.9815385


def test_gaussian_site_dos_normalisation_and_weights():
    omega = np.linspace(-5, 60, 6501)
    # two "q points" x 3 modes x 2 sites; site weights sum to 1 per mode
    freqs = np.array([10.0, 20.0, 30.0, 15.0, 25.0, 35.0, 12.0, 22.0, 32.0, 18.0, 28.0, 38.0])
    w = np.tile([[0.25, 0.75]], (12, 1))
    site = gaussian_site_dos(omega, freqs, w, sigma=0.5)
    assert site.shape == (2, omega.size)
    total = np.trapezoid(site.sum(axis=0), omega)
    assert total == pytest.approx(6.0, rel=1e-6)  # 3N modes, N = 2
    assert np.trapezoid(site[1], omega) / np.trapezoid(site[0], omega) == pytest.approx(3.0, rel=1e-9)
    # a single mode -> Gaussian peak of height 1/(sigma sqrt(2 pi)) / n_q at its frequency
    one = gaussian_site_dos(omega, [10.0, 10.0, 10.0], [[1.0]] * 3, sigma=0.5)
    assert one[0].max() == pytest.approx(3 / (0.5 * np.sqrt(2 * np.pi)), rel=1e-3)


def test_dos_file_finite(tmp_path):
    good = tmp_path / "good.dos"
    good.write_text("# Frequency[cm^-1] DOS PDOS\n 0.0 0.0 0.0\n 1.0 0.5 0.5\n")
    bad = tmp_path / "bad.dos"
    bad.write_text("# Frequency[cm^-1] DOS PDOS\n 0.0 NaN NaN\n 1.0 NaN NaN\n")
    assert dos_file_finite(good)
    assert not dos_file_finite(bad)


def test_parse_matdyn_eig_errors(tmp_path):
    f = tmp_path / "matdyn.eig"
    f.write_text(" q = 0 0 0\n     freq (    1) =   1.0 [THz] =   33.35 [cm-1]\n ( 1.0 0.0 0.0 0.0 )\n")
    with pytest.raises(QEParseError, match="matdyn.eig.*6 numbers"):
        parse_matdyn_eig(f, n_sites=1)
    f.write_text(" q = 0 0 0\n")
    with pytest.raises(QEParseError, match="no complete modes"):
        parse_matdyn_eig(f, n_sites=1)


def _matdyn(cwd: Path, text: str) -> None:
    subprocess.run(["matdyn.x"], input=text, text=True, cwd=cwd, check=True, capture_output=True,
                   env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


@pytest.mark.qe
@pytest.mark.skipif(shutil.which("matdyn.x") is None, reason="matdyn.x (Quantum ESPRESSO) not installed: make qe-deps")
def test_gaussian_fallback_matches_tetrahedra_on_real_al_force_constants(tmp_path):
    from betenet.spectra import smooth_and_bin

    shutil.copyfile(FC, tmp_path / "fc")
    nk = 12
    delta_cm1 = 0.1 / CMM1_IN_MEV
    _matdyn(tmp_path, f"&input\n asr='crystal', flfrc='fc', flfrq='t.freq', fldos='phdos.dos', dos=.true.,\n"
                      f" nk1={nk}, nk2={nk}, nk3={nk}, deltaE={delta_cm1}, amass(1)={AL_MASS}\n/\n")
    tetra = parse_phdos(tmp_path / "phdos.dos")
    grid = np.stack(np.meshgrid(*[np.arange(nk) / nk] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    qlist = "".join(f"{a:.10f} {b:.10f} {c:.10f}\n" for a, b, c in grid)
    _matdyn(tmp_path, "&input\n asr='crystal', flfrc='fc', flfrq='g.freq', fleig='matdyn.eig', dos=.false.,\n"
                      f" q_in_cryst_coord=.true., amass(1)={AL_MASS}\n/\n{len(grid)}\n{qlist}")
    freqs, weights = parse_matdyn_eig(tmp_path / "matdyn.eig", n_sites=1)
    assert freqs.shape == (3 * nk**3,) and weights.shape == (3 * nk**3, 1)
    assert freqs.max() * CMM1_IN_MEV == pytest.approx(40.0, abs=6.0)  # Al's top phonon ~ 40 meV
    omega_cm1 = tetra.omega_meV / CMM1_IN_MEV
    site = gaussian_site_dos(omega_cm1, freqs, weights, COARSE_DOS_SIGMA_MEV / CMM1_IN_MEV)
    gauss = site[0] / CMM1_IN_MEV  # states/meV
    assert np.trapezoid(gauss, tetra.omega_meV) == pytest.approx(3.0, rel=2e-3)
    assert np.trapezoid(tetra.total, tetra.omega_meV) == pytest.approx(3.0, rel=2e-2)
    a = smooth_and_bin(tetra.omega_meV, tetra.total)
    b = smooth_and_bin(tetra.omega_meV, gauss)
    # same spectrum on the 51 target bins: ~10 % of the peak at most, and the same mean frequency
    assert np.max(np.abs(a - b)) < 0.12 * a.max()
    mean = lambda y: np.trapezoid(y * tetra.omega_meV, tetra.omega_meV) / np.trapezoid(y, tetra.omega_meV)  # noqa: E731
    assert mean(gauss) == pytest.approx(mean(tetra.total), rel=0.02)


@pytest.mark.qe
@pytest.mark.skipif(shutil.which("matdyn.x") is None, reason="matdyn.x (Quantum ESPRESSO) not installed: make qe-deps")
def test_workflow_fallback_replaces_a_nan_tetrahedron_dos(tmp_path):
    """The workflow method itself: a NaN matdyn DOS file is rewritten in matdyn's format, finite, 3N states."""
    from types import MethodType, SimpleNamespace

    from pymatgen.core import Lattice, Structure

    from betenet.qe.workflow import MaterialRun

    shutil.copyfile(FC, tmp_path / "fc")
    omega_cm1 = np.arange(0, 500) * (0.1 / CMM1_IN_MEV)
    (tmp_path / "phdos.dos").write_text("# Frequency[cm^-1] DOS PDOS\n" + "".join(f"{w:.6E} NaN NaN\n" for w in omega_cm1))
    assert not dos_file_finite(tmp_path / "phdos.dos")

    def qe(step, exe, text, cwd):
        _matdyn(cwd, text)
        return 1.5

    al = Structure(Lattice([[0, 2.02, 2.02], [2.02, 0, 2.02], [2.02, 2.02, 0]]), ["Al"], [[0, 0, 0]])
    fake = SimpleNamespace(relaxed=al, qe=qe)
    fake._matdyn_full_mesh = MethodType(MaterialRun._matdyn_full_mesh, fake)
    wall = MaterialRun._gaussian_coarse_dos(fake, tmp_path, (8, 8, 8))
    assert wall == 1.5
    dos = parse_phdos(tmp_path / "phdos.dos")
    assert dos.site is not None and dos.site.shape == (1, omega_cm1.size)
    assert np.allclose(dos.total, dos.site.sum(axis=0))
    assert np.trapezoid(dos.total, dos.omega_meV) == pytest.approx(3.0, rel=5e-3)


def test_gaussian_a2f_single_mode_has_the_analytic_lambda_and_drops_zero_modes():
    from betenet.constants import RY_IN_MEV
    from betenet.qe.phonon_dos import gaussian_a2f

    omega = np.arange(1, 2000) * 0.05  # meV
    n_ef, w0, gamma = 5.0, 20.0, 0.1  # states/Ry, meV, meV
    # two q points; the second one's only mode is at zero frequency (acoustic at Γ) and must not count
    a2f = gaussian_a2f(omega, [[w0], [0.0]], [[gamma], [gamma]], n_ef, sigma_meV=0.5)
    area = gamma / w0 / 2 / (2 * np.pi * n_ef) * RY_IN_MEV  # (1/n_q) γ/ω / (2π N)
    assert np.trapezoid(a2f, omega) == pytest.approx(area, rel=1e-6)
    assert omega[np.argmax(a2f)] == pytest.approx(w0)
    assert 2 * np.trapezoid(a2f / omega, omega) == pytest.approx(2 * area / w0, rel=2e-3)
    with pytest.raises(ValueError, match="n_q, n_modes"):
        gaussian_a2f(omega, [w0], [gamma], n_ef, 0.5)
    with pytest.raises(ValueError, match="N\\(E_F\\) must be positive"):
        gaussian_a2f(omega, [[w0]], [[gamma]], 0.0, 0.5)


def test_parse_a2fmatdyn_header(tmp_path):
    from betenet.qe.parsers import QEParseError, parse_a2fmatdyn_header

    f = tmp_path / "a2Fmatdyn.61"
    f.write_text("   5.0000000000000001E-003  0.59505193514247423        1.2799712398308756\n   2   2   2\n")
    assert parse_a2fmatdyn_header(f) == pytest.approx((0.005, 0.595051935, 1.27997124))
    f.write_text("   2   2\n")
    with pytest.raises(QEParseError, match="a2Fmatdyn.61:1: expected 'broadening E_F N"):
        parse_a2fmatdyn_header(f)
    f.write_text("0.005 0.59 0.0\n")
    with pytest.raises(QEParseError, match="N\\(E_F\\) = 0.0"):
        parse_a2fmatdyn_header(f)
