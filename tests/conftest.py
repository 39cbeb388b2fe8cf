"""Shared pytest fixtures.  Keep this file small; add fixtures that several test modules need."""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest

from betenet.paths import REPO_ROOT
from betenet.seeding import seed_everything

#: Seed applied before every test (Python, NumPy and PyTorch global generators).
TEST_SEED = 1234


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state, so golden numbers are reproducible."""
    seed_everything(TEST_SEED)
    yield


#: Written by long background batches while tests run, never by the tests: the QE runs of every
#: accuracy level, the pseudopotential generation/validation and the convergence studies.
_BATCH_OUTPUTS = (":(exclude,glob)data/qe/**", ":(exclude,glob)data/qe-*/**", ":(exclude,glob)data/pseudo/**",
                  ":(exclude,glob)data/studies/**")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=120)


def _blob_id(path) -> str:
    """git's blob id of a file's content (``-`` if it does not exist)."""
    if not path.is_file():
        return "-"
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _data_state() -> tuple[str, dict[str, str]] | None:
    """``(HEAD, {path: blob id of its content})`` for every changed or untracked file under ``data/`` and
    ``notebooks/`` except the batch outputs (:data:`_BATCH_OUTPUTS`); ``None`` outside a git checkout."""
    try:
        head = _git("rev-parse", "HEAD")
        out = _git("status", "--porcelain=v1", "-uall", "-z", "--", "data", "notebooks", *_BATCH_OUTPUTS)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode or out.returncode:
        return None
    state = {}
    for entry in out.stdout.split("\0"):
        if len(entry) < 4 or entry[2] != " ":
            continue  # the source path of a rename
        state[entry[3:]] = _blob_id(REPO_ROOT / entry[3:])
    return head.stdout.strip(), state


@pytest.fixture(scope="session", autouse=True)
def _no_test_writes_committed_files():
    """After the whole session, no file under ``data/`` or ``notebooks/`` may have content the tests
    wrote (issue 17: a run must never rewrite committed files).  Only content that changed during the
    session counts (others may edit, stage or commit in the tree concurrently); a new record whose
    ``data/qe/<id>`` run was updated during the session is the QE batch's, not a test's."""
    t0 = time.time()
    start = _data_state()
    yield
    end = _data_state()
    if start is None or end is None:
        return
    head0, before = start
    changed = []
    for path in sorted(set(before) | set(end[1])):
        if path in before:
            was = before[path]
        else:  # clean at the start: the content of the start's HEAD
            r = _git("rev-parse", "--verify", "--quiet", f"{head0}:{path}")
            was = r.stdout.strip() if r.returncode == 0 else "-"
        now = _blob_id(REPO_ROOT / path)
        if was == now:
            continue
        parts = path.split("/")
        if len(parts) == 3 and parts[1].startswith("records") and parts[2].endswith(".json"):
            runs = "qe" + parts[1][len("records"):]  # data/records-<level> <-> data/qe-<level>
            st = REPO_ROOT / "data" / runs / parts[2][: -len(".json")] / "status.json"
            if st.exists() and st.stat().st_mtime >= t0:
                continue  # the record of a material the QE batch finished during the session
        changed.append(path)
    if changed:
        pytest.fail(f"the test session changed {len(changed)} file(s) under data/ or notebooks/: " + ", ".join(changed),
                    pytrace=False)
