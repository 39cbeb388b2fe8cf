"""Figure of the pseudopotential phonon check (chapter 00): ph.x at a zone-boundary q against the density grid,
beside the frozen phonon of the same mode on the same k points (:func:`betenet.qe.pseudodojo_ecutrho.ecutrho_series`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["plot_ecutrho_drift"]


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
