"""Parsers of QE outputs, on our own runs (tests/data/qe, computed by this project) and on the
Debian reference outputs (read from /usr/share/doc when installed, never copied into the repo)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from betenet import physics
from betenet.constants import CMM1_IN_MEV, RY_IN_MEV, THZ_IN_MEV
from betenet.qe.parsers import (
    QEParseError,
    parse_a2f_dos,
    parse_lambda_file,
    parse_matdyn_freq,
    parse_ph_output,
    parse_phdos,
    parse_projwfc,
    parse_pw_output,
)

DATA = Path(__file__).parent / "data" / "qe"
AL = DATA / "al"  # fcc Al, project PBEsol US pseudopotential, screening settings (k 12^3, q 4^3)
MG = DATA / "mg"  # hcp Mg (2 sites), Debian Mg.pz-n-vbc, tetrahedron nscf + projwfc
DEBIAN = Path("/usr/share/doc/quantum-espresso/examples/PHonon")
DEBIAN_AL = DEBIAN / "Recover_example" / "reference_1"


def _corrupt(src: Path, dest: Path, old: str, new: str) -> Path:
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt") as fh:
        text = fh.read()
    assert old in text
    dest.write_text(text.replace(old, new, 1))
    return dest


# -- pw.x ---------------------------------------------------------------------------------------


def test_vc_relax_final_structure():
    r = parse_pw_output(AL / "relax.out.gz")
    assert r.job_done and r.converged and r.n_relax_steps is not None
    s = r.structure
    assert len(s) == 1 and s.composition.reduced_formula == "Al"
    # fcc primitive cell: three equal vectors at 60 degrees; PBEsol a ~ 4.0 Å -> |a_i| = a/sqrt(2)
    a, b, c = s.lattice.abc
    assert a == pytest.approx(b) == pytest.approx(c)
    assert s.lattice.angles == pytest.approx((60.0, 60.0, 60.0), abs=1e-4)
    assert 3.9 < a * 2**0.5 < 4.1
    assert r.total_energy_Ry < 0 and r.fermi_energy_eV is not None


def test_scf_and_nscf_fermi_energy():
    r = parse_pw_output(AL / "scf_dense.out.gz")
    assert r.converged and r.structure is None and r.band_gap_eV is None
    assert 5.0 < r.fermi_energy_eV < 12.0
    nscf = parse_pw_output(MG / "nscf.out.gz")
    assert nscf.fermi_energy_eV == pytest.approx(3.3578)


def test_failed_and_truncated_pw_outputs(tmp_path):
    with pytest.raises(QEParseError, match=r"failed_pw.out.gz:\d+: pw.x output has no 'JOB DONE': Error in routine readpp"):
        parse_pw_output(MG / "failed_pw.out.gz")
    r = parse_pw_output(MG / "failed_pw.out.gz", require_done=False)
    assert not r.converged and r.errors
    trunc = tmp_path / "trunc.out"
    with gzip.open(AL / "scf_dense.out.gz", "rt") as fh:
        trunc.write_text("".join(fh.readlines()[:150]))
    with pytest.raises(QEParseError, match=r"trunc.out:150: .*truncated or killed"):
        parse_pw_output(trunc)
    with pytest.raises(QEParseError, match="file not found"):
        parse_pw_output(tmp_path / "nothing.out")
    bad = _corrupt(AL / "scf_dense.out.gz", tmp_path / "bad.out", "the Fermi energy is", "the Fermi energy is  x.y")
    with pytest.raises(QEParseError, match=r"bad.out:\d+: expected numbers"):
        parse_pw_output(bad)


# -- ph.x / matdyn ------------------------------------------------------------------------------


def test_ph_frequencies_per_q():
    ph = parse_ph_output(AL / "ph_elph.out.gz")
    assert ph.freq_THz.shape == (8, 3)  # 8 irreducible q of the 4x4x4 fcc mesh, 3 modes
    np.testing.assert_allclose(ph.freq_meV, ph.freq_THz * THZ_IN_MEV)
    np.testing.assert_allclose(ph.freq_cm1 * CMM1_IN_MEV, ph.freq_meV, rtol=1e-5)
    assert np.allclose(ph.q_cart_2pi_alat[0], 0.0)  # Gamma first
    # Gamma is excluded from the ph.x stability check (no ASR there; matdyn checks it); Al is stable
    assert ph.min_freq_meV() > 5.0
    assert ph.min_freq_meV(skip_gamma=False) < ph.min_freq_meV()
    assert 35.0 < ph.freq_meV.max() < 48.0  # Al phonons top out near 40 meV (PBEsol, compressed cell: ~45)


def test_min_frequency_skips_gamma_where_asr_violation_beats_an_optical_mode():
    from betenet.qe.parsers import min_freq_off_gamma

    # hcp Zn at the screening level (data/qe/Zn1-hcp/ph_freqs.json): Gamma's ASR violation (-6.6 meV)
    # is larger than its lowest optical modes (+4.7 meV); every other q point is stable
    q = [[0, 0, 0], [0, 0, -0.267], [0.5, 0, 0]]
    f = [[-6.599, -6.599, -5.0214, 4.6634, 4.6634, 21.7114], [5.0442, 5.0442, 5.0442, 5.0442, 15.13, 15.13],
         [9.853, 13.28, 17.23, 17.46, 25.79, 28.17]]
    assert min_freq_off_gamma(q, f) == pytest.approx(5.0442)
    assert min_freq_off_gamma(q, f, skip_gamma=False) == pytest.approx(-6.599)
    f[2][0] = -3.0  # a real instability off Gamma is still seen
    assert min_freq_off_gamma(q, f) == pytest.approx(-3.0)
    assert min_freq_off_gamma([[0, 0, 0]], [[-1.0, 0.5, 2.0]]) == 0.0  # Gamma only: nothing to judge here
    with pytest.raises(ValueError, match="2 q points but 1 rows"):
        min_freq_off_gamma(q[:2], f[:1])


def test_imaginary_modes_are_negative(tmp_path):
    bad = _corrupt(AL / "ph_elph.out.gz", tmp_path / "ph.out", "freq (    1) =       3.268679 [THz] =     109.031392", "freq (    1) =      -3.268679 [THz] =    -109.031392")
    assert parse_ph_output(bad).min_freq_meV() < -1.0


def test_matdyn_freq_and_phdos():
    q, f = parse_matdyn_freq(AL / "matdyn.freq.gz")
    assert q.shape[1] == 3 and f.shape == (q.shape[0], 3)
    dos = parse_phdos(AL / "phdos.dos.gz")
    assert dos.site.shape == (1, dos.omega_meV.size)
    assert dos.integral() == pytest.approx(3.0, rel=2e-3)  # 3 N_atoms modes
    np.testing.assert_allclose(dos.site.sum(axis=0), dos.total, rtol=1e-3, atol=1e-6)
    assert np.all(np.diff(dos.omega_meV) > 0)
    assert dos.omega_meV[-1] == pytest.approx(f.max() * CMM1_IN_MEV, abs=1.0)


# -- α²F and lambda -----------------------------------------------------------------------------


def test_a2f_units_and_lambda_matches_qe():
    a = parse_a2f_dos(AL / "a2F.dos4.gz")
    assert a.a2f_modes.shape == (3, a.omega_meV.size)
    np.testing.assert_allclose(a.a2f_modes.sum(axis=0), a.a2f, atol=1e-5)
    # frequencies were in Ry: the spectrum ends near the top phonon frequency (~40 meV)
    assert 35.0 < a.omega_meV[np.nonzero(a.a2f)[0][-1]] < 48.0
    # our λ = 2∫α²F/ω dω reproduces the value matdyn prints at the end of the file
    assert physics.lambda_from_a2f(a.omega_meV, a.a2f) == pytest.approx(a.lambda_qe, rel=1e-4)
    # ... and QE's λ from the q-point linewidths (lambda file, 0.02 Ry) within a few percent
    rows = parse_lambda_file(AL / "lambda")
    row = next(r for r in rows if abs(r.broadening_Ry - 0.02) < 1e-9)
    assert physics.lambda_from_a2f(a.omega_meV, a.a2f) == pytest.approx(row.lambda_, rel=0.03)
    # ω_log of the α²F (negatives clipped below 1 meV matter little) vs QE's ω_ln: same ballpark
    assert physics.omega_log_K(a.omega_meV, np.clip(a.a2f, 0, None)) == pytest.approx(row.omega_log_K, rel=0.25)


def test_lambda_file_rows():
    rows = parse_lambda_file(AL / "lambda")
    assert len(rows) == 10
    assert [r.broadening_Ry for r in rows] == pytest.approx([0.005 * i for i in range(1, 11)])
    assert all(0.1 < r.lambda_ < 0.6 and r.omega_log_K > 100 for r in rows)
    assert rows[3].lambda_ == pytest.approx(0.3361) and rows[3].omega_log_K == pytest.approx(431.7107)


def test_a2f_nan_and_bad_files(tmp_path):
    src = AL / "a2F.dos4.gz"
    with gzip.open(src, "rt") as fh:
        lines = fh.readlines()
    tok = lines[10].split()
    lines[10] = "   ".join([tok[0], "NaN", *tok[2:]]) + "\n"
    nan = tmp_path / "a2F.dos4"
    nan.write_text("".join(lines))
    with pytest.raises(QEParseError, match=r"a2F.dos4:11: NaN/inf in α²F"):
        parse_a2f_dos(nan)
    assert parse_a2f_dos(nan, allow_nan=True).has_nan
    noheader = tmp_path / "x.dos"
    noheader.write_text("".join(l for l in lines if not l.startswith(" #")))
    with pytest.raises(QEParseError, match="frequencies in Rydberg"):
        parse_a2f_dos(noheader)
    ragged = tmp_path / "ragged.dos"
    ragged.write_text("".join(lines[:20]) + "   0.5   0.1\n")
    with pytest.raises(QEParseError, match="not a multiple of 5 columns"):
        parse_a2f_dos(ragged)
    with pytest.raises(QEParseError, match=r"lambda:1|no 'Broadening"):
        (tmp_path / "lambda").write_text("nothing here\n")
        parse_lambda_file(tmp_path / "lambda")


# -- projwfc ------------------------------------------------------------------------------------


def test_projwfc_site_projected_edos():
    ef = parse_pw_output(MG / "nscf.out.gz").fermi_energy_eV
    p = parse_projwfc(MG, "pdos", ef, n_sites=2)
    assert p.site.shape == (2, p.energy_meV.size)
    np.testing.assert_allclose(p.site[0], p.site[1])  # the two hcp Mg sites are equivalent
    assert p.energy_meV[0] < 0 < p.energy_meV[-1]
    assert 0.3 < p.dos_ef_per_eV < 3.0  # a metal
    # projections miss a little charge (spilling) but never exceed the total
    assert np.all(p.site.sum(axis=0) <= p.total + 1e-3)
    with pytest.raises(QEParseError, match=r"no projected DOS for atom\(s\) \[3\]"):
        parse_projwfc(MG, "pdos", ef, n_sites=3)


# -- Debian reference outputs (QE examples; read in place, never committed) ----------------------


@pytest.mark.skipif(not DEBIAN_AL.is_dir(), reason="quantum-espresso-data reference outputs not installed")
def test_debian_reference_a2f_and_lambda():
    """The Recover_example Al files (QE 6.0 wrapped format): λ of α²F vs QE's own numbers."""
    rows = parse_lambda_file(DEBIAN_AL / "lambda")
    assert len(rows) == 10 and rows[0].omega_log_K is None  # QE 6.0: no omega_ln column
    for i in (3, 5, 10):
        a = parse_a2f_dos(DEBIAN_AL / f"a2F.dos{i}")
        assert a.a2f_modes.shape[0] == 3
        lam = physics.lambda_from_a2f(a.omega_meV, a.a2f)
        assert lam == pytest.approx(a.lambda_qe, rel=2e-3)
        assert lam == pytest.approx(rows[i - 1].lambda_, rel=0.02)
        assert a.omega_meV[0] == pytest.approx(0.000031 * RY_IN_MEV, rel=1e-3)
    dos = parse_phdos(DEBIAN_AL / "phonon.dos")
    assert dos.site is None and dos.integral() == pytest.approx(3.0, rel=0.02)
    ex3 = parse_lambda_file(DEBIAN / "example03" / "reference" / "lambda")
    assert ex3[2].lambda_ == pytest.approx(0.4113)


@pytest.mark.skipif(not (DEBIAN / "tetra_example" / "reference").is_dir(), reason="QE reference outputs not installed")
def test_debian_reference_ph_output():
    ph = parse_ph_output(DEBIAN / "tetra_example" / "reference" / "al.ph.out.gz")
    assert ph.freq_THz.shape[1] == 3 and ph.freq_THz.shape[0] >= 8
    assert ph.min_freq_meV() > 0
