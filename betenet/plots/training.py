"""Figures of the double-descent chapter (notebook 03): training curves with the detected regimes, and the
α²F and parity of the regime checkpoints (:mod:`betenet.double_descent`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from betenet.constants import TARGET_GRID_MEV
from betenet.dataset import target_a2f
from betenet.metrics import PROPERTIES, derived_properties
from betenet.plots.metrics import plot_parity
from betenet.regimes import REGIMES
from betenet.train import TrainResult

__all__ = ["REGIME_COLORS", "plot_training_curves", "plot_regime_a2f", "plot_regime_parity"]

REGIME_COLORS = {"classical": "tab:blue", "critical": "tab:red", "modern": "tab:green", "best": "tab:purple",
                 "final": "tab:gray"}


def _regime_spans(reg, n_epochs: int) -> list[tuple[str, float, float]]:
    e = {r: reg.epoch(r) for r in REGIMES}
    if e["classical"] is None:
        return []
    if e["critical"] is None:  # only a first minimum: shade up to where the rise was confirmed, nothing after
        return [("classical", 0, reg.rise_epoch if reg.rise_epoch is not None else e["classical"])]
    a = (e["classical"] + e["critical"]) / 2
    b = (e["critical"] + e["modern"]) / 2 if e["modern"] is not None else n_epochs - 1
    return [("classical", 0, a), ("critical", a, b), ("modern", b, n_epochs - 1)]


def plot_training_curves(result: TrainResult, *, ax=None, title: str | None = None):
    """Training and validation loss per epoch (log scale) with the regimes marked (paper Fig. 3a)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.0), constrained_layout=True)
    else:
        fig = ax.figure
    h = result.history
    reg = result.regimes
    ax.plot(h["epoch"], h["train_loss"], color="k", lw=1.0, label="training loss")
    ax.plot(h["epoch"], h["val_loss"], color="tab:orange", lw=0.6, alpha=0.5, label="validation loss")
    ax.plot(h["epoch"], h["val_smoothed"], color="tab:orange", lw=1.8, label=f"validation (running median, {reg.window} ep.)")
    for name, lo, hi in _regime_spans(reg, len(h)):
        ax.axvspan(lo, hi, color=REGIME_COLORS[name], alpha=0.08, lw=0)
    for name in REGIMES:
        e = reg.epoch(name)
        if e is not None:
            ax.axvline(e, color=REGIME_COLORS[name], ls="--", lw=1.0)
            ax.plot(e, h["val_smoothed"].iloc[e], "o", color=REGIME_COLORS[name], ms=7, label=f"{name} (epoch {e})")
    if result.best_epoch >= 0:
        ax.plot(result.best_epoch, h["val_loss"].iloc[result.best_epoch], "*", color=REGIME_COLORS["best"], ms=10,
                label=f"lowest val loss (epoch {result.best_epoch})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE of the 51-bin α²F")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"{result.variant}: {len(result.train_ids)} train / {len(result.val_ids)} validation materials",
                 fontsize=10)
    return fig


def plot_regime_a2f(predictions: Mapping[str, Mapping[str, Any]], records: Sequence[Any], ids: Sequence[str], *,
                    n_examples: int = 3):
    """α²F of a few test materials: smoothed 51-bin DFT target vs each checkpoint's prediction (Fig. 3b–d style).

    The examples are the materials with the lowest, median and highest DFT λ among ``ids``.
    """
    import matplotlib.pyplot as plt

    by_id = {r.material_id: r for r in records}
    targets = np.stack([target_a2f(by_id[m]) for m in ids])
    lam = np.asarray(derived_properties(targets)["lambda"], dtype=float)
    order = np.argsort(lam)
    picks = sorted({int(order[int(round(q * (len(order) - 1)))]) for q in np.linspace(0, 1, max(1, n_examples))})
    fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 3.2), constrained_layout=True, squeeze=False)
    for ax, i in zip(axes[0], picks):
        ax.fill_between(TARGET_GRID_MEV, targets[i], color="0.8", label="DFT (smoothed, 51 bins)")
        for name, pred in predictions.items():
            ax.plot(TARGET_GRID_MEV, pred["a2f"][i], color=REGIME_COLORS.get(name, None), lw=1.3, label=name)
        ax.set_title(f"{ids[i]} (DFT λ = {lam[i]:.2f})", fontsize=9)
        ax.set_xlabel("ω (meV)")
        ax.set_xlim(0, TARGET_GRID_MEV[-1])
    axes[0][0].set_ylabel("α²F(ω)")
    axes[0][0].legend(fontsize=7)
    return fig


def plot_regime_parity(predictions: Mapping[str, Mapping[str, Any]], reference: Any, *,
                       properties: Sequence[str] | None = None):
    """Parity plots: one row per checkpoint, one column per property, R²/MAE/RMSE in each panel (Fig. 3e–g)."""
    import matplotlib.pyplot as plt

    props = list(properties or PROPERTIES)
    names = list(predictions)
    fig, axes = plt.subplots(len(names), len(props), figsize=(3.2 * len(props), 3.1 * len(names)),
                             constrained_layout=True, squeeze=False)
    for row, name in zip(axes, names):
        pred = predictions[name]["properties"]
        plot_parity(reference.loc[list(pred.index)], pred, properties=props, axes=row,
                    color=REGIME_COLORS.get(name, "tab:blue"))
        row[0].set_ylabel(f"{name} (epoch {predictions[name]['epoch']})\npredicted {row[0].get_ylabel()[10:]}")
    return fig
