"""Finished ph.x q points kept in the run directory, so that an el-ph run survives a lost scratch.

With ``QEConfig.ph_split_q`` each irreducible q point of the el-ph ph.x run is its own call
(:meth:`betenet.qe.workflow.MaterialRun.ph_by_q`).  What one point leaves behind is small and is all
that q2r.x/matdyn.x need from it: the dynamical matrix ``<fildyn><iq>``, the el-ph matrices of every
broadening ``elph_dir/a2Fq2r.<5x>.<iq>`` and ``elph_dir/elph.inp_lambda.<iq>``, and the point's log.
The wavefunctions, densities and dvscf files in the scratch directory are not needed by later points.

:class:`QPointArchive` keeps these files as one ``q<iq>.tar.gz`` per point in
``data/qe*/<id>/<step>.q/`` (in git) with a ``manifest.json``: the points done, their wall times, the
number of irreducible points and a fingerprint of the calculation (scf and dense-scf inputs, the
pseudopotentials' md5, the ph.x input).  A run whose scratch directory was lost (a new machine, a
cleaned ``/tmp``) redoes the cheap pw.x steps, restores the archived points into the new scratch and
computes only the missing ones.  A fingerprint that differs (other settings, another structure) is an
error that names the directory: the archive is never mixed into another calculation, nor overwritten.

A point, not a representation, is the unit of resumption.  ph.x 6.7 cannot resume an el-ph point from the
representations a killed call saved: with ``recover`` it stops reading them, "tag PARTIAL_EL_PHON not
found", as its writer names the block PARTIAL_ELPH (measured on fcc Al at X).  Groups of representations do
not help either: phonon-only calls per group (``start_irr``/``last_irr``) then ``recover`` give the same
dynamical matrix, but el-ph from the saved dvscf (``trans = .false.``) is 1-3 % off the one-call λ of a
non-degenerate mode (CHANGELOG 2026-12-05).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

__all__ = ["QPointArchive", "QPointArchiveError", "fingerprint", "point_files", "q_order"]

MANIFEST = "manifest.json"
#: Lines of a QE input that name machine-local paths and do not change the calculation.
_LOCAL_LINES = re.compile(r"^\s*(pseudo_dir|outdir|wfcdir)\s*=.*$", re.MULTILINE | re.IGNORECASE)
#: ph.x's ``start_q``/``last_q`` lines: the one thing that differs between the points' inputs.
_Q_RANGE_LINES = re.compile(r"^\s*(start_q|last_q)\s*=.*$", re.MULTILINE | re.IGNORECASE)


class QPointArchiveError(RuntimeError):
    """An archive that does not belong to the calculation that would resume from it, or is damaged."""


def fingerprint(inputs: Iterable[str], pseudo_md5: Iterable[str]) -> str:
    """sha256 of the calculation: input texts without their local paths and q range, and the UPFs' md5."""
    h = hashlib.sha256()
    for text in inputs:
        text = _Q_RANGE_LINES.sub("", _LOCAL_LINES.sub("", text))
        h.update(text.encode())
        h.update(b"\0")
    for md5 in sorted(pseudo_md5):
        h.update(md5.encode())
    return h.hexdigest()


def q_order(q_2pi_alat: Any, how: str) -> list[int]:
    """The order of ph.x's irreducible points 2..n (``q_2pi_alat``, ph.x's list of n) after Γ: ph.x's own
    (``how="qe"``, :attr:`~betenet.config.QEConfig.ph_q_order`) or the longest q first (``"boundary_first"``:
    zone-boundary points, where unstable modes usually sit, come before the points near Γ, so that
    ``ph_stop_at_imaginary`` stops a doomed run early)."""
    rest = list(range(2, len(q_2pi_alat) + 1))
    if how == "boundary_first":
        norms = np.linalg.norm(np.asarray(q_2pi_alat, dtype=float), axis=1)
        rest.sort(key=lambda i: -round(float(norms[i - 1]), 6))
    elif how != "qe":
        raise ValueError(f"ph.x q order {how!r}: expected 'qe' or 'boundary_first'")
    return rest


def point_files(cwd: Path, step: str, fildyn: str, iq: int) -> list[Path]:
    """The files of irreducible point ``iq`` in ``cwd`` (relative paths), ``<fildyn>0`` with the first."""
    names = [f"{fildyn}{iq}", f"{step}.q{iq}.in", f"{step}.q{iq}.out"]
    if iq == 1:
        names.append(f"{fildyn}0")
    out = [Path(n) for n in names if (cwd / n).exists()]
    elph = cwd / "elph_dir"
    if elph.is_dir():
        out += sorted(p.relative_to(cwd) for p in elph.iterdir() if p.is_file() and p.name.endswith(f".{iq}"))
    return out


@dataclass
class QPointArchive:
    """The archive of ``step``'s finished q points in ``directory`` (``<run dir>/<step>.q``)."""

    directory: Path
    step: str
    fildyn: str
    fingerprint: str

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, or ``None`` when nothing was archived; checks that it is this calculation's."""
        if not self.manifest_path.exists():
            return None
        try:
            man = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise QPointArchiveError(f"{self.manifest_path}: not valid JSON ({exc})") from exc
        if man.get("fingerprint") != self.fingerprint:
            raise QPointArchiveError(
                f"{self.directory}: its q points belong to another calculation (fingerprint "
                f"{str(man.get('fingerprint'))[:12]}…, this run {self.fingerprint[:12]}…: different scf/ph.x inputs or "
                "pseudopotentials). Move the directory away to start this step afresh; nothing was overwritten."
            )
        return man

    def save(self, cwd: Path, iq: int, wall_s: float, n_q: int) -> None:
        """Archive point ``iq`` from the scratch directory ``cwd`` (its tar first, then the manifest,
        each written to a temporary name and renamed: a kill never leaves a half-written point)."""
        files = point_files(cwd, self.step, self.fildyn, iq)
        if not any(p.name == f"{self.fildyn}{iq}" for p in files):
            raise QPointArchiveError(f"{cwd / f'{self.fildyn}{iq}'}: ph.x wrote no dynamical matrix for q point {iq}")
        self.directory.mkdir(parents=True, exist_ok=True)
        man = self.manifest() or {"fingerprint": self.fingerprint, "step": self.step, "fildyn": self.fildyn, "q_wall_s": {}}
        tar_path = self.directory / f"q{iq}.tar.gz"
        tmp = tar_path.with_suffix(".tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            for rel in files:
                info = tar.gettarinfo(str(cwd / rel), arcname=str(rel))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with (cwd / rel).open("rb") as fh:
                    tar.addfile(info, fh)
        os.replace(tmp, tar_path)
        man["n_q"] = int(n_q)
        man["q_wall_s"][str(iq)] = round(float(wall_s), 2)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(man, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.manifest_path)

    def restore(self, cwd: Path) -> dict[str, Any] | None:
        """Unpack every archived point into ``cwd``; returns the progress record (``n_q``, ``q_wall_s``)
        that :meth:`~betenet.qe.workflow.MaterialRun.ph_by_q` keeps in ``<step>.progress.json``, or
        ``None`` when nothing is archived."""
        man = self.manifest()
        if not man or not man.get("q_wall_s"):
            return None
        for iq in sorted(man["q_wall_s"], key=int):
            tar_path = self.directory / f"q{iq}.tar.gz"
            if not tar_path.exists():
                raise QPointArchiveError(f"{tar_path}: listed in {self.manifest_path} but missing")
            with tarfile.open(tar_path, "r:gz") as tar:
                for member in tar.getmembers():
                    if not member.isfile() or member.name.startswith(("/", "..")) or ".." in Path(member.name).parts:
                        raise QPointArchiveError(f"{tar_path}: unexpected member {member.name!r}")
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    dest = cwd / member.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
        return {"n_q": man.get("n_q"), "q_wall_s": dict(man["q_wall_s"]), "restored_from": str(self.directory)}

