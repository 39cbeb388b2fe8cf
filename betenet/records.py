"""The material record: one documented dataclass per material, and its versioned on-disk format.

On disk: one JSON file per material (``data/records/<material_id>.json``) with
``{"schema": "betenet.record", "schema_version": SCHEMA_VERSION, ...}``.  Structures are stored as
pymatgen ``Structure.as_dict()``; arrays as lists of floats.  :func:`validate_record` raises
:class:`RecordError` naming the material and the field for NaN, negative α²F weight beyond tolerance,
non-increasing grids, unknown elements, unknown flags, missing fields, and (records of this project's
QE workflow) moments that disagree with QE's own mode sum.

Schema versions
---------------
* **2** (written now): ``a2f`` is α²F exactly as QE wrote it (negative interpolation lobes kept) and
  ``lambda_``, ``omega_log_K``, ``omega_2_K``, ``tc_ad_K`` are its moments, so they equal QE's mode
  sum (``provenance["lambda_qe"]``, ``provenance["omega_log_K_qe"]``).  New fields:
  ``moments_by_broadening`` (the moments at every el-ph broadening QE computed), the label
  uncertainties ``*_uncertainty`` and ``flags`` (vocabulary :data:`FLAGS`).  Negative values are
  clipped only in the learning target, after smoothing (:func:`betenet.spectra.smooth_and_bin`).
* **1** (still read): records of this project's QE workflow stored α²F clipped at zero and its
  moments (λ biased high where α²F had a negative lobe: +17 % for fcc Al).  They are read unchanged
  and get the flag ``clipped_moments``; the QE mode-sum check is not applied to them.  Rebuild them
  with ``betenet qe parse --write --overwrite ID ...``.

Units are in the field names: frequencies in meV, energies relative to E_F in meV, eDOS in
states/eV/cell (per spin summed), ω_log and ω₂ in K.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pymatgen.core import Element, Structure

from .physics import moments

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "RecordError",
    "MaterialRecord",
    "validate_record",
    "save_record",
    "load_record",
    "load_records",
    "A2F_NEGATIVE_WEIGHT_TOLERANCE",
    "FLAGS",
    "LAMBDA_QE_RTOL",
    "OMEGA_LOG_QE_RTOL",
    "READABLE_SCHEMA_VERSIONS",
    "check_qe_mode_sum",
]

SCHEMA = "betenet.record"
SCHEMA_VERSION = 2
#: Schema versions :func:`load_record` reads (see the module docstring).
READABLE_SCHEMA_VERSIONS = (1, 2)
#: Largest accepted ∫max(-α²F, 0)dω / ∫max(α²F, 0)dω.  QE's tetrahedron α²F has small negative lobes
#: where Fourier-interpolated linewidths go negative (up to 0.044 in data/records); a larger negative
#: weight is not interpolation noise.
A2F_NEGATIVE_WEIGHT_TOLERANCE = 0.10
#: λ from the record's α²F must equal QE's own mode sum (``provenance["lambda_qe"]``, matdyn's
#: ``lambda`` file) to this relative tolerance (largest deviation in data/records: 2.3 %, hcp Pd).
LAMBDA_QE_RTOL = 0.03
#: ω_log from the record's α²F against QE's mode-sum ω_log (``provenance["omega_log_K_qe"]``).  Looser
#: than λ because ω_log weights the low-frequency tail, where matdyn's tetrahedron α²F and its mode sum
#: on the same mesh differ (fcc Pt −10.6 %, hcp Pd +8.3 %, fcc Al −4.9 %; the rest ≤ 2.5 %); a record
#: beyond 3 % carries the flag ``omega_log_qe_mismatch``.
OMEGA_LOG_QE_RTOL = 0.12

#: The record flags (``MaterialRecord.flags``): name -> meaning.  Set by
#: :func:`betenet.qe.labels.record_flags` (QE records) or when reading an old schema.
FLAGS: dict[str, str] = {
    "soft_modes": "the lowest ph.x frequency off Γ is below betenet.qe.labels.SOFT_MODE_THRESHOLD_MEV (5 meV): "
    "a soft or nearly unstable spectrum whose low-frequency part (which dominates λ) rests on few modes",
    "not_ground_state": "an element in a prototype that is not its experimental ground-state structure "
    "(betenet.qe.prototypes.GROUND_STATE), e.g. hcp Ir, fcc Cd",
    "structure_unverified": "whether this structure is the material's experimental one is not decided by the "
    "project's data: a compound decoration outside the curated list of observed structures "
    "(betenet.qe.prototypes.CURATED_PRIORITY) or an element without a GROUND_STATE entry",
    "broadening_sensitive": "the λ label uncertainty (half the range of λ over the selected and neighbouring el-ph "
    "broadenings) exceeds betenet.qe.labels.BROADENING_SENSITIVE_RTOL (10 %) of λ: λ is not converged in σ",
    "broadening_unconverged": "no plateau of λ(σ) was found (betenet.qe.broadening.select_plateau): the label "
    "uses the level's fallback broadening and λ is still drifting with σ for this k mesh",
    "cutoff_below_library": "the run's plane-wave cutoffs (scf.in) are below those its level's pseudopotential "
    "library now gives for its elements (the library's convergence study moved after the run started): the "
    "phonons, and so λ, are not converged in the cutoff to the library's tolerance",
    "pseudopotential_provisional": "an element's pseudopotential had not passed every check of its level's "
    "library (status 'provisional': cutoffs from the energy/pressure scan, phonon or E(V) check pending) "
    "when the record was built",
    "pseudopotential_failed": "an element's pseudopotential failed a check of its level's library (status "
    "'failed', e.g. E(V) against experiment) after the run, and the library no longer offers it: not a "
    "validated label until the element is rechecked or replaced",
    "omega_log_qe_mismatch": "ω_log of the α²F differs from QE's mode-sum ω_log by more than 3 % "
    "(low-frequency tail; λ agrees within LAMBDA_QE_RTOL)",
    "interpolation_dip": "matdyn's Fourier interpolation of the ph.x q mesh dips below -1 meV on a few points "
    "while DFPT at the deepest one is stable (betenet.qe.dipcheck): an artefact of the coarse q mesh; the α²F "
    "is the interpolation's, with those few modes missing from its positive-frequency spectrum",
    "coarse_phdos_imaginary": "more than COARSE_NEGATIVE_WEIGHT_TOLERANCE (0.5 %) of the coarse PhDOS lies below "
    "-1 meV: its 2x2x2 ph.x points ran on an scf mesh that is no multiple of 2x2x2, where DFPT at a zone-boundary "
    "point can come out imaginary (betenet.qe.coarse); the CPD input and the baseline's moments from it are "
    "unreliable until `betenet qe coarse-check --reopen` redoes them",
    "clipped_moments": "a schema-1 record of the QE workflow: α²F was clipped at zero before its moments "
    "were taken (biased λ, ω_log); rebuild it from data/qe",
}


class RecordError(ValueError):
    """A record (or a file that should hold one) is malformed; the message names material and field."""


_ARRAY_FIELDS = (
    "a2f_omega_meV",
    "a2f",
    "phdos_omega_meV",
    "phdos_total",
    "phdos_site",
    "phdos_coarse_omega_meV",
    "phdos_coarse_total",
    "phdos_coarse_site",
    "edos_energy_meV",
    "edos_total",
    "edos_site",
)


@dataclass
class MaterialRecord:
    """Everything the paper uses about one material.

    Attributes
    ----------
    material_id: unique id, e.g. ``"bn-0001-Al"`` or the upstream index.
    structure: relaxed crystal structure (pymatgen).
    a2f_omega_meV, a2f: raw isotropic Eliashberg function α²F(ω) (dimensionless) on its DFT grid (meV),
        at the chosen el-ph broadening.
    phdos_omega_meV, phdos_total, phdos_site: *fine* phonon DOS (states/meV/cell), total and site-projected
        (``phdos_site[i]`` for site ``i`` of ``structure``; shape ``(n_sites, n_omega)``).
    phdos_coarse_*: *coarse* phonon DOS (force constants on a 2x2x2 q grid, Fourier-interpolated).
    edos_energy_meV, edos_total, edos_site: electronic DOS around E_F (energy relative to E_F, meV;
        states/eV/cell), total and site-projected (``(n_sites, n_energy)``); optional.
    edos_ef_per_eV: total eDOS at the Fermi level (states/eV/cell, both spins).
    lambda_, omega_log_K, omega_2_K, tc_ad_K: moments and Allen-Dynes T_c (μ* = 0.1) of the raw,
        *unclipped* α²F on its own grid (QE records: equal to QE's mode sum, checked by
        :func:`check_qe_mode_sum`), as computed by the source.
    moments_by_broadening: QE records: the same moments at every el-ph broadening σ that ph.x computed,
        ``{"broadening_Ry": [...], "lambda": [...], "omega_log_K": [...], "omega_2_K": [...],
        "tc_ad_K": [...], "lambda_qe": [...], "omega_log_K_qe": [...], "selected_index": i}`` (lists in
        σ order; ``selected_index`` is the 0-based index of the record's σ; ``*_qe`` from matdyn's
        ``lambda`` file; undefined moments as ``None``).  The α²F of every σ is in
        ``data/qe/<id>/a2f.dat.gz`` (not copied: it would double the size of the records).
    lambda_uncertainty, omega_log_K_uncertainty, omega_2_K_uncertainty, tc_ad_K_uncertainty: the label
        uncertainty from the el-ph broadening: **half the range** (max − min)/2 of the quantity over the
        selected σ and its immediate neighbours in ``moments_by_broadening`` (σ_{i−1}, σ_i, σ_{i+1}; one
        neighbour at the ends of the list).  It measures how unconverged the label is in σ (the k mesh's
        Fermi-surface sampling), not the DFT error.
    flags: warnings about the label, names from :data:`FLAGS` (a list of strings, possibly empty).
    source: ``"betenet-qe"`` (this project's QE workflow) or ``"upstream-bete-net"`` (database.json).
    provenance: code, version, accuracy level, settings, pseudopotentials, timings.
    """

    material_id: str
    structure: Structure
    a2f_omega_meV: np.ndarray
    a2f: np.ndarray
    phdos_omega_meV: np.ndarray | None = None
    phdos_total: np.ndarray | None = None
    phdos_site: np.ndarray | None = None
    phdos_coarse_omega_meV: np.ndarray | None = None
    phdos_coarse_total: np.ndarray | None = None
    phdos_coarse_site: np.ndarray | None = None
    edos_energy_meV: np.ndarray | None = None
    edos_total: np.ndarray | None = None
    edos_site: np.ndarray | None = None
    edos_ef_per_eV: float | None = None
    lambda_: float | None = None
    omega_log_K: float | None = None
    omega_2_K: float | None = None
    tc_ad_K: float | None = None
    source: str = "betenet-qe"
    provenance: dict[str, Any] = field(default_factory=dict)
    moments_by_broadening: dict[str, Any] | None = None
    lambda_uncertainty: float | None = None
    omega_log_K_uncertainty: float | None = None
    omega_2_K_uncertainty: float | None = None
    tc_ad_K_uncertainty: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def formula(self) -> str:
        return self.structure.composition.reduced_formula

    @property
    def elements(self) -> list[str]:
        return sorted({sp.symbol for sp in self.structure.composition.elements})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "material_id": self.material_id,
            "formula": self.formula,
            "structure": self.structure.as_dict(),
        }
        for name in _ARRAY_FIELDS:
            value = getattr(self, name)
            out[name] = None if value is None else np.asarray(value, dtype=float).tolist()
        for name in _SCALAR_FIELDS:
            value = getattr(self, name)
            out[name] = None if value is None else float(value)
        out["moments_by_broadening"] = self.moments_by_broadening
        out["flags"] = list(self.flags)
        out["source"] = self.source
        out["provenance"] = self.provenance
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> "MaterialRecord":
        mid = data.get("material_id", "<unknown>")
        if data.get("schema") != SCHEMA:
            raise RecordError(f"{origin}: material {mid!r}: field 'schema' is {data.get('schema')!r}, expected {SCHEMA!r}")
        version = data.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS:
            raise RecordError(
                f"{origin}: material {mid!r}: field 'schema_version' is {version!r}, this betenet reads "
                f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}"
            )
        for required in ("material_id", "structure", "a2f_omega_meV", "a2f"):
            if data.get(required) is None:
                raise RecordError(f"{origin}: material {mid!r}: missing required field {required!r}")
        try:
            structure = Structure.from_dict(data["structure"])
        except Exception as exc:  # pymatgen raises many types for malformed dicts
            raise RecordError(f"{origin}: material {mid!r}: field 'structure' is not a pymatgen Structure: {exc}") from exc
        kwargs: dict[str, Any] = {}
        for name in _ARRAY_FIELDS:
            value = data.get(name)
            kwargs[name] = None if value is None else np.asarray(value, dtype=float)
        for name in _SCALAR_FIELDS:
            value = data.get(name)
            kwargs[name] = None if value is None else float(value)
        flags = data.get("flags") or []
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise RecordError(f"{origin}: material {mid!r}: field 'flags' must be a list of strings, got {flags!r}")
        source = data.get("source", "betenet-qe")
        if version == 1 and source == "betenet-qe" and "clipped_moments" not in flags:
            flags = [*flags, "clipped_moments"]
        mbb = data.get("moments_by_broadening")
        if mbb is not None and not isinstance(mbb, dict):
            raise RecordError(f"{origin}: material {mid!r}: field 'moments_by_broadening' must be an object, got {type(mbb).__name__}")
        return cls(
            material_id=str(data["material_id"]),
            structure=structure,
            source=source,
            provenance=dict(data.get("provenance") or {}),
            moments_by_broadening=mbb,
            flags=list(flags),
            **kwargs,
        )


_SCALAR_FIELDS = (
    "edos_ef_per_eV",
    "lambda_",
    "omega_log_K",
    "omega_2_K",
    "tc_ad_K",
    "lambda_uncertainty",
    "omega_log_K_uncertainty",
    "omega_2_K_uncertainty",
    "tc_ad_K_uncertainty",
)
_BROADENING_KEYS = ("broadening_Ry", "lambda", "omega_log_K", "omega_2_K", "tc_ad_K", "lambda_qe", "omega_log_K_qe")


def _fail(rec: MaterialRecord, fieldname: str, msg: str, origin: str | None) -> RecordError:
    where = f"{origin}: " if origin else ""
    return RecordError(f"{where}material {rec.material_id!r}: field {fieldname!r}: {msg}")


def validate_record(rec: MaterialRecord, *, origin: str | None = None) -> MaterialRecord:
    """Check a record; raise :class:`RecordError` naming material and field, else return it."""
    for el in rec.structure.composition.elements:
        if not isinstance(el, Element) or el.Z < 1 or el.Z > 103:
            raise _fail(rec, "structure", f"unknown element {el}", origin)
    n_sites = len(rec.structure)

    def grid(name: str) -> None:
        x = getattr(rec, name)
        if x is None:
            return
        if x.ndim != 1 or x.size < 2:
            raise _fail(rec, name, f"expected a 1-D grid with >= 2 points, got shape {x.shape}", origin)
        if not np.all(np.isfinite(x)):
            raise _fail(rec, name, "contains NaN/inf", origin)
        if not np.all(np.diff(x) > 0):
            i = int(np.argmax(np.diff(x) <= 0))
            raise _fail(rec, name, f"grid not strictly increasing at index {i} ({x[i]} -> {x[i + 1]})", origin)

    def values(name: str, grid_name: str, per_site: bool = False) -> None:
        y = getattr(rec, name)
        if y is None:
            return
        x = getattr(rec, grid_name)
        if x is None:
            raise _fail(rec, name, f"given without its grid {grid_name!r}", origin)
        if not np.all(np.isfinite(y)):
            raise _fail(rec, name, "contains NaN/inf", origin)
        expected = (n_sites, x.size) if per_site else (x.size,)
        if y.shape != expected:
            raise _fail(rec, name, f"shape {y.shape}, expected {expected} (grid {grid_name!r}, {n_sites} sites)", origin)

    for g in ("a2f_omega_meV", "phdos_omega_meV", "phdos_coarse_omega_meV", "edos_energy_meV"):
        grid(g)
    values("a2f", "a2f_omega_meV")
    values("phdos_total", "phdos_omega_meV")
    values("phdos_site", "phdos_omega_meV", per_site=True)
    values("phdos_coarse_total", "phdos_coarse_omega_meV")
    values("phdos_coarse_site", "phdos_coarse_omega_meV", per_site=True)
    values("edos_total", "edos_energy_meV")
    values("edos_site", "edos_energy_meV", per_site=True)
    peak = float(np.max(np.abs(rec.a2f))) if rec.a2f.size else 0.0
    if peak == 0.0:
        raise _fail(rec, "a2f", "α²F is identically zero", origin)
    pos = float(np.trapezoid(np.clip(rec.a2f, 0.0, None), rec.a2f_omega_meV))
    neg = float(np.trapezoid(np.clip(-rec.a2f, 0.0, None), rec.a2f_omega_meV))
    if pos <= 0.0 or neg > A2F_NEGATIVE_WEIGHT_TOLERANCE * pos:
        raise _fail(
            rec, "a2f", f"negative α²F weight {neg:.3g} is more than {A2F_NEGATIVE_WEIGHT_TOLERANCE} x the positive "
            f"weight {pos:.3g} (∫α²F dω over each sign)", origin
        )
    for name in _SCALAR_FIELDS:
        v = getattr(rec, name)
        if v is not None and not math.isfinite(v):
            raise _fail(rec, name, f"not finite ({v})", origin)
        if v is not None and name.endswith("_uncertainty") and v < 0:
            raise _fail(rec, name, f"negative uncertainty ({v})", origin)
    unknown = [f for f in rec.flags if f not in FLAGS]
    if unknown:
        raise _fail(rec, "flags", f"unknown flag(s) {unknown}; known: {', '.join(FLAGS)}", origin)
    _check_broadenings(rec, origin)
    check_qe_mode_sum(rec, origin=origin)
    return rec


def _check_broadenings(rec: MaterialRecord, origin: str | None) -> None:
    mbb = rec.moments_by_broadening
    if mbb is None:
        return
    name = "moments_by_broadening"
    missing = [k for k in (*_BROADENING_KEYS, "selected_index") if k not in mbb]
    if missing:
        raise _fail(rec, name, f"missing key(s) {missing}", origin)
    n = len(mbb["broadening_Ry"])
    bad = [k for k in _BROADENING_KEYS if not isinstance(mbb[k], list) or len(mbb[k]) != n]
    if n < 1 or bad:
        raise _fail(rec, name, f"expected lists as long as 'broadening_Ry' ({n}) under {bad}", origin)
    sig = np.asarray(mbb["broadening_Ry"], dtype=float)
    if not np.all(np.isfinite(sig)) or not np.all(np.diff(sig) > 0):
        raise _fail(rec, name, f"'broadening_Ry' must increase strictly, got {mbb['broadening_Ry']}", origin)
    i = mbb["selected_index"]
    if not isinstance(i, int) or not 0 <= i < n:
        raise _fail(rec, name, f"'selected_index' {i!r} outside 0..{n - 1}", origin)
    lam_i = mbb["lambda"][i]
    if rec.lambda_ is not None and (lam_i is None or not math.isclose(lam_i, rec.lambda_, rel_tol=1e-9, abs_tol=1e-12)):
        raise _fail(rec, name, f"λ at the selected broadening ({lam_i}) is not the record's lambda_ ({rec.lambda_})", origin)


def check_qe_mode_sum(rec: MaterialRecord, *, origin: str | None = None) -> None:
    """λ and ω_log of the record's α²F against QE's own mode sum; raise :class:`RecordError` if they differ.

    Applies to records with ``provenance["lambda_qe"]`` (this project's QE workflow), except those flagged
    ``clipped_moments`` (schema 1).  The moments are recomputed from the stored ``a2f`` (so a truncated
    or edited α²F fails) and must also equal the stored ``lambda_`` / ``omega_log_K``.  Tolerances:
    :data:`LAMBDA_QE_RTOL` (λ), :data:`OMEGA_LOG_QE_RTOL` (ω_log).
    """
    prov = rec.provenance or {}
    lam_qe, wlog_qe = prov.get("lambda_qe"), prov.get("omega_log_K_qe")
    if lam_qe is None or "clipped_moments" in rec.flags:
        return
    m = moments(rec.a2f_omega_meV, rec.a2f)
    checks = [("lambda_", float(m.lambda_), rec.lambda_, float(lam_qe), "lambda_qe", LAMBDA_QE_RTOL)]
    if wlog_qe is not None:
        checks.append(("omega_log_K", float(m.omega_log_K), rec.omega_log_K, float(wlog_qe), "omega_log_K_qe", OMEGA_LOG_QE_RTOL))
    for fieldname, from_a2f, stored, qe, qe_name, rtol in checks:
        if stored is None or not math.isclose(from_a2f, stored, rel_tol=1e-6):
            raise _fail(rec, fieldname, f"stored value {stored} is not the moment of the stored a2f ({from_a2f:.6g})", origin)
        if not qe > 0 or not math.isfinite(from_a2f) or abs(from_a2f / qe - 1.0) > rtol:
            raise _fail(
                rec, fieldname, f"{from_a2f:.4g} from the stored α²F differs from QE's mode sum "
                f"(provenance.{qe_name} = {qe:.4g}) by {from_a2f / qe - 1.0:+.1%}, more than {rtol:.0%} "
                "(truncated or edited α²F, or a wrong broadening?)", origin
            )


def save_record(rec: MaterialRecord, directory: Path, *, overwrite: bool = False) -> Path:
    """Validate and write ``<directory>/<material_id>.json``; refuses to overwrite unless asked."""
    validate_record(rec)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rec.material_id}.json"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace a computed record")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rec.to_dict(), separators=(",", ":")))
    tmp.replace(path)
    return path


def load_record(path: Path) -> MaterialRecord:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return validate_record(MaterialRecord.from_dict(data, origin=str(path)), origin=str(path))


def load_records(directory: Path | Iterable[Path]) -> list[MaterialRecord]:
    """All records of a directory (sorted by material id) or of an iterable of files."""
    if isinstance(directory, (str, Path)):
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"record directory {directory} does not exist")
        paths = sorted(directory.glob("*.json"))
    else:
        paths = sorted(Path(p) for p in directory)
    return [load_record(p) for p in paths]
