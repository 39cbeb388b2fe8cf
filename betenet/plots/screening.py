"""Figures of the screening chapter (notebook 06, Fig. 5): precision-recall curves, precision and recall
against the threshold, confusion matrices, and the two-step screening panel of a
:class:`betenet.screening.ScreeningReport`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from betenet.screening import PRCurve, ScreeningReport

__all__ = ["plot_pr_curves", "plot_precision_recall_vs_threshold", "plot_confusion", "plot_screening"]


def plot_pr_curves(curves: Mapping[str, PRCurve], *, markers: Mapping[str, float | None] | None = None, ax=None,
                   title: str | None = None):
    """Precision–recall curves (one per model/score), AP in the legend, the random selector's AP as a
    dashed line, and black markers at the chosen thresholds (``markers``: name -> threshold K)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 3.8), constrained_layout=True)
    else:
        fig = ax.figure
    prevalence = None
    for name, c in curves.items():
        # draw as a step curve from recall 0 (highest threshold) to recall 1
        r, p = c.recall[::-1], c.precision[::-1]
        ax.step(np.r_[0.0, r], np.r_[p[0], p], where="pre", label=f"{name} (AP = {c.average_precision:.2f})")
        prevalence = c.prevalence
        if markers and markers.get(name) is not None:
            pm, rm, _ = c.at(markers[name])
            ax.plot([rm], [pm], "ko", ms=6, zorder=5)
            ax.annotate(f"T_c ≥ {markers[name]:.1f} K", (rm, pm), textcoords="offset points", xytext=(5, -12), fontsize=7)
    if prevalence is not None:
        ax.axhline(prevalence, color="0.4", ls="--", lw=0.8, label=f"random (AP = {prevalence:.2f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="lower left")
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_precision_recall_vs_threshold(curve: PRCurve, *, marker: float | None = None, ax=None, title: str | None = None):
    """Precision and recall as functions of the predicted-T_c threshold, chosen threshold marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 3.4), constrained_layout=True)
    else:
        fig = ax.figure
    ax.step(curve.thresholds, curve.precision, where="post", label="precision")
    ax.step(curve.thresholds, curve.recall, where="post", label="recall")
    if marker is not None:
        ax.axvline(marker, color="k", lw=0.8)
    ax.set_xlabel("threshold on predicted T_c (K)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_confusion(cm, *, ax=None, title: str | None = None, labels: Sequence[str] = ("low T_c", "high T_c")):
    """2×2 confusion matrix with counts (rows DFT, columns predicted)."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    if ax is None:
        fig, ax = plt.subplots(figsize=(2.8, 2.6), constrained_layout=True)
    else:
        fig = ax.figure
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1, int(cm.max())))
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks([0, 1], [f"pred. {lab}" for lab in labels], fontsize=7)
    ax.set_yticks([0, 1], [f"DFT {lab}" for lab in labels], fontsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    return fig


def plot_screening(report: ScreeningReport, *, step1: str = "CSO", step2: str = "CPD", title: str | None = None):
    """Fig. 5 style: PR curves of the model scores (chosen thresholds marked), ensemble mean vs LCB
    scores, and confusion matrices at the chosen thresholds of ``step1`` and ``step2``."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12.5, 3.9), constrained_layout=True)
    gs = fig.add_gridspec(2, 4, width_ratios=[1.25, 1.25, 0.6, 0.6])
    ax_pr, ax_lcb = fig.add_subplot(gs[:, 0]), fig.add_subplot(gs[:, 1])
    n_pos = int((np.asarray(report.tc_true_K) >= report.threshold_K).sum())
    head = f"T_c ≥ {report.threshold_K:g} K {report.label}".strip() + f": {n_pos}/{len(report.tc_true_K)} positives"
    if n_pos == 0:
        for ax in (ax_pr, ax_lcb):
            ax.text(0.5, 0.5, "no DFT high-T_c materials in this set:\nprecision/recall undefined", ha="center", va="center")
            ax.axis("off")
        fig.suptitle(title or head)
        return fig
    thr = report.summary.set_index("score")["threshold_K"]
    models = [c for c in report.curves if not c.endswith("LCB")]
    marks = {m: (float(thr[m]) if m in (step1, step2) and np.isfinite(thr[m]) else None) for m in models}
    plot_pr_curves({m: report.curves[m] for m in models}, markers=marks, ax=ax_pr, title="models (score: T_c of prediction)")
    pairs = {}
    for m in models:
        if f"{m} LCB" in report.curves:
            pairs[f"{m} mean"] = report.curves[m]
            pairs[f"{m} LCB"] = report.curves[f"{m} LCB"]
    if pairs:
        plot_pr_curves(pairs, ax=ax_lcb, title="ensemble: T_c of mean α²F vs LCB (mean − z·std)")
    else:
        ax_lcb.axis("off")
    for k, m in enumerate((step1, step2)):
        ax = fig.add_subplot(gs[:, 2 + k])
        if m in report.curves and np.isfinite(thr.get(m, np.nan)):
            row = report.summary.set_index("score").loc[m]
            plot_confusion([[row.TN, row.FP], [row.FN, row.TP]], ax=ax, title=f"{m}: pred. T_c ≥ {thr[m]:.2f} K")
        else:
            ax.axis("off")
    fig.suptitle(title or head)
    return fig
