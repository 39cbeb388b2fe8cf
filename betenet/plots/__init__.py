"""Figures: every matplotlib use of the package, one module per subject.

- :mod:`~betenet.plots.style`: :func:`~betenet.plots.style.save_figure` (the one way a figure is written) and colours;
- :mod:`~betenet.plots.validation` (notebook 00), :mod:`~betenet.plots.dataset` (01), :mod:`~betenet.plots.baseline` and
  :mod:`~betenet.plots.metrics` (02), :mod:`~betenet.plots.training` (03), :mod:`~betenet.plots.landscape` (04),
  :mod:`~betenet.plots.ensemble` (05), :mod:`~betenet.plots.analysis` and :mod:`~betenet.plots.screening` (06).

Every function returns a matplotlib ``Figure`` and changes no global state; matplotlib is imported inside the
functions, so importing these modules stays cheap.  The library modules (:mod:`betenet.analysis`, …) never
import matplotlib and have no ``plot_*`` of their own: figures are drawn only from here."""
