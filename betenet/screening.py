"""High-T_c screening with predicted α²F (Sec. II.3, Fig. 5) and the ``betenet screen`` command.

Definitions
-----------
* T_c of a material: Allen–Dynes T_c (μ* = ``constants.MU_STAR_DEFAULT``, 0.1 as the paper) of the
  DFT α²F (truth) or of the predicted α²F.  For an ensemble the prediction is the **mean α²F** over
  members (the paper's BETE-NET prediction); its T_c is the screening score.
* A material is *high-T_c* if its DFT T_c ≥ ``constants.HIGH_TC_THRESHOLD_K`` (5 K, the paper).  With a small
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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import ensemble
from .config import resolve_profile
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
    thr = positive_threshold(tc_true_K, tc_threshold_K=HIGH_TC_THRESHOLD_K, min_positives=cfg.min_positives,
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
