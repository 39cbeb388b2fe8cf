"""pw.x validation of the project's ld1.x set: cutoff convergence (energy and pressure of the element's
reference solid), a Birch-Murnaghan E(V) lattice constant against experiment, the audit of the library
cutoffs (:func:`check_library_cutoffs`) and the tables of ``data/pseudo/README.md``."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from tqdm.auto import tqdm

from ...paths import PSEUDO_DIR
from .errors import PseudoError
from .library import (
    DEFAULT_DUAL_US,
    USABLE_STATUSES,
    VALIDATION_FILE,
    PseudoLibrary,
    library_record,
    load_validation,
    save_validation,
)
from .runs import kpoint_grid, run_pw, scf_input
from .solids import EXPERIMENTAL_LATTICE, eos_scan_scales, fit_lattice_constant, reference_structure

__all__ = [
    "ValidationSettings",
    "CutoffScan",
    "EosFit",
    "ElementValidation",
    "cutoff_convergence",
    "eos_scan",
    "validate_element",
    "validate_set",
    "CutoffCheck",
    "check_library_cutoffs",
    "check_cutoff_set",
    "write_readme",
]


@dataclass(frozen=True)
class ValidationSettings:
    """pw.x validation settings (cheap on purpose: screening-level accuracy)."""

    ecut_list_Ry: tuple[float, ...] = (25.0, 30.0, 35.0, 40.0, 45.0, 50.0)
    ecut_reference_Ry: float = 65.0
    dual: float = DEFAULT_DUAL_US
    #: Convergence tolerances w.r.t. the reference cutoff.
    energy_tol_Ry_per_atom: float = 0.002
    pressure_tol_kbar: float = 3.0
    #: k-point spacing (Å^-1, 2π included) and Methfessel-Paxton smearing (Ry).
    kspacing_invA: float = 0.25
    degauss_Ry: float = 0.02
    #: E(V) scan: lattice scale factors (volume from ~-7 % to +7 %).
    eos_scales: tuple[float, ...] = (0.976, 0.984, 0.992, 1.0, 1.008, 1.016, 1.024)
    #: Lattice-constant acceptance: pass if |error| <= pass_pct, warning up to warn_pct.
    pass_pct: float = 2.0
    warn_pct: float = 3.0
    timeout_s: float = 1800.0


@dataclass
class CutoffScan:
    ecut_Ry: list[float]
    energy_Ry_per_atom: list[float]
    pressure_kbar: list[float]
    converged_ecutwfc_Ry: float
    ecutrho_Ry: float
    dual: float


@dataclass
class EosFit:
    structure: str
    formula: str
    scales: list[float]
    volumes_A3_per_atom: list[float]
    energies_Ry_per_atom: list[float]
    v0_A3_per_atom: float
    b0_GPa: float
    a_calc_A: float
    a_exp_A: float
    error_pct: float
    c_over_a: float | None
    exp_source: str


@dataclass
class ElementValidation:
    element: str
    cutoff: CutoffScan | None
    eos: EosFit | None
    status: Literal["pass", "warning", "fail", "skipped"]
    ecutwfc_Ry: float | None
    ecutrho_Ry: float | None
    reason: str = ""
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _scf(structure, pseudo_dir: Path, files: dict[str, str], ecutwfc: float, ecutrho: float, settings: ValidationSettings,
         workdir: Path, kpoints: tuple[int, int, int] | None = None) -> tuple[float, float]:
    """(total energy Ry, pressure kbar) of one pw.x scf of ``structure`` (``kpoints``: this mesh, not the spacing's)."""
    inp = scf_input(structure, pseudo_dir, files, ecutwfc, ecutrho, kspacing_invA=settings.kspacing_invA,
                    degauss_Ry=settings.degauss_Ry, kpoints=kpoints)
    r = run_pw(inp, workdir, settings.timeout_s)
    return r["energy_Ry"], r["pressure_kbar"]


def cutoff_convergence(element: str, lib: PseudoLibrary, settings: ValidationSettings = ValidationSettings(), workdir: Path | None = None) -> CutoffScan:
    """E and P of the reference solid vs ``ecutwfc`` (dual fixed); the smallest converged cutoff.

    Converged = every cutoff from it upward is within ``energy_tol_Ry_per_atom`` and
    ``pressure_tol_kbar`` of the ``ecut_reference_Ry`` result.  Then dual 4 is tried at that
    cutoff and kept when it changes E and P by less than half the tolerances.
    """
    st, _ = reference_structure(element)
    els = sorted({s.specie.symbol for s in st})
    with tempfile.TemporaryDirectory(prefix=f"pwconv-{element}-") as tmp:
        tmpd = Path(workdir or tmp)
        files = lib.stage(els, tmpd / "pseudo")
        nat = len(st)
        cuts = list(settings.ecut_list_Ry) + [settings.ecut_reference_Ry]
        E, P = [], []
        for c in cuts:
            e, p = _scf(st, tmpd / "pseudo", files, c, settings.dual * c, settings, tmpd)
            E.append(e / nat)
            P.append(p)
        e_ref, p_ref = E[-1], P[-1]
        conv = cuts[-1]
        for i in range(len(cuts) - 1, -1, -1):
            if abs(E[i] - e_ref) <= settings.energy_tol_Ry_per_atom and abs(P[i] - p_ref) <= settings.pressure_tol_kbar:
                conv = cuts[i]
            else:
                break
        dual = settings.dual
        i_conv = cuts.index(conv)
        e4, p4 = _scf(st, tmpd / "pseudo", files, conv, 4.0 * conv, settings, tmpd)
        if abs(e4 / nat - E[i_conv]) <= settings.energy_tol_Ry_per_atom / 2 and abs(p4 - P[i_conv]) <= settings.pressure_tol_kbar / 2:
            dual = 4.0
    return CutoffScan(cuts, E, P, conv, dual * conv, dual)


def eos_scan(element: str, lib: PseudoLibrary, ecutwfc_Ry: float, ecutrho_Ry: float,
             settings: ValidationSettings = ValidationSettings()) -> EosFit:
    """Birch-Murnaghan fit of E(V) of the reference solid (c/a fixed at experiment)."""
    with tempfile.TemporaryDirectory(prefix=f"pweos-{element}-") as tmp:
        tmpd = Path(tmp)
        st0, x = reference_structure(element)
        files = lib.stage(sorted({s.specie.symbol for s in st0}), tmpd / "pseudo")

        kmesh = kpoint_grid(st0, settings.kspacing_invA)  # one mesh for every volume

        def energy_at(sc: float) -> float:
            st, _ = reference_structure(element, sc)
            return _scf(st, tmpd / "pseudo", files, ecutwfc_Ry, ecutrho_Ry, settings, tmpd, kmesh)[0] / len(st)

        scales, vols, ens = eos_scan_scales(element, energy_at, settings.eos_scales, len(settings.eos_scales) + 4)
    fit, a_calc = fit_lattice_constant(element, vols, ens)
    return EosFit(
        structure=x.structure, formula=x.formula or element, scales=scales,
        volumes_A3_per_atom=vols, energies_Ry_per_atom=ens, v0_A3_per_atom=float(fit.v0),
        b0_GPa=float(fit.b0_GPa), a_calc_A=float(a_calc), a_exp_A=x.a_A,
        error_pct=float(100 * (a_calc - x.a_A) / x.a_A),
        c_over_a=(x.c_A / x.a_A) if x.c_A else None, exp_source=x.source + (f" ({x.note})" if x.note else ""),
    )


def eos_status(error_pct: float, settings: ValidationSettings = ValidationSettings()) -> tuple[str, str]:
    """``pass``, ``warning`` or ``fail`` and why, from the lattice constant's error vs experiment (%)."""
    if abs(error_pct) <= settings.pass_pct:
        return "pass", ""
    if abs(error_pct) <= settings.warn_pct:
        return "warning", f"lattice constant off by {error_pct:+.2f} % (> {settings.pass_pct} %)"
    return "fail", f"lattice constant off by {error_pct:+.2f} % (> {settings.warn_pct} %)"


def validate_element(element: str, lib: PseudoLibrary | None = None, settings: ValidationSettings = ValidationSettings()) -> ElementValidation:
    """pw.x validation of one element: cutoff convergence, then the E(V) lattice constant vs experiment."""
    t0 = time.time()
    lib = lib or PseudoLibrary.default()
    if element not in EXPERIMENTAL_LATTICE:
        return ElementValidation(element, None, None, "skipped", None, None,
                                 reason="no simple experimental reference solid (molecular/complex); ld1.x tests only")
    st, x = reference_structure(element)
    others = sorted({s.specie.symbol for s in st} - {element})
    for o in others:
        if o not in lib:
            return ElementValidation(element, None, None, "skipped", None, None,
                                     reason=f"reference compound {x.formula} needs {o}, not usable in the library")
    conv = cutoff_convergence(element, lib, settings)
    wfc, rho = conv.converged_ecutwfc_Ry, conv.ecutrho_Ry
    # a compound reference must run at the cutoffs of its partner too
    cw, cr = lib.cutoffs_Ry(others) if others else (0.0, 0.0)
    eos = eos_scan(element, lib, max(wfc, cw), max(rho, cr), settings)
    status, reason = eos_status(eos.error_pct, settings)
    return ElementValidation(element, conv, eos, status, wfc, rho, reason, time.time() - t0)


@dataclass
class CutoffCheck:
    """Total energy and pressure of an element's reference solid at the library cutoffs (the ones a
    dataset run uses) against a high-cutoff reference, without changing the library."""

    element: str
    reference: str
    ecutwfc_Ry: float
    ecutrho_Ry: float
    ecutwfc_reference_Ry: float
    ecutrho_reference_Ry: float
    energy_Ry_per_atom: float
    energy_reference_Ry_per_atom: float
    pressure_kbar: float
    pressure_reference_kbar: float
    delta_E_mRy_per_atom: float
    delta_P_kbar: float
    converged: bool
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_library_cutoffs(element: str, lib: PseudoLibrary, settings: ValidationSettings = ValidationSettings(), *,
                          ecutwfc_Ry: float | None = None, ecutrho_Ry: float | None = None) -> CutoffCheck:
    """Are the library cutoffs of ``element`` converged?  Two pw.x scf runs of its reference solid
    (experimental lattice, :func:`reference_structure`): at the cutoffs a material of that solid's
    elements gets from ``lib`` (or ``ecutwfc_Ry``/``ecutrho_Ry``) and at ``settings.ecut_reference_Ry``
    with dual ``settings.dual``; converged when E and P agree within the validation tolerances.

    Unlike :func:`validate_element` this never changes a cutoff, so it can audit a dataset that was
    computed at provisional cutoffs.
    """
    t0 = time.time()
    st, x = reference_structure(element)
    els = sorted({s.specie.symbol for s in st})
    wfc, rho = lib.cutoffs_Ry(els)
    wfc, rho = (ecutwfc_Ry or wfc), (ecutrho_Ry or rho)
    ref_wfc = settings.ecut_reference_Ry
    ref_rho = max(settings.dual * ref_wfc, rho)
    if ref_wfc <= wfc:
        raise PseudoError(f"{element}: reference cutoff {ref_wfc} Ry is not above the checked {wfc} Ry")
    with tempfile.TemporaryDirectory(prefix=f"pwcut-{element}-") as tmp:
        tmpd = Path(tmp)
        files = lib.stage(els, tmpd / "pseudo")
        e, p = _scf(st, tmpd / "pseudo", files, wfc, rho, settings, tmpd)
        e_ref, p_ref = _scf(st, tmpd / "pseudo", files, ref_wfc, ref_rho, settings, tmpd)
    nat = len(st)
    de, dp = 1e3 * (e - e_ref) / nat, p - p_ref
    return CutoffCheck(
        element=element, reference=f"{x.formula or element} {x.structure}", ecutwfc_Ry=wfc, ecutrho_Ry=rho,
        ecutwfc_reference_Ry=ref_wfc, ecutrho_reference_Ry=ref_rho, energy_Ry_per_atom=e / nat,
        energy_reference_Ry_per_atom=e_ref / nat, pressure_kbar=p, pressure_reference_kbar=p_ref,
        delta_E_mRy_per_atom=de, delta_P_kbar=dp,
        converged=bool(abs(de) <= 1e3 * settings.energy_tol_Ry_per_atom and abs(dp) <= settings.pressure_tol_kbar),
        wall_s=time.time() - t0,
    )


def check_cutoff_set(elements: Iterable[str] | None = None, directory: Path | str = PSEUDO_DIR, *, redo: bool = False,
                     settings: ValidationSettings = ValidationSettings(), progress: bool = True) -> dict[str, CutoffCheck]:
    """:func:`check_library_cutoffs` over ``elements`` (default: every usable element with a reference
    solid); each result is saved as ``cutoff_check`` of the element in validation.json (resumable:
    checked elements are skipped unless ``redo``, or unless their library cutoffs changed since)."""
    directory = Path(directory)
    data = load_validation(directory)
    lib = PseudoLibrary.from_index(directory)
    if elements:
        els = list(elements)
        unknown = [e for e in els if e not in data["elements"]]
        if unknown:
            raise PseudoError(f"{', '.join(unknown)} not in {directory / VALIDATION_FILE}; generate first")
    else:
        els = [e for e, r in data["elements"].items()
               if e in EXPERIMENTAL_LATTICE and r.get("library", {}).get("status") in USABLE_STATUSES]
    out: dict[str, CutoffCheck] = {}
    for el in tqdm(els, desc="pw.x cutoff check", disable=not progress):
        rec = data["elements"][el]
        st, _ = reference_structure(el)
        now = lib.cutoffs_Ry(sorted({s.specie.symbol for s in st}))
        old = rec.get("cutoff_check")
        if old and not redo and (old["ecutwfc_Ry"], old["ecutrho_Ry"]) == now:
            continue
        out[el] = check_library_cutoffs(el, lib, settings)
        rec["cutoff_check"] = out[el].to_dict()
        save_validation(data, directory)
    return out


def validate_set(elements: Iterable[str] | None = None, directory: Path | str = PSEUDO_DIR, *, redo: bool = False,
                 settings: ValidationSettings = ValidationSettings(), progress: bool = True) -> dict[str, ElementValidation]:
    """Run :func:`validate_element` over ``elements`` (default: all generated, compound references last); update validation.json.

    Elements already validated are skipped unless ``redo`` (resumable: the JSON is saved after each).
    """
    directory = Path(directory)
    data = load_validation(directory)
    els = list(elements) if elements else list(data["elements"])
    els.sort(key=lambda e: (EXPERIMENTAL_LATTICE[e].formula is not None) if e in EXPERIMENTAL_LATTICE else True)
    out = {}
    for el in tqdm(els, desc="pw.x validation", disable=not progress):
        rec = data["elements"].get(el)
        if rec is None:
            raise PseudoError(f"{el} is not in {directory / VALIDATION_FILE}; generate it first")
        if rec.get("pw") and not redo:
            continue
        lib = PseudoLibrary.from_index(directory)
        try:
            v = validate_element(el, lib, settings)
        except PseudoError as exc:
            v = ElementValidation(el, None, None, "fail", None, None, reason=str(exc).splitlines()[0])
        rec["pw"] = v.to_dict()
        if v.status == "skipped":
            rec["pw"]["ecutwfc_Ry"] = None
        rec["library"] = library_record(el, rec)
        save_validation(data, directory)
        out[el] = v
    return out


def write_readme(directory: Path | str = PSEUDO_DIR) -> Path:
    """Regenerate the tables of ``data/pseudo/README.md`` from validation.json (prose is kept above the marker)."""
    directory = Path(directory)
    data = load_validation(directory)
    readme = directory / "README.md"
    marker = "<!-- tables below are generated by `betenet pseudo validate` / write_readme(); do not edit -->"
    head = readme.read_text().split(marker)[0].rstrip() + "\n\n" if readme.exists() else "# Project pseudopotentials\n\n"
    rows = ["| El | status | ecutwfc (Ry) | ecutrho (Ry) | reference | a_exp (Å) | a_PBEsol (Å) | error (%) | B0 (GPa) | ld1 max abs ΔE (mRy) | ghost-free | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for el, rec in data["elements"].items():
        lib, ld1, pw = rec.get("library", {}), rec.get("ld1") or {}, rec.get("pw") or {}
        eos = pw.get("eos") or {}
        de = ld1.get("max_abs_delta_E_Ry")
        rows.append(
            f"| {el} | {lib.get('status', '')} | {lib.get('ecutwfc_Ry', ''):.0f} | {lib.get('ecutrho_Ry', ''):.0f} | "
            f"{(eos.get('formula', '') + ' ' + eos.get('structure', '')).strip()} | "
            f"{eos.get('a_exp_A', float('nan')):.3f} | {eos.get('a_calc_A', float('nan')):.3f} | {eos.get('error_pct', float('nan')):+.2f} | "
            f"{eos.get('b0_GPa', float('nan')):.0f} | {de * 1e3 if de is not None else float('nan'):.2f} | {'yes' if ld1.get('ghost_free') else 'NO'} | "
            f"{lib.get('note', '')} |".replace("nan", "–")
        )
    gen = ["| El | configuration | type | lloc | rcloc (a.u.) | nlcc / rcore (a.u.) | semicore | channels (label occ E_ref rc rc_US) |", "|---|---|---|---|---|---|---|---|"]
    for el, rec in data["elements"].items():
        sp = rec.get("spec")
        if not sp:
            continue
        ch = "; ".join(f"{c['label']} {c['occupation']:g} {c['energy_Ry']:g} {c['rcut_au']:g} {c['rcutus_au']:g}" for c in sp["channels"])
        gen.append(
            f"| {el} | {sp['configuration']} | {'US' if sp['pseudotype'] == 3 else 'NC'}{' TM' if sp['tm'] else ' RRKJ'} | {sp['lloc']} | "
            f"{sp['rcloc_au'] if sp['rcloc_au'] is not None else '–'} | {('yes / ' + str(sp['rcore_au'] or 'auto')) if sp['nlcc'] else 'no'} | "
            f"{' '.join(sp['semicore']) or '–'} | {ch} |"
        )
    chk = ["| El | reference | ecutwfc / ecutrho (Ry) | reference (Ry) | ΔE (mRy/atom) | ΔP (kbar) | converged |", "|---|---|---|---|---|---|---|"]
    for el, rec in data["elements"].items():
        c = rec.get("cutoff_check")
        if c:
            chk.append(f"| {el} | {c['reference']} | {c['ecutwfc_Ry']:.0f} / {c['ecutrho_Ry']:.0f} | "
                       f"{c['ecutwfc_reference_Ry']:.0f} / {c['ecutrho_reference_Ry']:.0f} | {c['delta_E_mRy_per_atom']:+.2f} | "
                       f"{c['delta_P_kbar']:+.1f} | {'yes' if c['converged'] else '**no**'} |")
    check_md = ("\n\n## Cutoff check at the library cutoffs (`betenet pseudo check-cutoffs`)\n\n"
                "E and P of the reference solid at the cutoffs the dataset uses vs the reference cutoff "
                "(tolerances 2 mRy/atom, 3 kbar); the library is not changed.\n\n" + "\n".join(chk)) if len(chk) > 2 else ""
    n = {s: sum(1 for r in data["elements"].values() if r.get("library", {}).get("status") == s)
         for s in ("validated", "ld1-only", "warning", "failed")}
    summary = f"Counts: {n['validated']} validated, {n['ld1-only']} ld1-only, {n['warning']} warning, {n['failed']} failed (of {len(data['elements'])})."
    readme.write_text(head + marker + "\n\n## Validation\n\n" + summary + "\n\n" + "\n".join(rows) + check_md + "\n\n## Generation settings\n\n" + "\n".join(gen) + "\n")
    return readme

