"""Figure of the linear baseline (notebook 02): correlations of the baseline's features with the targets."""

from __future__ import annotations

import numpy as np

from betenet.baseline import FEATURE_LABELS
from betenet.metrics import PROPERTY_LABELS

__all__ = ["plot_feature_correlations"]


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
