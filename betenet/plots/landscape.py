"""Figure of the loss-landscape chapter (notebook 04): the filter-normalised loss surfaces of :mod:`betenet.landscape`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from betenet.landscape import Landscape

__all__ = ["plot_landscapes"]


def plot_landscapes(landscapes: Mapping[str, Landscape], *, log: bool = True, levels: int = 20):
    """Contour (top row) and surface (bottom row) plots side by side, one column per landscape (Fig. 3 insets).

    ``log``: plot ``log10`` of the loss (the landscapes of the three regimes span decades).  The unperturbed
    weights (0, 0) are marked with a cross, the minimum with a dot.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    n = len(landscapes)
    if n == 0:
        raise ValueError("plot_landscapes: no landscapes given")
    fig = plt.figure(figsize=(4.2 * n, 7.6), constrained_layout=True)
    for k, (name, ls) in enumerate(landscapes.items()):
        Z = np.log10(ls.losses) if log else ls.losses
        A, B = np.meshgrid(ls.alphas, ls.betas, indexing="ij")
        ax = fig.add_subplot(2, n, k + 1)
        cs = ax.contourf(A, B, Z, levels=levels, cmap="viridis")
        ax.contour(A, B, Z, levels=levels, colors="k", linewidths=0.3)
        ax.plot(0, 0, "wx", ms=8, mew=2, label="trained weights")
        ax.plot(*ls.min_offset, "o", color="tab:red", ms=6, label="minimum")
        ax.set_title(f"{name}\n|offset| = {ls.min_distance:.3f}\ncurvature: fit {ls.curvature:.3g}, "
                     f"at (0,0) {ls.center_curvature:.3g}", fontsize=9)
        ax.set_xlabel("α (direction 1)")
        ax.set_ylabel("β (direction 2)")
        ax.set_aspect("equal")
        fig.colorbar(cs, ax=ax, shrink=0.8, label="log10 training loss" if log else "training loss")
        if k == 0:
            ax.legend(fontsize=7, loc="lower left")
        ax3 = fig.add_subplot(2, n, n + k + 1, projection="3d")
        ax3.plot_surface(A, B, Z, cmap="viridis", linewidth=0, antialiased=True)
        ax3.set_xlabel("α")
        ax3.set_ylabel("β")
        ax3.set_zlabel("log10 loss" if log else "loss")
    return fig
