"""Quality filters of Methods IV.1 and the dataset funnel.

A converged material is excluded when (in this order)

* ``imaginary_modes``: a phonon frequency below ``-IMAGINARY_MODE_THRESHOLD_MEV`` (1 meV), on the
  ph.x q mesh (Γ excluded: ph.x imposes no acoustic sum rule there) or on the matdyn interpolation
  mesh, which contains Γ, with the ASR applied;
  a dip of the interpolation alone is judged by DFPT at its deepest point (:mod:`betenet.qe.dipcheck`);
* ``nan``: NaN/inf in the α²F files;
* ``negative_a2f``: negative α²F carrying more than ``QEConfig.a2f_negative_fraction_max`` of the
  positive spectral weight at the chosen broadening (smaller low-frequency noise is clipped);
* ``band_gap``: total eDOS at E_F below ``QEConfig.gap_dos_threshold_per_eV`` (checked first in
  the workflow, right after the eDOS step, so that no phonons are computed for an insulator).

:func:`funnel` counts submitted -> converged -> dynamically stable -> kept from the ``status.json``
files, with the reasons, as in §IV.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..config import QEConfig
from ..constants import IMAGINARY_MODE_THRESHOLD_MEV
from ..jsonio import read_json
from .broadening import choose_for_a2f_table
from .dipcheck import DIP_STEP, dip_verdict
from .parsers import QEParseError, read_table

__all__ = [
    "REASONS",
    "QualityReport",
    "quality_report",
    "imaginary_check",
    "a2f_checks",
    "funnel",
    "funnel_table",
]

#: Rejection reasons in funnel order (QE failures first).
REASONS = ("not_converged", "failed", "band_gap", "imaginary_modes", "nan", "negative_a2f", "pseudopotential")


@dataclass
class QualityReport:
    kept: bool
    reason: str | None = None
    detail: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)


def imaginary_check(min_freqs_meV: Iterable[float | None], threshold_meV: float = IMAGINARY_MODE_THRESHOLD_MEV) -> bool:
    """True when every available minimum frequency is above ``-threshold_meV`` (dynamically stable)."""
    vals = [float(v) for v in min_freqs_meV if v is not None]
    return all(v >= -threshold_meV for v in vals)


def a2f_checks(omega_meV: np.ndarray, a2f: np.ndarray) -> dict[str, Any]:
    """NaN flag and negative-weight fraction ∫max(-α²F,0)/∫max(α²F,0) of one α²F."""
    omega_meV = np.asarray(omega_meV, dtype=float)
    a2f = np.asarray(a2f, dtype=float)
    has_nan = not bool(np.all(np.isfinite(a2f)))
    if has_nan:
        return {"has_nan": True, "negative_fraction": None, "a2f_min": None}
    pos = float(np.trapezoid(np.clip(a2f, 0, None), omega_meV))
    neg = float(np.trapezoid(np.clip(-a2f, 0, None), omega_meV))
    return {
        "has_nan": False,
        "negative_fraction": (neg / pos) if pos > 0 else float("inf"),
        "a2f_min": float(a2f.min()),
    }


def _status(run_dir: Path) -> dict[str, Any]:
    p = Path(run_dir) / "status.json"
    return read_json(p, error=QEParseError) if p.exists() else {}


def quality_report(run_dir: Path, cfg: QEConfig, *, stage: str) -> QualityReport:
    """Apply the filters available after ``stage`` (``"edos"`` or ``"phonons"``) to ``data/qe/<id>/``."""
    run_dir = Path(run_dir)
    steps = _status(run_dir).get("steps", {})
    checks: dict[str, Any] = {}
    if stage == "edos":
        _, data = read_table(run_dir / "edos.dat.gz")  # QEParseError naming the file if corrupt or cut
        dos_ef = float(np.interp(0.0, data[:, 0], data[:, 1]))
        checks["dos_ef_per_eV"] = dos_ef
        if dos_ef < cfg.gap_dos_threshold_per_eV:
            return QualityReport(
                False, "band_gap", f"total eDOS at E_F {dos_ef:.3g} < {cfg.gap_dos_threshold_per_eV} states/eV/cell", checks
            )
        return QualityReport(True, checks=checks)
    if stage != "phonons":
        raise ValueError(f"unknown filter stage {stage!r}; expected 'edos' or 'phonons'")
    ph_min = steps.get("ph_elph", {}).get("min_freq_meV")
    md_min = steps.get("matdyn", {}).get("min_freq_meV")
    checks.update(min_freq_ph_meV=ph_min, min_freq_matdyn_meV=md_min)
    dip = steps.get(DIP_STEP) or {}
    if dip.get("done") and "min_freq_meV" in dip:  # DFPT at matdyn's dip decides (betenet.qe.dipcheck)
        artefact, detail = dip_verdict(dip, cfg)
        checks["interpolation_dip"] = detail
        if not artefact:
            return QualityReport(False, "imaginary_modes", detail, checks)
        md_min = dip["min_freq_meV"]  # the interpolation's dip is excused, DFPT's frequency there counts
    if not imaginary_check([ph_min, md_min]):
        worst = min(v for v in (ph_min, md_min) if v is not None)
        return QualityReport(
            False, "imaginary_modes", f"lowest frequency {worst:.2f} meV < -{IMAGINARY_MODE_THRESHOLD_MEV} meV", checks
        )
    header, data = read_table(run_dir / "a2f.dat.gz")
    idx = choose_for_a2f_table(run_dir, cfg, header, data).index
    omega, a2f = data[:, 0], data[:, idx]
    a = a2f_checks(omega, a2f)
    checks.update(a2f_negative_fraction=a["negative_fraction"], a2f_min=a["a2f_min"])
    if a["has_nan"] or not np.all(np.isfinite(data)):
        checks["has_nan"] = True
        return QualityReport(False, "nan", "NaN/inf in the α²F files", checks)
    if a["negative_fraction"] > cfg.a2f_negative_fraction_max:
        return QualityReport(
            False,
            "negative_a2f",
            f"negative α²F weight {a['negative_fraction']:.3g} of the positive weight > {cfg.a2f_negative_fraction_max}",
            checks,
        )
    return QualityReport(True, checks=checks)


BACKUP_MARK = ".bak-"


def status_files(runs_dir: Path) -> list[Path]:
    """``<runs_dir>/<material>/status.json`` of every material, sorted; the backups that
    ``qe run --force`` leaves (``<material>.bak-<time>/``) are not materials and are skipped."""
    return [p for p in sorted(Path(runs_dir).glob("*/status.json")) if BACKUP_MARK not in p.parent.name]


def funnel(runs_dir: Path) -> dict[str, Any]:
    """Counts from every ``<runs_dir>/*/status.json``: submitted, converged, dynamically stable,
    kept, per-reason rejections, still running/pending, and per-material wall times (s)."""
    runs_dir = Path(runs_dir)
    statuses = [read_json(p, error=QEParseError) for p in status_files(runs_dir)]
    reasons: dict[str, int] = {}
    n = {"submitted": len(statuses), "finished": 0, "converged": 0, "metallic": 0, "dynamically_stable": 0, "kept": 0}
    in_progress = 0
    walls = []
    for s in statuses:
        state = s.get("state")
        if state not in ("kept", "rejected", "failed"):
            in_progress += 1
            continue
        n["finished"] += 1
        reason = s.get("reason")
        if state == "failed" or reason == "not_converged":
            reasons["not_converged" if reason == "not_converged" else "failed"] = reasons.get(
                "not_converged" if reason == "not_converged" else "failed", 0
            ) + 1
            continue
        n["converged"] += 1
        if reason == "band_gap":
            reasons["band_gap"] = reasons.get("band_gap", 0) + 1
            continue
        n["metallic"] += 1
        if reason == "imaginary_modes":
            reasons["imaginary_modes"] = reasons.get("imaginary_modes", 0) + 1
            continue
        n["dynamically_stable"] += 1
        if state == "rejected":
            reasons[reason or "rejected"] = reasons.get(reason or "rejected", 0) + 1
            continue
        n["kept"] += 1
        walls.append(sum(float(v.get("wall_s", 0.0)) for v in s.get("steps", {}).values()))
    return {**n, "in_progress": in_progress, "reasons": reasons, "kept_wall_s": walls}


def funnel_table(runs_dir: Path):
    """The funnel as a two-column ``pandas.DataFrame`` (stage, count) in §IV.1 order."""
    import pandas as pd  # heavy (~0.5 s): only for this table

    f = funnel(runs_dir)
    r = f["reasons"]
    rows = [
        ("submitted", f["submitted"]),
        ("finished (not running/pending)", f["finished"]),
        ("QE failed / not converged", r.get("failed", 0) + r.get("not_converged", 0)),
        ("converged", f["converged"]),
        ("band gap (eDOS at E_F)", r.get("band_gap", 0)),
        ("imaginary modes < -1 meV", r.get("imaginary_modes", 0)),
        ("dynamically stable", f["dynamically_stable"]),
        ("NaN in α²F", r.get("nan", 0)),
        ("negative α²F", r.get("negative_a2f", 0)),
        ("pseudopotential failed review", r.get("pseudopotential", 0)),
        ("kept", f["kept"]),
    ]
    return pd.DataFrame(rows, columns=["stage", "materials"])
