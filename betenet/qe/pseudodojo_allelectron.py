"""The PseudoDojo set's E(V) against all-electron PBEsol: run Elk on each element's pw.x E(V) cells
(:func:`betenet.qe.pseudo.allelectron.allelectron_eos`, kept in ``data/pseudo/allelectron/``), attach the
comparison to the element's ``eos`` in the PseudoDojo index and judge the element again
(``betenet pseudo dojo allelectron EL ...``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import pseudodojo as pd
from . import pseudodojo_pbe as pd_pbe
from .pseudo import PseudoError
from .pseudo.allelectron import (
    ElkSettings,
    allelectron_eos,
    compare_eos,
    load_index,
    reusable,
    save_entry,
    used_comparison,
)

__all__ = ["check_element", "comparison", "eos_rows"]


def check_element(element: str, directory: Path | str = pd.DOJO_DIR, s: pd.DojoSettings | None = None,
                  ae_dir: Path | str | None = None, *, es: ElkSettings | None = None, redo: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Compare ``element``'s pw.x E(V) with an all-electron one on the same cells and k mesh (computed unless
    the index in ``ae_dir`` has it for these scales, mesh and Elk settings ``es``, or ``redo``), attach it as ``eos["allelectron"]``,
    judge the element again and save its record.  :class:`PseudoError` when it has no pw.x E(V) yet."""
    s = s or pd.DojoSettings()
    rec = pd.load_index(directory)["elements"].get(element)
    eos = (rec or {}).get("eos")
    if not eos:
        raise PseudoError(f"{element}: no pw.x E(V) in {Path(directory) / 'validation.json'}: "
                          f"run `betenet pseudo dojo validate {element}` first")
    es = es or ElkSettings(degauss_Ry=s.degauss_Ry)  # the pw.x scan's smearing
    ae = load_index(ae_dir)["elements"].get(element)
    if redo or not reusable(ae, element, eos["scales"], eos["kpoints"], es):
        ae = allelectron_eos(element, eos["scales"], eos["kpoints"], es, log=log)
        save_entry(ae, ae_dir)
    eos["allelectron"] = comparison(element, eos, ae, es, ae_dir)
    why = eos["allelectron"].get("refused")
    before = rec["status"]
    pd.judge_record(rec, s)
    now = pd.load_index(directory)  # merged into the file as it is now: another element may have changed
    now["elements"][element] = rec
    pd.save_index(now, directory)
    c = eos["allelectron"]
    log(f"{element}: pw.x a0 {eos['a_calc_A']:.4f} Å, all-electron {c['a_ae_A']:.4f} Å ({c['a0_error_pct']:+.2f} %), "
        f"B0 {c['b0_error_pct']:+.1f} %; Elk basis convergence {ae['convergence_a_pct']:+.3f} %"
        + (f"; not used: {why}" if why else "") + f"; {before} -> {rec['status']}")
    return rec


def comparison(element: str, eos: dict[str, Any], ae: dict[str, Any], es: ElkSettings | None = None,
               ae_dir: Path | str | None = None, pbe_index: dict[str, Any] | None = None) -> dict[str, Any]:
    """What :func:`check_element` attaches as ``eos["allelectron"]``: :func:`compare_eos` of the pw.x and Elk E(V),
    with ``refused`` when the protocol's PBE cross-check (``pbe_index``, else the one in ``ae_dir``) refuses the
    Elk reference (:func:`~betenet.qe.pseudodojo_pbe.protocol_refusal`)."""
    es = es or ElkSettings()
    c = compare_eos(eos, ae, es)
    pbe_index = pbe_index if pbe_index is not None else pd_pbe.load_index(ae_dir)
    if why := pd_pbe.protocol_refusal(pbe_index["elements"].get(element), es):
        c["refused"] = why
    return c


def eos_rows(directory: Path | str = pd.DOJO_DIR) -> list[dict[str, Any]]:
    """One row per element of the index with a pw.x E(V): the experimental, all-electron and pseudopotential
    lattice constants, the functional's own error (all-electron vs experiment) beside the pseudopotential's
    (pw.x vs all-electron), the bulk moduli, the element's status and Elk's basis pair (``rgkmax_used``); a
    refused all-electron scan (not converged, :func:`~betenet.qe.pseudo.allelectron.compare_eos`) leaves the
    all-electron columns empty and says so."""
    rows = []
    for el, rec in sorted(pd.load_index(directory)["elements"].items()):
        eos = rec.get("eos")
        if not eos:
            continue
        found = eos.get("allelectron")
        ae = used_comparison(eos) or {}  # a refused scan is no comparison: not shown
        rows.append({"element": el, "solid": f"{eos['formula']} {eos['structure']}", "status": rec["status"],
                     "a_exp_A": eos["a_exp_A"], "a_ae_A": ae.get("a_ae_A"), "a_pw_A": eos["a_calc_A"],
                     "ae_vs_exp_pct": ae.get("ae_a_exp_error_pct"), "pw_vs_ae_pct": ae.get("a0_error_pct"),
                     "pw_vs_exp_pct": eos["a0_error_pct"], "b0_exp_GPa": eos.get("b0_exp_GPa"),
                     "b0_ae_GPa": ae.get("b0_ae_GPa"), "b0_pw_GPa": eos["b0_GPa"], "b0_pw_vs_ae_pct": ae.get("b0_error_pct"),
                     "all_electron": None if not found else "used" if ae else
                     "refused (protocol vs WIEN2k PBE)" if found.get("refused") else "refused (basis or fit)",
                     "rgkmax_used": " / ".join(f"{r:g}" for r in ae.get("rgkmax_used") or []) or None})
    return rows
