"""The labels of a QE record: unclipped moments at every el-ph broadening, their uncertainty, and flags.

:func:`build_record <betenet.qe.record.build_record>` takes λ, ω_log, ω₂ from α²F exactly as matdyn
wrote it.  matdyn's tetrahedron α²F has small negative lobes where the Fourier-interpolated linewidths
go negative; QE's own mode sum (the ``lambda`` file) includes those negative contributions, so the
unclipped integral equals it (λ to ≤ 2.3 % over data/records), while clipping first biased λ up to
+17 % (fcc Al).  Negative values are clipped only in the 51-bin learning target, after smoothing
(:func:`betenet.spectra.smooth_and_bin`).

:func:`broadening_moments` evaluates the moments at every broadening σ of ``a2f.dat.gz`` next to QE's
λ and ω_log from ``lambda``; :func:`label_uncertainty` turns their spread around the selected σ into
the label uncertainty (half the range over σ_{i−1}, σ_i, σ_{i+1}); :func:`record_flags` gives the
record's flags (vocabulary: :data:`betenet.records.FLAGS`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import physics
from ..records import FLAGS
from .parsers import a2f_sigmas, min_freq_off_gamma, parse_lambda_file, read_table
from .prototypes import CURATED_PRIORITY, GROUND_STATE, PrototypeError, parse_material_id

__all__ = [
    "SOFT_MODE_THRESHOLD_MEV",
    "BROADENING_SENSITIVE_RTOL",
    "OMEGA_LOG_MISMATCH_RTOL",
    "read_a2f_table",
    "broadening_moments",
    "label_uncertainty",
    "structure_flags",
    "record_flags",
    "record_labels",
]

#: ``soft_modes``: the lowest ph.x frequency off Γ below this (meV).
SOFT_MODE_THRESHOLD_MEV = 5.0
#: ``broadening_sensitive``: λ uncertainty (half the range over σ_{i−1..i+1}) above this fraction of λ,
#: i.e. λ at the neighbouring broadenings spans more than 20 % of λ.
BROADENING_SENSITIVE_RTOL = 0.10
#: ``omega_log_qe_mismatch``: ω_log of α²F vs QE's mode sum beyond this relative difference.
OMEGA_LOG_MISMATCH_RTOL = 0.03

_QUANTITIES = ("lambda", "omega_log_K", "omega_2_K", "tc_ad_K")


def read_a2f_table(path: Path) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """``a2f.dat.gz`` -> (ω in meV (ω > 0 only), α²F of shape (n_broadenings, n_ω), broadenings in Ry)."""
    header, data = read_table(Path(path))
    sigmas = a2f_sigmas(header)
    if data.ndim != 2 or data.shape[1] != len(sigmas) + 1:
        raise ValueError(f"{path}: header lists {len(sigmas)} broadenings but the table has {data.shape[1] - 1} α²F columns")
    keep = data[:, 0] > 0
    return data[keep, 0], data[keep, 1:].T, sigmas


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def broadening_moments(run_dir: Path, selected_sigma_Ry: float) -> dict[str, Any]:
    """λ, ω_log, ω₂, Allen–Dynes T_c of the unclipped α²F at every broadening, with QE's λ and ω_log.

    Returns the record's ``moments_by_broadening`` (see :class:`betenet.records.MaterialRecord`).
    Raises ``ValueError`` naming the file when ``a2f.dat.gz`` and ``lambda`` list different broadenings
    or the selected σ is not among them.
    """
    run_dir = Path(run_dir)
    omega, a2f, sigmas = read_a2f_table(run_dir / "a2f.dat.gz")
    rows = parse_lambda_file(run_dir / "lambda")
    if len(rows) != len(sigmas) or any(abs(r.broadening_Ry - s) > 1e-6 for r, s in zip(rows, sigmas)):
        raise ValueError(f"{run_dir}: 'lambda' lists broadenings {[r.broadening_Ry for r in rows]}, "
                         f"a2f.dat.gz lists {sigmas}")
    match = [i for i, s in enumerate(sigmas) if abs(s - selected_sigma_Ry) < 1e-9]
    if not match:
        raise ValueError(f"{run_dir / 'a2f.dat.gz'}: selected broadening {selected_sigma_Ry} Ry is not among {sigmas}")
    m = physics.moments(omega, a2f)
    tc = physics.allen_dynes_tc_K(m.lambda_, m.omega_log_K, m.omega_2_K)
    return {
        "broadening_Ry": list(map(float, sigmas)),
        "lambda": [_finite_or_none(x) for x in np.atleast_1d(m.lambda_)],
        "omega_log_K": [_finite_or_none(x) for x in np.atleast_1d(m.omega_log_K)],
        "omega_2_K": [_finite_or_none(x) for x in np.atleast_1d(m.omega_2_K)],
        "tc_ad_K": [_finite_or_none(x) for x in np.atleast_1d(tc)],
        "lambda_qe": [_finite_or_none(r.lambda_) for r in rows],
        "omega_log_K_qe": [None if r.omega_log_K is None else _finite_or_none(r.omega_log_K) for r in rows],
        "selected_index": match[0],
    }


def label_uncertainty(mbb: dict[str, Any]) -> dict[str, float | None]:
    """Half the range (max − min)/2 of each moment over the selected σ and its immediate neighbours.

    Keys ``lambda_uncertainty``, ``omega_log_K_uncertainty``, ``omega_2_K_uncertainty``,
    ``tc_ad_K_uncertainty`` (the record's field names); ``None`` where a value in the window is undefined
    or only one broadening exists.
    """
    i, n = mbb["selected_index"], len(mbb["broadening_Ry"])
    window = range(max(i - 1, 0), min(i + 2, n))
    out: dict[str, float | None] = {}
    for q in _QUANTITIES:
        vals = [mbb[q][j] for j in window]
        name = ("lambda" if q == "lambda" else q) + "_uncertainty"
        out[name] = None if n < 2 or any(v is None for v in vals) else 0.5 * (max(vals) - min(vals))
    return out


def structure_flags(material_id: str, prototype: str | None = None) -> list[str]:
    """``not_ground_state`` / ``structure_unverified`` from the material id (``'Ir1-hcp'``, ``'RuZr-B2'``).

    Elements: compared with :data:`betenet.qe.prototypes.GROUND_STATE` (experimental fcc/bcc/hcp ground
    states); an element missing from it is ``structure_unverified``.  Compounds: the candidate is a
    decoration of a prototype; whether it is the compound's observed structure cannot be decided from
    the project's data (no competing phases are computed), so only compounds on the curated list of
    observed structures (:data:`betenet.qe.prototypes.CURATED_PRIORITY`) go unflagged.
    """
    try:
        elements, proto = parse_material_id(material_id)
    except PrototypeError:
        return ["structure_unverified"]
    proto = prototype or proto
    if len(set(elements)) == 1:
        gs = GROUND_STATE.get(elements[0])
        if gs is None:
            return ["structure_unverified"]
        return [] if gs == proto else ["not_ground_state"]
    return [] if material_id in CURATED_PRIORITY else ["structure_unverified"]


def record_flags(run_dir: Path, material_id: str, mbb: dict[str, Any], uncertainty: dict[str, float | None], *,
                 prototype: str | None = None) -> list[str]:
    """The flags of a QE record (names and meanings: :data:`betenet.records.FLAGS`), in vocabulary order."""
    flags: set[str] = set(structure_flags(material_id, prototype))
    freqs = Path(run_dir) / "ph_freqs.json"
    if freqs.exists():
        ph = json.loads(freqs.read_text())
        if min_freq_off_gamma(ph["q_cart_2pi_alat"], ph["freq_meV"]) < SOFT_MODE_THRESHOLD_MEV:
            flags.add("soft_modes")
    i = mbb["selected_index"]
    lam, u = mbb["lambda"][i], uncertainty.get("lambda_uncertainty")
    if lam is not None and u is not None and lam > 0 and u > BROADENING_SENSITIVE_RTOL * lam:
        flags.add("broadening_sensitive")
    wlog, wlog_qe = mbb["omega_log_K"][i], mbb["omega_log_K_qe"][i]
    if wlog is not None and wlog_qe and abs(wlog / wlog_qe - 1.0) > OMEGA_LOG_MISMATCH_RTOL:
        flags.add("omega_log_qe_mismatch")
    return [f for f in FLAGS if f in flags]


def record_labels(run_dir: Path, material_id: str, selected_sigma_Ry: float, *, prototype: str | None = None) -> dict[str, Any]:
    """Everything :func:`build_record` adds about the labels: keyword arguments of the record
    (``moments_by_broadening``, the four ``*_uncertainty`` and ``flags``)."""
    mbb = broadening_moments(run_dir, selected_sigma_Ry)
    unc = label_uncertainty(mbb)
    return {"moments_by_broadening": mbb, **unc, "flags": record_flags(run_dir, material_id, mbb, unc, prototype=prototype)}
