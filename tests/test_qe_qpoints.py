"""The run directory's archive of finished el-ph q points (:mod:`betenet.qe.qpoints`), on files laid out
as ph.x writes them (the real end-to-end resume after a lost scratch is in ``test_qe_real.py``)."""

from __future__ import annotations

import json
import tarfile

import pytest

from betenet.qe.qpoints import QPointArchive, QPointArchiveError, fingerprint, point_files

SCF = "&CONTROL\n  calculation = 'scf'\n  pseudo_dir = '/tmp/a/pseudo/'\n  outdir = './out'\n/\n&SYSTEM\n  ecutwfc = 90.0\n/\n"
PH = "&INPUTPH\n  fildyn = 'elph.dyn'\n  start_q = 1\n  last_q = 1\n/\n"


def _ph_point(cwd, iq: int, *, n_sigma: int = 3) -> None:
    """The files one ``start_q = last_q = iq`` el-ph call of ph.x leaves (plus the scratch it does not need)."""
    (cwd / "elph_dir").mkdir(parents=True, exist_ok=True)
    (cwd / f"elph.dyn{iq}").write_text(f"dynamical matrix of q {iq}\n")
    (cwd / f"ph_elph.q{iq}.in").write_text(PH.replace("= 1", f"= {iq}"))
    (cwd / f"ph_elph.q{iq}.out").write_text(f"log of q {iq}\nJOB DONE.\n")
    for s in range(n_sigma):
        (cwd / "elph_dir" / f"a2Fq2r.{51 + s}.{iq}").write_text(f"gamma q {iq} sigma {s}\n")
    (cwd / "elph_dir" / f"elph.inp_lambda.{iq}").write_text(f"lambda q {iq}\n")
    if iq == 1:
        (cwd / "elph.dyn0").write_text("4 4 4\n3\n")
    (cwd / "out" / "_ph0").mkdir(parents=True, exist_ok=True)
    (cwd / "out" / "_ph0" / f"bn.dvscf{iq}").write_bytes(b"\0" * 64)


def test_fingerprint_ignores_local_paths_and_the_q_range_only():
    base = fingerprint([SCF, PH], ["md5a", "md5b"])
    moved = SCF.replace("/tmp/a/pseudo/", "/scratch/elsewhere/pseudo/").replace("'./out'", "'/x/out'")
    assert fingerprint([moved, PH.replace("= 1", "= 7")], ["md5b", "md5a"]) == base
    assert fingerprint([SCF.replace("90.0", "80.0"), PH], ["md5a", "md5b"]) != base
    assert fingerprint([SCF, PH], ["md5a", "md5c"]) != base
    assert fingerprint([SCF, PH.replace("elph.dyn", "x.dyn")], ["md5a", "md5b"]) != base


def test_point_files_are_the_points_own_files(tmp_path):
    for iq in (1, 2, 12):
        _ph_point(tmp_path, iq)
    names = sorted(str(p) for p in point_files(tmp_path, "ph_elph", "elph.dyn", 2))
    assert names == sorted(["elph.dyn2", "ph_elph.q2.in", "ph_elph.q2.out", "elph_dir/a2Fq2r.51.2",
                            "elph_dir/a2Fq2r.52.2", "elph_dir/a2Fq2r.53.2", "elph_dir/elph.inp_lambda.2"])
    assert "elph.dyn0" in {str(p) for p in point_files(tmp_path, "ph_elph", "elph.dyn", 1)}
    assert not any("12" in str(p) for p in point_files(tmp_path, "ph_elph", "elph.dyn", 1))


def test_saved_points_are_restored_into_an_empty_scratch(tmp_path):
    scratch, fresh, run = tmp_path / "s", tmp_path / "fresh", tmp_path / "run"
    arch = QPointArchive(run / "ph_elph.q", "ph_elph", "elph.dyn", fingerprint([SCF, PH], ["m"]))
    assert arch.manifest() is None and arch.restore(fresh) is None
    for iq, wall in ((1, 184.04), (8, 655.2)):
        _ph_point(scratch, iq)
        arch.save(scratch, iq, wall, n_q=8)
    man = json.loads((run / "ph_elph.q" / "manifest.json").read_text())
    assert man["n_q"] == 8 and man["q_wall_s"] == {"1": 184.04, "8": 655.2}
    fresh.mkdir()
    progress = arch.restore(fresh)
    assert progress["n_q"] == 8 and progress["q_wall_s"] == {"1": 184.04, "8": 655.2}
    for iq in (1, 8):
        for rel in point_files(scratch, "ph_elph", "elph.dyn", iq):
            assert (fresh / rel).read_bytes() == (scratch / rel).read_bytes(), rel
    assert (fresh / "elph.dyn0").exists() and not (fresh / "out").exists()  # dvscf files are not kept
    # a second archive of the same calculation reads the same manifest
    assert QPointArchive(run / "ph_elph.q", "ph_elph", "elph.dyn", arch.fingerprint).restore(tmp_path / "f2")["n_q"] == 8


def test_an_archive_of_another_calculation_is_refused_and_kept(tmp_path):
    scratch, run = tmp_path / "s", tmp_path / "run"
    _ph_point(scratch, 1)
    QPointArchive(run / "ph_elph.q", "ph_elph", "elph.dyn", fingerprint([SCF, PH], ["m"])).save(scratch, 1, 10.0, 3)
    other = QPointArchive(run / "ph_elph.q", "ph_elph", "elph.dyn", fingerprint([SCF.replace("90.0", "80.0"), PH], ["m"]))
    before = (run / "ph_elph.q" / "manifest.json").read_text()
    with pytest.raises(QPointArchiveError, match=r"ph_elph\.q: its q points belong to another calculation"):
        other.restore(tmp_path / "fresh")
    with pytest.raises(QPointArchiveError, match="another calculation"):
        other.save(scratch, 1, 10.0, 3)
    assert (run / "ph_elph.q" / "manifest.json").read_text() == before


def test_a_point_without_its_dynamical_matrix_is_not_archived(tmp_path):
    scratch = tmp_path / "s"
    _ph_point(scratch, 2)
    (scratch / "elph.dyn2").unlink()
    arch = QPointArchive(tmp_path / "run" / "ph_elph.q", "ph_elph", "elph.dyn", "f")
    with pytest.raises(QPointArchiveError, match=r"elph\.dyn2: ph.x wrote no dynamical matrix for q point 2"):
        arch.save(scratch, 2, 1.0, 3)
    assert arch.manifest() is None


def test_damaged_archives_name_the_file(tmp_path):
    scratch, run = tmp_path / "s", tmp_path / "run"
    _ph_point(scratch, 1)
    arch = QPointArchive(run / "ph_elph.q", "ph_elph", "elph.dyn", "f")
    arch.save(scratch, 1, 1.0, 3)
    (run / "ph_elph.q" / "q1.tar.gz").unlink()
    with pytest.raises(QPointArchiveError, match=r"q1\.tar\.gz: listed in .*manifest\.json but missing"):
        arch.restore(tmp_path / "fresh")
    evil = run / "ph_elph.q" / "q1.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        (tmp_path / "x").write_text("x")
        tar.add(tmp_path / "x", arcname="../escape")
    with pytest.raises(QPointArchiveError, match="unexpected member '../escape'"):
        arch.restore(tmp_path / "fresh")
    (run / "ph_elph.q" / "manifest.json").write_text("{not json")
    with pytest.raises(QPointArchiveError, match=r"manifest\.json: not valid JSON"):
        arch.manifest()
