"""The material record: one documented dataclass per material, and its versioned on-disk format.

On disk: one JSON file per material (``data/records/<material_id>.json``) with
``{"schema": "betenet.record", "schema_version": SCHEMA_VERSION, ...}``.  Structures are stored as
pymatgen ``Structure.as_dict()``; arrays as lists of floats.  :func:`validate_record` raises
:class:`RecordError` naming the material and the field for NaN, negative α²F beyond tolerance,
non-increasing grids, unknown elements and missing fields.

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

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "RecordError",
    "MaterialRecord",
    "validate_record",
    "save_record",
    "load_record",
    "load_records",
    "A2F_NEGATIVE_TOLERANCE",
]

SCHEMA = "betenet.record"
SCHEMA_VERSION = 1
#: Negative α²F values smaller in magnitude than this fraction of max(α²F) are numerical noise.
A2F_NEGATIVE_TOLERANCE = 1e-3


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
    lambda_, omega_log_K, omega_2_K, tc_ad_K: moments and Allen-Dynes T_c (μ* = 0.1) of the raw α²F,
        as computed by the source (recomputed by :mod:`betenet.physics` where needed).
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
        for name in ("edos_ef_per_eV", "lambda_", "omega_log_K", "omega_2_K", "tc_ad_K"):
            value = getattr(self, name)
            out[name] = None if value is None else float(value)
        out["source"] = self.source
        out["provenance"] = self.provenance
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> "MaterialRecord":
        mid = data.get("material_id", "<unknown>")
        if data.get("schema") != SCHEMA:
            raise RecordError(f"{origin}: material {mid!r}: field 'schema' is {data.get('schema')!r}, expected {SCHEMA!r}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RecordError(
                f"{origin}: material {mid!r}: field 'schema_version' is {version!r}, this betenet reads {SCHEMA_VERSION}"
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
        for name in ("edos_ef_per_eV", "lambda_", "omega_log_K", "omega_2_K", "tc_ad_K"):
            value = data.get(name)
            kwargs[name] = None if value is None else float(value)
        return cls(
            material_id=str(data["material_id"]),
            structure=structure,
            source=data.get("source", "betenet-qe"),
            provenance=dict(data.get("provenance") or {}),
            **kwargs,
        )


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
    most_negative = float(np.min(rec.a2f))
    if most_negative < -A2F_NEGATIVE_TOLERANCE * peak:
        raise _fail(
            rec, "a2f", f"negative α²F {most_negative:.3g} beyond tolerance {A2F_NEGATIVE_TOLERANCE} x max ({peak:.3g})", origin
        )
    for name in ("edos_ef_per_eV", "lambda_", "omega_log_K", "omega_2_K", "tc_ad_K"):
        v = getattr(rec, name)
        if v is not None and not math.isfinite(v):
            raise _fail(rec, name, f"not finite ({v})", origin)
    return rec


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
