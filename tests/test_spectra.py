"""The paper's smoothing + binning (SG 101/3 on a 0.1 meV grid -> 51 bins, clip) and DOS helpers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from betenet import constants as C
from betenet.physics import moments
from betenet.spectra import (
    FINE_GRID_MEV,
    bin_site_phdos,
    integrate,
    normalise_dos,
    resample,
    smooth_and_bin,
)

#: A DFT-like grid: 0.1 meV steps starting a few µeV above 0.25 meV, like the files of the paper.
DFT_GRID = 0.2500020894 + 0.1 * np.arange(1200)


def gaussian(w, centre, width):
    return np.exp(-0.5 * ((w - centre) / width) ** 2)


def raw_like_a2f(w):
    """Spiky α²F as it comes out of QE (peaks 0.6-1.5 meV wide), ∝ ω² at low ω."""
    peaks = 0.5 * gaussian(w, 8.0, 0.6) + 0.9 * gaussian(w, 14.0, 1.0) + 0.4 * gaussian(w, 31.0, 1.5)
    return peaks * (1 - np.exp(-((w / 3.0) ** 2)))


def test_grids():
    assert C.TARGET_GRID_MEV.shape == (51,)
    assert C.TARGET_GRID_MEV[0] == 0.25 and C.TARGET_GRID_MEV[-1] == pytest.approx(100.25)
    np.testing.assert_allclose(np.diff(FINE_GRID_MEV), C.FINE_GRID_STEP_MEV, rtol=1e-9)
    assert FINE_GRID_MEV[0] == pytest.approx(0.25) and FINE_GRID_MEV[-1] == pytest.approx(100.95)
    # Every target bin centre is a fine-grid node (every 20th point).
    np.testing.assert_allclose(FINE_GRID_MEV[::20][:51], C.TARGET_GRID_MEV, atol=1e-9)


def test_matches_a_direct_scipy_reference():
    """Step by step with plain NumPy/SciPy calls: resample (0 outside), SG(101, 3, interp), resample, clip."""
    w = np.arange(0.3, 95.0, 0.07)
    y = raw_like_a2f(w) - 0.02  # slightly negative baseline so clipping matters
    fine = np.interp(FINE_GRID_MEV, w, y, left=0.0, right=0.0)
    ref = np.clip(np.interp(C.TARGET_GRID_MEV, FINE_GRID_MEV, savgol_filter(fine, 101, 3, mode="interp")), 0, None)
    out = smooth_and_bin(w, y)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)
    assert np.sum(out == 0.0) >= 5  # the baseline was clipped somewhere


def test_identity_on_a_cubic():
    """Savitzky-Golay of order 3 reproduces any cubic exactly (grid nodes aligned with the fine grid)."""
    w = 0.25 + 0.05 * np.arange(2200)  # contains every fine-grid node
    cubic = lambda x: 2.0 + 0.3 * x - 4e-3 * x**2 + 2e-5 * x**3  # noqa: E731 - positive on [0, 110]
    np.testing.assert_allclose(smooth_and_bin(w, cubic(w)), cubic(C.TARGET_GRID_MEV), rtol=1e-9)


def test_nearly_identity_on_a_broad_spectrum():
    w = DFT_GRID
    broad = gaussian(w, 50.0, 15.0)
    out = smooth_and_bin(w, broad)
    np.testing.assert_allclose(out, gaussian(C.TARGET_GRID_MEV, 50.0, 15.0), atol=2e-4)


def test_smoothing_preserves_area_and_moments_of_a_smooth_spectrum():
    w = DFT_GRID
    raw = (0.9 * gaussian(w, 14.0, 3.0) + 0.4 * gaussian(w, 31.0, 5.0)) * (1 - np.exp(-((w / 5.0) ** 2)))
    binned = smooth_and_bin(w, raw)
    assert integrate(C.TARGET_GRID_MEV, binned) == pytest.approx(integrate(w, raw), rel=5e-3)
    m_raw, m_bin = moments(w, raw), moments(C.TARGET_GRID_MEV, binned)
    np.testing.assert_allclose(m_bin, m_raw, rtol=0.03)


def test_smoothing_of_a_spiky_spectrum_area_and_clipping():
    """Peaks 0.6-1.5 meV wide: the binned curve keeps the area before clipping (0.1 %); clipping the SG
    ringing adds a few per cent; the peaks are visibly broadened."""
    w = DFT_GRID
    raw = raw_like_a2f(w)
    fine = resample(FINE_GRID_MEV, w, raw)
    unclipped = resample(C.TARGET_GRID_MEV, FINE_GRID_MEV, savgol_filter(fine, C.SAVGOL_WINDOW, C.SAVGOL_ORDER))
    binned = smooth_and_bin(w, raw)
    area = integrate(w, raw)
    assert integrate(C.TARGET_GRID_MEV, unclipped) == pytest.approx(area, rel=1e-3)
    assert area < integrate(C.TARGET_GRID_MEV, binned) < 1.07 * area
    assert binned.max() < 0.8 * raw.max()


def test_clipping_of_negative_values():
    w = DFT_GRID
    y = gaussian(w, 40.0, 8.0) - 0.5 * gaussian(w, 80.0, 4.0)  # a negative lobe
    out = smooth_and_bin(w, y)
    assert np.all(out >= 0.0)
    near_lobe = np.abs(C.TARGET_GRID_MEV - 80.0) < 6.0
    assert np.all(out[near_lobe] == 0.0)
    assert out[20] == pytest.approx(gaussian(40.25, 40.0, 8.0), abs=3e-3)  # bin 20 is 40.25 meV


def test_values_outside_the_input_range_are_zero():
    w = np.arange(20.0, 60.0, 0.1)
    y = np.ones_like(w)
    out = smooth_and_bin(w, y)
    far = (C.TARGET_GRID_MEV < 20.0 - 5.1) | (C.TARGET_GRID_MEV > 60.0 + 5.1)  # beyond the half window (5 meV)
    assert np.all(out[far] == 0.0)
    inside = (C.TARGET_GRID_MEV > 26.0) & (C.TARGET_GRID_MEV < 54.0)
    np.testing.assert_allclose(out[inside], 1.0, atol=1e-9)


def test_grid_starting_microvolts_above_first_bin_covers_it():
    y = np.full(DFT_GRID.size, 3.0)
    fine = resample(FINE_GRID_MEV, DFT_GRID, y)
    assert fine[0] == 3.0  # 0.25 meV is 2 µeV below the first DFT point: within EDGE_TOLERANCE_MEV
    assert resample(np.array([0.2]), DFT_GRID, y)[0] == 0.0


def test_site_projected_and_batched_inputs():
    w = DFT_GRID
    sites = np.stack([raw_like_a2f(w), gaussian(w, 20.0, 4.0), np.zeros_like(w)])
    out = smooth_and_bin(w, sites)
    assert out.shape == (3, 51)
    for i in range(3):
        np.testing.assert_allclose(out[i], smooth_and_bin(w, sites[i]), rtol=1e-13, atol=1e-14)  # batched vs single SG: last-ulp differences
    assert np.all(out[2] == 0.0)
    stacked = smooth_and_bin(w, np.stack([sites, 2 * sites]))  # (2, 3, n) -> (2, 3, 51)
    assert stacked.shape == (2, 3, 51)
    np.testing.assert_allclose(stacked[1], 2 * out, rtol=1e-12)
    norm = bin_site_phdos(w, sites, normalise=True)
    np.testing.assert_allclose(integrate(C.TARGET_GRID_MEV, norm[:2]), 1.0, rtol=1e-12)
    assert np.all(norm[2] == 0.0)
    with pytest.raises(ValueError, match="n_sites, n_omega"):
        bin_site_phdos(w, sites[0])


def test_normalise_dos():
    w = np.linspace(0.0, 50.0, 501)
    dos = np.stack([gaussian(w, 20.0, 5.0), 3 * gaussian(w, 10.0, 2.0), np.zeros_like(w)])
    out = normalise_dos(w, dos, total=3.0)
    np.testing.assert_allclose(integrate(w, out[:2]), 3.0, rtol=1e-12)
    assert np.all(out[2] == 0.0)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="NaN"):
        smooth_and_bin(DFT_GRID, np.full(DFT_GRID.size, np.nan))
    with pytest.raises(ValueError, match="strictly increasing"):
        smooth_and_bin(DFT_GRID[::-1], np.ones(DFT_GRID.size))
    with pytest.raises(ValueError, match="points on the last axis"):
        smooth_and_bin(DFT_GRID, np.ones(DFT_GRID.size - 1))
