"""Smoothing and binning of spectra onto the paper's 51-point learning grid (Methods IV.2).

:func:`smooth_and_bin` does, in this order, exactly what the paper describes ("we applied a
Savitzky-Golay filter of window length 101 and polynomial order 3 and interpolated the smoothed
α²F onto 51 points over 0.25-100.25 meV"; the same for the site-projected PhDOS):

1. **Resample** the input (any strictly increasing grid, meV) by linear interpolation onto the fine grid
   :data:`FINE_GRID_MEV`: 0.25, 0.35, ..., 100.95 meV (step ``FINE_GRID_STEP_MEV`` = 0.1 meV, the
   resolution of the DFT files; it starts at the first target bin and extends 0.7 meV beyond the last
   one).  Fine-grid points outside the input range are set to **0** (a spectrum is zero where it was
   not computed; a grid that starts a few µeV above 0.25 meV, as the DFT files do, is treated as
   covering it: points within ``EDGE_TOLERANCE_MEV`` of an end take the end value).
2. **Smooth** with ``scipy.signal.savgol_filter(window_length=SAVGOL_WINDOW=101, polyorder=SAVGOL_ORDER=3,
   mode="interp")`` along the frequency axis (101 points = 10 meV; near the ends the filter fits one
   cubic to the first/last 101 points, SciPy's ``interp`` mode).
3. **Interpolate** the smoothed curve linearly onto :data:`betenet.constants.TARGET_GRID_MEV`
   (51 bin centres 0.25 ... 100.25 meV, 2 meV apart; they coincide with fine-grid nodes).
4. **Clip** negative values (Savitzky-Golay ringing, and the negative interpolation lobes of QE's α²F
   that the records keep) to 0.  This is the only place α²F is clipped: record moments (λ, ω_log, ω₂)
   are those of the unclipped α²F, which equal QE's own mode sum (:mod:`betenet.qe.labels`).

Caveat (a property of the paper's procedure, kept here on purpose): with ``mode="interp"`` the first
and last 50 fine points are taken from one cubic fitted to the first/last 101 points.  A sharp peak below
~10 meV therefore leaks into the 0.25 meV bin, and because λ weights α²F/ω that bin can dominate λ and
ω_log computed *from the 51-bin spectrum* (a raw α²F with λ = 0.61 and a 0.6 meV-wide peak at 8 meV gives
λ = 1.56 after binning).  For smooth spectra the moments survive binning to ~1 % (see
``tests/test_spectra.py``); compare moments of raw α²F where the low-frequency part matters.

Works on a single spectrum ``(n_omega,)`` or a stack ``(..., n_omega)`` such as a site-projected DOS
``(n_sites, n_omega)``; the grid is shared by all rows.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from .constants import FINE_GRID_STEP_MEV, SAVGOL_ORDER, SAVGOL_WINDOW, TARGET_GRID_MEV

__all__ = [
    "FINE_GRID_MEV",
    "EDGE_TOLERANCE_MEV",
    "resample",
    "smooth_and_bin",
    "bin_site_phdos",
    "normalise_dos",
    "integrate",
]

#: Extra fine-grid points beyond the last target bin (0.7 meV, so the fine grid is 0.25 ... 100.95 meV).
_FINE_GRID_EXTRA_POINTS = 7
#: The 0.1 meV grid on which the Savitzky-Golay filter runs: 0.25, 0.35, ..., 100.95 meV (1008 points).
FINE_GRID_MEV: np.ndarray = TARGET_GRID_MEV[0] + FINE_GRID_STEP_MEV * np.arange(
    int(round((TARGET_GRID_MEV[-1] - TARGET_GRID_MEV[0]) / FINE_GRID_STEP_MEV)) + 1 + _FINE_GRID_EXTRA_POINTS
)
FINE_GRID_MEV.setflags(write=False)
#: Input grids that miss a fine-grid point by less than this (meV) still cover it (end value used).
EDGE_TOLERANCE_MEV: float = 1e-3


def _check_grid(x: np.ndarray, name: str) -> None:
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"{name} must be a 1-D grid with >= 2 points, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN/inf")
    if not np.all(np.diff(x) > 0):
        i = int(np.argmax(np.diff(x) <= 0))
        raise ValueError(f"{name} must be strictly increasing (index {i}: {x[i]} -> {x[i + 1]})")


def resample(x_new, x, values, *, edge_tolerance: float = EDGE_TOLERANCE_MEV) -> np.ndarray:
    """Linear interpolation of ``values`` (..., n) from grid ``x`` (n,) onto ``x_new`` (m,); 0 outside ``x``.

    Points of ``x_new`` within ``edge_tolerance`` outside ``[x[0], x[-1]]`` take the end values.
    """
    x = np.asarray(x, dtype=float)
    x_new = np.asarray(x_new, dtype=float)
    y = np.asarray(values, dtype=float)
    _check_grid(x, "omega_meV")
    if y.shape[-1] != x.size:
        raise ValueError(f"values have {y.shape[-1]} points on the last axis, the grid has {x.size}")
    xq = np.clip(x_new, x[0], x[-1])
    inside = (x_new >= x[0] - edge_tolerance) & (x_new <= x[-1] + edge_tolerance)
    j = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, x.size - 2)
    t = (xq - x[j]) / (x[j + 1] - x[j])
    out = y[..., j] * (1.0 - t) + y[..., j + 1] * t
    return np.where(inside, out, 0.0)


def smooth_and_bin(omega_meV, values) -> np.ndarray:
    """The paper's target/attribute preprocessing: 0.1 meV resample -> SG(101, 3) -> 51 bins -> clip ≥ 0.

    Parameters
    ----------
    omega_meV: strictly increasing frequency grid (meV) of the input, shape ``(n_omega,)``.
    values: spectrum on that grid, shape ``(n_omega,)`` or ``(..., n_omega)`` (e.g. ``(n_sites, n_omega)``).

    Returns
    -------
    Array of shape ``values.shape[:-1] + (51,)`` on :data:`betenet.constants.TARGET_GRID_MEV`.
    """
    y = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError("values contain NaN/inf")
    fine = resample(FINE_GRID_MEV, omega_meV, y)
    smooth = savgol_filter(fine, window_length=SAVGOL_WINDOW, polyorder=SAVGOL_ORDER, axis=-1, mode="interp")
    binned = resample(TARGET_GRID_MEV, FINE_GRID_MEV, smooth)
    return np.clip(binned, 0.0, None)


def bin_site_phdos(omega_meV, site_dos, *, normalise: bool = False) -> np.ndarray:
    """Site-projected PhDOS ``(n_sites, n_omega)`` -> ``(n_sites, 51)`` node attributes (CPD/FPD variants).

    Same procedure as :func:`smooth_and_bin`; with ``normalise=True`` each site's binned DOS is scaled
    to unit area on the 51-point grid (rows that are identically zero stay zero).
    """
    site = np.asarray(site_dos, dtype=float)
    if site.ndim != 2:
        raise ValueError(f"site_dos must have shape (n_sites, n_omega), got {site.shape}")
    out = smooth_and_bin(omega_meV, site)
    return normalise_dos(TARGET_GRID_MEV, out) if normalise else out


def integrate(omega_meV, values) -> np.ndarray | float:
    """Trapezoidal ∫ values dω along the last axis (the area of a DOS or of α²F)."""
    area = np.trapezoid(np.asarray(values, dtype=float), np.asarray(omega_meV, dtype=float), axis=-1)
    return float(area) if np.ndim(area) == 0 else area


def normalise_dos(omega_meV, dos, total: float = 1.0) -> np.ndarray:
    """Scale ``dos`` (..., n_omega) so that each row integrates (trapezoid) to ``total``; zero rows stay zero."""
    y = np.asarray(dos, dtype=float)
    area = np.asarray(integrate(omega_meV, y))[..., None]
    safe = np.where(area != 0, area, 1.0)
    return np.where(area != 0, y * (total / safe), 0.0)
