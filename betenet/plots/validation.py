"""Figure of the DFT-validation chapter (notebook 00): our records against published DFT and experiment.

Input is :func:`betenet.validation.compare`'s table; every function returns a matplotlib ``Figure``
and changes no global state.  Figures are saved with :func:`betenet.plots.style.save_figure`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["LEVEL_STYLE", "plot_validation_parity", "plot_ours_vs_paper"]

#: Marker style per accuracy level: the validated labels filled, the screening records open and grey.
LEVEL_STYLE: dict[str, dict[str, object]] = {
    "validated": {"marker": "o", "color": "tab:blue", "facecolors": "tab:blue"},
    "screening": {"marker": "s", "color": "0.45", "facecolors": "none"},
}


def _scatter(ax, x, y, level: str, label: str, yerr=None) -> None:
    style = LEVEL_STYLE.get(level, {"marker": "^", "color": "tab:red", "facecolors": "tab:red"})
    if yerr is not None and np.isfinite(yerr).any():
        ax.errorbar(x, y, yerr=np.nan_to_num(yerr), fmt="none", ecolor=style["color"], elinewidth=0.8, alpha=0.6)
    ax.scatter(x, y, marker=style["marker"], edgecolors=style["color"], facecolors=style["facecolors"], s=36,
               label=label, zorder=3)


def _annotate(ax, df: pd.DataFrame, x: str, y: str, min_value: float = 0.0) -> None:
    for _, r in df.iterrows():
        if max(r[x], r[y]) < min_value:
            continue
        ax.annotate(r["label"], (r[x], r[y]), textcoords="offset points", xytext=(4, 3), fontsize=7)


def plot_validation_parity(df: pd.DataFrame, *, lambda_rel_tol: float = 0.25, tc_threshold_K: float = 5.0,
                           levels: tuple[str, ...] = ("validated", "screening")):
    """(a) our λ against published DFT λ (band: ± ``lambda_rel_tol``); (b) our Allen–Dynes T_c against
    experiment, non-superconductors at T_c(exp) = 0 (×) with the ``tc_threshold_K`` line.

    Each level is drawn with its own marker (:data:`LEVEL_STYLE`) and its number of materials in the
    legend; a panel with nothing to show says so instead of drawing empty axes silently.
    """
    import matplotlib.pyplot as plt

    fig, (ax_l, ax_t) = plt.subplots(1, 2, figsize=(10.5, 4.6), constrained_layout=True)

    lam = df[df["lambda_dft"].notna()]
    top = max(1.0, float(np.nanmax(lam[["lambda", "lambda_dft"]].to_numpy())) * 1.15) if len(lam) else 1.0
    xs = np.linspace(0.0, top, 50)
    ax_l.fill_between(xs, xs * (1 - lambda_rel_tol), xs * (1 + lambda_rel_tol), color="tab:green", alpha=0.12,
                      label=f"±{lambda_rel_tol:.0%}")
    ax_l.plot(xs, xs, color="k", lw=0.8)
    for level in levels:
        d = lam[lam["level"] == level]
        if len(d):
            _scatter(ax_l, d["lambda_dft"], d["lambda"], level, f"{level} ({len(d)})", d["lambda_uncertainty"])
            _annotate(ax_l, d, "lambda_dft", "lambda")
    if lam.empty:
        ax_l.text(0.5, 0.5, "no material has both a record\nand a verified published DFT λ yet", ha="center",
                  va="center", transform=ax_l.transAxes, fontsize=9)
    ax_l.set(xlim=(0, top), ylim=(0, top), xlabel="published DFT λ", ylabel="this project's λ",
             title="(a) λ against published DFT")
    ax_l.legend(fontsize=8, loc="upper left")

    sc = df[(df["superconductor"] == True) & df["tc_exp_K"].notna()]  # noqa: E712
    ns = df[df["superconductor"] == False]  # noqa: E712
    shown = pd.concat([sc["tc_exp_K"], sc["tc_ad_K"], ns["tc_ad_K"]]).to_numpy(dtype=float)
    top_t = max(2.0 * tc_threshold_K, float(np.nanmax(shown)) * 1.1) if shown.size else 2.0 * tc_threshold_K
    diag = np.concatenate([np.linspace(0, 1, 20), np.geomspace(1, top_t, 60)])
    ax_t.plot(diag, diag, color="k", lw=0.8)
    ax_t.axhline(tc_threshold_K, color="tab:red", ls="--", lw=0.8, label=f"{tc_threshold_K:g} K threshold")
    for level in levels:
        d = sc[sc["level"] == level]
        if len(d):
            _scatter(ax_t, d["tc_exp_K"], d["tc_ad_K"], level, f"{level}: superconductors ({len(d)})")
            _annotate(ax_t, d, "tc_exp_K", "tc_ad_K", min_value=1.0)
        n = ns[ns["level"] == level]
        if len(n):
            style = LEVEL_STYLE.get(level, {"color": "tab:red"})
            ax_t.scatter(np.zeros(len(n)), n["tc_ad_K"], marker="x", color=style["color"], s=36, zorder=3,
                         label=f"{level}: not superconducting ({len(n)})")
            _annotate(ax_t, n.assign(tc_exp_K=0.0), "tc_exp_K", "tc_ad_K", min_value=1.0)
    if sc.empty and ns.empty:
        ax_t.text(0.5, 0.5, "no reference material has a record yet", ha="center", va="center",
                  transform=ax_t.transAxes, fontsize=9)
    # linear below 1 K, logarithmic above: the elements' sub-kelvin T_c and MgB2's 39 K on one plot
    ax_t.set_xscale("symlog", linthresh=1.0, linscale=0.6)
    ax_t.set_yscale("symlog", linthresh=1.0, linscale=0.6)
    ax_t.set(xlim=(0, top_t), ylim=(0, top_t), xlabel="experimental $T_c$ (K; linear below 1 K)",
             ylabel="Allen–Dynes $T_c$ of our α²F (K)", title="(b) $T_c$ against experiment (labels above 1 K)")
    ax_t.legend(fontsize=8, loc="upper left")
    return fig


def plot_ours_vs_paper(df: pd.DataFrame, *, levels: tuple[str, ...] = ("validated", "screening")):
    """Our λ, ω_log and ω₂ against the paper's for the materials both computed
    (:func:`betenet.validation.ours_vs_paper`), one marker per accuracy level; says so when none is shared."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.0), constrained_layout=True)
    for ax, (name, label) in zip(axes, (("lambda", "λ"), ("omega_log_K", "ω_log (K)"), ("omega_2_K", "ω₂ (K)"))):
        x, y = f"{name}_paper", f"{name}_ours"
        d_all = df.dropna(subset=[x, y]) if len(df) else df
        if d_all.empty:
            ax.text(0.5, 0.5, "no material computed by both\n(needs the paper's database.json)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9)
        else:
            top = float(np.nanmax(d_all[[x, y]].to_numpy())) * 1.1
            ax.plot([0, top], [0, top], color="k", lw=0.8)
            for level in levels:
                d = d_all[d_all["level"] == level]
                if len(d):
                    _scatter(ax, d[x], d[y], level, f"{level} ({len(d)})")
            ax.legend(fontsize=8)
        ax.set_xlabel(f"paper's {label}")
        ax.set_ylabel(f"ours {label}")
    return fig
