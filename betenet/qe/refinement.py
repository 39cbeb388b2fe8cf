"""Per-material mesh refinement: one material rerun at its accuracy level with denser k / q meshes.

A level's meshes are chosen on convergence studies of typical materials; the strongest couplers can need
more.  bcc Nb at the validated level's q 4³ has every ph.x point stable, yet matdyn's Fourier interpolation
dips to -3.1 meV between them and λ(σ) never settles on the dense 24³ mesh
(``data/studies/validated-nb-ecutrho``).  Rejecting such materials would bias the labels against high λ, so
a material can be *refined*: :func:`refine_material` moves its run (and record) aside as
``<id>.bak-<time>`` (kept, never deleted, its CPU still counted: :func:`superseded_runs`) and leaves a new
run directory holding only ``refinement.json``; the next ``betenet qe run --ids <id>`` computes it again with
the level's settings and these denser meshes (:func:`refined_config`).  Only the mesh densities
(:data:`REFINABLE`) can change, and only upwards, so a refined label is at least as converged as the level
asks; the record names the refinement in ``provenance["refinement"]`` and its actual meshes in
``provenance["settings"]`` / ``["grids"]``.

Command line: ``betenet qe refine ID --accuracy validated --q-density 12 --k-density 83 --reason "..."``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

from ..config import QEConfig
from ..jsonio import read_json, utc_now, write_json_atomic
from ..locks import exclusive
from ..paths import QE_RUNS_DIR, RECORDS_DIR
from .filters import BACKUP_MARK
from .parsers import QEParseError
from .status import backup, load_status, material_dir, material_lock_path

__all__ = ["REFINABLE", "REFINEMENT_FILE", "check_overrides", "load_refinement", "refined_config",
           "refine_material", "carry_refinement", "superseded_runs", "refined_materials"]

#: The settings a refinement may raise (points per Å⁻¹, as in :class:`~betenet.config.QEConfig`).
REFINABLE = ("k_density_per_invA", "scf_k_density_per_invA", "q_density_per_invA")
#: The file in a run directory that holds its refinement.
REFINEMENT_FILE = "refinement.json"


def check_overrides(cfg: QEConfig, overrides: Mapping[str, Any], *, origin: str = "refinement") -> dict[str, float]:
    """The refinement's overrides as floats, after checking that each names a :data:`REFINABLE` field and is
    a finite number at least the level's value (a refinement never coarsens a mesh); ``ValueError`` naming
    ``origin`` and the field otherwise."""
    if not overrides:
        raise ValueError(f"{origin}: no mesh to refine (expected one or more of {', '.join(REFINABLE)})")
    out: dict[str, float] = {}
    for name, value in overrides.items():
        if name not in REFINABLE:
            raise ValueError(f"{origin}: {name!r} cannot be refined (expected one of {', '.join(REFINABLE)})")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{origin}: {name} must be a number of points per Å^-1, got {value!r}") from None
        level = getattr(cfg, name)
        if name == "scf_k_density_per_invA" and level is None:  # the level's scf mesh: half the dense one
            level = cfg.k_density_per_invA / 2
        if not math.isfinite(v) or v < level:
            raise ValueError(f"{origin}: {name} = {value!r} is below the {cfg.accuracy} level's {level:g} per Å^-1 "
                             "(a refinement only makes meshes denser)")
        out[name] = v
    return out


def load_refinement(run_dir: Path | str) -> dict[str, Any] | None:
    """The ``refinement.json`` of a run directory (``None`` without one); a garbled file or one without
    ``overrides`` raises :class:`~betenet.qe.parsers.QEParseError` naming it."""
    path = Path(run_dir) / REFINEMENT_FILE
    if not path.exists():
        return None
    data = read_json(path, error=QEParseError)
    if not isinstance(data, dict) or not isinstance(data.get("overrides"), dict):
        raise QEParseError(f"{path}: expected an object with 'overrides' (field -> points per Å^-1)")
    return data


def refined_config(cfg: QEConfig, run_dir: Path | str) -> QEConfig:
    """``cfg`` with the run directory's refinement applied (``cfg`` itself when there is none); the overrides
    are checked against ``cfg`` again (:func:`check_overrides`), so a refinement below the level is refused."""
    ref = load_refinement(run_dir)
    if ref is None:
        return cfg
    return dataclasses.replace(cfg, **check_overrides(cfg, ref["overrides"], origin=str(Path(run_dir) / REFINEMENT_FILE)))


def refine_material(material_id: str, cfg: QEConfig, overrides: Mapping[str, Any], reason: str, *,
                    runs_dir: Path | None = None, records_dir: Path | None = None) -> dict[str, Any]:
    """Set ``material_id`` up to be computed again with denser meshes; returns the new ``refinement.json``.

    Under the material's lock (a running ``qe run`` of it makes this fail at once): its run directory and
    record move to ``*.bak-<time>`` (:func:`~betenet.qe.status.backup`), and a new run directory holds the
    refinement: the overrides, ``reason``, the superseded run's directory name and state, and the date.  The
    overrides add to an earlier refinement of the same material.  Nothing runs here: ``qe run`` does that.
    """
    if not reason.strip():
        raise ValueError(f"{material_id}: a refinement needs a reason (it is kept with the run and the record)")
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    records_dir = Path(records_dir or RECORDS_DIR)
    d = material_dir(material_id, runs_dir)
    with exclusive(material_lock_path(material_id, runs_dir), f"the QE run of material {material_id!r}"):
        previous = load_refinement(d) or {}
        merged = {**previous.get("overrides", {}), **overrides}
        checked = check_overrides(cfg, merged, origin=f"{material_id}: refinement")
        ran = d.exists() and any(p.name != REFINEMENT_FILE for p in d.iterdir())  # only a refinement: nothing to keep
        state = load_status(material_id, runs_dir).state if (d / "status.json").exists() else None
        moved = backup(d) if ran else None
        record_moved = backup(records_dir / f"{material_id}.json")
        d.mkdir(parents=True, exist_ok=True)
        ref = {"material_id": material_id, "accuracy": cfg.accuracy, "overrides": checked, "reason": reason.strip(),
               "supersedes": [*previous.get("supersedes", []),
                              *([{"run_dir": moved.name, "state": state,
                                  "record": record_moved.name if record_moved else None}] if moved else [])],
               "date": utc_now()}
        write_json_atomic(d / REFINEMENT_FILE, ref)
    return ref


def carry_refinement(ref: dict[str, Any] | None, run_dir: Path, moved: Path | None, *, state: str | None = None,
                     record: Path | None = None) -> None:
    """After ``qe run --force`` moved a refined run (in ``state``) and its record aside: the new run directory
    keeps its refinement, with the moved directory added to ``supersedes``."""
    if ref is None:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    superseded = list(ref.get("supersedes", []))
    if moved is not None:
        superseded.append({"run_dir": moved.name, "state": state, "record": record.name if record else None,
                           "by": "qe run --force"})
    write_json_atomic(run_dir / REFINEMENT_FILE, {**ref, "supersedes": superseded})


def superseded_runs(runs_dir: Path | str) -> list[Path]:
    """The run directories that a refinement or ``qe run --force`` moved aside (``<id>.bak-<time>/``), sorted:
    their CPU was spent, so cost tables count it (:func:`betenet.qe.summary.cpu_by_outcome`)."""
    return sorted(p for p in Path(runs_dir).glob(f"*{BACKUP_MARK}*") if p.is_dir())


def refined_materials(runs_dir: Path | str) -> list[dict[str, Any]]:
    """One entry per refined material of ``runs_dir`` (not the moved-aside runs): id, state of its run,
    overrides, reason and the runs it superseded, by id (``betenet qe status`` prints them)."""
    out = []
    for path in sorted(Path(runs_dir).glob(f"*/{REFINEMENT_FILE}")):
        d = path.parent
        if BACKUP_MARK in d.name:
            continue
        ref = load_refinement(d) or {}
        state = load_status(d.name, Path(runs_dir)).state
        out.append({"material_id": d.name, "state": state, "overrides": ref.get("overrides"), "reason": ref.get("reason"),
                    "supersedes": [x.get("run_dir") for x in ref.get("supersedes", [])]})
    return out
