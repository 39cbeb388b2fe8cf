"""Parity figure of predicted against DFT λ, ω_log, ω₂ (notebook 02 and others)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from betenet.metrics import PROPERTIES, PROPERTY_LABELS, property_column, property_metrics

__all__ = ["plot_parity"]


def plot_parity(
    y_true: Mapping[str, Any],
    y_pred: Mapping[str, Any],
    *,
    properties: Sequence[str] = PROPERTIES,
    y_err: Mapping[str, Any] | None = None,
    title: str | None = None,
    axes=None,
    color: str = "tab:blue",
):
    """Parity plots (DFT vs predicted) for ``properties`` with R²/MAE/RMSE in each panel (Fig. 4a–i style).

    ``y_err`` (optional): error bars (e.g. ensemble std) per property.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, len(properties), figsize=(3.3 * len(properties), 3.3), constrained_layout=True)
    else:
        fig = np.ravel(axes)[0].figure
    axes = np.ravel(axes)
    for ax, p in zip(axes, properties):
        t, q = property_column(y_true, p), property_column(y_pred, p)
        s = property_metrics(t, q, name=p)
        err = None if y_err is None or p not in y_err else property_column(y_err, p)
        ax.errorbar(t, q, yerr=err, fmt="o", ms=3.5, color=color, alpha=0.75, elinewidth=0.7, capsize=0)
        lo = float(min(t.min(), q.min(), 0.0))
        hi = float(max(t.max(), q.max())) * 1.05 or 1.0
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(f"DFT {PROPERTY_LABELS[p]}")
        ax.set_ylabel(f"predicted {PROPERTY_LABELS[p]}")
        fmt = ".2f" if p == "lambda" else ".1f"
        ax.text(
            0.04, 0.96, f"R² = {s['R2']:.2f}\nMAE = {s['MAE']:{fmt}}\nRMSE = {s['RMSE']:{fmt}}",
            transform=ax.transAxes, va="top", fontsize=8,
        )
    if title:
        fig.suptitle(title)
    return fig
