"""The phonon check's density-grid study and the chapter's view of the check (:mod:`betenet.qe.pseudodojo`).

Does the density grid move ph.x's zone-boundary phonon?  :func:`ecutrho_series` measures it per element (one
ph.x run per grid at a fixed ecutwfc, optionally the frozen phonon of the same mode on the same k points), saved
in ``data/studies/pseudodojo-ecutrho/runs``; :func:`phonon_check_rows` lists each element's recorded check for
chapter 00.  At the exact zone-boundary q it does not (bcc Ta at H, 70 Ry: 19.365 / 19.367 meV at 280 / 560 Ry);
the series of 2026-12-04, run at a q ~7e-6 off H (pw.x's four-decimal alat), drifted by 2.5 meV and more, and
are kept as ``runs/*-q-off.json``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any, Iterable

from ..jsonio import read_json, write_json_atomic
from ..paths import PSEUDO_DIR
from . import pseudodojo as _pd

__all__ = ["ECUTRHO_STUDY_DIR", "ecutrho_series", "ecutrho_study_runs", "ecutrho_table", "phonon_check_rows"]


#: The density-grid series of the phonon check (:func:`ecutrho_series`; ``runs/<El>-<ecutwfc>.json``).
ECUTRHO_STUDY_DIR: Path = PSEUDO_DIR.parent / "studies" / "pseudodojo-ecutrho"


def ecutrho_series(element: str, ecutwfc_Ry: float, duals: Iterable[float], s: _pd.DojoSettings = _pd.DojoSettings(), *,
                   study_dir: Path | str = ECUTRHO_STUDY_DIR, frozen: bool = False, log=print) -> dict[str, Any]:
    """The phonon check's zone-boundary frequencies at one ``ecutwfc_Ry`` and ecutrho = dual x ecutwfc for
    each of ``duals``: whether the density grid converges them at all, before a reference is trusted (hcp Os:
    the 140/1120 Ry reference sits 5.5-6.9 meV from checks that the 140/560 Ry one had within 1 meV).

    Same mesh and smearing as the phonon check (``s.phonon_kspacing_invA``, ``s.phonon_smearing_Ry``).  With
    ``frozen``, also the frozen phonon of the same mode at ``ecutwfc_Ry`` and dual ``s.dual`` on the same k points
    (:func:`~betenet.qe.pseudodojo.frozen_reference`; key ``frozen``): the ground state's answer.  Each
    finished ph.x run is saved at once to ``<study_dir>/runs/<El>-<ecutwfc>.json`` (resumable; a file of other
    settings is an error naming it, never overwritten).  Returns that file's content."""
    duals = [float(d) for d in duals]
    if not duals or min(duals) < 4.0:
        raise _pd.PseudoError(f"{element}: duals must be >= 4 (norm-conserving: ecutrho >= 4 ecutwfc), got {duals}")
    out = Path(study_dir) / "runs" / f"{element}-{ecutwfc_Ry:g}.json"
    key = {"element": element, "ecutwfc_Ry": float(ecutwfc_Ry), "kspacing_invA": s.phonon_kspacing_invA,
           "degauss_Ry": s.phonon_smearing_Ry, "sha256": _pd.new_record(element)["sha256"]}
    data: dict[str, Any] = {**key, "runs": {}}
    if out.exists():
        data = read_json(out, error=_pd.PseudoError)
        if {k: data.get(k) for k in key} != key:
            raise _pd.PseudoError(f"{out}: a series of other settings ({ {k: data.get(k) for k in key} }); "
                              "move it aside or choose another ecutwfc")

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, data)

    for dual in duals:
        name = f"{dual:g}"
        if name in data["runs"]:
            continue
        with tempfile.TemporaryDirectory(prefix=f"dojo-rho-{element}-") as tmp:
            r = _pd.phonon_at(element, ecutwfc_Ry, dataclasses.replace(s, dual=dual), Path(tmp))
        data["runs"][name] = r
        save()
        log(f"{element}: ph.x at {ecutwfc_Ry:g}/{dual * ecutwfc_Ry:g} Ry: "
            + " ".join(f"{w:.2f}" for w in r["freqs_meV"]) + " meV")
    if frozen and "frozen" not in data:  # the same mode from the ground state, on the same k points
        with tempfile.TemporaryDirectory(prefix=f"dojo-rho-fz-{element}-") as tmp:
            ref = _pd.frozen_reference(element, dataclasses.replace(s, ecut_reference_Ry=float(ecutwfc_Ry)), Path(tmp))
        data["frozen"] = ref
        save()
        log(f"{element}: frozen phonon at {ecutwfc_Ry:g}/{ref['ecutrho_Ry']:g} Ry: {ref['freqs_meV'][0]:.2f} meV")
    return data


def phonon_check_rows(directory: Path | str = _pd.DOJO_DIR) -> list[dict[str, Any]]:
    """One row per element of the index with a phonon check: its status and cutoffs, the reference (method:
    ``frozen``, ``frozen (ph.x's mode)`` for hcp/diamond, or ``ph.x``; the frequency of its highest mode), ph.x's highest mode at the chosen (or last tried) cutoff, raw and
    (where the check needed it) sum-rule corrected, and the difference, plus the previous check's cutoffs where it was
    redone (``superseded_phonon``)."""
    rows = []
    for el, rec in sorted(_pd.load_index(directory)["elements"].items()):
        ph = rec.get("phonon")
        if not ph or "reference" not in ph:
            continue
        ref, at = ph["reference"], ph["at"]
        old = (rec.get("superseded_phonon") or {}).get("tried") or []
        old_pass = next((t for t in old if t.get("passed")), None)
        rows.append({"element": el, "status": rec["status"], "q": at.get("q_label"),
                     "reference": ref.get("method", "ph.x") + (" (ph.x's mode)" if ref.get("pattern_from") == "ph.x" else ""),
                     "ref_cutoffs_Ry": f"{ref['ecutwfc_Ry']:g}/{ref['ecutrho_Ry']:g}",
                     "ref_omega_meV": max(ref["freqs_meV"]),  # a frozen reference holds its one mode
                     "checked_cutoffs_Ry": f"{at['ecutwfc_Ry']:g}/{at['ecutrho_Ry']:g}",
                     "phx_omega_meV": max(at["freqs_meV"]),
                     "phx_sum_rule_corrected_meV": max(ph["sum_rule_corrected_meV"]) if "sum_rule_corrected_meV" in ph else None,
                     "max_abs_dfreq_meV": ph["max_abs_dfreq_meV"],
                     "passed": bool(ph["passed"]),
                     "before": f"{old_pass['ecutwfc_Ry']:g}/{old_pass['ecutrho_Ry']:g}" if old_pass else ""})
    return rows


def ecutrho_study_runs(study_dir: Path | str = ECUTRHO_STUDY_DIR) -> list[dict[str, Any]]:
    """Every saved :func:`ecutrho_series` (``runs/*.json``), sorted by element and ecutwfc."""
    files = sorted((Path(study_dir) / "runs").glob("*.json"))
    data = [read_json(f, error=_pd.PseudoError) for f in files]
    return sorted(data, key=lambda d: (d["element"], d["ecutwfc_Ry"]))


def ecutrho_table(data: dict[str, Any]) -> str:
    """Markdown table of an :func:`ecutrho_series`: frequencies per density grid, and the largest change
    from the previous grid."""
    runs = sorted(data["runs"].items(), key=lambda kv: float(kv[0]))
    lines = ["| ecutrho (Ry) | frequencies (meV) | max change from the previous grid (meV) |", "|---|---|---|"]
    prev = None
    for _, r in runs:
        f = r["freqs_meV"]
        change = "" if prev is None else f"{max(abs(a - b) for a, b in zip(f, prev)):.3f}"
        lines.append(f"| {r['ecutrho_Ry']:g} | {' '.join(f'{w:.2f}' for w in f)} | {change} |")
        prev = f
    if data.get("frozen"):
        fz = data["frozen"]
        lines.append(f"| frozen phonon at {fz['ecutrho_Ry']:g} | {fz['freqs_meV'][0]:.2f} (u -> 0, same k points) | |")
    return "\n".join(lines)
