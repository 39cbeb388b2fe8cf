"""Moved to :mod:`betenet.plots.ensemble` (figures of notebook 05) and :mod:`betenet.plots.style`
(:func:`save_figure`); this module only re-exports them for callers of the old path."""

from betenet.plots.ensemble import plot_best_worst, plot_oob_summary, plot_parity_grid, select_best_worst
from betenet.plots.style import VARIANT_COLORS, save_figure

__all__ = ["VARIANT_COLORS", "plot_parity_grid", "select_best_worst", "plot_best_worst", "plot_oob_summary", "save_figure"]
