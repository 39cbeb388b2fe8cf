"""High-T_c screening with predicted α²F (Sec. II.3, Fig. 5) and the ``betenet screen`` command.

Definitions
-----------
* T_c of a material: Allen–Dynes T_c (μ* = ``ScreeningConfig.mu_star``, 0.1 as the paper) of the
  DFT α²F (truth) or of the predicted α²F.  For an ensemble the prediction is the **mean α²F** over
  members (the paper's BETE-NET prediction); its T_c is the screening score.
* A material is *high-T_c* if its DFT T_c ≥ ``tc_threshold_K`` (5 K, the paper).  With a small
  test set there may be almost no such materials: :func:`positive_threshold` then also returns the
  lower ``adapted_tc_threshold_K`` — reported as **our adaptation**, never as the paper's.
* Precision–recall as a function of the threshold on the *predicted* T_c (select every material
  whose score ≥ t): :func:`precision_recall`.  Average precision (AP) is the step-wise area
  Σₙ (Rₙ − Rₙ₋₁) Pₙ (scikit-learn's definition); a random selector has expected AP equal to the
  prevalence of positives (:func:`random_average_precision`).
* Two-step strategy (Fig. 5): the free CSO model selects with a high-precision threshold (chosen as
  the lowest threshold whose precision ≥ ``cso_min_precision``), then the CPD model — which needs a
  coarse PhDOS — with a looser one (precision ≥ ``cpd_min_precision``): :func:`two_step_screen`.
* Beyond the paper: the ensemble's **lower confidence bound** ``LCB = mean_m T_c,m − z·std_m T_c,m``
  over members (z = ``ScreeningConfig.lcb_z``) as an alternative score that penalises materials
  the members disagree on (:func:`ensemble_tc`).

``betenet screen PATH...`` (:mod:`betenet.cli.screen`) ranks CIF/POSCAR structures with a saved ensemble (CSO by default: it
needs structures only); unreadable files are reported by name and skipped; the exit status is
nonzero only if nothing could be screened.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._moved import moved
from .constants import HIGH_TC_THRESHOLD_K, MU_STAR_DEFAULT, TARGET_GRID_MEV
from .metrics import derived_properties

__all__ = [
    "PRCurve",
    "EnsembleTc",
    "precision_recall",
    "average_precision",
    "random_average_precision",
    "precision_recall_at",
    "confusion_matrix",
    "choose_threshold",
    "positive_threshold",
    "two_step_screen",
    "ensemble_tc",
    "ensemble_predictions",
    "PredictionsNotReadyError",
    "ScreeningReport",
    "screening_report",
    "screening_scores",
    "screening_reports",
    "report_numbers",
    "findings_markdown",
    "save_reports",
    "read_structures",
    "screen_structures",
    "guard_structure",
    "structure_descriptors",
    "TrainingDomain",
    "training_domain",
    "SpreadCalibration",
    "oob_spread_calibration",
]


# ----------------------------------------------------------------------------- precision / recall


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall when selecting ``score >= threshold``, for every distinct score.

    ``thresholds`` ascending; ``precision[i]``/``recall[i]``/``n_selected[i]`` belong to
    ``thresholds[i]``.  ``average_precision``, ``prevalence`` (= AP of a random selector),
    ``n_positive`` and ``n`` describe the whole set.
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_selected: np.ndarray
    average_precision: float
    prevalence: float
    n_positive: int
    n: int

    def at(self, threshold: float) -> tuple[float, float, int]:
        """(precision, recall, n_selected) when selecting ``score >= threshold``."""
        i = int(np.searchsorted(self.thresholds, threshold, side="left"))
        if i >= self.thresholds.size:
            return float("nan"), 0.0, 0
        return float(self.precision[i]), float(self.recall[i]), int(self.n_selected[i])


def _check_inputs(is_positive, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if y.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"is_positive {y.shape} and scores {s.shape} must be 1-D of equal length")
    if y.size == 0:
        raise ValueError("no materials to screen")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{int((~np.isfinite(s)).sum())} non-finite score(s)")
    return y, s


def precision_recall(is_positive, scores) -> PRCurve:
    """Precision–recall curve over all thresholds ``t`` ∈ distinct scores, selecting ``score >= t``.

    Precision of an empty selection is undefined and never occurs (every threshold is a score).
    With no positives, recall is NaN and AP is NaN.
    """
    y, s = _check_inputs(is_positive, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    n_sel = np.arange(1, y.size + 1)
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), y.size - 1]  # last index of each distinct score
    thresholds = s_sorted[last]
    n_pos = int(y.sum())
    precision = tp[last] / n_sel[last]
    recall = tp[last] / n_pos if n_pos else np.full(last.size, np.nan)
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision)) if n_pos else float("nan")
    return PRCurve(
        thresholds=thresholds[::-1].copy(),
        precision=precision[::-1].copy(),
        recall=recall[::-1].copy(),
        n_selected=n_sel[last][::-1].copy(),
        average_precision=ap,
        prevalence=n_pos / y.size,
        n_positive=n_pos,
        n=int(y.size),
    )


def average_precision(is_positive, scores) -> float:
    """Σₙ (Rₙ − Rₙ₋₁) Pₙ over the thresholds (scikit-learn's ``average_precision_score``)."""
    return precision_recall(is_positive, scores).average_precision


def random_average_precision(is_positive) -> float:
    """Expected AP of a random selector: the fraction of positives."""
    y = np.asarray(is_positive, dtype=bool)
    return float(y.mean())


def precision_recall_at(is_positive, scores, threshold: float) -> tuple[float, float, int]:
    """(precision, recall, n_selected) of ``score >= threshold`` (precision NaN if nothing is selected)."""
    y, s = _check_inputs(is_positive, scores)
    sel = s >= threshold
    n_sel, tp, n_pos = int(sel.sum()), int((sel & y).sum()), int(y.sum())
    return (tp / n_sel if n_sel else float("nan")), (tp / n_pos if n_pos else float("nan")), n_sel


def confusion_matrix(is_positive, predicted_positive) -> np.ndarray:
    """2×2 counts ``[[TN, FP], [FN, TP]]`` (rows: DFT negative/positive; columns: predicted)."""
    y = np.asarray(is_positive, dtype=bool)
    p = np.asarray(predicted_positive, dtype=bool)
    if y.shape != p.shape:
        raise ValueError(f"shapes differ: {y.shape} vs {p.shape}")
    return np.array([[np.sum(~y & ~p), np.sum(~y & p)], [np.sum(y & ~p), np.sum(y & p)]], dtype=int)


def choose_threshold(curve: PRCurve, min_precision: float) -> float | None:
    """Lowest threshold (largest recall) whose precision ≥ ``min_precision`` and that selects a positive.

    ``None`` when no threshold reaches the precision.
    """
    ok = (curve.precision >= min_precision - 1e-12) & (curve.recall > 0)
    if not ok.any():
        return None
    return float(curve.thresholds[np.flatnonzero(ok)[0]])


def positive_threshold(tc_true_K, *, tc_threshold_K: float = HIGH_TC_THRESHOLD_K, min_positives: int = 3,
                       adapted_tc_threshold_K: float | None = None) -> dict[str, Any]:
    """The high-T_c definition(s) to use on a set of DFT T_c values.

    Returns ``{"paper_K", "n_paper", "adapted_K", "n_adapted", "use_adapted"}``: the paper's
    threshold and its count of positives, and — when that count is below ``min_positives`` and an
    adapted threshold is given — the lower threshold (our adaptation) and its count.
    """
    tc = np.asarray(tc_true_K, dtype=float)
    n_paper = int((tc >= tc_threshold_K).sum())
    use = n_paper < min_positives and adapted_tc_threshold_K is not None
    return {
        "paper_K": float(tc_threshold_K),
        "n_paper": n_paper,
        "adapted_K": float(adapted_tc_threshold_K) if adapted_tc_threshold_K is not None else None,
        "n_adapted": int((tc >= adapted_tc_threshold_K).sum()) if adapted_tc_threshold_K is not None else None,
        "use_adapted": bool(use),
    }


def two_step_screen(
    tc_true_K,
    score_step1,
    score_step2,
    *,
    tc_threshold_K: float = HIGH_TC_THRESHOLD_K,
    min_precision_step1: float = 1.0,
    min_precision_step2: float = 0.8,
    threshold_step1: float | None = None,
    threshold_step2: float | None = None,
) -> dict[str, Any]:
    """The CSO → CPD strategy on one set of materials (Fig. 5).

    Thresholds are chosen with :func:`choose_threshold` unless given.  Reported: each step on the
    full set (as the paper, which applies CPD to the whole test set), and the cascade (step 2 only
    on what step 1 selected, then the union of both selections counted as found).
    """
    y = np.asarray(tc_true_K, dtype=float) >= tc_threshold_K
    c1, c2 = precision_recall(y, score_step1), precision_recall(y, score_step2)
    t1 = threshold_step1 if threshold_step1 is not None else choose_threshold(c1, min_precision_step1)
    t2 = threshold_step2 if threshold_step2 is not None else choose_threshold(c2, min_precision_step2)
    out: dict[str, Any] = {"curve_step1": c1, "curve_step2": c2, "threshold_step1_K": t1, "threshold_step2_K": t2,
                           "n_positive": int(y.sum()), "n": int(y.size)}
    for key, t, s in (("step1", t1, score_step1), ("step2", t2, score_step2)):
        if t is None:
            out[key] = {"precision": float("nan"), "recall": float("nan"), "n_selected": 0,
                        "confusion": confusion_matrix(y, np.zeros_like(y))}
            continue
        p, r, n = precision_recall_at(y, s, t)
        out[key] = {"precision": p, "recall": r, "n_selected": n, "confusion": confusion_matrix(y, np.asarray(s) >= t)}
    sel1 = np.asarray(score_step1) >= t1 if t1 is not None else np.zeros_like(y)
    sel2 = np.asarray(score_step2) >= t2 if t2 is not None else np.zeros_like(y)
    both = sel1 & sel2
    out["cascade"] = {
        "n_after_step1": int(sel1.sum()),
        "n_after_step2": int(both.sum()),
        "precision": float((both & y).sum() / both.sum()) if both.any() else float("nan"),
        "recall": float((both & y).sum() / y.sum()) if y.any() else float("nan"),
    }
    return out


# ----------------------------------------------------------------------------- ensembles


@dataclass(frozen=True)
class EnsembleTc:
    """T_c of an ensemble prediction: of the mean α²F (the prediction), and per member (spread, LCB)."""

    tc_of_mean_K: np.ndarray  #: (n,) Allen–Dynes T_c of the member-mean α²F
    tc_members_K: np.ndarray  #: (n_members, n)
    tc_mean_K: np.ndarray  #: (n,) mean over members of the members' T_c
    tc_std_K: np.ndarray  #: (n,) std over members (ddof=0)
    lcb_K: np.ndarray  #: (n,) tc_mean_K - z * tc_std_K
    z: float
    properties_of_mean: dict[str, np.ndarray]  #: λ, ω_log, ω₂, T_c of the mean α²F
    properties_std: dict[str, np.ndarray]  #: std over members of each member's λ, ω_log, ω₂, T_c


def ensemble_tc(a2f_members, *, omega_meV=TARGET_GRID_MEV, mu_star: float = MU_STAR_DEFAULT, z: float = 1.0) -> EnsembleTc:
    """T_c statistics of member predictions ``a2f_members`` (shape ``(n_members, n, n_bins)``)."""
    a = np.asarray(a2f_members, dtype=float)
    if a.ndim != 3:
        raise ValueError(f"a2f_members must have shape (n_members, n_materials, n_bins), got {a.shape}")
    mean_props = derived_properties(a.mean(axis=0), omega_meV, mu_star=mu_star)
    member_props = derived_properties(a, omega_meV, mu_star=mu_star)
    tcm = member_props["tc_K"]
    mean, std = tcm.mean(axis=0), tcm.std(axis=0)
    return EnsembleTc(
        tc_of_mean_K=mean_props["tc_K"],
        tc_members_K=tcm,
        tc_mean_K=mean,
        tc_std_K=std,
        lcb_K=mean - z * std,
        z=float(z),
        properties_of_mean=mean_props,
        properties_std={k: v.std(axis=0) for k, v in member_props.items()},
    )


# ----------------------------------------------------------------------------- plots


# ----------------------------------------------------------------------------- notebook-level helpers


class PredictionsNotReadyError(RuntimeError):
    """Notebook 06 found no usable saved ensemble predictions: notebook 05 must run (again) first."""


def ensemble_predictions(profile: Any, variant: str, records: Sequence[Any], train_ids: Sequence[str],
                         test_ids: Sequence[str], *, mu_star: float = MU_STAR_DEFAULT, progress: bool = True):
    """Test-split predictions of the ``variant`` ensemble, read from ``artifacts/<profile>/predictions/<variant>.npz``.

    Read-only: this never trains, resumes or loads an ensemble (that is notebook 05's job, or
    ``betenet ensemble run``).  The saved file must hold exactly ``test_ids``, the profile's member
    count and ``mu_star``, and be newer than every finished member of the ensemble; otherwise
    :class:`PredictionsNotReadyError` says which of these fails and to run notebook 05 first.
    ``records``, ``train_ids`` and ``progress`` are accepted for the notebook's call and not used.
    """
    from . import ensemble
    from .config import resolve_profile

    prof = resolve_profile(profile)
    path = ensemble.predictions_path(prof.name, variant)
    rerun = f"run notebook 05 (or `betenet ensemble run --profile {prof.name} --variant {variant}`) first"
    if not path.exists():
        raise PredictionsNotReadyError(f"{path}: no saved {variant} ensemble predictions; {rerun}")
    ps = ensemble.load_predictions(path)
    problems = []
    if sorted(ps.ids) != sorted(test_ids):
        extra, missing = sorted(set(ps.ids) - set(test_ids)), sorted(set(test_ids) - set(ps.ids))
        problems.append(f"they cover {len(ps.ids)} materials, the current test split {len(test_ids)} "
                        f"(not in the split: {extra[:5]}; missing: {missing[:5]})")
    if len(ps.member_index) != prof.ensemble.n_members:
        problems.append(f"they hold {len(ps.member_index)} members, the profile {prof.ensemble.n_members}")
    if abs(ps.mu_star - mu_star) > 1e-12:
        problems.append(f"they were made with mu* = {ps.mu_star}, not {mu_star}")
    edir = ensemble.ensemble_directory(prof.name, variant, create=False)
    member_files = sorted(edir.glob("member-[0-9][0-9][0-9]/member.json")) if edir.is_dir() else []
    newer = [f.parent.name for f in member_files if f.stat().st_mtime > path.stat().st_mtime]
    if newer:
        problems.append(f"member(s) {', '.join(newer[:5])} finished after they were written")
    if problems:
        raise PredictionsNotReadyError(f"{path}: saved {variant} predictions are stale: " + "; ".join(problems) + f"; {rerun}")
    return ps


@dataclass
class ScreeningReport:
    """Screening of one set of materials at one high-T_c definition (see :func:`screening_report`)."""

    threshold_K: float
    label: str
    tc_true_K: Any  #: Series indexed by material id
    scores: Any  #: DataFrame of scores (columns: models / LCB scores)
    curves: dict[str, PRCurve]
    two_step: dict[str, Any] | None
    summary: Any  #: DataFrame, one row per score

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (thresholds, AP per score, two-step numbers, confusion matrices)."""
        def clean(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items() if not isinstance(v, PRCurve)}
            if isinstance(x, np.ndarray):
                return x.tolist()
            if isinstance(x, (np.floating, float)):
                return None if not np.isfinite(x) else float(x)
            if isinstance(x, np.integer):
                return int(x)
            return x

        return {
            "threshold_K": self.threshold_K,
            "label": self.label,
            "n": int(len(self.tc_true_K)),
            "n_positive": int((np.asarray(self.tc_true_K) >= self.threshold_K).sum()),
            "scores": clean({r["score"]: {k: r[k] for k in r if k != "score"} for r in self.summary.to_dict("records")}),
            "two_step": clean(self.two_step) if self.two_step else None,
        }


def screening_report(tc_true_K, scores, threshold_K: float, *, label: str = "", step1: str = "CSO", step2: str = "CPD",
                     min_precision_step1: float = 1.0, min_precision_step2: float = 0.8) -> ScreeningReport:
    """PR curves, AP vs random, chosen thresholds and confusion matrices for every column of ``scores``.

    ``tc_true_K``: Series of DFT T_c (index: material id); ``scores``: DataFrame with the same index,
    one column per score (e.g. ``Base``, ``CSO``, ``CPD``, ``CSO LCB``).  The chosen threshold of a
    score is the lowest with precision ≥ ``min_precision_step1`` for ``step1`` (and its LCB),
    ``min_precision_step2`` for all others.  The two-step strategy is evaluated when both ``step1``
    and ``step2`` columns exist.
    """
    import pandas as pd

    if list(scores.index) != list(tc_true_K.index):
        raise ValueError("scores and tc_true_K are not aligned on the same materials")
    y = np.asarray(tc_true_K, dtype=float) >= threshold_K
    curves, rows = {}, []
    for name in scores.columns:
        s = scores[name].to_numpy(dtype=float)
        c = precision_recall(y, s)
        curves[name] = c
        need = min_precision_step1 if name.split(" ")[0] == step1 else min_precision_step2
        t = choose_threshold(c, need) if c.n_positive else None
        p, r, n_sel = c.at(t) if t is not None else (float("nan"), float("nan"), 0)
        cm = confusion_matrix(y, s >= t) if t is not None else confusion_matrix(y, np.zeros_like(y))
        rows.append({"score": name, "AP": c.average_precision, "AP_random": c.prevalence,
                     "AP_over_random": c.average_precision / c.prevalence if c.n_positive else float("nan"),
                     "min_precision": need, "threshold_K": t if t is not None else float("nan"),
                     "precision": p, "recall": r, "n_selected": n_sel,
                     "TN": int(cm[0, 0]), "FP": int(cm[0, 1]), "FN": int(cm[1, 0]), "TP": int(cm[1, 1])})
    two = None
    if step1 in scores.columns and step2 in scores.columns and y.any():
        two = two_step_screen(np.asarray(tc_true_K, dtype=float), scores[step1].to_numpy(float), scores[step2].to_numpy(float),
                              tc_threshold_K=threshold_K, min_precision_step1=min_precision_step1,
                              min_precision_step2=min_precision_step2)
    return ScreeningReport(float(threshold_K), label, tc_true_K, scores, curves, two, pd.DataFrame(rows))


def screening_scores(prediction_sets: Mapping[str, Any], *, base=None, z: float = 1.0, mu_star: float | None = None):
    """DFT T_c and the screening scores of every model on the test split.

    ``prediction_sets``: variant -> :class:`betenet.ensemble.PredictionSet` (same materials);
    ``base``: optional DataFrame of baseline predictions with a ``tc_K`` column (used only if it covers
    every material).  Returns ``(tc_true_K Series, scores DataFrame)`` with columns ``Base`` (if
    given), ``<variant>`` (T_c of the ensemble-mean α²F) and ``<variant> LCB``.
    """
    import pandas as pd

    if not prediction_sets:
        raise ValueError("no prediction sets")
    first = next(iter(prediction_sets.values()))
    ids = list(first.ids)
    tc_true = first.reference.loc[ids, "tc_K"].astype(float)
    cols: dict[str, np.ndarray] = {}
    if base is not None and set(ids) <= set(base.index):
        cols["Base"] = base.loc[ids, "tc_K"].to_numpy(dtype=float)
    for v, ps in prediction_sets.items():
        if list(ps.ids) != ids:
            raise ValueError(f"prediction set {v!r} covers other materials than {next(iter(prediction_sets))!r}")
        e = ensemble_tc(ps.pred_a2f, omega_meV=ps.omega_meV, mu_star=ps.mu_star if mu_star is None else mu_star, z=z)
        cols[v] = e.tc_of_mean_K
        cols[f"{v} LCB"] = e.lcb_K
    scores = pd.DataFrame(cols, index=pd.Index(ids, name="material_id"))
    tc_true.index.name = "material_id"
    return tc_true, scores


def screening_reports(tc_true_K, scores, cfg: Any) -> list[ScreeningReport]:
    """Reports at the paper's threshold and — if it leaves fewer than ``cfg.min_positives`` DFT
    positives — at ``cfg.adapted_tc_threshold_K``, labelled as our adaptation (``cfg``: ScreeningConfig)."""
    thr = positive_threshold(tc_true_K, tc_threshold_K=cfg.tc_threshold_K, min_positives=cfg.min_positives,
                             adapted_tc_threshold_K=cfg.adapted_tc_threshold_K)
    kw = {"min_precision_step1": cfg.cso_min_precision, "min_precision_step2": cfg.cpd_min_precision}
    reports = [screening_report(tc_true_K, scores, thr["paper_K"], label="(paper's definition)", **kw)]
    if thr["use_adapted"]:
        reports.append(screening_report(tc_true_K, scores, thr["adapted_K"],
                                        label="(our adaptation for a small test set, not the paper's)", **kw))
    return reports


def report_numbers(report: ScreeningReport) -> dict[str, float]:
    """Flat numbers of a report for ``myst_nb.glue``: ``n_positive, n, threshold_K`` and per score
    ``AP_<score>, APratio_<score>, thr_<score>, precision_<score>, recall_<score>``; ``AP_random``."""
    out: dict[str, float] = {"n_positive": int((np.asarray(report.tc_true_K) >= report.threshold_K).sum()),
                             "n": int(len(report.tc_true_K)), "threshold_K": report.threshold_K}
    for r in report.summary.to_dict("records"):
        key = r["score"].replace(" ", "")
        out[f"AP_{key}"] = r["AP"]
        out[f"APratio_{key}"] = r["AP_over_random"]
        out[f"thr_{key}"] = r["threshold_K"]
        out[f"precision_{key}"] = r["precision"]
        out[f"recall_{key}"] = r["recall"]
        out["AP_random"] = r["AP_random"]
    return out


def findings_markdown(reports: Sequence[ScreeningReport], *, step1: str = "CSO", step2: str = "CPD") -> str:
    """Markdown paragraph(s), generated from the measured numbers, summarising each report."""
    parts = []
    for rep in reports:
        n_pos = int((np.asarray(rep.tc_true_K) >= rep.threshold_K).sum())
        head = f"**T_c ≥ {rep.threshold_K:g} K {rep.label}**: {n_pos} of {len(rep.tc_true_K)} test materials are high-T_c by DFT."
        if n_pos == 0:
            parts.append(head + " Precision and recall are undefined; no screening statement can be made on this set.")
            continue
        s = rep.summary.set_index("score")
        lines = [head, ""]
        for name, r in s.iterrows():
            t = f"chosen threshold {r.threshold_K:.2f} K (precision ≥ {r.min_precision:g}): precision {r.precision:.2f}, recall {r.recall:.2f}" \
                if np.isfinite(r.threshold_K) else f"no threshold reaches precision {r.min_precision:g}"
            lines.append(f"- {name}: AP {r.AP:.2f} = {r.AP_over_random:.1f} × random ({r.AP_random:.2f}); {t}.")
        for m in (step1, step2, "FPD"):
            if m in s.index and f"{m} LCB" in s.index:
                d = s.loc[f"{m} LCB", "AP"] - s.loc[m, "AP"]
                lines.append(f"- {m} ensemble spread as a score: AP of the LCB {s.loc[f'{m} LCB', 'AP']:.2f} vs "
                             f"{s.loc[m, 'AP']:.2f} for T_c of the mean α²F ({'+' if d >= 0 else '−'}{abs(d):.2f}).")
        if rep.two_step:
            c = rep.two_step["cascade"]
            lines.append(f"- Two-step {step1} → {step2}: {c['n_after_step1']} selected by {step1}, {c['n_after_step2']} kept by "
                         f"{step2}; cascade precision {c['precision']:.2f}, recall {c['recall']:.2f}.")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def save_reports(reports: Sequence[ScreeningReport], tables_dir: Path) -> tuple[Path, Path]:
    """Write ``screening_summary.json`` (list of :meth:`ScreeningReport.to_dict`) and
    ``screening_summary.csv`` (the summary rows with ``threshold_K_definition`` and ``label`` columns)."""
    import json

    import pandas as pd

    tables_dir = Path(tables_dir)
    tables_dir.mkdir(parents=True, exist_ok=True)
    pj, pc = tables_dir / "screening_summary.json", tables_dir / "screening_summary.csv"
    pj.write_text(json.dumps([r.to_dict() for r in reports], indent=1) + "\n")
    frames = []
    for r in reports:
        df = r.summary.copy()
        df.insert(0, "label", r.label)
        df.insert(0, "threshold_K_definition", r.threshold_K)
        frames.append(df)
    pd.concat(frames, ignore_index=True).to_csv(pc, index=False)
    return pj, pc


# ----------------------------------------------------------------------------- the `betenet screen` command

_STRUCTURE_GLOBS = ("*.cif", "*.CIF", "*.vasp", "POSCAR*", "CONTCAR*", "*.poscar")


def read_structures(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, Any]], list[tuple[Path, str]]]:
    """Read CIF/POSCAR files (directories are searched for ``*.cif``, ``*.vasp``, ``POSCAR*``, ``CONTCAR*``).

    Returns ``(structures, failures)``: ``[(path, pymatgen Structure)]`` and ``[(path, reason)]``.
    Never raises for a bad file.
    """
    from pymatgen.core import Structure

    files: list[Path] = []
    failures: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted({f for g in _STRUCTURE_GLOBS for f in p.glob(g) if f.is_file()})
            if not found:
                failures.append((p, "directory contains no *.cif / *.vasp / POSCAR* / CONTCAR* files"))
            files += found
        elif p.exists():
            files.append(p)
        else:
            failures.append((p, "no such file or directory"))
    out = []
    for f in files:
        try:
            with warnings.catch_warnings():  # pymatgen's CIF warnings; problems are reported per file below
                warnings.simplefilter("ignore")
                st = Structure.from_file(str(f))
        except Exception as exc:  # pymatgen raises many exception types for malformed files
            failures.append((f, f"cannot read a structure ({type(exc).__name__}: {str(exc)[:200]})"))
            continue
        if len(st) == 0:
            failures.append((f, "structure has no sites"))
            continue
        if not st.is_ordered:
            failures.append((f, "disordered structure (partial occupancies) is not supported"))
            continue
        out.append((f, st))
    return out, failures


#: Guards of ``betenet screen``: a structure outside them is refused with a message naming the file.
#: At most this many atoms per cell (the models were trained on cells of a few atoms) ...
SCREEN_MAX_ATOMS = 256
#: ... and this many graph edges within the model's r_max (memory bound: ~1 kB per edge and member).
SCREEN_MAX_EDGES = 200_000
#: Volume per atom (Å³): below the lower bound atoms overlap (the densest solids have ~5 Å³); above the
#: upper one the cell is mostly vacuum (bulk Cs, the largest elemental volume, has ~117 Å³).
SCREEN_VOLUME_PER_ATOM_A3 = (2.0, 200.0)
#: Two atoms closer than this fraction of the sum of their atomic radii overlap (a real bond is ≳ 0.8).
SCREEN_MIN_DISTANCE_FRACTION = 0.6
#: Applicability domain: a structure is flagged when its volume per atom lies outside the training range
#: widened by this factor, its nearest-neighbour distance ratio outside the range widened by
#: ``DOMAIN_DISTANCE_FACTOR``, its cell has more than ``DOMAIN_ATOMS_FACTOR`` × the largest training
#: cell's atoms, it contains an element absent from the training set, or an atom has no neighbour within
#: the model's r_max while every training structure had neighbours (no message passing for that atom).
DOMAIN_VOLUME_FACTOR = 1.25
DOMAIN_DISTANCE_FACTOR = 1.15
DOMAIN_ATOMS_FACTOR = 2


def _radius_A(symbol: str) -> float:
    from pymatgen.core import Element

    r = Element(symbol).atomic_radius
    return float(r) if r is not None else 1.5


def structure_descriptors(structure: Any, r_max_A: float = 4.0) -> dict[str, Any]:
    """``n_atoms``, ``volume_per_atom_A3``, ``elements``, and — only when the density is within
    :data:`SCREEN_VOLUME_PER_ATOM_A3` (else the neighbour search could explode or find nothing) —
    ``n_edges`` within ``r_max_A``, ``isolated_sites`` (no neighbour within r_max), ``d_min_A`` and
    ``d_min_ratio`` (smallest distance over the sum of the two atomic radii, periodic images included)."""
    n = len(structure)
    vpa = float(structure.volume) / n if n else float("nan")
    out: dict[str, Any] = {"n_atoms": n, "volume_per_atom_A3": vpa,
                           "elements": sorted({el.symbol for el in structure.composition.elements})}
    lo, hi = SCREEN_VOLUME_PER_ATOM_A3
    if not (n and np.isfinite(vpa) and lo <= vpa <= hi):
        return out
    radii = np.array([_radius_A(site.specie.symbol) for site in structure])
    centre, neigh, _, dist = structure.get_neighbor_list(max(float(r_max_A), 1e-3))
    out["n_edges"] = int(len(centre))
    out["isolated_sites"] = int(n - len(np.unique(centre)))
    # nearest neighbours: search until every site has one (cells larger than r_max need a wider search)
    r = max(float(r_max_A), 2.0 * radii.max())
    while True:
        c, nb, _, d = structure.get_neighbor_list(r)
        if len(c) or r > 4.0 * np.cbrt(vpa) + 10.0:
            break
        r *= 2.0
    if len(c):
        ratio = d / (radii[c] + radii[nb])
        k = int(np.argmin(ratio))
        out.update(d_min_A=float(d.min()), d_min_ratio=float(ratio[k]), d_min_pair=(int(c[k]), int(nb[k])))
    return out


def guard_structure(structure: Any, r_max_A: float = 4.0) -> str | None:
    """Why ``betenet screen`` refuses a structure (``None``: accepted).  See the ``SCREEN_*`` constants."""
    n = len(structure)
    if n > SCREEN_MAX_ATOMS:
        return f"{n} atoms in the cell; at most {SCREEN_MAX_ATOMS} are screened (memory bound)"
    d = structure_descriptors(structure, r_max_A)
    vpa, (lo, hi) = d["volume_per_atom_A3"], SCREEN_VOLUME_PER_ATOM_A3
    if not np.isfinite(vpa) or vpa < lo:
        return f"volume per atom {vpa:.3g} Å^3 < {lo:g} Å^3: atoms overlap (cell too small or wrong units?)"
    if vpa > hi:
        return f"volume per atom {vpa:.3g} Å^3 > {hi:g} Å^3: mostly vacuum (a molecule or slab in a box), not a bulk crystal"
    if d["n_edges"] > SCREEN_MAX_EDGES:
        return f"{d['n_edges']} graph edges within r_max {r_max_A:g} Å; at most {SCREEN_MAX_EDGES} (memory bound)"
    if "d_min_ratio" in d and d["d_min_ratio"] < SCREEN_MIN_DISTANCE_FRACTION:
        i, j = d["d_min_pair"]
        return (f"atoms {i} ({structure[i].specie}) and {j} ({structure[j].specie}) are {d['d_min_A']:.3f} Å apart, "
                f"{d['d_min_ratio']:.2f} of the sum of their atomic radii (< {SCREEN_MIN_DISTANCE_FRACTION}): overlapping atoms")
    return None


@dataclass(frozen=True)
class TrainingDomain:
    """What the ensemble was trained on, for the applicability-domain flag of ``betenet screen``."""

    elements: frozenset
    volume_per_atom_A3: tuple[float, float]
    d_min_ratio: tuple[float, float]
    max_atoms: int
    n_materials: int
    isolated_in_training: bool = False  #: some training structure had an atom without a neighbour within r_max

    @classmethod
    def from_structures(cls, structures: Sequence[Any], r_max_A: float = 4.0) -> "TrainingDomain":
        if not structures:
            raise ValueError("no training structures")
        ds = [structure_descriptors(s, r_max_A) for s in structures]
        v = [d["volume_per_atom_A3"] for d in ds]
        r = [d["d_min_ratio"] for d in ds if "d_min_ratio" in d]
        return cls(frozenset(e for d in ds for e in d["elements"]), (min(v), max(v)),
                   (min(r), max(r)) if r else (0.0, float("inf")), max(d["n_atoms"] for d in ds), len(ds),
                   any(d.get("isolated_sites") for d in ds))

    def flags(self, structure: Any, r_max_A: float = 4.0) -> list[str]:
        """Reasons the structure is outside the training domain (empty: inside)."""
        d = structure_descriptors(structure, r_max_A)
        out = []
        unknown = sorted(set(d["elements"]) - self.elements)
        if unknown:
            out.append(f"element(s) {' '.join(unknown)} not in the {self.n_materials} training materials")
        v, (vlo, vhi) = d["volume_per_atom_A3"], self.volume_per_atom_A3
        if not (vlo / DOMAIN_VOLUME_FACTOR <= v <= vhi * DOMAIN_VOLUME_FACTOR):
            out.append(f"volume per atom {v:.1f} Å^3 outside the training range {vlo:.1f}–{vhi:.1f} Å^3")
        rlo, rhi = self.d_min_ratio
        if "d_min_ratio" in d and not (rlo / DOMAIN_DISTANCE_FACTOR <= d["d_min_ratio"] <= rhi * DOMAIN_DISTANCE_FACTOR):
            out.append(f"nearest-neighbour distance {d['d_min_ratio']:.2f}× the atomic radii, training {rlo:.2f}–{rhi:.2f}×")
        if d["n_atoms"] > DOMAIN_ATOMS_FACTOR * self.max_atoms:
            out.append(f"{d['n_atoms']} atoms per cell, training cells have at most {self.max_atoms}")
        if d.get("isolated_sites") and not self.isolated_in_training:
            out.append(f"{d['isolated_sites']} atom(s) without a neighbour within r_max {r_max_A:g} Å")
        return out


def training_domain(members: Sequence[Any], records_dir: Path | str) -> TrainingDomain:
    """The :class:`TrainingDomain` of an ensemble: the structures of every training material of its members
    (bootstrap sample ∪ out-of-bag), read from ``records_dir``.  ``FileNotFoundError`` naming the first
    missing record if the directory does not hold them."""
    from .records import load_record

    ids = sorted({m for mem in members for key in ("sample_ids", "oob_ids") for m in mem.metadata["bootstrap"][key]})
    d = Path(records_dir)
    missing = [m for m in ids if not (d / f"{m}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{d / (missing[0] + '.json')}: training record not found ({len(missing)} of {len(ids)} "
                                "missing); pass the records the ensemble was trained on with --records")
    return TrainingDomain.from_structures([load_record(d / f"{m}.json").structure for m in ids],
                                          float(getattr(members[0], "r_max_A", 4.0)))


@dataclass(frozen=True)
class SpreadCalibration:
    """How well the ensemble's T_c spread covers its out-of-bag errors, and the factor that calibrates it.

    On every training material left out of ≥ 2 members' bootstraps: the mean T_c of those members'
    predictions, their std σ, and the error against the material's target.  ``scale`` makes 68.3 % of
    |error| fall within ``scale``·σ (the coverage of ±1σ for a normal error); ``coverage_*`` are the
    fractions of materials whose |error| ≤ kσ before (``raw``) and after (``cal``) scaling."""

    scale: float
    n: int
    coverage_1sigma_raw: float
    coverage_2sigma_raw: float
    coverage_1sigma_cal: float
    coverage_2sigma_cal: float

    def describe(self) -> str:
        return (f"spread calibration on {self.n} out-of-bag materials: raw ±1σ/±2σ cover "
                f"{100 * self.coverage_1sigma_raw:.0f}/{100 * self.coverage_2sigma_raw:.0f} % of T_c errors "
                f"(normal: 68/95 %); σ scaled by {self.scale:.2f} -> "
                f"{100 * self.coverage_1sigma_cal:.0f}/{100 * self.coverage_2sigma_cal:.0f} %")


def oob_spread_calibration(member_dirs: Sequence[Path | str], *, mu_star: float = MU_STAR_DEFAULT,
                           min_members: int = 2) -> SpreadCalibration | None:
    """:class:`SpreadCalibration` from the members' ``oob.npz`` (their predictions of the materials left out
    of their bootstrap, with the targets); ``None`` when fewer than 3 materials are out of bag in
    ≥ ``min_members`` members (a small ensemble: the spread cannot be calibrated)."""
    from .physics import tc_allen_dynes_from_a2f

    preds: dict[str, list[float]] = {}
    truth: dict[str, float] = {}
    for d in member_dirs:
        with np.load(Path(d) / "oob.npz") as z:
            ids = [str(x) for x in z["ids"]]
            if not ids:
                continue
            tp = np.asarray(tc_allen_dynes_from_a2f(z["omega_meV"], z["pred_a2f"], mu_star), dtype=float).reshape(-1)
            tt = np.asarray(tc_allen_dynes_from_a2f(z["omega_meV"], z["target_a2f"], mu_star), dtype=float).reshape(-1)
        for m, p, t in zip(ids, tp, tt):
            preds.setdefault(m, []).append(float(p))
            truth[m] = float(t)
    keep = [m for m, p in preds.items() if len(p) >= min_members and np.std(p) > 0]
    if len(keep) < 3:
        return None
    err = np.array([abs(np.mean(preds[m]) - truth[m]) for m in keep])
    sig = np.array([np.std(preds[m]) for m in keep])
    z = err / sig
    scale = max(1.0, float(np.quantile(z, 0.683)))
    return SpreadCalibration(scale, len(keep), float(np.mean(z <= 1)), float(np.mean(z <= 2)),
                             float(np.mean(z <= scale)), float(np.mean(z <= 2 * scale)))


def screen_structures(members: Sequence[Any], structures: Sequence[tuple[Path, Any]], *, mu_star: float = MU_STAR_DEFAULT,
                      z: float = 1.0, predict=None, domain: TrainingDomain | None = None, spread_scale: float = 1.0,
                      r_max_A: float | None = None):
    """Predict every structure with the ensemble; rank by T_c of the mean α²F, flagged structures last.

    Returns ``(table, failures)``: a DataFrame with ``rank, file, formula, tc_K, tc_std_K, tc_std_cal_K,
    tc_lcb_K, lambda, lambda_std, omega_log_K, omega_2_K, in_domain, flags`` (T_c of the ensemble-mean α²F;
    spread = std of the members' T_c, ``tc_std_cal_K`` = ``spread_scale`` × it (see
    :func:`oob_spread_calibration`); LCB = mean of members' T_c − z·calibrated std), and
    ``[(path, reason)]`` for structures refused by :func:`guard_structure` or that the model could not
    process (isolated separately, so one bad structure does not sink the batch).  ``flags``: why a
    structure is outside ``domain`` (:meth:`TrainingDomain.flags`; "training domain unknown" when no
    domain is given); ``in_domain`` is False for flagged rows, and no flagged structure ranks above an
    unflagged one.  ``predict`` defaults to :func:`betenet.ensemble.predict_ensemble`.
    """
    import pandas as pd

    if not (np.isfinite(mu_star) and 0.0 <= mu_star < 1.0):
        raise ValueError(f"mu_star must be a finite number in [0, 1), got {mu_star!r}")
    if not (np.isfinite(z) and z >= 0):
        raise ValueError(f"z must be a finite number >= 0, got {z!r}")
    if not (np.isfinite(spread_scale) and spread_scale > 0):
        raise ValueError(f"spread_scale must be a finite number > 0, got {spread_scale!r}")
    if predict is None:
        from .ensemble import predict_ensemble as predict
    if r_max_A is None:
        r_max_A = float(getattr(members[0], "r_max_A", 4.0)) if len(members) else 4.0
    failures: list[tuple[Path, str]] = []
    accepted: list[tuple[Path, Any]] = []
    for f, s in structures:
        why = guard_structure(s, r_max_A)
        if why is None:
            accepted.append((f, s))
        else:
            failures.append((f, f"refused: {why}"))
    good: list[tuple[Path, Any]] = []
    arrays: list[np.ndarray] = []
    if accepted:
        try:
            a = np.asarray(predict(members, [s for _, s in accepted]))
            good, arrays = list(accepted), [a]
        except Exception:  # isolate the offending structure(s): predict one by one
            for f, s in accepted:
                try:
                    arrays.append(np.asarray(predict(members, [s])))
                    good.append((f, s))
                except Exception as exc:  # model/graph errors for a single structure are reported, not raised
                    failures.append((f, f"prediction failed ({type(exc).__name__}: {str(exc)[:200]})"))
    columns = ["rank", "file", "formula", "tc_K", "tc_std_K", "tc_std_cal_K", "tc_lcb_K", "lambda", "lambda_std",
               "omega_log_K", "omega_2_K", "in_domain", "flags"]
    if not good:
        return pd.DataFrame(columns=columns), failures
    a2f = np.concatenate(arrays, axis=1)
    e = ensemble_tc(a2f, mu_star=mu_star, z=z)
    pm, ps = e.properties_of_mean, e.properties_std
    bad = ~np.isfinite(pm["tc_K"])
    flags = [("; ".join(domain.flags(s, r_max_A)) if domain is not None else "training domain unknown") for _, s in good]
    std_cal = e.tc_std_K * spread_scale
    table = pd.DataFrame({
        "file": [str(f) for f, _ in good],
        "formula": [s.composition.reduced_formula for _, s in good],
        "tc_K": pm["tc_K"], "tc_std_K": e.tc_std_K, "tc_std_cal_K": std_cal, "tc_lcb_K": e.tc_mean_K - z * std_cal,
        "lambda": pm["lambda"], "lambda_std": ps["lambda"],
        "omega_log_K": pm["omega_log_K"], "omega_2_K": pm["omega_2_K"],
        "in_domain": [not fl for fl in flags], "flags": flags,
    })
    if bad.any():  # a NaN prediction is an error, never a number in the ranking
        for f in table.loc[bad, "file"]:
            failures.append((Path(f), "prediction is not finite (NaN α²F)"))
        table = table.loc[~bad]
    table = table.sort_values(["in_domain", "tc_K", "file"], ascending=[False, False, True], kind="mergesort").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[columns], failures


#: the figures moved to :mod:`betenet.plots.screening`; their old names still answer here (temporary)
__getattr__ = moved(__name__, "betenet.plots.screening",
                    ("plot_pr_curves", "plot_precision_recall_vs_threshold", "plot_confusion", "plot_screening"))
