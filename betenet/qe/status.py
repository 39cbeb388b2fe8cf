"""The run directory ``data/qe/<material_id>/`` and its audit trail.

``status.json`` (:class:`MaterialStatus`: state, steps done with their wall times, failure reason), the
compact logs (head and tail of every QE output, gzipped), the small numeric tables the record is rebuilt
from (:func:`write_table`; read back with :func:`betenet.qe.parsers.read_table`), backups made before a
forced rerun (:func:`backup`), and the edits of a finished run after review: :func:`reject_after_review`,
:func:`refilter` and :func:`reopen_for_dip_check`.  The steps themselves run in :mod:`betenet.qe.workflow`.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import QEConfig
from ..jsonio import read_json, utc_now
from ..locks import exclusive
from ..paths import QE_RUNS_DIR, RECORDS_DIR
from .dipcheck import DIP_STEP, dip_candidate
from .filters import quality_report
from .parsers import QEParseError, min_freq_off_gamma

__all__ = [
    "STEPS",
    "PERSISTENT_STEPS",
    "FINAL_STATES",
    "MaterialStatus",
    "load_status",
    "material_dir",
    "material_lock_path",
    "compact_log",
    "compact_logs",
    "gzip_copy",
    "write_table",
    "backup",
    "reject_after_review",
    "refilter",
    "reopen",
    "reopen_for_dip_check",
]

#: The steps of one material's run, in order (:mod:`betenet.qe.workflow`).
STEPS = (
    "relax",
    "scf_dense",
    "nscf_edos",
    "projwfc",
    "scf",
    "scf_coarse",
    "ph_precheck",
    "ph_elph",
    "q2r",
    "matdyn",
    "ph_dip",
    "ph_coarse",
    "q2r_coarse",
    "matdyn_coarse",
    "record",
)
#: Steps whose products live only in data/qe/<id>/ (survive a lost scratch directory).
PERSISTENT_STEPS = ("relax",)
FINAL_STATES = ("kept", "rejected", "failed")
#: Lines of each log kept in the audit trail (head, tail).
LOG_HEAD, LOG_TAIL = 60, 200


def material_dir(material_id: str, runs_dir: Path | None = None) -> Path:
    """``<runs_dir>/<material_id>`` (default runs directory: ``data/qe``)."""
    return Path(runs_dir or QE_RUNS_DIR) / material_id


@dataclass
class MaterialStatus:
    """``status.json`` of one material."""

    material_id: str
    state: str = "pending"  # pending | running | kept | rejected | failed
    steps: dict[str, dict[str, Any]] | None = None
    reason: str | None = None
    detail: str | None = None
    scratch_token: str | None = None
    prototype: str | None = None
    formula: str | None = None
    n_atoms: int | None = None
    accuracy: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    quality: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.steps is None:
            self.steps = {}

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def done(self, step: str) -> bool:
        return bool(self.steps.get(step, {}).get("done"))  # type: ignore[union-attr]

    @property
    def wall_s(self) -> float:
        return float(sum(s.get("wall_s", 0.0) for s in self.steps.values()))  # type: ignore[union-attr]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "status.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        tmp.replace(directory / "status.json")


def load_status(material_id: str, runs_dir: Path | None = None) -> MaterialStatus:
    """``status.json`` of a material (a fresh ``pending`` status when there is none yet)."""
    path = material_dir(material_id, runs_dir) / "status.json"
    if not path.exists():
        return MaterialStatus(material_id)
    data = read_json(path, error=QEParseError)  # naming the file if it is empty or garbled
    known = set(MaterialStatus.__dataclass_fields__)
    return MaterialStatus(**{k: v for k, v in data.items() if k in known})


def material_lock_path(material_id: str, runs_dir: Path | None = None) -> Path:
    """Lock file of one material's run (hidden, beside its directory; removed when the run ends)."""
    return Path(runs_dir or QE_RUNS_DIR) / f".{material_id}.lock"


# --------------------------------------------------------------------------------------------
# Audit-trail files
# --------------------------------------------------------------------------------------------


def _head_tail(src: Path) -> list[str]:
    """Lines of a log, the middle cut out when it is long (LOG_HEAD + LOG_TAIL kept)."""
    lines = src.read_text(errors="replace").splitlines(keepends=True)
    if len(lines) > LOG_HEAD + LOG_TAIL + 20:
        cut = len(lines) - LOG_HEAD - LOG_TAIL
        lines = lines[:LOG_HEAD] + [f"\n[... {cut} lines omitted by betenet ...]\n\n"] + lines[-LOG_TAIL:]
    return lines


def compact_log(src: Path, dest: Path) -> None:
    """Gzip the head and tail of a log (the whole log when short) into ``dest``."""
    with gzip.open(dest, "wt") as fh:
        fh.writelines(_head_tail(src))


def compact_logs(srcs: list[Path], dest: Path) -> None:
    """Several logs of one step (ph.x one q per call) in one gzip: the head/tail of each, in order,
    each after a ``==> betenet: <file> <==`` line."""
    with gzip.open(dest, "wt") as fh:
        for src in srcs:
            fh.write(f"==> betenet: {src.name} <==\n")
            fh.writelines(_head_tail(src))


def gzip_copy(src: Path, dest: Path) -> None:
    """Gzip ``src`` (whole) into ``dest``."""
    with src.open("rb") as fi, gzip.open(dest, "wb") as fo:
        shutil.copyfileobj(fi, fo)


def write_table(path: Path, header: str, columns: list[np.ndarray]) -> None:
    """A gzipped numeric table (``# header`` line, then ``%.6e`` rows of ``columns``), read back with
    :func:`betenet.qe.parsers.read_table`."""
    data = np.column_stack(columns)
    with gzip.open(path, "wt") as fh:
        np.savetxt(fh, data, fmt="%.6e", header=header)


def backup(path: Path, *, copy: bool = False) -> Path | None:
    """Move (``copy=True``: copy a file) ``path`` to ``<name>.bak-<time>``; ``None`` if it does not exist.
    An existing backup of the same name is never overwritten: a second backup within the same second
    becomes ``<name>.bak-<time>-2`` (then ``-3``, ...)."""
    if not path.exists():
        return None
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    dest = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    if copy:
        shutil.copyfile(path, dest)
    else:
        path.rename(dest)
    return dest


# --------------------------------------------------------------------------------------------
# Edits of a finished run after review
# --------------------------------------------------------------------------------------------


def reject_after_review(
    material_id: str,
    reason: str,
    detail: str,
    *,
    runs_dir: Path | None = None,
    records_dir: Path | None = None,
) -> MaterialStatus:
    """Reject a material that the filters kept but a later review found wrong (e.g. its
    pseudopotential failed validation).  Nothing is deleted: the record moves into the material's
    audit directory as ``record.rejected.json``, ``status.json`` becomes ``rejected`` with ``reason``,
    ``detail`` and ``reviewed_at``; the funnel counts it under ``reason``.
    """
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    records_dir = Path(records_dir or RECORDS_DIR)
    if not reason or not detail:
        raise ValueError("reject_after_review needs a reason and a detail (what the review found)")
    status = load_status(material_id, runs_dir)
    if status.state != "kept":
        raise ValueError(f"{material_dir(material_id, runs_dir) / 'status.json'}: state is {status.state!r}, expected 'kept'")
    directory = material_dir(material_id, runs_dir)
    rec = records_dir / f"{material_id}.json"
    if rec.exists():
        dest = directory / "record.rejected.json"
        if dest.exists():
            raise FileExistsError(f"{dest} exists; refusing to overwrite it")
        rec.rename(dest)
    status.state, status.reason, status.detail = "rejected", reason, detail
    status.quality = {**(status.quality or {}), "reviewed_at": utc_now()}
    status.save(directory)
    return status


def refilter(material_id: str, cfg: QEConfig, *, runs_dir: Path | None = None) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
    """Re-apply the current phonon filters to a finished material whose ph.x check used an older rule.

    The lowest ph.x frequency is recomputed from ``ph_freqs.json`` (:func:`min_freq_off_gamma`); when
    it changed, ``status.json`` is first copied to ``status.json.bak-<time>``, the ph_elph step keeps
    the old value as ``min_freq_meV_previous_rule``, and the phonon filters run again on the stored
    outputs.  A material rejected for imaginary modes that now passes becomes ``pending``: the next
    ``betenet qe run`` resumes it after the relaxation (the scratch files are gone) and writes its
    record.  A rejected material that now fails another filter keeps ``rejected`` with the new reason;
    a kept material that would now fail is reported, not changed (use :func:`reject_after_review`).
    Returns ``((state, reason) before, (state, reason) after)``.
    """
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    d = material_dir(material_id, runs_dir)
    status = load_status(material_id, runs_dir)
    before = (status.state, status.reason)
    freqs = d / "ph_freqs.json"
    if status.state not in ("kept", "rejected") or not status.done("matdyn") or not freqs.exists():
        return before, before
    ph = json.loads(freqs.read_text())
    new_min = min_freq_off_gamma(ph["q_cart_2pi_alat"], ph["freq_meV"])
    step = status.steps["ph_elph"]  # type: ignore[index]
    old_min = step.get("min_freq_meV")
    if old_min is not None and abs(float(old_min) - new_min) < 1e-3:  # ph_freqs.json keeps 4 decimals
        return before, before
    backup(d / "status.json", copy=True)
    step["min_freq_meV"], step["min_freq_meV_previous_rule"] = new_min, old_min
    status.save(d)  # quality_report reads the steps from status.json
    q = quality_report(d, cfg, stage="phonons")
    status.quality = {**(status.quality or {}), **q.checks, "refiltered_at": utc_now()}
    if status.state == "rejected" and status.reason == "imaginary_modes":
        if q.kept:
            status.state, status.reason, status.finished_at = "pending", None, None
            status.detail = f"re-filtered {utc_now()}: was rejected (imaginary_modes: {status.detail}); resumes after the relaxation"
        else:
            status.reason, status.detail = q.reason, q.detail
    elif status.state == "kept" and not q.kept:
        status.quality["refilter_would_reject"] = f"{q.reason}: {q.detail}"
    status.save(d)
    return before, (status.state, status.reason)


def reopen_for_dip_check(material_id: str, cfg: QEConfig, *, runs_dir: Path | None = None) -> str:
    """Send a material that was rejected for an interpolation dip alone, before the dip check existed,
    back to ``pending`` (``status.json`` copied to ``status.json.bak-<time>`` first; the earlier verdict
    kept in ``quality.reopened``), under the material's lock.  Returns what was done; ``ValueError`` naming
    the file when the material is not such a case (another state or reason, the check already run, no
    archived el-ph q points, a level without the check)."""
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    if not cfg.dip_check:
        raise ValueError(f"{material_id}: the {cfg.accuracy} level has no dip check (QEConfig.dip_check)")
    with exclusive(material_lock_path(material_id, runs_dir), f"the QE run of material {material_id!r}"):
        d = material_dir(material_id, runs_dir)
        status = load_status(material_id, runs_dir)
        where = d / "status.json"
        if status.state != "rejected" or status.reason != "imaginary_modes":
            raise ValueError(f"{where}: state {status.state!r} / reason {status.reason!r}; expected rejected / imaginary_modes")
        steps = status.steps or {}
        if DIP_STEP in steps:
            raise ValueError(f"{where}: the dip check already ran ({steps[DIP_STEP]})")
        if not dip_candidate(steps, cfg):
            raise ValueError(f"{where}: not an interpolation dip (ph.x lowest {(steps.get('ph_elph') or {}).get('min_freq_meV')} "
                             f"meV, matdyn lowest {(steps.get('matdyn') or {}).get('min_freq_meV')} meV)")
        return reopen(d, status, f"reopened for the interpolation-dip check (was rejected: {status.detail})")


def reopen(run_dir: Path, status: MaterialStatus, detail: str) -> str:
    """Send a finished material back to ``pending`` with ``detail`` (the caller holds its lock and has checked
    why): ``status.json`` copied to ``status.json.bak-<time>`` first and the earlier verdict kept in
    ``quality.reopened``.  ``ValueError`` when the run has no archived el-ph q points (``ph_elph.q/``): the
    next ``qe run`` would recompute the whole el-ph run.  Returns ``detail``."""
    if not (run_dir / "ph_elph.q" / "manifest.json").exists():
        raise ValueError(f"{run_dir / 'ph_elph.q'}: no archived el-ph q points; reopening would recompute the whole el-ph run")
    saved = backup(run_dir / "status.json", copy=True)
    previous = {"state": status.state, "reason": status.reason, "detail": status.detail, "finished_at": status.finished_at,
                "status_backup": saved.name if saved else None, "reopened_at": utc_now()}
    status.quality = {**(status.quality or {}), "reopened": previous}
    status.state, status.reason, status.finished_at, status.detail = "pending", None, None, detail
    status.save(run_dir)
    return detail
