"""Coarse 2x2x2 force constants from a subset of the el-ph run's dynamical matrices.

Real QE on fcc Al (Debian's example pseudopotential ``Al.pz-vbc.UPF``, 15 Ry, 6^3 k): ph.x on a
4x4x4 q mesh, then :func:`betenet.qe.phonon_dos.coarse_dyn_subset` picks the stars of its 2x2x2
sub-mesh, q2r.x turns them into force constants, and those must equal the force constants of a
separate ph.x run on the 2x2x2 mesh (what the workflow computed before this reuse existed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from betenet.qe.dyn import parse_dyn0
from betenet.qe.inputs import PseudoSpec, ph_input, pw_input, q2r_input
from betenet.qe.parsers import QEParseError
from betenet.qe.phonon_dos import coarse_dyn_subset
from betenet.qe.prototypes import build

PSEUDO = Path("/usr/share/espresso/pseudo/Al.pz-vbc.UPF")

pytestmark = [
    pytest.mark.qe,
    pytest.mark.skipif(
        shutil.which("ph.x") is None or not PSEUDO.exists(),
        reason="Quantum ESPRESSO and quantum-espresso-data not installed: make qe-deps",
    ),
]


def _run(exe: str, text: str, cwd: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([exe], input=text, text=True, cwd=cwd, env=env, capture_output=True)
    assert out.returncode == 0 and "JOB DONE" in out.stdout, out.stdout[-2000:]


def _fc(path: Path) -> np.ndarray:
    """Force-constant values of a q2r.x ``fc`` file (the R-space blocks after the header)."""
    vals = []
    lines = path.read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if len(l.split()) == 3 and all(t.isdigit() for t in l.split()))
    for l in lines[start:]:
        t = l.split()
        if len(t) == 4 and not t[3].lstrip("-").isdigit():  # "m1 m2 m3 value", not the "i j na nb" block header
            vals.append(float(t[3]))
    return np.array(vals)


@pytest.fixture(scope="module")
def al_dyn(tmp_path_factory):
    root = tmp_path_factory.mktemp("al-subset")
    s = build(["Al"], "fcc")
    ps = {"Al": PseudoSpec("Al", PSEUDO)}
    text = pw_input(s, ps, calculation="scf", kpoints=(6, 6, 6), ecutwfc_Ry=15.0, ecutrho_Ry=60.0,
                    outdir="./out", prefix="bn", conv_thr=1e-10).to_str()
    _run("pw.x", text, root)
    for q, name in ((4, "fine"), (2, "direct")):
        d = root / name
        shutil.copytree(root / "out", d / "out")
        _run("ph.x", ph_input(s, prefix="bn", outdir="./out", q=(q, q, q), fildyn=f"{name}.dyn", elph=False,
                              tr2_ph=1e-14).to_str(), d)
    return root


def test_subset_force_constants_equal_a_direct_coarse_run(al_dyn):
    sub = al_dyn / "subset"
    n = coarse_dyn_subset(al_dyn / "fine", "fine.dyn", sub, "coarse.dyn", (2, 2, 2))
    # fcc 2x2x2 mesh: Gamma, L and X stars = the 3 irreducible points ph.x finds on that mesh
    assert n == 3 == int((al_dyn / "direct" / "direct.dyn0").read_text().split("\n")[1])
    _run("q2r.x", q2r_input(fildyn="coarse.dyn", flfrc="fc", la2F=False).to_str(), sub)
    _run("q2r.x", q2r_input(fildyn="direct.dyn", flfrc="fc", la2F=False).to_str(), al_dyn / "direct")
    a, b = _fc(sub / "fc"), _fc(al_dyn / "direct" / "fc")
    assert a.shape == b.shape and a.size == 3 * 3 * 8
    assert np.max(np.abs(a - b)) < 1e-4 * np.max(np.abs(b))


def test_not_commensurate_writes_nothing(al_dyn, tmp_path):
    assert coarse_dyn_subset(al_dyn / "fine", "fine.dyn", tmp_path / "x", "c.dyn", (3, 3, 3)) == 0
    assert coarse_dyn_subset(al_dyn / "direct", "direct.dyn", tmp_path / "x", "c.dyn", (2, 2, 2)) == 0
    assert not (tmp_path / "x").exists()


def test_malformed_dyn0_is_named(tmp_path):
    (tmp_path / "e.dyn0").write_text("4 4\n")
    with pytest.raises(QEParseError, match=r"e\.dyn0"):
        coarse_dyn_subset(tmp_path, "e.dyn", tmp_path / "x", "c.dyn", (2, 2, 2))
    (tmp_path / "f.dyn0").write_text("4 4 4\n3\n0 0 0\n0.5 0.5\n")  # a q point with two coordinates
    with pytest.raises(QEParseError, match=r"f\.dyn0"):
        parse_dyn0(tmp_path / "f.dyn0")
    with pytest.raises(QEParseError, match=r"g\.dyn0: file not found"):
        parse_dyn0(tmp_path / "g.dyn0")


def test_parse_dyn0_of_a_real_run(al_dyn):
    mesh, q = parse_dyn0(al_dyn / "fine" / "fine.dyn0")
    assert mesh == (4, 4, 4) and q.shape == (8, 3)  # fcc 4x4x4: 8 irreducible points, Γ first
    # alat = |a1| of the primitive cell here, so the X point (2π/a_conv)(1,0,0) has length 1/√2
    assert np.allclose(q[0], 0.0) and np.isclose(np.linalg.norm(q, axis=1).max(), np.sqrt(0.5 + 0.125))


def _nscf_input():
    return pw_input(build(["Al"], "fcc"), {"Al": PseudoSpec("Al", Path("/pseudo/Al.UPF"), 30.0, 120.0)},
                    calculation="nscf", kpoints=(4, 4, 4), ecutwfc_Ry=30.0, ecutrho_Ry=120.0, outdir="./out",
                    conv_thr=1e-10, occupations="tetrahedra_opt")


def test_cg_retry_input():
    """The retry is the same PWInput with 'cg' first in &ELECTRONS: its text is the original's with one line added."""
    from betenet.qe.workflow import with_cg_diagonalization

    pw = _nscf_input()
    text = pw.to_str()
    out = with_cg_diagonalization(pw)
    lines = out.to_str().split("\n")
    i = lines.index("&ELECTRONS")
    assert lines[i + 1] == "  diagonalization = 'cg'" and out.to_str().replace("  diagonalization = 'cg'\n", "") == text
    assert pw.to_str() == text  # the original is not changed
    assert with_cg_diagonalization(out) is None  # never twice


def test_loose_nscf_retry_input():
    """conv_thr = 10 ethr N_el first in &ELECTRONS, written %.3e, diagonalization dropped; the rest of the
    input as it was."""
    from betenet.qe.inputs import PWInput
    from betenet.qe.workflow import with_cg_diagonalization, with_loose_nscf_threshold

    pw = with_cg_diagonalization(_nscf_input())
    out = with_loose_nscf_threshold(pw, 20.0)
    lines = out.to_str().split("\n")
    i = lines.index("&ELECTRONS")
    assert lines[i : i + 4] == ["&ELECTRONS", "  conv_thr = 2.000e-06", "  mixing_beta = 0.4", "/"]
    drop = ("  diagonalization = 'cg'", "  conv_thr = 1d-10", "  conv_thr = 2.000e-06")
    assert [ln for ln in lines if ln not in drop] == [ln for ln in pw.to_str().split("\n") if ln not in drop]
    assert PWInput.from_str(out.to_str()).electrons["conv_thr"] == 2e-6
    assert with_loose_nscf_threshold(out, 20.0) is None  # never twice
    scf = PWInput.from_str(pw.to_str().replace("'nscf'", "'scf'"))
    assert with_loose_nscf_threshold(scf, 20.0) is None  # scf: not this retry
    assert with_loose_nscf_threshold(pw, 0.0) is None
