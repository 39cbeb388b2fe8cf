"""Figure of the linear baseline (notebook 02): correlations of the baseline's features with the targets."""

from __future__ import annotations

import numpy as np

from betenet.baseline import FEATURE_LABELS
from betenet.metrics import PROPERTY_LABELS

__all__ = ["plot_feature_correlations", "plot_element_counts"]


def plot_feature_correlations(features, targets, *, split=None):
    """The paper's Fig. 2: λ vs eDOS(E_F); ω_log and ω₂ of α²F vs those of the coarse PhDOS.

    ``split`` (optional): mapping material id -> ``"train"``/``"test"`` to colour the points.
    Pearson r in each panel.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    pairs = [("edos_ef_per_eV", "lambda"), ("phdos_omega_log_K", "omega_log_K"), ("phdos_omega_2_K", "omega_2_K")]
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.4), constrained_layout=True)
    ids = list(features.index)
    y = targets.loc[ids]
    groups = {"all": ids} if split is None else {
        g: [m for m in ids if split.get(m) == g] for g in ("train", "test")
    }
    colors = {"all": "tab:blue", "train": "tab:blue", "test": "tab:orange"}
    for ax, (fx, ty) in zip(axes, pairs):
        for g, members in groups.items():
            if members:
                ax.scatter(features.loc[members, fx], y.loc[members, ty], s=14, alpha=0.75, color=colors[g], label=g)
        x, t = features[fx].to_numpy(float), y[ty].to_numpy(float)
        r = float(np.corrcoef(x, t)[0, 1]) if len(x) > 2 and np.std(x) > 0 and np.std(t) > 0 else float("nan")
        ax.text(0.04, 0.96, f"Pearson r = {r:.2f}\nn = {len(x)}", transform=ax.transAxes, va="top", fontsize=8)
        if fx != "edos_ef_per_eV":
            lo = float(min(x.min(), t.min()))
            hi = float(max(x.max(), t.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        ax.set_xlabel(FEATURE_LABELS[fx])
        ax.set_ylabel(f"α²F {PROPERTY_LABELS[ty]}")
    if split is not None:
        axes[0].legend(fontsize=8, loc="lower right")
    return fig


def plot_element_counts(counts, ax=None, test_fraction: float | None = 0.2):
    """Bar chart of train/test materials per element (Supplementary Fig. 4 style), with the test share.

    ``counts`` is the frame of :func:`element_counts`.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(counts) + 2), 3.6), constrained_layout=True)
    else:
        fig = ax.figure
    x = np.arange(len(counts))
    ax.bar(x, counts["n_train"], color="tab:blue", label="train")
    ax.bar(x, counts["n_test"], bottom=counts["n_train"], color="tab:orange", label="test")
    ax.set_xticks(x, counts["element"], rotation=90, fontsize=8)
    ax.set_ylabel("materials containing element")
    ax.set_xlim(-0.7, len(counts) - 0.3)
    ax2 = ax.twinx()
    ax2.plot(x, counts["test_share"], "k.", ms=5, label="test share")
    if test_fraction is not None:
        ax2.axhline(test_fraction, color="k", lw=0.8, ls="--")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("test share")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    return fig
