"""Moved to :mod:`betenet.plots.validation` (figures of notebook 00); this module only re-exports them for
callers of the old path."""

from betenet.plots.validation import LEVEL_STYLE, plot_ours_vs_paper, plot_validation_parity

__all__ = ["LEVEL_STYLE", "plot_validation_parity", "plot_ours_vs_paper"]
