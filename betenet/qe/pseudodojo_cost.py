"""The study comparing the two pseudopotential sets on cost and accuracy (issue: a validated library).

:func:`compare_cost` puts the ld1.x (ultrasoft) set and the PseudoDojo set (:mod:`betenet.qe.pseudodojo`) on an
element's reference solid, each at its own converged cutoffs: a0 and B0 from E(V), and the CPU time of one pw.x
scf and one ph.x run at the same zone-boundary q on the same k mesh.  Saved in
``data/studies/pseudopotentials/runs/<El>.json``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ..jsonio import write_json_atomic
from ..paths import PSEUDO_DIR
from . import pseudodojo as _pd

__all__ = ["LD1_SETTINGS", "STUDY_DIR", "compare_cost"]


#: The study comparing the two sets (runs/<El>.json written by :func:`compare_cost`; table.py prints the table).
STUDY_DIR: Path = PSEUDO_DIR.parent / "studies" / "pseudopotentials"
#: The ld1.x (ultrasoft) set's scan: ecutwfc at dual 8 against 100 Ry, same tolerances as the PseudoDojo scan.
LD1_SETTINGS = _pd.DojoSettings(ecut_list_Ry=(20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 70.0, 80.0),
                            ecut_reference_Ry=100.0, dual=8.0)


def compare_cost(element: str, *, redo: bool = False, study_dir: Path | str = STUDY_DIR, log=print) -> dict[str, Any]:
    """The two sets on ``element``'s reference solid, each at its own converged cutoffs.

    ld1.x set: cutoff scan with :data:`LD1_SETTINGS` (same 1 mRy/atom, 1 kbar tolerances; dual 4 kept
    when it changes E and P by less than half of them), then E(V) at that cutoff (a0, B0).  PseudoDojo:
    the index's cutoff and E(V).  For both: CPU/wall time of one pw.x scf and of ph.x at the same
    zone-boundary q, same k mesh (``phonon_kspacing_invA``), one core.  Saved to ``runs/<El>.json``.
    """
    out_path = Path(study_dir) / "runs" / f"{element}.json"
    if out_path.exists() and not redo:
        return json.loads(out_path.read_text())
    dojo = _pd.load_index()["elements"].get(element)
    if not dojo or not dojo.get("ecutwfc_Ry") or not dojo.get("eos"):
        raise _pd.PseudoError(f"{element}: validate it in the PseudoDojo set first (cutoff and E(V) needed)")
    st, _ = _pd.reference_structure(element)
    els = sorted({a.specie.symbol for a in st})
    ld1_lib = _pd.PseudoLibrary.default()
    ld1_lib.require(els)
    t0 = time.time()
    s8 = LD1_SETTINGS
    scan = _pd.cutoff_scan(element, s8, lib=ld1_lib)
    c = scan["converged_ecutwfc_Ry"]
    res: dict[str, Any] = {"element": element, "reference": scan["reference"], "ld1_cutoff_scan": scan, "sets": {}}
    if c is None:
        res["ld1_note"] = f"ld1.x set not converged within the tolerances below {s8.ecut_reference_Ry:g} Ry"
        c = s8.ecut_reference_Ry
    dual = s8.dual
    row = next(r for r in scan["rows"] if r["ecutwfc_Ry"] == c)
    s4 = dataclasses.replace(s8, dual=4.0)
    with tempfile.TemporaryDirectory(prefix=f"dojo-cmp-{element}-") as tmp:
        r4 = _pd.reference_scf(element, ld1_lib, c, s4, Path(tmp) / "dual4")
    e4 = r4["energy_Ry"] / r4["natoms"]
    if (abs(1e3 * (e4 - row["energy_Ry_per_atom"])) <= s8.energy_tol_mRy / 2
            and abs(r4["pressure_kbar"] - row["pressure_kbar"]) <= s8.pressure_tol_kbar / 2):
        dual = 4.0
    res["ld1_dual4_check"] = {"energy_Ry_per_atom": e4, "pressure_kbar": r4["pressure_kbar"], "kept": dual == 4.0}
    log(f"{element}: ld1.x set converged at {c:g} Ry, dual {dual:g} ({time.time() - t0:.0f} s)")
    sl = dataclasses.replace(s8, dual=dual)
    eos = _pd.eos_check(element, c, sl, lib=ld1_lib)
    log(f"{element}: ld1.x E(V): a0 {eos['a0_error_pct']:+.2f} %, B0 {eos['b0_GPa']:.0f} GPa")
    sd = dataclasses.replace(_pd.DojoSettings(), dual=float(dojo["ecutrho_Ry"]) / float(dojo["ecutwfc_Ry"]))
    for name, lib, sset, cut in (("ld1", ld1_lib, sl, c), ("pseudodojo", None, sd, float(dojo["ecutwfc_Ry"]))):
        with tempfile.TemporaryDirectory(prefix=f"dojo-cmp-{element}-") as tmp:
            ph = _pd.phonon_at(element, cut, sset, Path(tmp), lib=lib)
        res["sets"][name] = {"ecutwfc_Ry": cut, "ecutrho_Ry": sset.dual * cut, "kspacing_invA": sset.phonon_kspacing_invA,
                             "scf_cpu_s": ph["scf_cpu_s"], "scf_wall_s": ph["scf_wall_s"], "ph_cpu_s": ph["ph_cpu_s"],
                             "ph_wall_s": ph["ph_wall_s"], "q_label": ph["q_label"], "freqs_meV": ph["freqs_meV"],
                             "eos": eos if name == "ld1" else dojo["eos"]}
        log(f"{element}: {name} at {cut:g} Ry: scf {ph['scf_cpu_s']:.1f} s CPU, ph.x {ph['ph_cpu_s']:.1f} s CPU")
    res["date"] = time.strftime("%Y-%m-%d")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_path, res)
    return res
