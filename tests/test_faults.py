"""Fault injection, done for real (issue 17): SIGKILL of child processes, truncated and garbled files,
two concurrent runs, read-only directories, hostile structures and options.

Every case here is listed with its outcome in ``tests/README.md``.  Smoke size: the module runs in
well under two minutes on two busy cores (the only model training is two 2-epoch members).
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from betenet import locks
from betenet.paths import REPO_ROOT

PY = sys.executable


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def _wait_for(cond, timeout_s: float = 20.0, poll_s: float = 0.05) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cond():
            return True
        time.sleep(poll_s)
    return bool(cond())


def _child(code: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT), **kw.pop("env", {}))
    return subprocess.Popen([PY, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


# ============================================================================ locks


def test_lock_is_exclusive_across_processes_and_recovered_after_sigkill(tmp_path):
    """A child takes a lock and is SIGKILLed while holding it: the lock file stays behind, but the
    kernel released the flock, so the next run takes it at once (no stale lock, no timeout)."""
    path = tmp_path / ".m.lock"
    child = _child(f"""
        import time
        from betenet.locks import exclusive
        with exclusive({str(path)!r}, "the test resource"):
            print("held", flush=True)
            time.sleep(60)
    """)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(locks.LockBusyError, match=rf"{path}: the thing is in use by pid {child.pid} on "):
            with locks.exclusive(path, "the thing"):
                pass
        assert locks.holder(path)["pid"] == child.pid
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.stdout.close()
    assert path.exists()  # what a crash leaves behind
    with locks.exclusive(path, "the thing") as p:
        assert locks.holder(p)["pid"] == os.getpid()
    assert not path.exists()  # removed on a clean release


def test_lock_waits_for_the_holder_and_times_out(tmp_path):
    path = tmp_path / ".x.lock"
    order: list[str] = []
    release = threading.Event()

    def second():
        with locks.exclusive(path, "x", wait=True):
            order.append("second")
            release.wait(10)

    with locks.exclusive(path, "x"):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        order.append("first done")
    assert _wait_for(lambda: order == ["first done", "second"], 10)
    with pytest.raises(locks.LockBusyError, match="x is in use by pid"):
        with locks.exclusive(path, "x", wait=True, timeout_s=0.3):
            pass
    release.set()
    t.join(10)


# ============================================================================ QE processes


FAKE_QE = """#!{py}
# stands in for ph.x: records its pid, then keeps writing into its directory
import os, sys, time
sys.stdin.read()
open("fake.pid", "w").write(str(os.getpid()))
while True:
    with open("heartbeat", "a") as fh:
        fh.write("x")
    time.sleep(0.05)
"""


@pytest.fixture
def fake_qe(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "fake_ph.x"
    exe.write_text(FAKE_QE.format(py=PY))
    exe.chmod(0o755)
    return bindir


def _heartbeat_stops(work: Path) -> bool:
    n0 = (work / "heartbeat").stat().st_size
    time.sleep(0.4)
    return (work / "heartbeat").stat().st_size == n0


def test_killing_the_driver_ends_the_qe_process(tmp_path, fake_qe):
    """SIGKILL of the Python process that runs a QE executable: the executable (own process group,
    parent-death signal) is gone within seconds and stops writing into the run directory."""
    work = tmp_path / "run"
    driver = _child(f"""
        from betenet.qe.runner import run_qe
        run_qe("fake_ph.x", "&inputph /", {str(work)!r}, "ph", timeout_s=120)
    """, env={"PATH": f"{fake_qe}:{os.environ['PATH']}"})
    try:
        assert _wait_for(lambda: (work / "fake.pid").exists() and (work / "heartbeat").exists())
        pid = int((work / "fake.pid").read_text())
        assert _alive(pid)
        assert os.getpgid(pid) == pid != os.getpgid(driver.pid)  # its own process group
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        driver.kill()
        driver.stdout.close()
    assert _wait_for(lambda: not _alive(pid), 10), f"fake ph.x (pid {pid}) survived its driver"
    assert _heartbeat_stops(work)


def test_killing_a_dask_driven_qe_run_ends_workers_and_qe_processes(tmp_path, fake_qe):
    """As `betenet qe run`: the driver runs QE through a local Dask cluster of worker processes.
    SIGKILL of the driver ends the worker and the QE process it started (nothing left writing)."""
    work = tmp_path / "run"
    driver = _child(f"""
        from betenet.cluster import dask_client
        from betenet.config import DaskConfig
        from betenet.qe.runner import run_qe
        if __name__ == "__main__":
            with dask_client(DaskConfig(n_workers=1, threads_per_worker=1, processes=True)) as c:
                c.submit(run_qe, "fake_ph.x", "&inputph /", {str(work)!r}, "ph", timeout_s=120).result()
    """, env={"PATH": f"{fake_qe}:{os.environ['PATH']}"})
    try:
        assert _wait_for(lambda: (work / "fake.pid").exists() and (work / "heartbeat").exists(), 60)
        pid = int((work / "fake.pid").read_text())
        worker = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the QE process's parent
        assert worker != driver.pid and _alive(worker)
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        driver.kill()
        driver.stdout.close()
    assert _wait_for(lambda: not _alive(pid) and not _alive(worker), 30), "a worker or the QE process survived"
    assert _heartbeat_stops(work)


def test_a_qe_timeout_kills_the_process_group(tmp_path, fake_qe, monkeypatch):
    from betenet.qe.runner import QEError, run_qe

    monkeypatch.setenv("PATH", f"{fake_qe}:{os.environ['PATH']}")
    work = tmp_path / "run"
    with pytest.raises(QEError, match="timed out after 2 s"):
        run_qe("fake_ph.x", "&inputph /", work, "ph", timeout_s=2)
    pid = int((work / "fake.pid").read_text())
    assert not _alive(pid)
    assert _heartbeat_stops(work)


def test_a_second_qe_run_of_one_material_is_refused_then_allowed_after_a_crash(tmp_path):
    """Two `qe run`s of one material: the second stops at once (LockBusyError naming the holder)
    before touching any file; after the first is SIGKILLed the material can be run again."""
    from pymatgen.core import Lattice, Structure

    from betenet.config import get_profile
    from betenet.qe.dataset import run_one
    from betenet.qe.inputs import QEInputError
    from betenet.qe.status import material_lock_path
    from betenet.qe.workflow import run_material

    runs = tmp_path / "qe"
    lock = material_lock_path("Al1-fcc", runs)
    holder = _child(f"""
        import time
        from betenet.locks import exclusive
        with exclusive({str(lock)!r}, "a QE run"):
            print("held", flush=True)
            time.sleep(60)
    """)
    al = Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cfg = get_profile("smoke").qe
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(locks.LockBusyError, match=rf"QE run of material 'Al1-fcc' is in use by pid {holder.pid}"):
            run_material("Al1-fcc", al, cfg, runs_dir=runs, records_dir=tmp_path / "rec", library=tmp_path / "nolib")
        assert not (runs / "Al1-fcc").exists()
        # the Dask task of `qe run` reports it as busy instead of failing the batch
        out = run_one("Al1-fcc", al.as_dict(), "fcc", cfg, str(runs), str(tmp_path / "rec"))
        assert out["state"] == "busy" and str(holder.pid) in out["detail"]
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        holder.kill()
        holder.stdout.close()
    # the crashed holder's lock is recovered: this run gets past the lock (and stops at the missing
    # pseudopotential library, before any QE process)
    with pytest.raises(QEInputError):
        run_material("Al1-fcc", al, cfg, runs_dir=runs, records_dir=tmp_path / "rec", library=tmp_path / "nolib")
    assert not lock.exists()


# ============================================================================ ensembles


def test_two_ensemble_run_processes_into_one_directory_train_each_member_once(tmp_path):
    """The issue's case: two processes run the same ensemble into one artifacts directory at once.
    Every member is trained by exactly one of them; both finish with the complete ensemble."""
    code = f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT / "tests")!r})
        from test_ensemble import _tiny_profile, make_records
        from betenet import ensemble as ens
        records = make_records()
        prof = _tiny_profile().with_overrides(train={{"max_epochs": 2, "min_epochs": 1}},
                                              ensemble={{"n_members": 2, "variants": ("CSO",)}})
        ens.run_ensemble(records, prof, "CSO", [r.material_id for r in records[:6]], progress=False)
    """
    env = {"BETENET_ARTIFACTS": str(tmp_path / "artifacts")}
    runs = [_child(code, env=env) for _ in range(2)]
    for p in runs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    edir = tmp_path / "artifacts" / "smoke" / "ensembles" / "CSO"
    for k in (0, 1):
        attempts = (edir / f"member-{k:03d}" / "attempts.jsonl").read_text().splitlines()
        assert len(attempts) == 1, f"member {k} trained {len(attempts)} times"
        assert not (edir / f".member-{k:03d}.lock").exists()
    from betenet import ensemble as ens

    assert [m.index for m in ens.load_ensemble(edir)] == [0, 1]


# ============================================================================ truncated and garbled QE files

QE_AL = REPO_ROOT / "data" / "qe" / "Al1-fcc"  # a real, kept fcc-Al run of this project (457 α²F rows)


def _betenet(*argv: str) -> subprocess.CompletedProcess:
    """The real command line in a child process (exit status and stderr as a user sees them)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([PY, "-m", "betenet.cli", *argv], capture_output=True, text=True, env=env, timeout=300)


def _cut_table(path: Path, n_rows: int) -> None:
    """Rewrite a gzipped table with its header and only the first ``n_rows`` rows (a cut at a row boundary)."""
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines(keepends=True)
    head = [ln for ln in lines if ln.lstrip().startswith("#")]
    rows = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    with gzip.open(path, "wt") as fh:
        fh.writelines(head + rows[:n_rows])


@pytest.fixture
def al_run(tmp_path):
    runs = tmp_path / "qe"
    shutil.copytree(QE_AL, runs / "Al1-fcc")
    return runs


def test_intact_run_parses_with_the_stored_lambda(al_run):
    from betenet.config import get_profile
    from betenet.qe.record import build_record

    rec = build_record("Al1-fcc", get_profile("smoke").qe, runs_dir=al_run)
    assert rec.lambda_ == pytest.approx(rec.provenance["lambda_qe"], rel=0.03)
    assert 0.3 < rec.lambda_ < 0.5


def test_a2f_cut_at_a_row_boundary_is_an_error_not_a_small_lambda(al_run):
    """200 of 457 α²F rows: λ would come out 0.046 instead of ~0.39; the grid check stops it at parse time."""
    from betenet.config import get_profile
    from betenet.qe.parsers import QEParseError
    from betenet.qe.record import build_record

    _cut_table(al_run / "Al1-fcc" / "a2f.dat.gz", 200)
    with pytest.raises(QEParseError, match=r"a2f\.dat\.gz: 200 rows up to 19\.95 meV, expected 456 rows up to 45\.60 meV"):
        build_record("Al1-fcc", get_profile("smoke").qe, runs_dir=al_run)
    r = _betenet("qe", "parse", "Al1-fcc", "--runs-dir", str(al_run))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "a2f.dat.gz: 200 rows" in r.stderr and "Traceback" not in r.stderr


def test_phdos_and_a2f_cut_together_fail_the_3n_normalisation(al_run):
    from betenet.config import get_profile
    from betenet.qe.parsers import QEParseError
    from betenet.qe.record import build_record

    for name in ("a2f.dat.gz", "phdos_fine.dos.gz"):
        _cut_table(al_run / "Al1-fcc" / name, 200)
    with pytest.raises(QEParseError, match=r"phdos_fine\.dos\.gz: ∫PhDOS dω = .* expected 3N = 3 for 1 atom"):
        build_record("Al1-fcc", get_profile("smoke").qe, runs_dir=al_run)


@pytest.mark.parametrize("name", ["a2f.dat.gz", "phdos_fine.dos.gz"])
def test_a_gzip_cut_mid_stream_names_the_file(al_run, name):
    from betenet.config import get_profile
    from betenet.qe.parsers import QEParseError
    from betenet.qe.record import build_record

    p = al_run / "Al1-fcc" / name
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(QEParseError, match=rf"{name}: corrupt, truncated or malformed|{name}: corrupt or truncated gzip"):
        build_record("Al1-fcc", get_profile("smoke").qe, runs_dir=al_run)
    if name == "a2f.dat.gz":  # the quality filters (run time, `qe refilter`) read it too
        from betenet.qe.filters import quality_report

        with pytest.raises(QEParseError, match=rf"{name}: corrupt or truncated gzip"):
            quality_report(al_run / "Al1-fcc", get_profile("smoke").qe, stage="phonons")


def test_the_header_of_a_table_is_read_without_its_rows(al_run, tmp_path):
    """read_header (what a rebuild's kept σ is checked against) gives read_table's header, and names the
    file when it is missing or not gzip at all; a cut after the header does not matter to it."""
    from betenet.qe.parsers import QEParseError, a2f_sigmas, read_header, read_table

    p = al_run / "Al1-fcc" / "a2f.dat.gz"
    header = read_header(p)
    assert header == read_table(p)[0] and len(a2f_sigmas(header)) == 10
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    assert read_header(p) == header
    with pytest.raises(QEParseError, match=r"nope\.dat\.gz: file not found"):
        read_header(tmp_path / "nope.dat.gz")
    (tmp_path / "bad.dat.gz").write_text("# not gzip\n")
    with pytest.raises(QEParseError, match=r"bad\.dat\.gz: corrupt or truncated gzip"):
        read_header(tmp_path / "bad.dat.gz")
    (tmp_path / "plain.dat").write_text("1 2\n")
    assert read_header(tmp_path / "plain.dat") == ""


def test_empty_or_garbled_status_json_is_a_one_line_error(al_run):
    (al_run / "Al1-fcc" / "status.json").write_text("")
    r = _betenet("qe", "status", "--runs-dir", str(al_run))
    assert r.returncode == 2
    assert r.stderr.strip() == f"betenet qe: error: {al_run / 'Al1-fcc' / 'status.json'}: not valid JSON (empty file)"
    (al_run / "Al1-fcc" / "status.json").write_text('{"state": "kept", ')
    r = _betenet("qe", "parse", "Al1-fcc", "--runs-dir", str(al_run))
    assert r.returncode == 2 and "status.json: not valid JSON" in r.stderr and "Traceback" not in r.stderr


def test_qe_parse_of_a_nan_a2f_is_an_error_not_tc_zero(al_run):
    path = al_run / "Al1-fcc" / "a2f.dat.gz"
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines(keepends=True)
    row = lines[100].split()
    lines[100] = " ".join(row[:1] + ["nan"] * (len(row) - 1)) + "\n"  # every broadening of one row
    with gzip.open(path, "wt") as fh:
        fh.writelines(lines)
    r = _betenet("qe", "parse", "Al1-fcc", "--runs-dir", str(al_run))
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "Al1-fcc" in r.stderr and "a2f" in r.stderr.lower(), r.stderr


def test_nan_a2f_gives_an_undefined_tc_not_zero():
    from betenet import physics

    w = np.linspace(0.1, 50.0, 200)
    a = np.exp(-0.5 * ((w - 20.0) / 3.0) ** 2)
    assert physics.tc_allen_dynes_from_a2f(w, a) > 1.0
    a[50] = np.nan
    assert np.isnan(physics.tc_allen_dynes_from_a2f(w, a))
    assert np.isnan(physics.allen_dynes_tc_K(1.0, 200.0, 250.0, mu_star=float("nan")))
    assert physics.allen_dynes_tc_K(0.05, 200.0, 250.0) == 0.0  # a real non-superconductor stays 0


# ============================================================================ runs never write under data/


def _tree_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir()) if p.is_file()}


def test_runs_use_the_committed_split_read_only_and_derive_others_in_artifacts(tmp_path, monkeypatch):
    """`train`/`ensemble run --records DIR` used to add DIR's ids to data/splits/default*; now the
    committed split is only read, and other record sets get a split in artifacts/<profile>/splits/."""
    import dataclasses

    from betenet.paths import RECORDS_DIR, SPLITS_DIR
    from betenet.records import load_records
    from betenet.splits import load_split, split_for_run

    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    before = _tree_bytes(SPLITS_DIR)
    committed = load_split("default", SPLITS_DIR)
    covered = set(committed.train_ids) | set(committed.test_ids)
    records = [r for r in load_records(RECORDS_DIR) if r.material_id in covered]
    assert {r.material_id for r in records} == covered

    split, where = split_for_run(records, "smoke")  # exactly the committed materials: read only
    assert where == SPLITS_DIR and split.train_ids == committed.train_ids
    extra = dataclasses.replace(records[0], material_id="ZZ-new-material")
    split2, where2 = split_for_run(records + [extra], "smoke")  # one more: extended in artifacts
    assert where2 == tmp_path / "artifacts" / "smoke" / "splits"
    assert set(committed.train_ids) <= set(split2.train_ids) and set(committed.test_ids) <= set(split2.test_ids)
    assert "ZZ-new-material" in split2.train_ids + split2.test_ids
    split3, where3 = split_for_run(records[:10], "smoke")  # a different set: a fresh split of its own
    assert where3 == where2 and split3.name.startswith("records-") and len(split3.train_ids + split3.test_ids) == 10
    assert _tree_bytes(SPLITS_DIR) == before  # nothing under data/ was written
    # told to: --split-dir writes there
    split4, where4 = split_for_run(records + [extra], "smoke", split_dir=tmp_path / "mine")
    assert where4 == tmp_path / "mine" and (tmp_path / "mine" / "default.json").exists()


# ============================================================================ `betenet screen` under hostile input


@pytest.fixture(scope="module")
def tiny_cso(tmp_path_factory):
    """A real 3-member CSO ensemble (tiny e3nn, 3 epochs) on 6 records saved in a records directory."""
    from test_ensemble import _tiny_profile, make_records

    from betenet import ensemble as ens
    from betenet.records import save_record

    root = tmp_path_factory.mktemp("screen")
    mp = pytest.MonkeyPatch()
    mp.setenv("BETENET_ARTIFACTS", str(root / "artifacts"))
    records = make_records()
    rec_dir = root / "records"
    for r in records[:6]:
        save_record(r, rec_dir)
    prof = _tiny_profile().with_overrides(train={"max_epochs": 3}, ensemble={"n_members": 3, "variants": ("CSO",)})
    run = ens.run_ensemble(records, prof, "CSO", [r.material_id for r in records[:6]], progress=False)
    yield run.directory, rec_dir, root
    mp.undo()


def _hostile_structures(d: Path) -> dict[str, str]:
    """name -> file of structures a hostile tester feeds to `betenet screen` (POSCAR: no site merging)."""
    from pymatgen.core import Lattice, Structure

    fcc = lambda a: Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])  # noqa: E731
    s = {
        "nb_ok": Structure(Lattice.cubic(3.35), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "v_ok": Structure(Lattice.cubic(3.03), ["V", "V"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "al_0.3A": Structure(fcc(0.3), ["Al"], [[0, 0, 0]]),
        "on_top": Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0, 0, 0]]),
        "0.08A_apart": Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.08 / 3.3, 0, 0]]),
        "lone_1000A": Structure(Lattice.cubic(1000.0), ["Nb"], [[0, 0, 0]]),
        "U_fcc": Structure(fcc(4.3), ["U"], [[0, 0, 0]]),
        "Og_fcc": Structure(fcc(5.0), ["Og"], [[0, 0, 0]]),
        "big_cell": Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]).make_supercell([6, 6, 5], in_place=False),
    }
    out = {}
    for name, st in s.items():
        path = d / f"{name}.vasp"
        st.to(filename=str(path), fmt="poscar")
        out[name] = str(path)
    return out


def test_screen_guards_refuse_unphysical_structures_with_reasons(tmp_path):
    from betenet.structure_screening import guard_structure, read_structures

    files = _hostile_structures(tmp_path)
    ok, bad = read_structures(list(files.values()))
    assert not bad
    why = {Path(f).stem: guard_structure(s) for f, s in ok}
    assert why["nb_ok"] is None and why["v_ok"] is None and why["U_fcc"] is None and why["Og_fcc"] is None
    assert "volume per atom 0.00675 Å^3 < 2 Å^3: atoms overlap" in why["al_0.3A"]
    assert "are 0.000 Å apart" in why["on_top"] and "overlapping atoms" in why["on_top"]
    assert "0.080 Å apart" in why["0.08A_apart"] and "overlapping atoms" in why["0.08A_apart"]
    assert "mostly vacuum" in why["lone_1000A"]
    assert why["big_cell"].startswith("360 atoms in the cell; at most 256")


def test_no_committed_material_is_refused_or_flagged_by_a_domain_of_all_of_them():
    """The guards and the domain flag on the real records: a structure of the training set is inside."""
    from betenet.paths import RECORDS_DIR
    from betenet.records import load_records
    from betenet.structure_screening import TrainingDomain, guard_structure

    structures = {r.material_id: r.structure for r in load_records(RECORDS_DIR)}
    domain = TrainingDomain.from_structures(list(structures.values()))
    assert {m: guard_structure(s) for m, s in structures.items() if guard_structure(s)} == {}
    assert {m: domain.flags(s) for m, s in structures.items() if domain.flags(s)} == {}


def test_screen_ranks_flagged_structures_last_and_refuses_bad_options(tiny_cso, tmp_path, capsys):
    """The real command line on the hostile set: unphysical cells are refused by name, unknown elements
    are flagged and ranked below every in-domain structure, the spread calibration is reported; NaN μ*,
    negative z and --top -2 are usage errors (exit 2)."""
    import pandas as pd

    from betenet.cli import main

    run_dir, rec_dir, root = tiny_cso
    files = _hostile_structures(tmp_path)
    csv = tmp_path / "out" / "ranked.csv"
    rc = main(["screen", *files.values(), "--run-dir", str(run_dir), "--records", str(rec_dir), "--profile", "smoke",
               "--csv", str(csv)])
    out, err = capsys.readouterr()
    assert rc == 0
    for name in ("al_0.3A", "on_top", "0.08A_apart", "lone_1000A", "big_cell"):
        assert f"skipped {files[name]}: refused: " in err
    t = pd.read_csv(csv)
    assert set(t["file"]) == {files[n] for n in ("nb_ok", "v_ok", "U_fcc", "Og_fcc")}
    flagged = t[~t["in_domain"]]
    assert set(flagged["file"]) == {files["U_fcc"], files["Og_fcc"]}
    assert flagged["flags"].str.contains("not in the 6 training materials").all()
    assert t.loc[t["in_domain"], "rank"].max() < flagged["rank"].min()  # never above an unflagged one
    assert "OUTSIDE THE TRAINING DOMAIN" in out and "2 outside the training domain" in out
    assert "spread" in out and not list(tmp_path.joinpath("out").glob("*.tmp"))
    for bad, msg in ((["--mu-star", "nan"], "--mu-star: expected a finite number in [0, 1), got nan"),
                     (["--z", "-3"], "--z: expected a finite number in [0, inf], got -3"),
                     (["--top", "-2"], "--top: expected an integer >= 1, got -2")):
        with pytest.raises(SystemExit) as exc:
            main(["screen", files["nb_ok"], "--run-dir", str(run_dir), *bad])
        assert exc.value.code == 2 and msg in capsys.readouterr().err


def test_oob_spread_calibration_on_known_errors(tmp_path):
    """Members' oob.npz with Einstein spectra whose member spread is half the error: raw ±1σ covers
    nothing, the calibration factor brings 68 % within ±scale·σ."""
    from betenet.constants import TARGET_BIN_WIDTH_MEV, TARGET_GRID_MEV
    from betenet.physics import tc_allen_dynes_from_a2f
    from betenet.structure_screening import oob_spread_calibration

    w = np.asarray(TARGET_GRID_MEV, dtype=float)
    ids = [f"m{i}" for i in range(10)]

    def spike(k, area):
        a = np.zeros(w.size)
        a[k] = area / TARGET_BIN_WIDTH_MEV
        return a

    target = np.stack([spike(10, 10.0) for _ in ids])
    dirs = []
    for m, f in enumerate((1.10, 1.20)):  # two members, both over-predicting; spread << error
        d = tmp_path / f"member-{m:03d}"
        d.mkdir()
        pred = np.stack([spike(10, 10.0 * (f + 0.01 * i)) for i in range(len(ids))])
        np.savez_compressed(d / "oob.npz", ids=np.array(ids), pred_a2f=pred, target_a2f=target, omega_meV=w)
        dirs.append(d)
    cal = oob_spread_calibration(dirs)
    assert cal is not None and cal.n == 10
    tc_true = float(tc_allen_dynes_from_a2f(w, target[0]))
    p = [np.array([float(tc_allen_dynes_from_a2f(w, spike(10, 10.0 * (f + 0.01 * i)))) for f in (1.10, 1.20)]) for i in range(10)]
    z = np.array([abs(q.mean() - tc_true) / q.std() for q in p])
    assert cal.coverage_1sigma_raw == pytest.approx(np.mean(z <= 1)) and cal.coverage_1sigma_raw < 0.5
    assert cal.scale == pytest.approx(np.quantile(z, 0.683)) and cal.scale > 1
    assert cal.coverage_1sigma_cal >= 0.683 - 1e-9
    assert oob_spread_calibration(dirs[:1]) is None  # one member: no spread to calibrate


# ============================================================================ one error path for the command line


@pytest.mark.parametrize("argv, message", [
    (["train", "--profile", "nope"], "betenet train: error: unknown profile 'nope'; expected one of"),
    (["ensemble", "run", "--profile", "nope"], "betenet ensemble: error: unknown profile 'nope'"),
    (["train", "--profile", "smoke", "--records", "{tmp}/missing"], "betenet train: error: record directory {tmp}/missing does not exist"),
    (["ensemble", "run", "--profile", "smoke", "--records", "{tmp}/empty"],
     "betenet ensemble: error: {tmp}/empty: no record files (*.json) in this directory"),
    (["train", "--profile", "smoke", "--run-dir", "{tmp}/a_file/run"], "betenet train: error: {tmp}/a_file/run: Not a directory"),
    (["qe", "status", "--runs-dir", "{tmp}/runs"], "betenet qe: error: {tmp}/runs/X1-fcc/status.json: not valid JSON (empty file)"),
    (["train", "--profile", "smoke", "--run-dir", "{tmp}/ro/run"], "betenet train: error: {tmp}/ro"),
])
def test_ordinary_mistakes_exit_2_with_one_line_naming_the_file(tmp_path, capsys, argv, message):
    from betenet.cli import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "runs" / "X1-fcc").mkdir(parents=True)
    (tmp_path / "runs" / "X1-fcc" / "status.json").write_text("")
    ro = tmp_path / "ro"
    if os.geteuid() == 0:  # root writes through permissions: point at a read-only filesystem instead
        if not Path("/sys").is_dir():
            pytest.skip("no read-only location for root")
        ro = Path("/sys/betenet-test")
    else:
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    argv = [a.replace("{tmp}/ro", str(ro)) for a in argv]
    message = message.replace("{tmp}/ro", str(ro))
    rc = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if not ln.startswith("#")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert message.format(tmp=tmp_path) in lines[0]


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
    (["ensemble", "run", "--n-members", "0"], "argument --n-members: expected an integer >= 1, got 0"),
])
def test_unchecked_options_are_usage_errors(capsys, argv, message):
    from betenet.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_bug_keeps_its_traceback():
    """Only ordinary mistakes are turned into one line; a programming error is not hidden."""
    from betenet.cli import is_user_error

    assert is_user_error(FileNotFoundError(2, "No such file", "x.json")) and is_user_error(ValueError("bad"))
    assert not is_user_error(TypeError("unsupported operand")) and not is_user_error(AttributeError("x"))
