"""Figures of notebook 05 (bootstrap ensembles): Fig. 4 a–i parity grid with ensemble error bars,
Fig. 4 j–k best/worst α²F with the ensemble mean ± std band, and the out-of-bag summary.

Every function returns a matplotlib ``Figure`` and changes no global state (no rcParams).
Inputs are :class:`betenet.ensemble.PredictionSet` s (``predictions/<variant>.npz``) and the
:func:`betenet.ensemble.oob_summary` frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from betenet.analysis import absolute_errors, best_worst, normalisation_bounds, normalised_errors
from betenet.metrics import PROPERTIES, PROPERTY_LABELS
from betenet.plots.metrics import plot_parity
from betenet.plots.style import VARIANT_COLORS

__all__ = ["plot_parity_grid", "select_best_worst", "plot_best_worst", "plot_oob_summary"]



def plot_parity_grid(prediction_sets: Sequence[Any], *, properties: Sequence[str] = PROPERTIES):
    """Fig. 4 a–i: one row per variant, one column per property; points = properties of the
    ensemble-mean α²F, error bars = std over members of each member's property; R²/MAE/RMSE in each panel."""
    import matplotlib.pyplot as plt

    sets = list(prediction_sets)
    if not sets:
        raise ValueError("plot_parity_grid() needs at least one PredictionSet")
    fig, axes = plt.subplots(len(sets), len(properties), figsize=(3.3 * len(properties), 3.3 * len(sets)),
                             constrained_layout=True, squeeze=False)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for i, ps in enumerate(sets):
        plot_parity(ps.reference, ps.predicted("of_mean"), properties=properties, y_err=ps.predicted("member_std"),
                    axes=axes[i], color=VARIANT_COLORS.get(ps.variant, "tab:blue"))
        n_m = ps.pred_a2f.shape[0]
        for j, (ax, p) in enumerate(zip(axes[i], properties)):
            ax.set_title(f"({letters[i * len(properties) + j]}) {ps.variant}: {PROPERTY_LABELS[p]}", fontsize=9)
            ax.set_ylabel(f"{ps.variant} ({n_m} members) {PROPERTY_LABELS[p]}")
    return fig


def select_best_worst(prediction_sets: Sequence[Any], k: int = 6, *, properties: Sequence[str] = PROPERTIES):
    """The ``k`` best and ``k`` worst test materials by the paper's normalised error ē (Fig. 4 inset),
    averaged over the given variants with common min–max bounds (:mod:`betenet.analysis`).  With fewer
    than ``2k`` materials, ``k`` shrinks to half of them (at least 1) so the two groups do not overlap.

    Returns ``(best_ids, worst_ids, errors)`` where ``errors`` is a DataFrame of ē per variant and
    their mean (``mean_error``), indexed by material id.
    """
    import pandas as pd

    sets = list(prediction_sets)
    ids = sets[0].ids
    for ps in sets[1:]:
        if ps.ids != ids:
            raise ValueError(f"prediction sets cover different materials ({sets[0].variant} vs {ps.variant})")
    abs_errs = [absolute_errors(ps.reference, ps.predicted("of_mean"), properties) for ps in sets]
    bounds = normalisation_bounds(*abs_errs)
    per = {ps.variant: normalised_errors(ps.reference, ps.predicted("of_mean"), properties=properties,
                                         bounds=bounds)["mean_error"] for ps in sets}
    errors = pd.DataFrame(per)
    errors["mean_error"] = errors.mean(axis=1)
    # with fewer than 2k test materials the two groups would overlap: split them in halves instead
    k_eff = min(int(k), max(1, len(errors) // 2))
    best, worst = best_worst(errors, k=k_eff, column="mean_error")
    return best, worst, errors


def plot_best_worst(
    prediction_sets: Sequence[Any],
    best_ids: Sequence[str],
    worst_ids: Sequence[str],
    *,
    records: Sequence[Any] | None = None,
    errors: Any = None,
):
    """Fig. 4 j–k: DFT α²F (51-bin target, black; raw DFT grey when ``records`` are given) and each
    variant's ensemble mean with a ±1 std band, for the best (top row) and worst (bottom row) materials."""
    import matplotlib.pyplot as plt

    sets = list(prediction_sets)
    rows = [("best", list(best_ids)), ("worst", list(worst_ids))]
    ncol = max(len(best_ids), len(worst_ids), 1)
    fig, axes = plt.subplots(2, ncol, figsize=(2.5 * ncol, 5.2), constrained_layout=True, squeeze=False, sharex=True)
    by_id = {r.material_id: r for r in records} if records is not None else {}
    summaries = {ps.variant: ps.summary() for ps in sets}
    for r, (label, ids) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r, c]
            if c >= len(ids):
                ax.set_visible(False)
                continue
            mid = ids[c]
            ref = sets[0]
            i = ref.ids.index(mid)
            omega = ref.omega_meV
            if mid in by_id:
                rec = by_id[mid]
                ax.plot(rec.a2f_omega_meV, rec.a2f, color="0.7", lw=0.7, label="DFT (raw)")
            ax.plot(omega, ref.target_a2f[i], color="k", lw=1.4, label="DFT (51 bins)")
            for ps in sets:
                s = summaries[ps.variant]
                j = ps.ids.index(mid)
                col = VARIANT_COLORS.get(ps.variant)
                ax.plot(omega, s.mean[j], color=col, lw=1.1, label=f"{ps.variant} mean")
                ax.fill_between(omega, np.clip(s.mean[j] - s.std[j], 0, None), s.mean[j] + s.std[j], color=col, alpha=0.25, lw=0)
            formula = by_id[mid].formula if mid in by_id else mid
            err = f"\nē = {float(errors.loc[mid, 'mean_error']):.2f}" if errors is not None and mid in errors.index else ""
            ax.set_title(f"{formula}{err}", fontsize=8)
            ax.set_xlim(0, float(omega[-1]))
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel(f"{'(j) six best' if r == 0 else '(k) six worst'}\nα²F(ω)", fontsize=8)
            if r == 1:
                ax.set_xlabel("ω (meV)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)
    return fig


def plot_oob_summary(oob, *, expected_fraction: float | None = None):
    """Out-of-bag validation per member: (left) OOB fraction (expected (1 − 1/n)^n dashed), (middle) OOB
    MSE of the chosen checkpoint on the 51-bin α²F, (right) epoch of the chosen checkpoint with its kind
    (modern = second descent, best_val = fallback), per variant."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), constrained_layout=True)
    variants = list(dict.fromkeys(oob["variant"]))
    width = 0.8 / max(1, len(variants))
    for v_i, v in enumerate(variants):
        d = oob[oob["variant"] == v]
        x = d["member"].to_numpy() + (v_i - (len(variants) - 1) / 2) * width
        col = VARIANT_COLORS.get(v)
        axes[0].plot(x, d["oob_fraction"], "o", color=col, label=v)
        axes[1].bar(x, d["oob_mse"], width=width, color=col, label=v)
        for kind, marker in (("modern", "o"), ("best_val", "x")):
            dd = d[d["checkpoint"] == kind]
            if dd.empty:
                continue
            xx = dd["member"].to_numpy() + (v_i - (len(variants) - 1) / 2) * width
            axes[2].plot(xx, dd["checkpoint_epoch"], marker, color=col, ls="none",
                         label=f"{v}: {kind} ({len(dd)})")
    if expected_fraction is not None:
        axes[0].axhline(expected_fraction, color="k", ls="--", lw=0.8, label=f"(1 − 1/n)^n = {expected_fraction:.3f}")
    axes[0].set_ylim(0, max(0.6, float(oob["oob_fraction"].max()) + 0.05) if len(oob) else 0.6)
    axes[0].set_ylabel("out-of-bag fraction")
    axes[1].set_ylabel("OOB MSE (51-bin α²F)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("epoch of the checkpoint used")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("member")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    return fig
