"""Refit the committed E(V) scans: every stored number that comes from a Birch-Murnaghan fit, recomputed from the
stored points with :func:`~betenet.qe.pseudo.solids.fit_lattice_constant` as it is now, and the judgements made
again.

The stores are the PseudoDojo index (``data/pseudo/pseudodojo/validation.json``: the pw.x E(V), its all-electron
comparison, the element's status), the Elk index (``data/pseudo/allelectron/elk-pbesol.json``), the PBE cross-check
(``pbe-crosscheck.json``) and the ld1.x set's index (``data/pseudo/validation.json``).  No calculation is run.
The basis pair each Elk entry used (``rgkmax_used``) was decided when it ran and is kept; a refit that would have
decided otherwise is reported.  Why it exists: the fit on total energies stopped short of its minimum, at a place
that moved with the SciPy build (see :func:`~betenet.qe.pseudo.solids.fit_lattice_constant`).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from . import pseudodojo as pd
from . import pseudodojo_pbe as pd_pbe
from ..jsonio import write_json_atomic
from ..paths import PSEUDO_DIR
from .pseudo import fit_lattice_constant, load_validation, save_validation
from .pseudo import allelectron as allel
from .pseudo.allelectron import ElkSettings, basis_pair, fit_scan, summary
from .pseudo.validation import ValidationSettings, eos_status
from .pseudodojo_allelectron import comparison

__all__ = ["refit_pw_eos", "refit_allelectron", "refit_all", "changes"]


def refit_pw_eos(element: str, eos: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stored pw.x E(V) (PseudoDojo ``eos``, the cross-check's ``pwx`` or the ld1.x set's
    ``EosFit``) with its fitted fields recomputed from its points; only the fields it already has."""
    out = copy.deepcopy(eos)
    fit, a = fit_lattice_constant(element, eos["volumes_A3_per_atom"], eos["energies_Ry_per_atom"])
    new = {"v0_A3_per_atom": float(fit.v0), "b0_GPa": float(fit.b0_GPa), "b1": float(fit.b1), "a_calc_A": float(a)}
    err = float(100 * (a - eos["a_exp_A"]) / eos["a_exp_A"])
    new.update(a0_error_pct=err, error_pct=err)
    if eos.get("b0_exp_GPa"):
        new["b0_error_pct"] = float(100 * (fit.b0_GPa - eos["b0_exp_GPa"]) / eos["b0_exp_GPa"])
    out.update({k: v for k, v in new.items() if k in eos})
    return out


def refit_allelectron(element: str, ae: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A copy of a stored Elk E(V) (:func:`~betenet.qe.pseudo.allelectron.allelectron_eos`) with each scan's fit
    and the entry's summary recomputed, and a note when the refitted larger-basis scan would have decided the
    basis pair otherwise (``None``: the same pair)."""
    out = copy.deepcopy(ae)
    for scan in out["scans"].values():
        if "failed" not in scan:
            scan.update(fit_scan(element, scan["volumes_A3_per_atom"], scan["energies_Ry_per_atom"]))
    s = ae["settings"]
    used = ae.get("rgkmax_used") or [s["rgkmax"], s["rgkmax_check"]]  # entries from before the fallback
    out.update({k: v for k, v in summary(out["scans"], used).items() if k in ae})  # what the entry stores
    if "rgkmax_used" not in ae:  # run before the step-down existed: nothing was decided
        return out, None
    top = out["scans"].get(f"{s['rgkmax']:g}", {})
    decided = basis_pair(top, s)
    note = None
    if decided != [float(r) for r in used]:
        note = (f"{element}: refitted, the R_MT·max|G+k| {s['rgkmax']:g} scan would have used {decided}, "
                f"the entry used {used}")
    return out, note


def _dojo_settings(rec: dict[str, Any]) -> pd.DojoSettings:
    """The PseudoDojo settings an element was validated with (its ``settings``; defaults where absent)."""
    names = {f.name for f in dataclasses.fields(pd.DojoSettings)}
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (rec.get("settings") or {}).items() if k in names}
    return pd.DojoSettings(**kw)


def refit_all(pseudo_dir: Path | str = PSEUDO_DIR, *, write: bool = False) -> dict[str, Any]:
    """Refit every store under ``pseudo_dir`` (``pseudodojo/``, ``allelectron/`` and the ld1.x set's index) and
    judge again; with ``write`` the files are rewritten.  Returns ``{"before": ..., "after": ..., "notes": [...]}``,
    each of before/after ``{"dojo", "elk", "pbe", "ld1"}`` as loaded and as refitted (see :func:`changes`)."""
    pseudo_dir = Path(pseudo_dir)
    dojo_dir, ae_dir = pseudo_dir / "pseudodojo", pseudo_dir / "allelectron"
    before = {"dojo": pd.load_index(dojo_dir), "elk": allel.load_index(ae_dir), "pbe": pd_pbe.load_index(ae_dir),
              "ld1": load_validation(pseudo_dir)}
    after = copy.deepcopy(before)
    notes: list[str] = []
    for el, ae in before["elk"]["elements"].items():
        after["elk"]["elements"][el], note = refit_allelectron(el, ae)
        notes += [note] if note else []
    for el, entry in after["pbe"]["elements"].items():  # before the PBEsol index: its refusals come from here
        if "pwx" in entry and "elk" in entry:
            entry["pwx"] = refit_pw_eos(el, entry["pwx"])
            entry["elk"], note = refit_allelectron(el, entry["elk"])
            notes += [f"PBE {note}"] if note else []
            entry.update(pd_pbe.comparisons(el, entry["pwx"], entry["elk"]))
    for el, rec in after["dojo"]["elements"].items():
        eos = rec.get("eos")
        if not eos:
            continue
        rec["eos"] = eos = refit_pw_eos(el, eos)
        if "allelectron" in eos and el not in after["elk"]["elements"]:
            notes.append(f"{el}: an all-electron comparison without an Elk entry; not refitted")
        elif "allelectron" in eos:
            s = _dojo_settings(rec)
            es = ElkSettings(degauss_Ry=s.degauss_Ry)
            eos["allelectron"] = comparison(el, eos, after["elk"]["elements"][el], es, pbe_index=after["pbe"])
        judged = copy.deepcopy(before["dojo"]["elements"][el])
        pd.judge_record(judged, _dojo_settings(rec))
        if (judged["status"], judged.get("note")) == (rec["status"], rec.get("note")):
            pd.judge_record(rec, _dojo_settings(rec))
        else:  # a status set by another stage (Na's DFPT failure): not the fit's to change
            notes.append(f"{el}: status {rec['status']!r} was not set by judge_record; kept")
    for el, rec in after["ld1"]["elements"].items():
        pw = rec.get("pw") or {}
        if pw.get("eos"):
            pw["eos"] = refit_pw_eos(el, pw["eos"])
            pw["status"], pw["reason"] = eos_status(pw["eos"]["error_pct"], ValidationSettings())
    if write:
        write_json_atomic(allel.index_path(ae_dir), after["elk"])
        write_json_atomic(pd_pbe.index_path(ae_dir), after["pbe"])
        pd.save_index(after["dojo"], dojo_dir)
        save_validation(after["ld1"], pseudo_dir)
    return {"before": before, "after": after, "notes": notes}


def changes(result: dict[str, Any], rel: float = 1e-5, abs_tol: float = 1e-5) -> list[dict[str, Any]]:
    """What :func:`refit_all` changed: one row per store, element and changed field (numbers apart by more than
    ``rel`` of the larger and ``abs_tol``), the statuses included.  The defaults sit above the fit's own
    tolerance (against a tight independent fit of the 49 committed scans: B1 within 7e-7 relative, V0 5e-10,
    residuals 2e-9 mRy, lattice constants 2e-8 %), so another SciPy build reports nothing."""
    rows: list[dict[str, Any]] = []

    def walk(store: str, el: str, path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(store, el, f"{path}.{k}" if path else k, a.get(k), b.get(k))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(store, el, f"{path}[{i}]", x, y)
        elif isinstance(a, float) and isinstance(b, float):
            if abs(a - b) > max(rel * max(abs(a), abs(b)), abs_tol):
                rows.append({"store": store, "element": el, "field": path, "before": a, "after": b})
        elif a != b:
            rows.append({"store": store, "element": el, "field": path, "before": a, "after": b})

    for store in ("elk", "pbe", "dojo", "ld1"):
        for el in sorted(result["after"][store]["elements"]):
            walk(store, el, "", result["before"][store]["elements"].get(el), result["after"][store]["elements"][el])
    return rows
