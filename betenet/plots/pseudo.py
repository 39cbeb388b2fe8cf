"""Figures of the pseudopotential checks (chapter 00): ph.x at a zone-boundary q against the density grid, beside
the frozen phonon of the same mode on the same k points (:func:`betenet.qe.pseudodojo_ecutrho.ecutrho_series`), and
the lattice constants against all-electron PBEsol and experiment (:func:`betenet.qe.pseudodojo_allelectron.eos_rows`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_ecutrho_drift", "plot_lattice_errors"]


def plot_ecutrho_drift(series: Sequence[dict[str, Any]]):
    """One line per saved series (element, ecutwfc): ph.x's highest mode at the zone-boundary q against ecutrho;
    a dashed line at the frozen phonon where the series has one.  A series that says where a withdrawn q came
    from (``q_source``: pw.x's rounded alat, 7e-6 off the zone boundary) is drawn dotted with crosses, without its
    frozen line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    if not series:
        ax.text(0.5, 0.5, "no ecutrho series saved (betenet pseudo dojo ecutrho-series)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    for i, d in enumerate(series):
        runs = sorted(d["runs"].values(), key=lambda r: r["ecutrho_Ry"])
        x = [r["ecutrho_Ry"] for r in runs]
        y = [max(r["freqs_meV"]) for r in runs]
        q = runs[0].get("q_label", "")
        color = f"C{i}"
        if d.get("q_source"):  # the withdrawn series: ph.x a hair off the zone boundary
            ax.plot(x, y, "x:", color=color, alpha=0.7,
                    label=f"{d['element']} near {q} (q 7e-6 off, withdrawn), ph.x, ecutwfc {d['ecutwfc_Ry']:g} Ry")
            continue
        ax.plot(x, y, "o-", color=color, label=f"{d['element']} at {q}, ph.x, ecutwfc {d['ecutwfc_Ry']:g} Ry")
        if d.get("frozen"):
            ax.axhline(d["frozen"]["freqs_meV"][0], color=color, ls="--", lw=1.0,
                       label=f"{d['element']} at {q}, frozen phonon (same k points)")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("density cutoff ecutrho (Ry)")
    ax.set_ylabel("zone-boundary phonon (meV)")
    ax.set_title("ph.x at a zone-boundary q against the density grid", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def plot_lattice_errors(rows: Sequence[dict[str, Any]], pw_tol_pct: float = 0.5):
    """Per element (``eos_rows``): the all-electron PBEsol lattice constant against experiment (the functional's
    error) and pw.x's against the all-electron one (the pseudopotential's), with the ±``pw_tol_pct`` band of the
    second; elements without an all-electron E(V) show pw.x against experiment, hatched."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    if not rows:
        ax.text(0.5, 0.5, "no E(V) in the PseudoDojo index", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    x = np.arange(len(rows))
    ae = [r["ae_vs_exp_pct"] for r in rows]
    pw = [r["pw_vs_ae_pct"] for r in rows]
    has = np.array([v is not None for v in ae])
    ax.axhspan(-pw_tol_pct, pw_tol_pct, color="C1", alpha=0.12, lw=0, label=f"±{pw_tol_pct:g} % (pw.x vs all-electron)")
    ax.bar(x[has] - 0.2, [v for v in ae if v is not None], 0.4, color="C0", label="all-electron PBEsol vs experiment")
    ax.bar(x[has] + 0.2, [v for v in pw if v is not None], 0.4, color="C1", label="pw.x (PseudoDojo) vs all-electron")
    if (~has).any():
        ax.bar(x[~has], [r["pw_vs_exp_pct"] for r, h in zip(rows, has) if not h], 0.4, color="none", edgecolor="0.4",
               hatch="//", label="pw.x vs experiment (no all-electron E(V) yet)")
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_xticks(x, [r["element"] for r in rows], fontsize=8)
    for tick, r in zip(ax.get_xticklabels(), rows):
        tick.set_color("C3" if r["status"] == "failed" else "black")
    ax.set_ylabel("lattice constant error (%)")
    ax.set_title("E(V): the functional's error and the pseudopotential's (failed elements in red)", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    return fig
