"""The published BETE-NET data (``database.json`` + ``structures/<index>.cif``): download, read, convert.

Upstream layout
---------------
The upstream repository (https://github.com/henniggroup/BETE-NET) publishes one pandas-style JSON table
``database.json`` (one row per material, rows keyed by an integer index with gaps) and one CIF per row,
``structures/<index>.cif``.  The columns used here (units as in the upstream files):

* ``comp``, ``comp_name`` (composition string, name) -> ``provenance["upstream"]``
* ``Freq_meV``, ``a2F`` (raw α²F on a 0.1 meV grid) -> ``a2f_omega_meV``, ``a2f``
* ``PhFreq_meV`` (or ``PhFreq_meV_dense`` when present), ``Tot_PhDOS_dense``, ``Site_Proj_PhDOS_dense``
  (the *fine*, "dense" PhDOS) -> ``phdos_omega_meV``, ``phdos_total``, ``phdos_site``
* ``Ph_2x2x2_interpolated_Freq_meV``, ``Ph_2x2x2_interpolated_Site_Proj_DOS`` (the *coarse* PhDOS from 2x2x2
  force constants; total from ``Ph_2x2x2_interpolated_Tot_DOS`` when present, else the sum over sites)
  -> ``phdos_coarse_omega_meV``, ``phdos_coarse_site``, ``phdos_coarse_total``
* ``Tot_eDOS_eng_meV`` (or ``Site_proj_eDOS_eng_meV``), ``Site_proj_eDOS``, ``Tot_eDOS`` when present (else the
  sum over sites): eDOS around E_F, energies relative to E_F in meV -> ``edos_energy_meV``, ``edos_site``,
  ``edos_total`` (optional: rows without eDOS get none)
* ``lambda``, ``w_log``, ``w_sq`` (upstream scalar moments) -> ``provenance["upstream"]``

Required columns: :data:`REQUIRED_COLUMNS`; a file without one of them is rejected with an error naming
the file and the column(s).

``Tot_PhDOS``/``Site_Proj_PhDOS`` (the PhDOS of the el-ph q grid) are not carried into the record.
λ, ω_log, ω₂ and T_c(Allen–Dynes, μ* = 0.1) of a converted record are **recomputed** from ``a2F`` with
:mod:`betenet.physics`; the upstream scalars are kept verbatim in ``provenance["upstream"]`` (their units
are not stated upstream; :data:`UPSTREAM_UNITS`: ``w_log`` = ω_log in meV, ``w_sq`` = ⟨ω²⟩ in meV², so
ω₂ = √``w_sq``; inferred from the five rows the authors printed, see ``tests/test_upstream.py``, and
checked on every converted row against the moments recomputed from its α²F: :func:`scalar_comparison`).
The eDOS is copied as given; ``edos_ef_per_eV`` is its total at E_F **in the upstream's own unit**, which
the authors do not state (states/eV/cell assumed; ``provenance["upstream"]["edos_ef_unit"]`` says so).  Its
one consumer, the linear baseline of Table 1 (:mod:`betenet.baseline`, ordinary least squares), gives the
same predictions for any scale of a feature, so the unknown unit does not change "Base".

Before any number is computed, every grid is checked to be strictly increasing and as long as its
values (``Freq_meV``/``a2F``, the PhDOS grids and their site arrays, the eDOS grid): a row that fails is
refused with an :class:`UpstreamError` naming the file, row and column (left out and reported under
``--skip-invalid``), never a crash half-way through a conversion.

Converted records go to their own directory (``data/upstream/records`` by default), never into this
project's ``data/records``; a notebook run with ``DATA=upstream`` reads them (:mod:`betenet.datasource`).

Structures are read with ASE (as the upstream notebooks do) so that the site order matches the
site-projected arrays, then converted to pymatgen.

The JSON may be written with any pandas ``orient``: ``columns`` (``DataFrame.to_json()`` default:
``{column: {index: value}}``), ``index``, ``split`` or ``records`` (a list of rows; rows then take their
position, or an ``index`` entry if present, as index).  The orient is detected.

Download
--------
``betenet data download`` fetches ``database.json`` and every ``structures/<index>.cif`` from
``raw.githubusercontent.com`` at the pinned commit :data:`PINNED_COMMIT`, one file at a time (resumable:
files already present with the right checksum are kept), verifying SHA-256 checksums against
:data:`KNOWN_SHA256` or a manifest given with ``--checksums``.  **Honest status:** this project was built
without network access to GitHub, so the pinned commit is one seen in an offline code index whose README
says the repository holds "the models, training data and test predictions" (not checked to be the newest,
nor that ``database.json`` sits at its root) and :data:`KNOWN_SHA256` is empty - *to be filled
on first download*.  Without checksums the command refuses to download unless ``--allow-unverified`` is
given; it then records every file's SHA-256 in ``MANIFEST.json`` (``"verified": false``) and prints the
table to paste into :data:`KNOWN_SHA256`.  The downloaded directory gets a ``.gitignore`` of ``*``: upstream
data are never committed to this repository.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .constants import K_PER_MEV
from .constants import MU_STAR_DEFAULT
from .jsonio import sha256_file, utc_now
from .paths import DATA_DIR
from .physics import allen_dynes_tc_K, moments
from .records import MaterialRecord, RecordError, load_record, save_record, validate_record
from .upstream_split import upstream_dir

__all__ = [
    "SOURCE",
    "UPSTREAM_REPO",
    "PINNED_COMMIT",
    "RAW_BASE_URL",
    "KNOWN_SHA256",
    "UPSTREAM_COLUMNS",
    "REQUIRED_COLUMNS",
    "UPSTREAM_UNITS",
    "upstream_moments_K",
    "scalar_comparison",
    "default_records_dir",
    "conversion_summary_path",
    "UpstreamError",
    "DownloadError",
    "UpstreamTable",
    "ConversionReport",
    "read_database_json",
    "read_upstream",
    "row_to_record",
    "convert_upstream",
    "raw_url",
    "download_upstream",
    "validate_paths",
]

SOURCE = "upstream-bete-net"
UPSTREAM_REPO = "henniggroup/BETE-NET"
#: Commit whose files ``betenet data download`` fetches: the one ``data/upstream/`` was copied from
#: (:data:`betenet.upstream_split.VENDORED_COMMIT`; its repository holds ``database.json`` as a plain blob).
PINNED_COMMIT = "56bc783908a60e8a15e31b60018e6f3c3e48f593"
RAW_BASE_URL = "https://raw.githubusercontent.com"
#: commit -> {relative path: SHA-256}.  To be filled on first download (``--allow-unverified`` prints it).
KNOWN_SHA256: dict[str, dict[str, str]] = {}
DEFAULT_DOWNLOAD_DIR = DATA_DIR / "upstream" / "download"
#: Units of the upstream scalar columns (not stated by the authors; inferred, and checked per row by
#: :func:`scalar_comparison`): ``lambda`` dimensionless, ``w_log`` = ω_log in meV, ``w_sq`` = ⟨ω²⟩ in meV².
UPSTREAM_UNITS = {"lambda": "1", "w_log": "meV", "w_sq": "meV^2"}

#: The upstream column layout this reader knows.
UPSTREAM_COLUMNS = (
    "comp",
    "Freq_meV",
    "a2F",
    "PhFreq_meV",
    "Tot_PhDOS",
    "Site_Proj_PhDOS",
    "Tot_PhDOS_dense",
    "Site_Proj_PhDOS_dense",
    "Ph_2x2x2_interpolated_Freq_meV",
    "Ph_2x2x2_interpolated_Site_Proj_DOS",
    "Tot_eDOS_eng_meV",
    "Site_proj_eDOS",
    "lambda",
    "w_log",
    "w_sq",
    "comp_name",
)
#: Columns without which no record can be built (α²F, fine and coarse site-projected PhDOS).
REQUIRED_COLUMNS = (
    "comp",
    "Freq_meV",
    "a2F",
    "PhFreq_meV",
    "Tot_PhDOS_dense",
    "Site_Proj_PhDOS_dense",
    "Ph_2x2x2_interpolated_Freq_meV",
    "Ph_2x2x2_interpolated_Site_Proj_DOS",
)
_SCALARS = ("lambda", "w_log", "w_sq")
_LFS_MAGIC = b"version https://git-lfs"


class UpstreamError(ValueError):
    """The upstream table or one of its rows/structures is not what this reader expects."""


class DownloadError(RuntimeError):
    """A download was refused, failed, or did not match its checksum."""


# --------------------------------------------------------------------------------------------- reading


@dataclass
class UpstreamTable:
    """A parsed ``database.json``: ``rows[index] = {column: value}`` in file order, and the orient found."""

    path: Path
    orient: str
    columns: list[str]
    rows: dict[str, dict[str, Any]]

    @property
    def indices(self) -> list[str]:
        return list(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _index_key(value: Any) -> str:
    """Row index as a string: ``3``, ``"3"`` and ``3.0`` all become ``"3"``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def read_database_json(path: Path | str) -> UpstreamTable:
    """Parse an upstream ``database.json`` (any pandas orient); check the required columns are there."""
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise UpstreamError(f"{path}: file not found") from None
    if raw_bytes.startswith(_LFS_MAGIC):
        raise UpstreamError(f"{path}: is a Git LFS pointer, not the data; fetch the LFS object (git lfs pull)")
    try:
        data = json.loads(raw_bytes)
    except json.JSONDecodeError as exc:
        raise UpstreamError(f"{path}: not valid JSON ({exc})") from exc

    rows: dict[str, dict[str, Any]] = {}
    if isinstance(data, list):
        orient = "records"
        for pos, row in enumerate(data):
            if not isinstance(row, dict):
                raise UpstreamError(f"{path}: orient 'records': entry {pos} is {type(row).__name__}, expected an object")
            rows[_index_key(row.get("index", pos))] = {k: v for k, v in row.items() if k != "index"}
    elif isinstance(data, dict) and {"columns", "data"} <= set(data):
        orient = "split"
        index = data.get("index", list(range(len(data["data"]))))
        for idx, values in zip(index, data["data"]):
            rows[_index_key(idx)] = dict(zip(data["columns"], values))
    elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        known = set(UPSTREAM_COLUMNS)
        if known & set(data):
            orient = "columns"
            for col, by_index in data.items():
                for idx, value in by_index.items():
                    rows.setdefault(_index_key(idx), {})[col] = value
        else:
            first = next(iter(data.values()))
            if not known & set(first):
                raise UpstreamError(
                    f"{path}: unrecognised layout: neither the keys nor the row entries are upstream BETE-NET columns "
                    f"(expected some of {', '.join(UPSTREAM_COLUMNS)})"
                )
            orient = "index"
            rows = {_index_key(idx): dict(row) for idx, row in data.items()}
    else:
        raise UpstreamError(f"{path}: unrecognised layout (top level is {type(data).__name__}); expected a pandas JSON table")

    columns = sorted({c for row in rows.values() for c in row})
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UpstreamError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(orient {orient!r}; required: {', '.join(REQUIRED_COLUMNS)})"
        )
    return UpstreamTable(path=path, orient=orient, columns=columns, rows=rows)


def _array(row: dict[str, Any], column: str, where: str, ndim: int) -> np.ndarray:
    value = row.get(column)
    if value is None:
        raise UpstreamError(f"{where}: column {column!r} is missing or null")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise UpstreamError(f"{where}: column {column!r} is not a numeric array ({exc})") from exc
    if arr.ndim != ndim:
        raise UpstreamError(f"{where}: column {column!r} has {arr.ndim} dimension(s), expected {ndim}")
    return arr


def _scalar(row: dict[str, Any], column: str) -> float | None:
    value = row.get(column)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def upstream_moments_K(lambda_: float | None, w_log: float | None, w_sq: float | None) -> tuple[float, float, float]:
    """The upstream scalars in this project's units: ``(λ, ω_log in K, ω₂ in K)`` with ω₂ = √``w_sq``
    (:data:`UPSTREAM_UNITS`); NaN for a missing or non-finite value (and for a negative ``w_sq``)."""
    nan = float("nan")
    lam = nan if lambda_ is None else float(lambda_)
    wlog = nan if w_log is None else float(w_log) * K_PER_MEV
    w2 = nan if w_sq is None or not float(w_sq) >= 0 else math.sqrt(float(w_sq)) * K_PER_MEV
    return lam, wlog, w2


def _check_grid(where: str, grid_col: str, grid: np.ndarray, values: Iterable[tuple[str, np.ndarray]]) -> None:
    """Refuse a non-increasing grid or values whose last axis is not as long as the grid."""
    if grid.size < 2:
        raise UpstreamError(f"{where}: column {grid_col!r} has {grid.size} point(s), expected a grid of >= 2")
    if not np.all(np.isfinite(grid)):
        raise UpstreamError(f"{where}: column {grid_col!r} holds non-finite values")
    steps = np.diff(grid)
    if np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise UpstreamError(
            f"{where}: column {grid_col!r} is not strictly increasing at point {i} ({grid[i]} -> {grid[i + 1]})"
        )
    for col, arr in values:
        if arr.shape[-1] != grid.size:
            raise UpstreamError(
                f"{where}: column {col!r} has {arr.shape[-1]} points per row, its grid {grid_col!r} has {grid.size}"
            )


def _read_structure(cif: Path, where: str):
    from ase.io import read as ase_read
    from pymatgen.io.ase import AseAtomsAdaptor

    if not cif.is_file():
        raise UpstreamError(f"{where}: structure file {cif} not found")
    try:
        atoms = ase_read(cif)
    except Exception as exc:  # ASE raises many types on malformed CIFs
        raise UpstreamError(f"{where}: cannot read structure {cif}: {exc}") from exc
    return AseAtomsAdaptor.get_structure(atoms)


def _material_id(index: str) -> str:
    return f"upstream-{int(index):04d}" if index.isdigit() else f"upstream-{index}"


def row_to_record(
    index: str,
    row: dict[str, Any],
    structures_dir: Path,
    *,
    origin: str = "database.json",
    mu_star: float = MU_STAR_DEFAULT,
) -> MaterialRecord:
    """One upstream row + ``structures_dir/<index>.cif`` -> a validated :class:`MaterialRecord`."""
    where = f"{origin}: row {index}"
    structure = _read_structure(Path(structures_dir) / f"{index}.cif", where)
    n_sites = len(structure)

    w = _array(row, "Freq_meV", where, 1)
    a2f = _array(row, "a2F", where, 1)

    fine_grid_col = "PhFreq_meV_dense" if row.get("PhFreq_meV_dense") is not None else "PhFreq_meV"
    ph_w = _array(row, fine_grid_col, where, 1)
    ph_tot = _array(row, "Tot_PhDOS_dense", where, 1)
    ph_site = _array(row, "Site_Proj_PhDOS_dense", where, 2)
    cw = _array(row, "Ph_2x2x2_interpolated_Freq_meV", where, 1)
    c_site = _array(row, "Ph_2x2x2_interpolated_Site_Proj_DOS", where, 2)
    c_tot = (
        _array(row, "Ph_2x2x2_interpolated_Tot_DOS", where, 1)
        if row.get("Ph_2x2x2_interpolated_Tot_DOS") is not None
        else c_site.sum(axis=0)
    )
    _check_grid(where, "Freq_meV", w, [("a2F", a2f)])
    _check_grid(where, fine_grid_col, ph_w, [("Tot_PhDOS_dense", ph_tot), ("Site_Proj_PhDOS_dense", ph_site)])
    _check_grid(where, "Ph_2x2x2_interpolated_Freq_meV", cw,
                [("Ph_2x2x2_interpolated_Site_Proj_DOS", c_site), ("Ph_2x2x2_interpolated_Tot_DOS", c_tot)])
    for col, arr in (("Site_Proj_PhDOS_dense", ph_site), ("Ph_2x2x2_interpolated_Site_Proj_DOS", c_site)):
        if arr.shape[0] != n_sites:
            raise UpstreamError(f"{where}: column {col!r} has {arr.shape[0]} site rows but {index}.cif has {n_sites} sites")

    e_w = e_tot = e_site = None
    edos_at_ef = None
    if row.get("Site_proj_eDOS") is not None:
        e_grid_col = "Site_proj_eDOS_eng_meV" if row.get("Site_proj_eDOS_eng_meV") is not None else "Tot_eDOS_eng_meV"
        e_w = _array(row, e_grid_col, where, 1)
        e_site = _array(row, "Site_proj_eDOS", where, 2)
        _check_grid(where, e_grid_col, e_w, [("Site_proj_eDOS", e_site)])
        if e_site.shape[0] != n_sites:
            raise UpstreamError(f"{where}: column 'Site_proj_eDOS' has {e_site.shape[0]} site rows, {index}.cif has {n_sites}")
        if row.get("Tot_eDOS") is not None and row.get("Tot_eDOS_eng_meV") is not None:
            t_w, t_y = _array(row, "Tot_eDOS_eng_meV", where, 1), _array(row, "Tot_eDOS", where, 1)
            _check_grid(where, "Tot_eDOS_eng_meV", t_w, [("Tot_eDOS", t_y)])
            e_tot = t_y if t_w.shape == e_w.shape and np.allclose(t_w, e_w) else np.interp(e_w, t_w, t_y)
        else:
            e_tot = e_site.sum(axis=0)
        if e_w.size >= 2 and e_w[0] <= 0.0 <= e_w[-1]:
            edos_at_ef = float(np.interp(0.0, e_w, e_tot))

    m = moments(w, a2f)
    tc = allen_dynes_tc_K(m.lambda_, m.omega_log_K, m.omega_2_K, mu_star)
    upstream_meta: dict[str, Any] = {
        "index": index,
        "comp": row.get("comp"),
        "comp_name": row.get("comp_name"),
        **{name: _scalar(row, name) for name in _SCALARS},
        "units": dict(UPSTREAM_UNITS),
        **dict(zip(("omega_log_K", "omega_2_K"),
                   (None if math.isnan(v) else v for v in upstream_moments_K(*(_scalar(row, n) for n in _SCALARS))[1:]))),
        "edos_at_ef": edos_at_ef,
        "edos_ef_unit": "as published, not stated upstream (states/eV/cell assumed)",
        "fine_phdos_grid_column": fine_grid_col,
    }
    rec = MaterialRecord(
        material_id=_material_id(index),
        structure=structure,
        a2f_omega_meV=w,
        a2f=a2f,
        phdos_omega_meV=ph_w,
        phdos_total=ph_tot,
        phdos_site=ph_site,
        phdos_coarse_omega_meV=cw,
        phdos_coarse_total=c_tot,
        phdos_coarse_site=c_site,
        edos_energy_meV=e_w,
        edos_total=e_tot,
        edos_site=e_site,
        edos_ef_per_eV=edos_at_ef,
        lambda_=float(m.lambda_),
        omega_log_K=None if math.isnan(m.omega_log_K) else float(m.omega_log_K),
        omega_2_K=None if math.isnan(m.omega_2_K) else float(m.omega_2_K),
        tc_ad_K=float(tc),
        source=SOURCE,
        provenance={
            "code": "upstream BETE-NET database.json (Gibson, Hire et al., arXiv 2401.16611)",
            "repository": f"https://github.com/{UPSTREAM_REPO}",
            "file": str(origin),
            "moments": f"recomputed by betenet.physics from a2F (trapezoid), T_c Allen-Dynes with mu*={mu_star}",
            "upstream": upstream_meta,
        },
    )
    try:
        return validate_record(rec, origin=where)
    except RecordError as exc:
        raise UpstreamError(str(exc)) from exc


def _iter_records(
    table: UpstreamTable, structures_dir: Path, skip_invalid: bool, indices: Iterable[str] | None, errors: list[str]
) -> Iterator[MaterialRecord]:
    wanted = table.indices if indices is None else [_index_key(i) for i in indices]
    for idx in wanted:
        if idx not in table.rows:
            raise UpstreamError(f"{table.path}: no row with index {idx}")
        try:
            yield row_to_record(idx, table.rows[idx], structures_dir, origin=str(table.path))
        except UpstreamError as exc:
            if not skip_invalid:
                raise
            errors.append(str(exc))


def read_upstream(
    db_json: Path | str,
    structures_dir: Path | str | None = None,
    *,
    skip_invalid: bool = False,
    indices: Iterable[str | int] | None = None,
    errors: list[str] | None = None,
) -> list[MaterialRecord]:
    """Read upstream ``database.json`` (+ ``structures/<index>.cif``) into records (``source="upstream-bete-net"``).

    ``structures_dir`` defaults to ``<dir of db_json>/structures``.  With ``skip_invalid`` rows that fail
    (null arrays, NaN, missing CIF, site mismatch, ...) are left out instead of raising; their messages are
    appended to ``errors`` when a list is given.
    """
    table = read_database_json(db_json)
    sdir = _structures_dir(table, structures_dir)
    sink: list[str] = errors if errors is not None else []
    return list(_iter_records(table, sdir, skip_invalid, indices, sink))


@dataclass
class ConversionReport:
    """What :func:`convert_upstream` did."""

    written: list[Path] = field(default_factory=list)
    kept_existing: list[Path] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.written)} written, {len(self.kept_existing)} already present (kept), {len(self.invalid)} invalid rows"


def default_records_dir() -> Path:
    """``data/upstream/records`` (or ``$BETENET_UPSTREAM_DIR/records``): converted upstream records, apart from ours."""
    return upstream_dir() / "records"


def _structures_dir(table: UpstreamTable, structures_dir: Path | str | None) -> Path:
    """``structures_dir``, else ``structures/`` next to ``database.json``, else the vendored ``data/upstream/structures``."""
    if structures_dir is not None:
        return Path(structures_dir)
    beside = table.path.parent / "structures"
    if beside.is_dir():
        return beside

    return upstream_dir() / "structures"


def scalar_comparison(records: Sequence[MaterialRecord]):
    """Per converted record: λ, ω_log, ω₂ recomputed from its α²F beside the published scalars in
    :data:`UPSTREAM_UNITS` (``w_log`` meV -> K, √``w_sq`` meV -> K) and their relative differences.

    With the right units the two agree to the integration error; a unit mix-up shows as ratios of
    11.6 (K vs meV) or ω₂ off by a square root.  Columns: ``material_id, comp, lambda, lambda_paper,
    omega_log_K, omega_log_K_paper, omega_2_K, omega_2_K_paper, rel_diff_lambda, rel_diff_omega_log,
    rel_diff_omega_2``.
    """
    import pandas as pd

    rows = []
    for rec in records:
        meta = (rec.provenance or {}).get("upstream") or {}
        lam, wlog, w2 = upstream_moments_K(meta.get("lambda"), meta.get("w_log"), meta.get("w_sq"))
        ours = (rec.lambda_, rec.omega_log_K, rec.omega_2_K)
        ours = tuple(float("nan") if v is None else float(v) for v in ours)
        rows.append({
            "material_id": rec.material_id, "comp": meta.get("comp"),
            "lambda": ours[0], "lambda_paper": lam, "omega_log_K": ours[1], "omega_log_K_paper": wlog,
            "omega_2_K": ours[2], "omega_2_K_paper": w2,
            "rel_diff_lambda": ours[0] / lam - 1 if lam else float("nan"),
            "rel_diff_omega_log": ours[1] / wlog - 1 if wlog else float("nan"),
            "rel_diff_omega_2": ours[2] / w2 - 1 if w2 else float("nan"),
        })
    return pd.DataFrame(rows)


def convert_upstream(
    db_json: Path | str,
    out_dir: Path | str,
    structures_dir: Path | str | None = None,
    *,
    overwrite: bool = False,
    skip_invalid: bool = False,
    progress: bool = True,
) -> ConversionReport:
    """Write one record file per upstream row into ``out_dir``; existing files are kept unless ``overwrite``.

    Each record is written atomically (temporary file, then rename); ``<out_dir>.conversion.json`` beside the
    directory (also atomic; not inside it, where every ``*.json`` is a record) records the source file (path, size, SHA-256), the counts and every refused row's message.
    """
    from tqdm.auto import tqdm

    table = read_database_json(db_json)
    sdir = _structures_dir(table, structures_dir)
    out = Path(out_dir)
    report = ConversionReport()
    for idx in tqdm(table.indices, desc="convert upstream rows", disable=not progress, unit="row"):
        target = out / f"{_material_id(idx)}.json"
        if target.exists() and not overwrite:
            report.kept_existing.append(target)
            continue
        try:
            rec = row_to_record(idx, table.rows[idx], sdir, origin=str(table.path))
        except UpstreamError as exc:
            if not skip_invalid:
                raise
            report.invalid.append(str(exc))
            continue
        report.written.append(save_record(rec, out, overwrite=overwrite))
    _write_conversion_summary(out, table, sdir, report)
    return report


def conversion_summary_path(out_dir: Path | str) -> Path:
    """``<out_dir>.conversion.json``: what :func:`convert_upstream` last did into ``out_dir``."""
    out = Path(out_dir)
    return out.with_name(out.name + ".conversion.json")


def _write_conversion_summary(out: Path, table: UpstreamTable, sdir: Path, report: ConversionReport) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = conversion_summary_path(out)
    data = {
        "schema": "betenet.upstream.conversion",
        "source": str(table.path),
        "source_bytes": table.path.stat().st_size,
        "source_sha256": sha256_file(table.path),
        "structures": str(sdir),
        "units": UPSTREAM_UNITS,
        "n_rows": len(table),
        "n_records": len(list(out.glob("upstream-*.json"))),
        "written": len(report.written),
        "kept_existing": len(report.kept_existing),
        "invalid": report.invalid,
        "converted_at": utc_now(),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------------- download


def raw_url(path: str, commit: str = PINNED_COMMIT, *, repo: str = UPSTREAM_REPO, base_url: str = RAW_BASE_URL) -> str:
    """URL of one file of the upstream repository at ``commit`` (raw.githubusercontent.com layout)."""
    if not commit or any(c not in "0123456789abcdef" for c in commit.lower()):
        raise DownloadError(f"commit must be a hexadecimal Git SHA, got {commit!r}")
    return f"{base_url.rstrip('/')}/{repo}/{commit}/{path.lstrip('/')}"


def _fetch(url: str, target: Path, expected_sha256: str | None, timeout_s: float = 120.0) -> str:
    """Stream ``url`` into ``target`` (via ``.part``), return its SHA-256; raise on mismatch (nothing kept)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(part, "wb") as fh:  # noqa: S310 - https/file only
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                fh.write(block)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"cannot download {url}: {exc}") from exc
    digest = h.hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(f"checksum mismatch for {url}: got sha256 {digest}, expected {expected_sha256}")
    part.replace(target)
    return digest


def _load_checksums(path: Path | str | None, commit: str) -> dict[str, str]:
    if path is None:
        return dict(KNOWN_SHA256.get(commit, {}))
    data = json.loads(Path(path).read_text())
    files = data.get("files", data) if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise DownloadError(f"{path}: expected a JSON object {{path: sha256}} or a MANIFEST.json with 'files'")
    if isinstance(data, dict) and data.get("commit") not in (None, commit):
        raise DownloadError(f"{path}: checksums are for commit {data['commit']}, not {commit}")
    return {str(k): str(v) for k, v in files.items()}


def download_upstream(
    dest: Path | str = DEFAULT_DOWNLOAD_DIR,
    commit: str = PINNED_COMMIT,
    *,
    allow_unverified: bool = False,
    checksums: Path | str | None = None,
    base_url: str = RAW_BASE_URL,
    repo: str = UPSTREAM_REPO,
    progress: bool = True,
    fetch: Callable[[str, Path, str | None], str] = _fetch,
) -> Path:
    """Download ``database.json`` and ``structures/<index>.cif`` at ``commit`` into ``dest``; return ``dest``.

    Every file is checked against the SHA-256 table (``checksums`` manifest, else :data:`KNOWN_SHA256`).
    Without a checksum for ``database.json`` nothing is fetched unless ``allow_unverified``.  Files already
    present are kept when their checksum matches (or, unverified, when they are listed in the existing
    ``MANIFEST.json``), so an interrupted download resumes.  ``MANIFEST.json`` records commit, URLs and the
    SHA-256 of every file; ``dest/.gitignore`` keeps the data out of git.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    expected = _load_checksums(checksums, commit)
    if "database.json" not in expected and not allow_unverified:
        raise DownloadError(
            f"no SHA-256 known for database.json at commit {commit} (KNOWN_SHA256 is to be filled on first download). "
            "Pass --checksums MANIFEST.json from a trusted copy, or --allow-unverified to download anyway and "
            "record the checksums in MANIFEST.json."
        )
    dest.mkdir(parents=True, exist_ok=True)
    (dest / ".gitignore").write_text("# upstream BETE-NET data: never committed\n*\n")
    manifest_path = dest / "MANIFEST.json"
    previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    previous_files = previous.get("files", {}) if previous.get("commit") == commit else {}
    hashes: dict[str, str] = {}

    def get(rel: str) -> None:
        target = dest / rel
        want = expected.get(rel)
        if target.exists():
            have = sha256_file(target)
            if (want is not None and have == want) or (want is None and previous_files.get(rel) == have):
                hashes[rel] = have
                return
            if want is not None:
                target.unlink()  # stale or corrupt: fetch again
        hashes[rel] = fetch(raw_url(rel, commit, repo=repo, base_url=base_url), target, want)

    def write_manifest(complete: bool) -> None:
        manifest = {
            "repo": repo,
            "commit": commit,
            "base_url": base_url,
            "downloaded_at": utc_now(),
            "complete": complete,
            "verified": complete and all(rel in expected for rel in hashes),
            "files": dict(sorted(hashes.items())),
        }
        tmp = manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(manifest_path)

    get("database.json")
    with open(dest / "database.json", "rb") as fh:
        if fh.read(len(_LFS_MAGIC)) == _LFS_MAGIC:
            raise DownloadError(
                f"{dest / 'database.json'} is a Git LFS pointer: fetch the file from media.githubusercontent.com "
                "or with git lfs, then run `betenet data convert-upstream`"
            )
    table = read_database_json(dest / "database.json")
    try:
        for idx in tqdm(table.indices, desc="structures/*.cif", disable=not progress, unit="file"):
            get(f"structures/{idx}.cif")
    finally:
        write_manifest(complete=len(hashes) == len(table) + 1)
    if not all(rel in expected for rel in hashes):
        print(
            "Unverified download. To pin it, add to betenet.upstream.KNOWN_SHA256:\n"
            + json.dumps({commit: {"database.json": hashes["database.json"]}}, indent=1)
            + f"\n(all file hashes are in {manifest_path})",
            file=sys.stderr,
        )
    return dest


# ---------------------------------------------------------------------------------------------- record files


def validate_paths(paths: Iterable[Path | str], out=None) -> int:
    """Validate record files / directories of record files; print one line per file; return the failure count."""
    out = sys.stdout if out is None else out
    files: list[Path] = []
    failures = 0
    valid = 0
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                print(f"FAIL {p}: directory holds no *.json record files", file=out)
                failures += 1
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            print(f"FAIL {p}: no such file or directory", file=out)
            failures += 1
    for f in files:
        try:
            rec = load_record(f)
        except (RecordError, OSError) as exc:
            print(f"FAIL {f}: {exc}", file=out)
            failures += 1
        else:
            valid += 1
            print(f"OK   {f}: {rec.material_id} {rec.formula} ({len(rec.structure)} sites, source {rec.source})", file=out)
    print(f"{valid} valid, {failures} failed", file=out)
    return failures
