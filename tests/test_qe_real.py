"""One real, tiny Quantum ESPRESSO el-ph calculation end to end (fcc Al, :data:`betenet.config.QE_CI`).

Runs :func:`betenet.qe.workflow.run_material` -- the code path of the dataset -- in a temporary
directory: vc-relax -> dense scf -> nscf/projwfc eDOS -> scf -> ph.x el-ph (q 2x2x2, reused as the
coarse PhDOS mesh) -> q2r -> matdyn -> record.  About 30-40 s on 2 idle cores; 70-80 s measured here
while a background QE dataset run shared the cores.  ``make test`` installs QE (``make qe-deps``);
without pw.x the module is skipped with that instruction.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from betenet.config import QE_CI
from betenet.qe.prototypes import build
from betenet.qe.runner import QEError, qe_available, run_qe
from betenet.qe.status import STEPS, load_status
from betenet.qe.workflow import run_material
from betenet.records import A2F_NEGATIVE_WEIGHT_TOLERANCE, LAMBDA_QE_RTOL, load_record, validate_record

pytestmark = [
    pytest.mark.qe,
    pytest.mark.skipif(
        not qe_available(),
        reason="Quantum ESPRESSO (pw.x ph.x q2r.x matdyn.x projwfc.x) not on PATH: run `make qe-deps`",
    ),
]

MID = "Al1-fcc"


@pytest.fixture(scope="module")
def al_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("qe-al")
    cfg = dataclasses.replace(QE_CI, scratch_dir=str(root / "scratch"), keep_scratch=True)
    dirs = {"runs_dir": root / "qe", "records_dir": root / "records"}
    t0 = time.perf_counter()
    status = run_material(MID, build(["Al"], "fcc"), cfg, **dirs)
    wall = time.perf_counter() - t0
    return {"cfg": cfg, "status": status, "wall_s": wall, "dir": dirs["runs_dir"] / MID, **dirs}


def test_al_is_kept_with_every_step_done(al_run):
    st = al_run["status"]
    assert st.state == "kept", f"{st.reason}: {st.detail}"
    assert all(st.done(s) for s in STEPS)
    # the 2x2x2 q mesh is the coarse-PhDOS mesh: those steps are reused, not recomputed
    assert "reused_from" in st.steps["ph_coarse"]
    grids = json.loads((al_run["dir"] / "grids.json").read_text())
    assert grids["q"] == [2, 2, 2] and grids["k"] == [16, 16, 16] and grids["k_scf"] == [8, 8, 8]
    for name in ("status.json", "relax.in", "relax.out.gz", "ph_elph.in", "a2f.dat.gz", "edos.dat.gz", "lambda"):
        assert (al_run["dir"] / name).exists(), name
    # ph.x ran one irreducible q per call (fcc 2x2x2: Γ, L, X); the archived log holds all three calls
    ph = st.steps["ph_elph"]
    assert ph["split_q"] is True and len(ph["q_wall_s"]) == ph["n_q_irr"] == 3
    assert ph["wall_s"] == pytest.approx(sum(ph["q_wall_s"]), abs=0.05)
    log = gzip.decompress((al_run["dir"] / "ph_elph.out.gz").read_bytes()).decode()
    assert log.count("JOB DONE") == 3 and log.count("==> betenet: ph_elph.q") == 3
    assert "start_q = 1" in (al_run["dir"] / "ph_elph.in").read_text()
    print(f"\nfcc Al (QE_CI) end to end: {al_run['wall_s']:.1f} s; steps (s): "
          + ", ".join(f"{k} {v['wall_s']}" for k, v in st.steps.items()))


def test_al_physics_in_range(al_run):
    rec = validate_record(load_record(al_run["records_dir"] / f"{MID}.json"))
    assert rec.provenance["accuracy"] == "ci"
    assert rec.provenance["code"].startswith("QE")
    # the BLAS that QE loaded (reference or OpenBLAS, by the alternatives system) is recorded
    assert rec.provenance["blas"] and all("BLAS (/" in b and b.endswith(".so.3)") for b in rec.provenance["blas"])
    # literature (DFT/experiment): λ ≈ 0.38-0.44, ω_log ≈ 270-320 K, T_c(exp) = 1.18 K
    assert 0.25 < rec.lambda_ < 0.6
    assert 200.0 < rec.omega_log_K < 450.0
    assert rec.omega_log_K < rec.omega_2_K < 500.0
    assert 0.0 < rec.tc_ad_K < 5.0
    # our λ from the unclipped α²F is matdyn's own mode sum at the same broadening (validate_record's check)
    assert rec.lambda_ == pytest.approx(rec.provenance["lambda_qe"], rel=LAMBDA_QE_RTOL)
    # no imaginary modes; α²F kept unclipped (small negative interpolation lobes) and inside the phonon band
    q = al_run["status"].quality
    assert q["min_freq_ph_meV"] > -1.0 and q["min_freq_matdyn_meV"] > -1.0
    assert rec.a2f.max() > 0 and rec.provenance["a2f_negative_weight_fraction"] < A2F_NEGATIVE_WEIGHT_TOLERANCE
    top = rec.a2f_omega_meV[rec.a2f > 1e-3 * rec.a2f.max()].max()
    assert 30.0 < top < 55.0  # Al's phonon band ends near 40 meV
    assert 0.1 < rec.edos_ef_per_eV < 1.0  # states/eV/cell (one atom)
    assert rec.structure.lattice.a * 2**0.5 == pytest.approx(4.02, abs=0.1)  # a_fcc(PBEsol) ≈ 4.01-4.04 Å


def test_second_call_resumes_without_recomputing(al_run):
    d, cfg = al_run["dir"], al_run["cfg"]
    before = {p.name: p.stat().st_mtime_ns for p in d.iterdir()}
    rec_path = al_run["records_dir"] / f"{MID}.json"
    rec_mtime = rec_path.stat().st_mtime_ns
    t0 = time.perf_counter()
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=al_run["runs_dir"], records_dir=al_run["records_dir"])
    assert time.perf_counter() - t0 < 5.0
    assert st.state == "kept"
    assert {p.name: p.stat().st_mtime_ns for p in d.iterdir()} == before
    assert rec_path.stat().st_mtime_ns == rec_mtime


def test_interrupted_run_resumes_at_first_unfinished_step(al_run):
    """A run killed after matdyn: only the remaining steps run, earlier outputs stay untouched."""
    d, cfg = al_run["dir"], al_run["cfg"]
    status = json.loads((d / "status.json").read_text())
    done_before = {k: v["finished_at"] for k, v in status["steps"].items()}
    for step in ("matdyn_coarse", "record"):
        status["steps"].pop(step)
    status["state"] = "running"
    (d / "status.json").write_text(json.dumps(status))
    (al_run["records_dir"] / f"{MID}.json").unlink()
    relax_mtime = (d / "relax.out.gz").stat().st_mtime_ns
    t0 = time.perf_counter()
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=al_run["runs_dir"], records_dir=al_run["records_dir"])
    assert time.perf_counter() - t0 < 10.0
    assert st.state == "kept"
    assert (al_run["records_dir"] / f"{MID}.json").exists()
    assert (d / "relax.out.gz").stat().st_mtime_ns == relax_mtime
    after = load_status(MID, al_run["runs_dir"]).steps
    for step in STEPS[:STEPS.index("matdyn_coarse")]:
        assert after[step]["finished_at"] == done_before[step], step


def test_failed_qe_step_reports_the_tail_of_its_output(tmp_path):
    bad = "&CONTROL\n  calculation = 'scf'\n  no_such_variable = 1\n/\n"
    with pytest.raises(QEError) as err:
        run_qe("pw.x", bad, tmp_path, "broken")
    e = err.value
    assert e.executable == "pw.x" and e.directory == tmp_path
    assert "Error" in e.tail and "read_namelists" in e.tail
    assert str(tmp_path) in str(e) and "last lines of its output" in str(e)
    assert (tmp_path / "broken.in").read_text() == bad


def _mode_lambdas(path) -> np.ndarray:
    """(n_broadenings, n_modes) mode-resolved λ of one ph.x ``elph_dir/elph.inp_lambda.<iq>`` file."""
    text = path.read_text()
    lam = [float(x) for x in re.findall(r"lambda\(\s*\d+\)=\s*([-\d.]+)", text)]
    n_sigma = len(re.findall(r"Gaussian Broadening", text))
    return np.array(lam).reshape(n_sigma, -1)


def _copy_run(al_run, tmp_path, *, redo_from: str, ignore=None, **cfg_changes):
    """A copy of the Al run (data dir + scratch) with the steps from ``redo_from`` on marked undone."""
    runs, scratch = tmp_path / "qe", tmp_path / "scratch"
    shutil.copytree(al_run["runs_dir"], runs)
    shutil.copytree(al_run["cfg"].scratch_dir, scratch, ignore=ignore)
    cfg = dataclasses.replace(al_run["cfg"], scratch_dir=str(scratch), **cfg_changes)
    status = json.loads((runs / MID / "status.json").read_text())
    for step in STEPS[STEPS.index(redo_from):]:
        status["steps"].pop(step, None)
    status["state"] = "running"
    (runs / MID / "status.json").write_text(json.dumps(status))
    return cfg, runs, scratch / MID


def test_one_call_per_q_matches_one_call_for_all(al_run, tmp_path):
    """The workflow's split el-ph run against its one-call path (``ph_split_q=False``) on the same scf:
    the same frequencies, and the same λ(q) up to the double-delta sampling noise of this 16^3 mesh
    (measured: 0.1 % at X, where the two runs order a degenerate pair differently; Γ and L identical)."""
    cfg, runs, one = _copy_run(al_run, tmp_path, redo_from="ph_elph", ph_split_q=False,
                               ignore=shutil.ignore_patterns("_ph0", "elph_dir", "elph.dyn*", "ph_elph.*"))
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=runs, records_dir=tmp_path / "records")
    assert st.state == "kept" and "split_q" not in st.steps["ph_elph"] and st.steps["ph_elph"]["n_q_irr"] == 3
    assert (one / "ph_elph.out").exists() and not (one / "ph_elph.q1.out").exists()
    single = json.loads((runs / MID / "ph_freqs.json").read_text())
    split = json.loads((al_run["dir"] / "ph_freqs.json").read_text())
    assert np.allclose(single["q_cart_2pi_alat"], split["q_cart_2pi_alat"])  # ph.x's order in both
    assert np.allclose(single["freq_meV"], split["freq_meV"], atol=2e-3)
    src = Path(al_run["cfg"].scratch_dir) / MID
    for iq in (1, 2, 3):
        a = _mode_lambdas(one / "elph_dir" / f"elph.inp_lambda.{iq}").sum(axis=1)
        b = _mode_lambdas(src / "elph_dir" / f"elph.inp_lambda.{iq}").sum(axis=1)
        assert a.shape == b.shape == (cfg.n_elph_smearings,)
        assert np.allclose(a, b, rtol=1e-2, atol=1e-3), (iq, a, b)
    assert _mode_lambdas(one / "elph_dir" / "elph.inp_lambda.3").sum() > 1.0  # X carries coupling: not a vacuous check
    lam_one = load_record(tmp_path / "records" / f"{MID}.json").lambda_
    assert lam_one == pytest.approx(load_record(al_run["records_dir"] / f"{MID}.json").lambda_, rel=5e-3)


def test_nan_tetrahedra_fall_back_to_gaussian_fine_phdos_and_a2f(al_run, tmp_path, monkeypatch):
    """matdyn 6.7's tetrahedra gave NaN for the whole fine α²F and PhDOS of B2 BaCd and L1_2 Al3Sc
    (not reproducible on Al).  The detector is forced here; the fallback itself is real: matdyn.x on
    the full mesh writes linewidths and eigenvectors, and the Gaussian α²F must reproduce the
    tetrahedron one (measured on this 8^3 mesh: λ within 1.3 %, ω_log within 1 %)."""
    from betenet.qe import workflow

    cfg, runs, scratch = _copy_run(al_run, tmp_path, redo_from="matdyn")
    monkeypatch.setattr(workflow, "dos_file_finite", lambda path: False)
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=runs, records_dir=tmp_path / "records")
    assert st.state == "kept", f"{st.reason}: {st.detail}"
    step = st.steps["matdyn"]
    assert step["a2f_method"].startswith("gaussian (sigma 0.5 meV") and step["dos_method"] == step["a2f_method"]
    assert "reused_from" in st.steps["matdyn_coarse"]  # the coarse DOS did not go through the forced detector
    assert (runs / MID / "matdyn_gauss.in").exists() and (scratch / "gauss" / "elph.gamma.10").exists()
    rec = load_record(tmp_path / "records" / f"{MID}.json")
    ref = load_record(al_run["records_dir"] / f"{MID}.json")
    assert rec.lambda_ == pytest.approx(ref.lambda_, rel=0.02)
    assert rec.omega_log_K == pytest.approx(ref.omega_log_K, rel=0.015)
    assert rec.omega_2_K == pytest.approx(ref.omega_2_K, rel=0.015)
    assert np.all(np.isfinite(rec.a2f)) and rec.a2f.max() > 0
    assert np.trapezoid(rec.phdos_total, rec.phdos_omega_meV) == pytest.approx(3.0, rel=5e-3)
    # every broadening, not only the selected one, against matdyn's tetrahedron λ of that broadening
    from betenet.qe.parsers import parse_a2f_dos, read_table

    _, data = read_table(runs / MID / "a2f.dat.gz")
    for i in range(1, cfg.n_elph_smearings + 1):
        tetra = parse_a2f_dos(Path(al_run["cfg"].scratch_dir) / MID / f"a2F.dos{i}")
        lam = 2 * np.trapezoid(data[:, i] / data[:, 0], data[:, 0])
        assert lam == pytest.approx(tetra.lambda_qe, rel=0.02, abs=1e-3), i


def test_killed_el_ph_run_resumes_at_its_first_unfinished_q(al_run, tmp_path):
    """A run killed during the last q point's ph.x call: the finished points are not recomputed."""
    cfg, runs, s = _copy_run(al_run, tmp_path, redo_from="ph_elph")
    progress = json.loads((s / "ph_elph.progress.json").read_text())
    assert progress["n_q"] == 3 and sorted(progress["q_wall_s"]) == ["1", "2", "3"]
    progress["q_wall_s"].pop("3")
    (s / "ph_elph.progress.json").write_text(json.dumps(progress))
    (s / "elph.dyn3").write_text("half-written by a killed ph.x\n")
    (s / "out" / "_ph0").mkdir(exist_ok=True)
    (s / "out" / "_ph0" / "debris").write_text("x")
    kept = {n: (s / n).stat().st_mtime_ns for n in ("ph_elph.q1.out", "ph_elph.q2.out", "elph.dyn1", "elph.dyn2")}
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=runs, records_dir=tmp_path / "records")
    assert st.state == "kept", f"{st.reason}: {st.detail}"
    assert {n: (s / n).stat().st_mtime_ns for n in kept} == kept  # Γ and L not recomputed
    assert not (s / "out" / "_ph0" / "debris").exists()
    before = load_record(al_run["records_dir"] / f"{MID}.json")
    after = load_record(tmp_path / "records" / f"{MID}.json")
    assert after.lambda_ == pytest.approx(before.lambda_, rel=1e-6)  # X recomputed from the same state
    assert np.allclose(after.a2f, before.a2f, atol=1e-9)


def test_el_ph_run_stops_at_the_first_unstable_q(tmp_path):
    """bcc Al (mechanically unstable) with the CI settings: ph.x finds -12.7 meV at N, the second of
    the 2x2x2 mesh's three points (Γ, N, H; measured with the early stop off: H is stable, 34-38 meV).
    The run stops after N, H is never computed, and the material is rejected at once."""
    cfg = dataclasses.replace(QE_CI, scratch_dir=str(tmp_path / "scratch"), keep_scratch=True)
    assert cfg.ph_split_q and cfg.ph_stop_at_imaginary
    st = run_material("Al1-bcc", build(["Al"], "bcc"), cfg, runs_dir=tmp_path / "qe", records_dir=tmp_path / "records")
    assert st.state == "rejected" and st.reason == "imaginary_modes"
    ph = st.steps["ph_elph"]
    assert ph["stopped_at_q"] == 2 and ph["n_q_irr"] == 3 and len(ph["q_wall_s"]) == 2
    assert ph["min_freq_meV"] == pytest.approx(-12.67, abs=0.3)
    assert "at ph.x q point 2 of 3" in st.detail and "-12.6" in st.detail
    assert not (tmp_path / "scratch" / "Al1-bcc" / "ph_elph.q3.out").exists()
    for step in ("q2r", "matdyn", "record"):
        assert step not in st.steps
    freqs = json.loads((tmp_path / "qe" / "Al1-bcc" / "ph_freqs.json").read_text())
    assert len(freqs["q_cart_2pi_alat"]) == 2
    assert not (tmp_path / "records" / "Al1-bcc.json").exists()


def test_nscf_that_davidson_and_cg_leave_unconverged_gets_a_bounded_threshold(tmp_path):
    """fcc Sc with the project's Sc pseudopotential (dataset settings, 4^3 k): the nscf eDOS run stops with
    "too many bands are not converged" under Davidson and under CG at pw.x's own threshold (~1e-12 Ry),
    as Sc1-fcc and Al3Sc-L12 did in the dataset; the last retry at 1e-8 Ry finishes, and every try
    is archived."""
    from betenet.config import get_profile
    from betenet.qe.pseudo import PseudoLibrary
    from betenet.qe.parsers import parse_pw_output
    from betenet.qe.workflow import NSCF_RETRY_ETHR_RY, MaterialRun

    cfg = dataclasses.replace(get_profile("default").qe, scratch_dir=str(tmp_path / "scratch"))
    s = build(["Sc"], "fcc")
    run = MaterialRun("Sc1-fcc", s, cfg, PseudoLibrary.default(), tmp_path / "qe", tmp_path / "records", "fcc", None)
    run.prepare()
    run.qe("scf", "pw.x", run.pw(s, "scf", (4, 4, 4)))
    run.qe("nscf_edos", "pw.x", run.pw(s, "nscf", (4, 4, 4), occupations="tetrahedra_opt"))
    for tried in ("davidson-failed", "cg-failed"):
        assert "too many bands are not converged" in gzip.decompress(
            (run.dir / f"nscf_edos.{tried}.out.gz").read_bytes()).decode()
    archived = (run.dir / "nscf_edos.in").read_text()
    assert "diagonalization" not in archived
    assert re.search(r"conv_thr = 1\.100e-06\n", archived)  # 10 x 1e-8 Ry x 11 electrons
    log = (run.scratch / "nscf_edos.out").read_text()
    assert re.search(r"ethr =\s+1\.00E-08", log) and NSCF_RETRY_ETHR_RY == 1e-8  # what pw.x used
    assert "JOB DONE" in log and parse_pw_output(run.scratch / "nscf_edos.out").fermi_energy_eV is not None


def test_lost_scratch_resumes_from_the_archived_q_points(al_run, tmp_path):
    """A new machine: the scratch directory is gone, the el-ph run had finished Γ and L (X was being
    computed).  pw.x's scf_dense and scf run again, the eDOS steps do not, Γ and L come back from
    ``ph_elph.q/`` and only X runs; the record is the uninterrupted one."""
    from betenet.qe.qpoints import QPointArchiveError

    runs = tmp_path / "qe"
    shutil.copytree(al_run["runs_dir"], runs)
    arch = runs / MID / "ph_elph.q"
    man = json.loads((arch / "manifest.json").read_text())
    assert sorted(man["q_wall_s"]) == ["1", "2", "3"] and man["n_q"] == 3
    man["q_wall_s"].pop("3")
    (arch / "manifest.json").write_text(json.dumps(man))
    (arch / "q3.tar.gz").unlink()
    status = json.loads((runs / MID / "status.json").read_text())
    before = {k: v["finished_at"] for k, v in status["steps"].items()}
    for step in STEPS[STEPS.index("ph_elph"):]:
        status["steps"].pop(step)
    status["state"] = "running"
    (runs / MID / "status.json").write_text(json.dumps(status))
    cfg = dataclasses.replace(al_run["cfg"], scratch_dir=str(tmp_path / "new-scratch"))
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=runs, records_dir=tmp_path / "records")
    assert st.state == "kept", f"{st.reason}: {st.detail}"
    for step in ("relax", "nscf_edos", "projwfc"):
        assert st.steps[step]["finished_at"] == before[step], step
    for step in ("scf_dense", "scf"):
        assert st.steps[step]["finished_at"] != before[step], step
    ph = st.steps["ph_elph"]
    assert ph["n_q_irr"] == 3 and ph["q_wall_s"][:2] == [man["q_wall_s"]["1"], man["q_wall_s"]["2"]]
    log = gzip.decompress((runs / MID / "ph_elph.out.gz").read_bytes()).decode()
    assert log.count("JOB DONE") == 3
    assert sorted(json.loads((arch / "manifest.json").read_text())["q_wall_s"]) == ["1", "2", "3"]
    ref = load_record(al_run["records_dir"] / f"{MID}.json")
    rec = load_record(tmp_path / "records" / f"{MID}.json")
    assert rec.lambda_ == pytest.approx(ref.lambda_, rel=1e-4)
    assert rec.omega_log_K == pytest.approx(ref.omega_log_K, rel=1e-4)
    assert np.allclose(rec.a2f, ref.a2f, atol=1e-5 * ref.a2f.max())
    # the same archive under other settings: refused, with the directory named, and left as it was
    status = json.loads((runs / MID / "status.json").read_text())
    for step in STEPS[STEPS.index("scf_dense"):]:
        status["steps"].pop(step, None)
    status["state"] = "running"
    (runs / MID / "status.json").write_text(json.dumps(status))
    shutil.rmtree(tmp_path / "records")
    kept = (arch / "manifest.json").read_text()
    other = dataclasses.replace(cfg, scratch_dir=str(tmp_path / "third-scratch"), tr2_ph=1e-13)
    with pytest.raises(QPointArchiveError, match="ph_elph.q: its q points belong to another calculation"):
        run_material(MID, build(["Al"], "fcc"), other, runs_dir=runs, records_dir=tmp_path / "records")
    assert (arch / "manifest.json").read_text() == kept


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="no mpirun (openmpi-bin): MPI pools not testable")
def test_mpi_pools_give_the_serial_labels(al_run, tmp_path):
    """The same material on 2 MPI ranks with 2 k-point pools (``QEConfig.mpi_procs``) from the dense scf on:
    pw.x's a2Fsave, projwfc's eDOS and ph.x's el-ph matrices are gathered over pools.  Frequencies and the
    eDOS are the serial ones; within a degenerate pair (L, X) ph.x splits λ between the two modes differently
    (their sum is the same), which the double-delta sampling of this 16^3 mesh turns into 0.37 % on λ
    (measured; the split-q test above allows the same 0.5 %)."""
    cfg, runs, _ = _copy_run(al_run, tmp_path, redo_from="scf_dense", mpi_procs=2,
                             ignore=shutil.ignore_patterns("_ph0", "elph_dir", "elph.dyn*", "ph_elph.*"))
    shutil.rmtree(runs / MID / "ph_elph.q")  # every q point is computed again, on 2 ranks
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=runs, records_dir=tmp_path / "records")
    assert st.state == "kept", f"{st.reason}: {st.detail}"
    for step in ("scf_dense", "projwfc", "scf", "ph_elph"):
        assert st.steps[step]["mpi_procs"] == 2, step
    assert "mpi_procs" not in st.steps["matdyn"]  # q2r.x/matdyn.x run serially
    log = gzip.decompress((runs / MID / "ph_elph.out.gz").read_bytes()).decode()
    assert "running on        2 processors" in log or "running on     2 processors" in log
    assert "npool     =       2" in log
    ref = load_record(al_run["records_dir"] / f"{MID}.json")
    rec = load_record(tmp_path / "records" / f"{MID}.json")
    assert rec.lambda_ == pytest.approx(ref.lambda_, rel=5e-3)
    assert rec.omega_log_K == pytest.approx(ref.omega_log_K, rel=5e-3)
    assert rec.edos_ef_per_eV == pytest.approx(ref.edos_ef_per_eV, rel=1e-4)
    freqs = [json.loads((d / "ph_freqs.json").read_text())["freq_meV"] for d in (runs / MID, al_run["dir"])]
    assert np.allclose(*freqs, atol=2e-3)
    from betenet.qe.summary import material_cpu_seconds, qe_cpu_seconds

    one_rank = qe_cpu_seconds(runs / MID / "ph_elph.out.gz")[0]
    assert material_cpu_seconds(runs / MID) > 2 * one_rank * 0.999  # ph.x's CPU counted for both ranks


def test_interpolation_dip_is_checked_by_dfpt(al_run, tmp_path, monkeypatch):
    """Al has no dip: one is put into matdyn's mesh at X (its lowest mode read as -2.5 meV), on 1 of the
    mesh's 29 points.  The check's ph.x run at that point is real, on the el-ph run's own scf: its frequencies
    are those of the el-ph run's X point, so the dip is an artefact and Al is kept, the check in its record."""
    from betenet.qe import dipcheck, workflow
    from betenet.qe.parsers import parse_matdyn_freq

    # 1 of this small mesh's 29 points is 3.4 %: the allowed fraction raised from the level's 2 %
    cfg, runs, _ = _copy_run(al_run, tmp_path, redo_from="matdyn", dip_check=True, dip_max_fraction=0.05)
    ph = json.loads((al_run["dir"] / "ph_freqs.json").read_text())
    q_ph = np.asarray(ph["q_cart_2pi_alat"])
    ix = int(np.argmax(np.linalg.norm(q_ph, axis=1)))  # X, the longest of Γ, L, X
    q_x, f_x = q_ph[ix], np.asarray(ph["freq_meV"][ix])

    def with_dip(path):
        q, f = parse_matdyn_freq(path)
        at = np.flatnonzero(np.all(np.isclose(np.abs(q), np.abs(q_x), atol=1e-5), axis=1))
        assert at.size == 1, "X is on matdyn's mesh"
        f = f.copy()
        f[at[0], 0] = -2.5 / 0.12398419843320026  # meV -> cm^-1
        return q, f

    monkeypatch.setattr(workflow, "parse_matdyn_freq", with_dip)
    monkeypatch.setattr(dipcheck, "parse_matdyn_freq", with_dip)
    st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=runs, records_dir=tmp_path / "records")
    assert st.state == "kept", f"{st.reason}: {st.detail}"
    assert st.steps["matdyn"]["min_freq_meV"] == pytest.approx(-2.5)
    dip = st.steps["ph_dip"]
    assert np.allclose(np.abs(dip["q_cart_2pi_alat"]), np.abs(q_x), atol=1e-5)
    assert dip["matdyn_points_below"] == 1 and dip["matdyn_min_freq_meV"] == pytest.approx(-2.5)
    assert np.allclose(sorted(dip["freq_meV"]), sorted(f_x), atol=0.02)  # DFPT at X = the el-ph run's X
    assert "interpolation artefact" in st.quality["interpolation_dip"]
    assert (runs / MID / "ph_dip.in").exists() and (runs / MID / "ph_dip.out.gz").exists()
    rec = json.loads((tmp_path / "records" / f"{MID}.json").read_text())
    assert "interpolation artefact" in rec["provenance"]["quality"]["interpolation_dip"]
    assert "interpolation_dip" in rec["flags"]
    # the same dip found unstable by DFPT: rejected, with DFPT's frequency in the reason
    cfg2, runs2, _ = _copy_run(al_run, tmp_path / "b", redo_from="matdyn", dip_check=True, dip_max_fraction=0.05)
    real_parse = dipcheck.parse_ph_output
    monkeypatch.setattr(dipcheck, "parse_ph_output", lambda p: dataclasses.replace(real_parse(p), freq_THz=-real_parse(p).freq_THz))
    st2 = run_material(MID, build(["Al"], "fcc"), cfg2, runs_dir=runs2, records_dir=tmp_path / "b" / "records")
    assert st2.state == "rejected" and st2.reason == "imaginary_modes" and "unstable between the ph.x q points" in st2.detail
    assert not (tmp_path / "b" / "records" / f"{MID}.json").exists()


def test_coarse_phonons_take_gamma_from_the_el_ph_run(al_run, tmp_path):
    """A coarse q mesh that is no subset of the el-ph mesh (4x4x4 against Al's 2x2x2) is a ph.x run of its
    own; the el-ph run's scf mesh (8x8x8) is a multiple of it, so it runs on that scf (step ``scf_coarse``
    copies it): its points off Γ first (step ``ph_precheck``, a stability check), then Γ, the el-ph run's
    ``elph.dyn1`` copied, not computed again.  Against the same steps with Γ computed (``elph.dyn1`` left
    out of the scratch copy): the same q points and the same coarse PhDOS."""
    from betenet.qe.parsers import parse_phdos

    runs = {}
    for case, ignore in (("reused", None), ("computed", shutil.ignore_patterns("elph.dyn1"))):
        cfg, qe_dir, scratch = _copy_run(al_run, tmp_path / case, redo_from="ph_coarse", ignore=ignore,
                                         coarse_q_grid=(4, 4, 4))
        status = json.loads((qe_dir / MID / "status.json").read_text())
        for step in ("scf_coarse", "ph_precheck"):  # nothing to do with the coarse mesh 2x2x2
            assert status["steps"].pop(step)["reused_from"]
        (qe_dir / MID / "status.json").write_text(json.dumps(status))
        st = run_material(MID, build(["Al"], "fcc"), cfg, runs_dir=qe_dir, records_dir=tmp_path / case / "records")
        assert st.state == "kept", f"{st.reason}: {st.detail}"
        assert st.steps["scf_coarse"]["k"] == [8, 8, 8] and "el-ph run's scf" in st.steps["scf_coarse"]["reused_from"]
        runs[case] = (st.steps["ph_precheck"], st.steps["ph_coarse"], scratch / "coarse", qe_dir / MID)
    (pre, reused, cdir, rdir), (pre2, computed, cdir2, rdir2) = runs["reused"], runs["computed"]
    assert pre["n_q_irr"] == 8 and len(pre["q_wall_s"]) == 7 and pre["min_freq_meV"] > 5 and "stopped_at_q" not in pre
    assert reused["gamma_reused_from"] == "elph.dyn1" and "gamma_reused_from" not in computed
    assert reused["n_q_irr"] == computed["n_q_irr"] == 8 and reused["q_wall_s"][0] == 0.0 < computed["q_wall_s"][0]
    assert reused["wall_s"] == pytest.approx(0.0, abs=0.02)  # every point computed by the pre-check or copied
    assert computed["wall_s"] == pytest.approx(computed["q_wall_s"][0], abs=0.02)  # Γ only
    assert not (cdir / "ph_coarse.q1.out").exists() and (cdir2 / "ph_coarse.q1.out").exists()
    assert (cdir / "coarse.dyn0").read_text() == (cdir2 / "coarse.dyn0").read_text()
    assert "start_q = 2" in (rdir / "ph_coarse.in").read_text()  # the first computed point's input
    logs = gzip.open(rdir / "ph_coarse.out.gz", "rt").read()
    assert [f"ph_coarse.q{i}.out" in logs for i in range(1, 9)] == [False] + [True] * 7
    a, b = parse_phdos(rdir / "phdos_coarse.dos.gz"), parse_phdos(rdir2 / "phdos_coarse.dos.gz")
    assert np.allclose(a.omega_meV, b.omega_meV) and np.allclose(a.total, b.total, atol=1e-6 * b.total.max())


def test_unstable_coarse_point_rejects_before_the_el_ph_run(tmp_path):
    """bcc Al with the CI settings at q 3x3x3 (scf 9x9x9): the el-ph mesh lacks the 2x2x2 mesh's N.  Step
    scf_coarse runs pw.x on 10x10x10, the smallest multiple of the coarse mesh at least as dense, and the
    pre-check finds N unstable there (as the 2x2x2 el-ph test above does on its own scf, -12.7 meV) and
    rejects the material; H, ph_elph and everything after it never run."""
    cfg = dataclasses.replace(QE_CI, scratch_dir=str(tmp_path / "scratch"), keep_scratch=True, q_density_per_invA=6.0)
    st = run_material("Al1-bcc", build(["Al"], "bcc"), cfg, runs_dir=tmp_path / "qe", records_dir=tmp_path / "records")
    assert json.loads((tmp_path / "qe" / "Al1-bcc" / "grids.json").read_text())["q"] == [3, 3, 3]
    assert st.state == "rejected" and st.reason == "imaginary_modes", st.detail
    assert st.steps["scf_coarse"]["k"] == [10, 10, 10] and (tmp_path / "qe" / "Al1-bcc" / "scf_coarse.out.gz").exists()
    pre = st.steps["ph_precheck"]
    assert pre["stopped_at_q"] == 2 and pre["n_q_irr"] == 3 and len(pre["q_wall_s"]) == 1
    assert pre["min_freq_meV"] == pytest.approx(-13.69, abs=0.3)  # measured on the 10x10x10 scf
    assert "point 2 of the coarse 2x2x2 mesh's 3" in st.detail and "ph_precheck" in st.detail
    assert "ph_elph" not in st.steps and not (tmp_path / "scratch" / "Al1-bcc" / "ph_elph.q1.out").exists()
    assert (tmp_path / "qe" / "Al1-bcc" / "ph_coarse.out.gz").exists()  # its CPU is counted
    assert not (tmp_path / "records" / "Al1-bcc.json").exists()
