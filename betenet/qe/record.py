"""The :class:`~betenet.records.MaterialRecord` of a finished QE run, assembled from ``data/qe/<id>/`` alone.

:func:`build_record` (the last step of :mod:`betenet.qe.workflow`, and ``betenet qe parse``) reads the
relaxed structure, α²F at the selected broadening (:func:`betenet.qe.broadening.choose_for_a2f_table`),
the fine and coarse PhDOS and the eDOS that the run left there; :func:`rebuild_record` rebuilds an
existing record with the current record format, keeping the provenance of its computation.  The
record's library flags come from the accuracy level's pseudopotential library (:meth:`~betenet.qe.pseudo.PseudoLibrary.for_level`).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from pymatgen.core import Structure

from .. import physics
from ..config import QEConfig
from ..constants import IMAGINARY_MODE_THRESHOLD_MEV
from ..jsonio import utc_now
from ..paths import RECORDS_DIR
from ..records import FLAGS, MaterialRecord
from ..upstream_split import paper_split_indices
from .broadening import BroadeningChoice, choose_for_a2f_table, choose_for_run
from .inputs import PseudoSpec, PWInput, QEInputError, cutoffs_Ry, pseudo_specs
from .labels import record_labels
from .parsers import QEParseError, a2f_sigmas, check_elph_tables, parse_lambda_file, parse_phdos, read_header, read_table
from .pseudo import PseudoLibrary, provisional_elements
from .refinement import load_refinement, refined_config
from .status import MaterialStatus, load_status, material_dir
from .upstream_candidates import matching_upstream_row, upstream_index_of

__all__ = [
    "QE_VERSION",
    "REBUILD_KEEPS",
    "coarse_imaginary_share",
    "kept_broadening",
    "a2f_selected",
    "cutoffs_below_library",
    "library_cutoff_flags",
    "provisional_pseudos",
    "failed_pseudos",
    "upstream_provenance",
    "build_record",
    "rebuild_record",
]

#: The Quantum ESPRESSO version of the runs (the record's ``provenance["code"]``).
QE_VERSION = "QE 6.7"
#: Share of the coarse PhDOS's weight below -1 meV above which a record is flagged ``coarse_phdos_imaginary``.
COARSE_NEGATIVE_WEIGHT_TOLERANCE = 0.005


def a2f_selected(run_dir: Path, cfg: QEConfig, choice: BroadeningChoice | None = None
                 ) -> tuple[np.ndarray, np.ndarray, BroadeningChoice]:
    """ω (meV), α²F of the broadening ``cfg`` selects (:func:`betenet.qe.broadening.choose_for_a2f_table`) and the choice.

    With ``choice`` given (a rebuild that keeps the record's σ) that broadening is taken instead; a
    :class:`~betenet.qe.parsers.QEParseError` names the table when it does not hold that index and σ."""
    path = Path(run_dir) / "a2f.dat.gz"
    header, data = read_table(path)
    if choice is None:
        choice = choose_for_a2f_table(run_dir, cfg, header, data)
    else:
        sigmas = a2f_sigmas(header)
        if not 1 <= choice.index <= len(sigmas) or abs(sigmas[choice.index - 1] - choice.sigma_Ry) > 1e-9:
            raise QEParseError(f"{path}: broadening {choice.index} (σ = {choice.sigma_Ry} Ry) is not among the broadenings {sigmas}")
    return data[:, 0], data[:, choice.index], choice


def _run_and_library_cutoffs(scf_in: Path, structure: Structure, cfg: QEConfig,
                             lib: Any = None) -> tuple[float, float, float, float] | None:
    """``(run ecutwfc, run ecutrho, library ecutwfc, library ecutrho)`` in Ry: the run's ``scf.in`` against what
    the level's library (``lib``, default :meth:`~betenet.qe.pseudo.PseudoLibrary.for_level`) now gives for these
    elements (the rule a new run applies: :func:`~betenet.qe.inputs.cutoffs_Ry`); None without an ``scf.in`` or
    when the library no longer offers an element (nothing to compare against)."""
    if not scf_in.exists():
        return None
    run = PWInput.from_str(scf_in.read_text(), origin=str(scf_in)).system
    try:
        specs = pseudo_specs(PseudoLibrary.for_level(cfg) if lib is None else lib, sorted({sp.symbol for sp in structure.composition.elements}))
    except QEInputError:
        return None
    want_wfc, want_rho = cutoffs_Ry(specs, cfg.ecutwfc_Ry, cfg.ecutrho_Ry)
    return float(run.get("ecutwfc", 0.0)), float(run.get("ecutrho", 0.0)), float(want_wfc), float(want_rho)


def _below(c: tuple[float, float, float, float] | None) -> bool:
    return c is not None and (c[0] < c[2] - 1e-9 or c[1] < c[3] - 1e-9)


def cutoffs_below_library(scf_in: Path, structure: Structure, cfg: QEConfig, lib: Any = None) -> bool:
    """Whether the run's ``ecutwfc``/``ecutrho`` (its ``scf.in``) are below what the level's library now gives."""
    return _below(_run_and_library_cutoffs(scf_in, structure, cfg, lib))


def coarse_imaginary_share(dos: Any) -> float:
    """The share of a phonon DOS's weight (:class:`~betenet.qe.parsers.PhononDOS`) below -1 meV."""
    w, g = dos.omega_meV, np.abs(dos.total)
    total = float(np.trapezoid(g, w))
    return float(np.trapezoid(np.where(w < -IMAGINARY_MODE_THRESHOLD_MEV, g, 0.0), w)) / total if total else 0.0


def library_cutoff_flags(scf_in: Path, structure: Structure, cfg: QEConfig, lib: Any = None) -> set[str]:
    """The record flags of the run's cutoffs against its library (:func:`cutoffs_below_library`: a run below what
    the library now gives).  A density grid above the library's is not flagged: the 'drift of ph.x with the
    density grid' that once made it suspect was ph.x at a q off the zone boundary (CHANGELOG 2026-12-05)."""
    return {"cutoff_below_library"} if _below(_run_and_library_cutoffs(scf_in, structure, cfg, lib)) else set()


def provisional_pseudos(structure: Structure, cfg: QEConfig, lib: Any = None) -> list[str]:
    """Elements of ``structure`` whose pseudopotential in the level's library (``lib``, default
    :meth:`~betenet.qe.pseudo.PseudoLibrary.for_level`) is not (yet) ``validated``."""
    lib = PseudoLibrary.for_level(cfg) if lib is None else lib
    return provisional_elements(lib, sorted({sp.symbol for sp in structure.composition.elements}))


def failed_pseudos(structure: Structure, cfg: QEConfig, lib: Any = None) -> list[str]:
    """Elements of ``structure`` that the level's library (``lib``, default :meth:`~betenet.qe.pseudo.PseudoLibrary.for_level`) no longer offers:
    their pseudopotential failed a check after the run (or left the library).  A record of them is not a
    validated label, whatever its other flags say."""
    lib = PseudoLibrary.for_level(cfg) if lib is None else lib
    return [el for el in sorted({sp.symbol for sp in structure.composition.elements}) if el not in lib]


def upstream_provenance(material_id: str, structure: Structure | None = None) -> dict[str, Any]:
    """For a candidate taken from the paper's own structures (``upNNNN-...``), or one whose ``structure`` is
    one of them up to scale (:func:`~betenet.qe.upstream_candidates.matching_upstream_row`): the upstream row
    and the side of the paper's train/test split it is on; empty otherwise."""
    row = upstream_index_of(material_id)
    if row is None and structure is not None:
        try:
            row = matching_upstream_row(structure)
        except FileNotFoundError:  # no vendored structures (a trimmed checkout): nothing to match against
            row = None
    if row is None:
        return {}
    train, test = paper_split_indices()
    return {"upstream_index": row, "upstream_split": "train" if row in train else "test" if row in test else None}


def build_record(
    material_id: str,
    cfg: QEConfig,
    *,
    runs_dir: Path | None = None,
    status: MaterialStatus | None = None,
    pseudos: Mapping[str, PseudoSpec] | None = None,
    broadening: BroadeningChoice | None = None,
):
    """Assemble the :class:`~betenet.records.MaterialRecord` of a finished run from ``data/qe/<id>/``.

    The moments are those of the *unclipped* α²F (equal to QE's mode sum; the learning target is clipped
    after smoothing, :func:`betenet.spectra.smooth_and_bin`); the moments at every broadening, the label
    uncertainty and the flags come from :func:`betenet.qe.labels.record_labels`.  The broadening is the one
    ``cfg``'s rule selects, or ``broadening`` where given (:func:`rebuild_record` keeping a record's σ); a
    ``plateau-fallback`` choice flags the record ``broadening_unconverged`` either way.
    """
    d = material_dir(material_id, runs_dir)
    cfg = refined_config(cfg, d)  # a refined run's meshes are in its settings
    status = status or load_status(material_id, runs_dir)
    structure = Structure.from_dict(json.loads((d / "relaxed.json").read_text()))
    omega, a2f_raw, choice = a2f_selected(d, cfg, broadening)
    sigma = choice.sigma_Ry
    keep = omega > 0
    omega, a2f_raw = omega[keep], a2f_raw[keep]
    neg = float(np.trapezoid(np.clip(-a2f_raw, 0, None), omega))
    pos = float(np.trapezoid(np.clip(a2f_raw, 0, None), omega))
    fine = parse_phdos(d / "phdos_fine.dos.gz")
    coarse = parse_phdos(d / "phdos_coarse.dos.gz")
    check_elph_tables(omega, fine, coarse, len(structure), d)  # a truncated table must not pass silently
    _, edos = read_table(d / "edos.dat.gz")
    m = physics.moments(omega, a2f_raw)
    tc = physics.allen_dynes_tc_K(m.lambda_, m.omega_log_K, m.omega_2_K)
    labels = record_labels(d, material_id, sigma, prototype=status.prototype)
    extra = {"broadening_unconverged"} if choice.method == "plateau-fallback" else set()  # λ(σ) never flat
    if (status.quality or {}).get("interpolation_dip"):  # kept: the dip was found an artefact (betenet.qe.dipcheck)
        extra.add("interpolation_dip")
    if coarse_imaginary_share(coarse) > COARSE_NEGATIVE_WEIGHT_TOLERANCE:
        extra.add("coarse_phdos_imaginary")
    if cfg.pseudo_set != "project":
        lib = PseudoLibrary.for_level(cfg)  # loaded once: it checks every UPF's digest
        extra |= library_cutoff_flags(d / "scf.in", structure, cfg, lib)
        if provisional_pseudos(structure, cfg, lib):
            extra.add("pseudopotential_provisional")
        if failed_pseudos(structure, cfg, lib):
            extra.add("pseudopotential_failed")
    if extra:
        labels["flags"] = [f for f in FLAGS if f in {*labels["flags"], *extra}]
    lam_rows = parse_lambda_file(d / "lambda")
    row = min(lam_rows, key=lambda r: abs(r.broadening_Ry - sigma))
    grids = json.loads((d / "grids.json").read_text())
    ps_info = {}
    for el, spec in (pseudos or {}).items():
        ps_info[el] = {"file": spec.filename, "md5": spec.md5 or hashlib.md5(Path(spec.path).read_bytes()).hexdigest()}
    steps = status.steps or {}
    prov = {
        "code": QE_VERSION,
        "workflow": "betenet.qe.workflow",
        "accuracy": cfg.accuracy,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "grids": grids,
        "elph_smearing_Ry": sigma,
        "elph_broadening": choice.as_dict(),
        "pseudopotentials": ps_info,
        "timings_s": {k: v.get("wall_s") for k, v in steps.items()},
        "wall_s_total": round(sum(float(v.get("wall_s", 0.0)) for v in steps.values()), 1),
        "host": platform.node(),
        "blas": sorted({str(v["blas"]) for v in steps.values() if "blas" in v}) or None,
        "date": utc_now(),
        "prototype": status.prototype,
        "lambda_qe": row.lambda_,
        "omega_log_K_qe": row.omega_log_K,
        "a2f_negative_weight_fraction": neg / pos if pos > 0 else None,
        "a2f_min_raw": float(a2f_raw.min()),
        "a2f_all_broadenings": f"{material_id}/a2f.dat.gz in the QE runs directory (data/qe)",
        "quality": status.quality,
        "fermi_energy_eV": steps.get("nscf_edos", {}).get("fermi_energy_eV"),
        **upstream_provenance(material_id, structure),
    }
    refinement = load_refinement(d)
    if refinement is not None:  # denser meshes than the level's, and why (betenet.qe.refinement)
        prov["refinement"] = {k: refinement.get(k) for k in ("overrides", "reason", "supersedes", "date")}
    return MaterialRecord(
        material_id=material_id,
        structure=structure,
        a2f_omega_meV=omega,
        a2f=a2f_raw,
        phdos_omega_meV=fine.omega_meV,
        phdos_total=fine.total,
        phdos_site=fine.site,
        phdos_coarse_omega_meV=coarse.omega_meV,
        phdos_coarse_total=coarse.total,
        phdos_coarse_site=coarse.site,
        edos_energy_meV=edos[:, 0],
        edos_total=edos[:, 1],
        edos_site=edos[:, 2:].T,
        edos_ef_per_eV=float(np.interp(0.0, edos[:, 0], edos[:, 1])),
        lambda_=float(m.lambda_),
        omega_log_K=float(m.omega_log_K),
        omega_2_K=float(m.omega_2_K),
        tc_ad_K=float(tc),
        source="betenet-qe",
        provenance=prov,
        **labels,
    )


#: Provenance of the *computation* that a rebuild from ``data/qe`` keeps from the existing record (the
#: settings, pseudopotentials, host and date of the QE run are not recoverable from the run directory
#: alone, and the current profile's settings may differ from those the run used).  The broadening
#: (``elph_smearing_Ry``, ``elph_broadening``) is not among them: :func:`rebuild_record` hands it to
#: :func:`build_record`, which writes both from it.
REBUILD_KEEPS = (
    "code", "workflow", "accuracy", "settings", "grids", "pseudopotentials", "timings_s",
    "wall_s_total", "host", "blas", "date", "prototype", "fermi_energy_eV", "quality",
)


def kept_broadening(run_dir: Path, cfg, old_prov: Mapping[str, Any], path: Path) -> BroadeningChoice:
    """The broadening a rebuild keeps: the record's ``provenance["elph_smearing_Ry"]`` with how it was found
    (its ``elph_broadening``; for a record from before that key, the level's own rule if that rule gives
    the same σ, else ``method="index"``).  ``ValueError`` naming ``path`` when σ is not among the run's."""
    sigma = float(old_prov["elph_smearing_Ry"])
    sigmas = a2f_sigmas(read_header(Path(run_dir) / "a2f.dat.gz"))  # the header only: build_record reads the rows
    idx = [i for i, s in enumerate(sigmas) if abs(s - sigma) < 1e-9]
    if not idx:
        raise ValueError(f"{path}: provenance.elph_smearing_Ry = {sigma} is not among the broadenings {sigmas} of the run")
    saved = old_prov.get("elph_broadening") or {}
    if saved.get("method") and abs(float(saved.get("sigma_Ry", -1.0)) - sigma) < 1e-9:
        return BroadeningChoice(idx[0] + 1, sigmas[idx[0]], str(saved["method"]), float(saved.get("spread", 0.0)))
    if getattr(cfg, "elph_sigma_selection", "index") == "plateau":
        choice = choose_for_run(run_dir, cfg)
        if abs(choice.sigma_Ry - sigma) < 1e-9:  # the level's rule gives the record's σ: say so
            return choice
    return BroadeningChoice(idx[0] + 1, sigmas[idx[0]], "index", 0.0)


def rebuild_record(material_id: str, cfg, *, runs_dir: Path | None = None, records_dir: Path | None = None,
                   reselect_sigma: bool = False):
    """Rebuild an existing record from its QE run directory with the current record format.

    The broadening is the one the existing record used (:func:`kept_broadening`), or, with
    ``reselect_sigma``, the one ``cfg``'s rule selects now (:mod:`betenet.qe.broadening`: after the rule
    itself changed); the other provenance keys in :data:`REBUILD_KEEPS` are copied from it;
    ``provenance["record_rebuilt"]`` says from which schema version and when.  The existing file is read as
    raw JSON, so any schema version (and a record that no longer validates) can be rebuilt.  Returns the new
    record (not written).
    """
    path = Path(records_dir or RECORDS_DIR) / f"{material_id}.json"
    old = json.loads(path.read_text())
    old_prov = old.get("provenance") or {}
    run_dir = material_dir(material_id, runs_dir)
    choice = None
    if not reselect_sigma and old_prov.get("elph_smearing_Ry") is not None:
        choice = kept_broadening(run_dir, cfg, old_prov, path)
    rec = build_record(material_id, cfg, runs_dir=runs_dir, status=load_status(material_id, runs_dir), broadening=choice)
    if "structure" in old:
        prev = Structure.from_dict(old["structure"])
        if (len(prev) != len(rec.structure) or not np.allclose(prev.lattice.matrix, rec.structure.lattice.matrix, atol=1e-8)
                or not np.allclose(prev.cart_coords, rec.structure.cart_coords, atol=1e-8)):
            raise ValueError(f"{path}: the structure differs from relaxed.json of the run; not rebuilding it")
    kept = {k: old_prov[k] for k in REBUILD_KEEPS if k in old_prov}
    rec.provenance = {**rec.provenance, **kept,
                      "record_rebuilt": {"from_schema_version": old.get("schema_version"), "date": utc_now()}}
    return rec
