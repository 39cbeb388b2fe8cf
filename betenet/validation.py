"""DFT validation: this project's QE records of the reference set against published DFT and experiment.

:func:`compare` joins :data:`betenet.reference.REFERENCE_SET` with the records of one or more
accuracy levels (``validated``: ``data/records-validated``, the labels the book trains on;
``screening``: ``data/records``, the first, coarse records, shown for comparison) and computes, per
material and level:

* ``lambda_ratio`` = our λ / published DFT λ (where a verified published value exists);
* ``tc_ad_K`` = Allen–Dynes T_c of our record's moments (λ, ω_log, ω₂) with μ* =
  :data:`betenet.constants.MU_STAR_DEFAULT`, and ``tc_error_K`` = ``tc_ad_K`` − experimental T_c.

:func:`summarize` evaluates the three goals of issue 15 as named checks (:class:`ValidationGoals`):

``lambda_vs_dft``
    every elemental metal with a published DFT λ has |λ/λ_DFT − 1| ≤ 25 %;
``tc_mae``
    the mean |T_c(Allen–Dynes) − T_c(experiment)| over the superconductors is ≤ 3.5 K (its "misses"
    are the materials off by more than 3.5 K);
``non_superconductors``
    no metal without an ambient-pressure superconducting transition is predicted above 5 K.

A check with no material to evaluate is reported as not evaluable (``passed = None``), never as
passed.  Every miss carries the reference entry's ``known_issue`` (spin–orbit coupling for Pb/Tl,
anisotropy for MgB2, spin fluctuations for Pd/V, ...) and whether that note explains it: a note
explains a miss only in the direction it predicts (``lambda_bias``/``tc_bias`` of
:class:`betenet.reference.ReferenceMaterial`); a miss the other way is "unexplained".  A material whose record does not exist yet
(the validated batch is still running) is listed with ``has_record = False`` by
:func:`coverage`, not silently dropped.

Which published values exist, and which could not be verified, is in :mod:`betenet.reference`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .constants import HIGH_TC_THRESHOLD_K, MU_STAR_DEFAULT
from .physics import allen_dynes_tc_K
from .qe.dataset import started_runs
from .qe.prototypes import PrototypeError, build, id_formula, parse_material_id, same_crystal
from .qe.status import FINAL_STATES, load_status
from .qe.upstream_candidates import compare_with_published, upstream_index_of
from .records import MaterialRecord, load_record
from .reference import REFERENCE_SET, ReferenceMaterial
from .upstream import default_records_dir

__all__ = [
    "VALIDATED_RECORDS_DIR",
    "LEVEL_DIRS",
    "LEVEL_RUN_DIRS",
    "runs_without_record",
    "ValidationGoals",
    "load_level",
    "load_levels",
    "compare",
    "coverage",
    "summarize",
    "checks_table",
    "chapter_facts",
    "describe_levels",
    "ours_vs_paper",
    "DISPLAY_COLUMNS",
]

#: Records of the ``validated`` accuracy level (PseudoDojo, converged grids; :data:`betenet.config.QE_VALIDATED`).
VALIDATED_RECORDS_DIR: Path = getattr(paths, "RECORDS_VALIDATED_DIR", paths.DATA_DIR / "records-validated")
#: Accuracy level -> its records directory, in the order the chapter shows them.
LEVEL_DIRS: dict[str, Path] = {"validated": VALIDATED_RECORDS_DIR, "screening": paths.RECORDS_DIR}
#: Accuracy level -> its QE runs directory (one folder per material, behind the records of :data:`LEVEL_DIRS`).
LEVEL_RUN_DIRS: dict[str, Path] = {"validated": paths.DATA_DIR / "qe-validated", "screening": paths.QE_RUNS_DIR}


@dataclass(frozen=True)
class ValidationGoals:
    """The goals of the DFT validation (issue 15, part 4)."""

    #: Largest accepted |λ/λ_DFT − 1| for the elemental metals.
    lambda_rel_tol: float = 0.25
    #: Largest accepted mean |T_c(Allen–Dynes) − T_c(experiment)| over the superconductors (K).
    tc_mae_max_K: float = 3.5
    #: No non-superconductor may be predicted at or above this T_c (K): the screening threshold.
    non_sc_tc_max_K: float = HIGH_TC_THRESHOLD_K


def load_level(directory: Path | str, ids: Iterable[str] | None = None) -> dict[str, MaterialRecord]:
    """Records of ``directory`` by material id, restricted to ``ids`` (default: the reference set).

    A missing directory gives ``{}`` (the validated batch may not have written any record yet); a
    malformed record raises :class:`betenet.records.RecordError` naming its file and field.
    A record computed on one of the paper's structures (``up0732-NbC``) stands for the reference material
    whose prototype structure it is (:func:`reference_of`), unless a record under the reference's own id
    exists; the table's ``record_id`` says which record it was.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    wanted = set(ids) if ids is not None else {e.material_id for e in REFERENCE_SET}
    files = sorted(directory.glob("*.json"))
    out = {p.stem: load_record(p) for p in files if p.stem in wanted}
    for p in files:
        if upstream_index_of(p.stem) is None:
            continue
        rec = load_record(p)
        ref_id = reference_of(rec.structure, wanted)
        if ref_id is not None and ref_id not in out:
            out[ref_id] = rec
    return out


def reference_of(structure, ids: Iterable[str]) -> str | None:
    """The id among ``ids`` (reference ids, ``NbC-B1``) whose prototype structure
    (:func:`betenet.qe.prototypes.build`) is ``structure`` up to a uniform scale
    (:func:`~betenet.qe.prototypes.same_crystal`), or ``None``.  Only the ids of ``structure``'s formula are built."""
    formula = structure.composition.reduced_formula
    for mid in sorted(ids):
        try:
            els, proto = parse_material_id(mid)
            if id_formula(mid) != formula:
                continue
            ref = build(els, proto)
        except PrototypeError:  # a reference id that is not a prototype decoration
            continue
        if same_crystal(ref, structure):
            return mid
    return None


def load_levels(levels: Mapping[str, Path | str] | None = None) -> dict[str, dict[str, MaterialRecord]]:
    """:func:`load_level` for each ``{level: directory}`` (default :data:`LEVEL_DIRS`)."""
    return {level: load_level(d) for level, d in (LEVEL_DIRS if levels is None else levels).items()}


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _row(ref: ReferenceMaterial, level: str, rec: MaterialRecord, mu_star: float) -> dict[str, Any]:
    lam, wlog, w2 = _f(rec.lambda_), _f(rec.omega_log_K), _f(rec.omega_2_K)
    for name, value in (("lambda_", lam), ("omega_log_K", wlog), ("omega_2_K", w2)):
        if not math.isfinite(value):
            raise ValueError(f"record {rec.material_id} ({level}): field {name!r} is {value}; the validation needs "
                             "λ, ω_log and ω₂")
    tc = float(allen_dynes_tc_K(lam, wlog, w2, mu_star))
    lam_dft = _f(ref.lambda_dft.value if ref.lambda_dft else None)
    wlog_dft = _f(ref.omega_log_dft_K.value if ref.omega_log_dft_K else None)
    tc_exp = _f(ref.tc_exp_K.value if ref.tc_exp_K else None)
    return {
        "material_id": ref.material_id, "record_id": rec.material_id, "label": ref.label, "level": level,
        "accuracy": str(rec.provenance.get("accuracy", "")), "kind": ref.kind,
        "superconductor": ref.superconductor,
        "lambda": lam, "lambda_uncertainty": _f(rec.lambda_uncertainty), "omega_log_K": wlog, "omega_2_K": w2,
        "lambda_dft": lam_dft, "lambda_ratio": lam / lam_dft if math.isfinite(lam_dft) else float("nan"),
        "omega_log_dft_K": wlog_dft,
        "omega_log_ratio": wlog / wlog_dft if math.isfinite(wlog_dft) else float("nan"),
        "lambda_exp": _f(ref.lambda_exp.value if ref.lambda_exp else None),
        "tc_ad_K": tc, "tc_exp_K": tc_exp, "tc_error_K": tc - tc_exp if math.isfinite(tc_exp) else float("nan"),
        "mu_star": mu_star,
        "flags": ",".join(rec.flags),
        "dft_source": ref.lambda_dft.source if ref.lambda_dft else "",
        "tc_exp_source": ref.tc_exp_K.source if ref.tc_exp_K else ref.status_source,
        "known_issue": ref.known_issue, "lambda_bias": ref.lambda_bias, "tc_bias": ref.tc_bias,
    }


_COLUMNS = ["material_id", "record_id", "label", "level", "accuracy", "kind", "superconductor", "lambda", "lambda_uncertainty",
            "omega_log_K", "omega_2_K", "lambda_dft", "lambda_ratio", "omega_log_dft_K", "omega_log_ratio",
            "lambda_exp", "tc_ad_K", "tc_exp_K", "tc_error_K", "mu_star", "flags", "dft_source", "tc_exp_source",
            "known_issue", "lambda_bias", "tc_bias"]


def compare(records_by_level: Mapping[str, Mapping[str, MaterialRecord]], *, mu_star: float = MU_STAR_DEFAULT,
            references: Iterable[ReferenceMaterial] = REFERENCE_SET) -> pd.DataFrame:
    """One row per (reference material, level) that has a record; columns as described in the module docstring.

    ``records_by_level``: ``{level: {material_id: record}}`` (:func:`load_levels`).  A record whose
    ``provenance["accuracy"]`` names another level than its key raises ``ValueError`` naming both, so
    that a screening record placed among the validated ones cannot pass as validated.
    """
    rows = []
    for level, records in records_by_level.items():
        for ref in references:
            rec = records.get(ref.material_id)
            if rec is None:
                continue
            acc = rec.provenance.get("accuracy")
            if acc is not None and acc != level:
                raise ValueError(f"record {rec.material_id}: provenance['accuracy'] is {acc!r} but it was given as "
                                 f"level {level!r}")
            rows.append(_row(ref, level, rec, mu_star))
    return pd.DataFrame(rows, columns=_COLUMNS)


def coverage(records_by_level: Mapping[str, Mapping[str, MaterialRecord]],
             references: Iterable[ReferenceMaterial] = REFERENCE_SET) -> pd.DataFrame:
    """Which reference materials have a record at each level: one row per material, one bool column per level."""
    refs = list(references)
    data = {"material_id": [r.material_id for r in refs], "label": [r.label for r in refs]}
    for level, records in records_by_level.items():
        data[level] = [r.material_id in records for r in refs]
    return pd.DataFrame(data)


def _miss(row: pd.Series, value: float, what: str, direction: str, bias_column: str) -> dict[str, Any]:
    """A material outside its goal, with what the reference set says about it.

    ``explanation``: ``"expected"`` when the reference's known issue predicts a miss of this quantity in
    this direction (``bias_column`` = ``direction``); ``"possible"`` when the note names a reason but no
    direction for either quantity; ``"unexplained"`` when there is no note, when it predicts the
    opposite direction, or when it concerns only the other quantity (a T_c note for a λ miss).
    """
    other = "tc_bias" if bias_column == "lambda_bias" else "lambda_bias"
    def _bias(x: Any) -> str | None:  # pandas may hold a missing direction as None or NaN
        return x if x in ("low", "high") else None

    note, bias, other_bias = row["known_issue"], _bias(row[bias_column]), _bias(row[other])
    quantity = "λ" if bias_column == "lambda_bias" else "T_c"
    if note and bias == direction:
        explanation, text = "expected", note
    elif note and bias is None and other_bias is None:
        explanation, text = "possible", note
    elif note and bias is None:
        explanation, text = "unexplained", f"no known reason for {quantity} (the note concerns the other quantity: {note})"
    elif note:
        explanation, text = "unexplained", f"too {direction}, while the known issue predicts too {bias}: {note}"
    else:
        explanation, text = "unexplained", "no known reason"
    return {"material_id": row["material_id"], "value": float(value), "what": what, "direction": direction,
            "explanation": explanation, "known_issue": text, "flags": row["flags"]}


def summarize(df: pd.DataFrame, level: str, goals: ValidationGoals = ValidationGoals()) -> dict[str, Any]:
    """The named checks of one level of :func:`compare`'s table.

    Returns ``{"level", "n_materials", "checks": {name: check}}``; each check is
    ``{"goal", "n", "value", "passed", "misses"}`` where ``value`` is the checked statistic (largest
    |λ/λ_DFT − 1|, T_c MAE in K, largest predicted T_c of a non-superconductor in K; NaN when
    ``n == 0``), ``passed`` is ``None`` when nothing could be evaluated, and ``misses`` lists every
    material outside its goal with its reference note.
    """
    d = df[df["level"] == level]
    checks: dict[str, dict[str, Any]] = {}

    lam = d[(d["kind"] == "element") & d["lambda_ratio"].notna()]
    dev = (lam["lambda_ratio"] - 1.0).abs()
    checks["lambda_vs_dft"] = {
        "goal": f"|λ/λ_DFT − 1| ≤ {goals.lambda_rel_tol:.0%} for every elemental metal with a published DFT λ",
        "n": int(len(lam)), "value": float(dev.max()) if len(lam) else float("nan"),
        "passed": None if lam.empty else bool((dev <= goals.lambda_rel_tol).all()),
        "misses": [_miss(r, r["lambda_ratio"], "λ/λ_DFT", "low" if r["lambda_ratio"] < 1 else "high", "lambda_bias")
                   for _, r in lam[dev > goals.lambda_rel_tol].iterrows()],
    }

    sc = d[(d["superconductor"] == True) & d["tc_exp_K"].notna()]  # noqa: E712 (object column with None)
    err = sc["tc_error_K"].abs()
    mae = float(err.mean()) if len(sc) else float("nan")
    checks["tc_mae"] = {
        "goal": f"mean |T_c(Allen–Dynes) − T_c(exp)| ≤ {goals.tc_mae_max_K} K over the superconductors",
        "n": int(len(sc)), "value": mae,
        "passed": None if sc.empty else bool(mae <= goals.tc_mae_max_K),
        # the materials that carry the error: those off by more than the allowed mean
        "misses": [_miss(r, r["tc_error_K"], "T_c(AD) − T_c(exp), K", "low" if r["tc_error_K"] < 0 else "high",
                         "tc_bias") for _, r in sc[err > goals.tc_mae_max_K].iterrows()],
    }

    ns = d[d["superconductor"] == False]  # noqa: E712
    checks["non_superconductors"] = {
        "goal": f"no non-superconductor predicted at or above {goals.non_sc_tc_max_K:g} K",
        "n": int(len(ns)), "value": float(ns["tc_ad_K"].max()) if len(ns) else float("nan"),
        "passed": None if ns.empty else bool((ns["tc_ad_K"] < goals.non_sc_tc_max_K).all()),
        "misses": [_miss(r, r["tc_ad_K"], "T_c(AD), K", "high", "tc_bias")
                   for _, r in ns[ns["tc_ad_K"] >= goals.non_sc_tc_max_K].iterrows()],
    }

    # not a goal of the issue, reported beside it: the compounds against their published DFT λ
    comp = d[(d["kind"] == "compound") & d["lambda_ratio"].notna()]
    cdev = (comp["lambda_ratio"] - 1.0).abs()
    checks["lambda_vs_dft_compounds"] = {
        "goal": f"(reported, not a goal) |λ/λ_DFT − 1| ≤ {goals.lambda_rel_tol:.0%} for the compounds",
        "n": int(len(comp)), "value": float(cdev.max()) if len(comp) else float("nan"),
        "passed": None if comp.empty else bool((cdev <= goals.lambda_rel_tol).all()),
        "misses": [_miss(r, r["lambda_ratio"], "λ/λ_DFT", "low" if r["lambda_ratio"] < 1 else "high", "lambda_bias")
                   for _, r in comp[cdev > goals.lambda_rel_tol].iterrows()],
    }
    return {"level": level, "n_materials": int(len(d)), "checks": checks}


def checks_table(summaries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The checks of several :func:`summarize` results as one table (one row per level and check)."""
    rows = []
    for s in summaries:
        for name, c in s["checks"].items():
            status = "not evaluable (no material)" if c["passed"] is None else ("met" if c["passed"] else "missed")
            rows.append({"level": s["level"], "check": name, "goal": c["goal"], "n": c["n"],
                         "value": c["value"], "status": status,
                         "misses": "; ".join(f"{m['material_id']} ({m['value']:.2f}, {m['explanation']}): {m['known_issue']}"
                                             for m in c["misses"])})
    return pd.DataFrame(rows, columns=["level", "check", "goal", "n", "value", "status", "misses"])



#: The columns the chapter shows of :func:`compare`'s table (the CSV keeps them all).
DISPLAY_COLUMNS = ["label", "level", "lambda", "lambda_uncertainty", "lambda_dft", "lambda_ratio", "omega_log_K",
                   "omega_log_dft_K", "tc_ad_K", "tc_exp_K", "tc_error_K", "flags", "dft_source", "tc_exp_source"]


def _rel(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(paths.REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def runs_without_record(records_by_level: Mapping[str, Mapping[str, MaterialRecord]],
                        run_dirs: Mapping[str, Path | str] | None = None,
                        references: Iterable[ReferenceMaterial] = REFERENCE_SET) -> pd.DataFrame:
    """The reference materials with no record at a level whose crystal has a run in that level's runs directory
    (default :data:`LEVEL_RUN_DIRS`): one row each (``level, material_id, label, run_id, state, reason, notes``;
    ``notes`` the run's review notes, ``<run>/NOTES.md``, where it has them, else None), the run
    under the reference's own id or, matched by its relaxed cell (:func:`reference_of`), under another (bcc V
    as ``up0503-V``).  So that a material computed and rejected, or being computed, is said as such and not
    counted as never run.  The runs are :func:`~betenet.qe.dataset.started_runs`' (a refinement waiting to run
    included, with the cell of the run it supersedes; runs moved aside, ``.bak-``, are not read)."""
    run_dirs = LEVEL_RUN_DIRS if run_dirs is None else run_dirs
    labels = {r.material_id: r.label for r in references}
    rows = []
    for level, records in records_by_level.items():
        missing = set(labels) - set(records)
        base = Path(run_dirs[level]) if level in run_dirs else None
        if not missing or base is None or not base.is_dir():
            continue
        found: dict[str, dict[str, Any]] = {}
        for run_id, cell in started_runs(base):  # finished or begun, not moved aside
            mid = run_id if run_id in missing else (reference_of(cell, missing) if cell is not None else None)
            if mid is not None and (mid not in found or run_id == mid):  # the reference's own id first
                st = load_status(run_id, base)  # a garbled file named
                notes = base / run_id / "NOTES.md"
                found[mid] = {"level": level, "material_id": mid, "label": labels[mid], "run_id": run_id,
                              "state": st.state, "reason": st.reason, "notes": _rel(notes) if notes.is_file() else None}
        rows += [found[m] for m in sorted(found)]
    return pd.DataFrame(rows, columns=["level", "material_id", "label", "run_id", "state", "reason", "notes"],
                        dtype=object)


def describe_levels(records_by_level: Mapping[str, Mapping[str, MaterialRecord]],
                    dirs: Mapping[str, Path | str] | None = None,
                    references: Iterable[ReferenceMaterial] = REFERENCE_SET,
                    runs: pd.DataFrame | None = None) -> str:
    """Markdown: for each level, how many reference materials have a record, from which directory,
    and that the chapter is incomplete while records are missing (an absent directory said as such); with
    ``runs`` (:func:`runs_without_record`), which of the missing ones were run and how that run ended, and where
    a run's review notes say why."""
    dirs = LEVEL_DIRS if dirs is None else dirs
    n_ref = len(list(references))
    lines = []
    for level, records in records_by_level.items():
        d = Path(dirs[level]) if level in dirs else None
        where = f"`{_rel(d)}/`" if d is not None else "(no directory)"
        n = len(records)
        if d is not None and not d.is_dir():
            lines.append(f"- **{level}**: {where} does not exist yet: no record of this level has been written, "
                         "so its checks are not evaluable.")
        elif n < n_ref:
            missing = n_ref - n
            lines.append(f"- **{level}**: {n} of the {n_ref} reference materials have a record in {where}; "
                         f"{missing} have none yet, so this level's comparison is incomplete"
                         + (" while the QE batch runs." if level == "validated" else "."))
        else:
            lines.append(f"- **{level}**: all {n_ref} reference materials have a record in {where}.")
        refined = sorted(mid for mid, rec in records.items() if (rec.provenance or {}).get("refinement"))
        if refined:  # denser meshes than the level's (betenet.qe.refinement): said, with where to read why
            lines[-1] += (f" Refined at denser k/q meshes than the level's: {', '.join(refined)} "
                          "(`provenance.refinement` of the record says which meshes and why).")
        mine = runs[runs["level"] == level] if runs is not None and len(runs) else []
        if len(mine):
            said = [f"{r.label}" + (f" as `{r.run_id}`" if r.run_id != r.material_id else "")
                    + f" ({r.state if r.state in FINAL_STATES else 'begun, not finished'}"
                    + (f": {r.reason}" if isinstance(r.reason, str) else "")
                    + (f"; why: `{r.notes}`" if isinstance(r.notes, str) else "") + ")" for r in mine.itertuples()]
            lines[-1] += f" Run without a record at this level: {'; '.join(said)}."
    return "\n".join(lines)


def _fmt(check: Mapping[str, Any], template: str) -> str:
    if check["passed"] is None:
        return "not evaluable (no material)"
    verdict = "met" if check["passed"] else "missed"
    noun = "material" if check["n"] == 1 else "materials"
    return f"{template.format(v=check['value'])} over {check['n']} {noun} ({verdict})"


def chapter_facts(summaries: Iterable[Mapping[str, Any]],
                  references: Iterable[ReferenceMaterial] = REFERENCE_SET) -> dict[str, Any]:
    """Numbers and short phrases the chapter's prose quotes (to be glued), from the reference set and
    :func:`summarize` results: ``n_reference``, ``n_superconductors``, ``n_non_superconductors``,
    ``n_dft_lambda`` (of which ``n_dft_lambda_elements``), and per level ``<level>_n``,
    ``<level>_lambda_vs_dft``, ``<level>_tc_mae``, ``<level>_non_superconductors``,
    ``<level>_lambda_vs_dft_compounds`` as e.g. "MAE = 4.02 K over 13 materials (missed)" or "not
    evaluable (no material)"."""
    refs = list(references)
    facts: dict[str, Any] = {
        "n_reference": len(refs),
        "n_superconductors": sum(r.superconductor is True for r in refs),
        "n_non_superconductors": sum(r.superconductor is False for r in refs),
        "n_dft_lambda": sum(r.lambda_dft is not None for r in refs),
        "n_dft_lambda_elements": sum(r.lambda_dft is not None and r.kind == "element" for r in refs),
    }
    templates = {"lambda_vs_dft": "largest |λ/λ_DFT − 1| = {v:.2f}", "lambda_vs_dft_compounds":
                 "largest |λ/λ_DFT − 1| = {v:.2f}", "tc_mae": "MAE = {v:.2f} K",
                 "non_superconductors": "highest predicted T_c = {v:.2f} K"}
    for s in summaries:
        facts[f"{s['level']}_n"] = s["n_materials"]
        for name, c in s["checks"].items():
            facts[f"{s['level']}_{name}"] = _fmt(c, templates.get(name, "{v:.2f}"))
    return facts


def ours_vs_paper(levels: Mapping[str, Path | str] | None = None, published_dir: Path | str | None = None) -> pd.DataFrame:
    """Our records of the paper's own materials (``provenance.upstream_index``) beside the authors' records of
    the same rows (converted from ``database.json`` into ``data/upstream/records``), one row per material and
    accuracy level (:func:`betenet.qe.upstream_candidates.compare_with_published` plus a ``level`` column).
    Empty when either side is missing (the published file is not shipped with the project)."""
    pdir = Path(published_dir) if published_dir is not None else default_records_dir()
    published = [load_record(p) for p in sorted(pdir.glob("upstream-*.json"))] if pdir.is_dir() else []
    frames = []
    for level, d in (LEVEL_DIRS if levels is None else levels).items():
        d = Path(d)
        ours = [load_record(p) for p in sorted(d.glob("*.json"))] if d.is_dir() else []
        df = compare_with_published(ours, published)
        if len(df):
            frames.append(df.assign(level=level))
    if not frames:
        return compare_with_published([], []).assign(level=pd.Series(dtype=str))
    return pd.concat(frames, ignore_index=True)
