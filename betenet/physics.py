"""Moments of the Eliashberg function α²F(ω) and the McMillan / Allen–Dynes critical temperature.

Definitions (P. B. Allen and R. C. Dynes, Phys. Rev. B 12, 905 (1975); the paper's Sec. II.1)::

    λ      = 2 ∫ α²F(ω) / ω dω
    ω_log  = exp[ (2/λ) ∫ ln(ω) α²F(ω) / ω dω ]
    ω₂     = √[ (2/λ) ∫ ω α²F(ω) dω ]            (often written ω̄₂ = <ω²>^{1/2})

Frequencies come in **meV**; ``omega_log_K`` and ``omega_2_K`` are returned in **kelvin**
(``ω[K] = ω[meV] · K_PER_MEV``, i.e. divided by k_B), as the paper reports them.  ω_log is computed
from ln(ω/1 meV), so the unit inside the logarithm is irrelevant once converted.

Numerics
--------
* Integrals are trapezoidal on the grid given (any grid, uniform or not, strictly increasing).
  A single-bin spike of height ``A/Δω`` at ``ω_E`` is therefore an *exact* Einstein δ-peak of area A:
  λ = 2A/ω_E and ω_log = ω₂ = ω_E to machine precision.
* Points with ω ≤ 0 contribute nothing: the integrands α²F/ω and ln ω · α²F/ω vanish as ω → 0 for a
  physical α²F ∝ ω² (and imaginary modes, stored at ω < 0 by some codes, are not part of α²F).
* Everything broadcasts over the leading axes of ``a2f`` (shape ``(..., n_omega)``), so an ensemble of
  predictions ``(n_models, n_materials, 51)`` is evaluated in one call.  ``omega_meV`` is ``(n_omega,)``
  or broadcastable to ``a2f``.
* Where λ ≤ 0 (e.g. an all-zero prediction), ω_log and ω₂ are undefined: they are returned as **NaN**
  (silently, no RuntimeWarning).  The T_c functions return **0 K** there, whatever ω_log is.

T_c formulas
------------
McMillan's formula (W. L. McMillan, Phys. Rev. 167, 331 (1968)) in the Allen–Dynes form (prefactor
ω_log/1.2 instead of Θ_D/1.45)::

    T_c = ω_log/1.2 · exp[ -1.04 (1+λ) / (λ - μ*(1 + 0.62 λ)) ]

Allen–Dynes multiplies it by the strong-coupling (f₁) and spectral-shape (f₂) corrections::

    f₁ = [1 + (λ/Λ₁)^{3/2}]^{1/3},               Λ₁ = 2.46 (1 + 3.8 μ*)
    f₂ = 1 + (ω₂/ω_log - 1) λ² / (λ² + Λ₂²),     Λ₂ = 1.82 (1 + 6.3 μ*) (ω₂/ω_log)

Both return 0 where the denominator λ - μ*(1 + 0.62 λ) ≤ 0 (no superconductivity in this model).
μ* defaults to :data:`betenet.constants.MU_STAR_DEFAULT` (0.1, as in the paper).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .constants import K_PER_MEV, MU_STAR_DEFAULT

__all__ = [
    "Moments",
    "lambda_from_a2f",
    "omega_log_K",
    "omega_2_K",
    "moments",
    "mcmillan_tc_K",
    "allen_dynes_tc_K",
    "allen_dynes_f1",
    "allen_dynes_f2",
    "tc_allen_dynes_from_a2f",
    "meV_to_K",
    "K_to_meV",
]


class Moments(NamedTuple):
    """λ (dimensionless), ω_log and ω₂ (K) of α²F; floats for one spectrum, arrays for a batch."""

    lambda_: np.ndarray | float
    omega_log_K: np.ndarray | float
    omega_2_K: np.ndarray | float


def meV_to_K(x_meV):
    """Energy in meV -> temperature in K (divide by k_B)."""
    return np.asarray(x_meV, dtype=float) * K_PER_MEV


def K_to_meV(x_K):
    """Temperature in K -> energy in meV (multiply by k_B)."""
    return np.asarray(x_K, dtype=float) / K_PER_MEV


def _scalar_or_array(x: np.ndarray):
    return float(x) if np.ndim(x) == 0 else x


def _prepare(omega_meV, a2f) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (ω, α²F, mask ω>0) as float arrays broadcast to a common shape (..., n_omega)."""
    w = np.asarray(omega_meV, dtype=float)
    y = np.asarray(a2f, dtype=float)
    if w.ndim == 0 or y.ndim == 0:
        raise ValueError("omega_meV and a2f must be arrays with the frequency axis last")
    if w.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"frequency axis mismatch: omega_meV has {w.shape[-1]} points, a2f has {y.shape[-1]} (shape {y.shape})"
        )
    if w.shape[-1] < 2:
        raise ValueError(f"need at least 2 frequency points, got {w.shape[-1]}")
    if w.ndim == 1 and not np.all(np.diff(w) > 0):
        raise ValueError("omega_meV must be strictly increasing")
    w, y = np.broadcast_arrays(w, y)
    return w, y, w > 0


def _integrals(omega_meV, a2f):
    """The three integrals I₋₁ = ∫α²F/ω, I_log = ∫ln ω α²F/ω, I₁ = ∫ω α²F (trapezoid, ω in meV)."""
    w, y, pos = _prepare(omega_meV, a2f)
    safe_w = np.where(pos, w, 1.0)
    over_w = np.where(pos, y / safe_w, 0.0)
    i_m1 = np.trapezoid(over_w, w, axis=-1)
    i_log = np.trapezoid(over_w * np.log(safe_w), w, axis=-1)
    i_1 = np.trapezoid(np.where(pos, y * w, 0.0), w, axis=-1)
    return i_m1, i_log, i_1


def _moments_from_integrals(i_m1, i_log, i_1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lam = 2.0 * i_m1
    ok = lam > 0
    safe_lam = np.where(ok, lam, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        wlog_meV = np.where(ok, np.exp(2.0 * i_log / safe_lam), np.nan)
        w2_sq = 2.0 * i_1 / safe_lam
        w2_meV = np.where(ok & (w2_sq >= 0), np.sqrt(np.abs(w2_sq)), np.nan)
    return lam, wlog_meV * K_PER_MEV, w2_meV * K_PER_MEV


def lambda_from_a2f(omega_meV, a2f):
    """Electron-phonon coupling λ = 2∫α²F(ω)/ω dω (dimensionless); broadcasts over leading axes."""
    i_m1, _, _ = _integrals(omega_meV, a2f)
    return _scalar_or_array(2.0 * i_m1)


def omega_log_K(omega_meV, a2f):
    """Logarithmic moment ω_log = exp[(2/λ)∫ln ω α²F/ω dω] in K (NaN where λ ≤ 0)."""
    return _scalar_or_array(_moments_from_integrals(*_integrals(omega_meV, a2f))[1])


def omega_2_K(omega_meV, a2f):
    """Second moment ω₂ = √[(2/λ)∫ω α²F dω] in K (NaN where λ ≤ 0)."""
    return _scalar_or_array(_moments_from_integrals(*_integrals(omega_meV, a2f))[2])


def moments(omega_meV, a2f) -> Moments:
    """λ, ω_log (K), ω₂ (K) in one pass (floats for a 1-D α²F, arrays of shape ``a2f.shape[:-1]`` otherwise)."""
    lam, wlog, w2 = _moments_from_integrals(*_integrals(omega_meV, a2f))
    return Moments(_scalar_or_array(lam), _scalar_or_array(wlog), _scalar_or_array(w2))


def _ad_exponent(lam: np.ndarray, mu_star) -> tuple[np.ndarray, np.ndarray]:
    """(exponent, superconducting mask) of the McMillan/Allen–Dynes formula."""
    denom = lam - mu_star * (1.0 + 0.62 * lam)
    ok = np.isfinite(lam) & (denom > 0)
    safe = np.where(ok, denom, 1.0)
    return np.where(ok, -1.04 * (1.0 + lam) / safe, -np.inf), ok


def _not_superconducting(lam: np.ndarray, mu_star: np.ndarray) -> np.ndarray:
    """T_c where the exponent's denominator is not positive: 0, but NaN where λ or μ* is NaN — a NaN
    α²F (or option) must show as an undefined T_c, never as a material that does not superconduct."""
    return np.where(np.isnan(lam) | np.isnan(mu_star), np.nan, 0.0)


def mcmillan_tc_K(lambda_, omega_log_K, mu_star: float = MU_STAR_DEFAULT):
    """McMillan T_c (K) in the Allen–Dynes form, ω_log/1.2 · exp[-1.04(1+λ)/(λ-μ*(1+0.62λ))].

    Vectorised over broadcastable ``lambda_``, ``omega_log_K``, ``mu_star``; 0 where λ ≤ μ*(1+0.62λ), NaN
    where λ or μ* is NaN.
    """
    lam = np.asarray(lambda_, dtype=float)
    wlog = np.asarray(omega_log_K, dtype=float)
    mu = np.asarray(mu_star, dtype=float)
    expo, ok = _ad_exponent(lam, mu)
    with np.errstate(invalid="ignore", over="ignore"):
        tc = np.where(ok, wlog / 1.2 * np.exp(expo), _not_superconducting(lam, mu))
    return _scalar_or_array(tc)


def allen_dynes_f1(lambda_, mu_star: float = MU_STAR_DEFAULT):
    """Strong-coupling correction f₁ = [1 + (λ/Λ₁)^{3/2}]^{1/3}, Λ₁ = 2.46(1 + 3.8μ*) (Allen & Dynes 1975)."""
    lam = np.clip(np.asarray(lambda_, dtype=float), 0.0, None)
    big_lambda_1 = 2.46 * (1.0 + 3.8 * np.asarray(mu_star, dtype=float))
    return _scalar_or_array((1.0 + (lam / big_lambda_1) ** 1.5) ** (1.0 / 3.0))


def allen_dynes_f2(lambda_, omega_log_K, omega_2_K, mu_star: float = MU_STAR_DEFAULT):
    """Shape correction f₂ = 1 + (ω₂/ω_log - 1)λ²/(λ² + Λ₂²), Λ₂ = 1.82(1 + 6.3μ*)(ω₂/ω_log) (Allen & Dynes 1975)."""
    lam = np.asarray(lambda_, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.asarray(omega_2_K, dtype=float) / np.asarray(omega_log_K, dtype=float)
        big_lambda_2 = 1.82 * (1.0 + 6.3 * np.asarray(mu_star, dtype=float)) * ratio
        f2 = 1.0 + (ratio - 1.0) * lam**2 / (lam**2 + big_lambda_2**2)
    return _scalar_or_array(f2)


def allen_dynes_tc_K(lambda_, omega_log_K, omega_2_K, mu_star: float = MU_STAR_DEFAULT):
    """Allen–Dynes T_c (K) = f₁ f₂ ω_log/1.2 exp[-1.04(1+λ)/(λ - μ*(1+0.62λ))] (Allen & Dynes 1975).

    Vectorised; 0 where λ ≤ μ*(1+0.62λ) (including λ = 0 with NaN ω_log/ω₂ from :func:`moments`); NaN
    where λ or μ* is NaN (e.g. from a NaN α²F).
    """
    lam = np.asarray(lambda_, dtype=float)
    expo, ok = _ad_exponent(lam, np.asarray(mu_star, dtype=float))
    f1 = np.asarray(allen_dynes_f1(np.where(ok, lam, 0.0), mu_star))
    f2 = np.asarray(allen_dynes_f2(lam, omega_log_K, omega_2_K, mu_star))
    with np.errstate(invalid="ignore", over="ignore"):
        tc = np.where(ok, f1 * f2 * np.asarray(omega_log_K, dtype=float) / 1.2 * np.exp(expo),
                      _not_superconducting(lam, np.asarray(mu_star, dtype=float)))
    return _scalar_or_array(tc)


def tc_allen_dynes_from_a2f(omega_meV, a2f, mu_star: float = MU_STAR_DEFAULT):
    """Allen–Dynes T_c (K) directly from α²F on a meV grid; broadcasts over leading axes of ``a2f``."""
    m = moments(omega_meV, a2f)
    return allen_dynes_tc_K(m.lambda_, m.omega_log_K, m.omega_2_K, mu_star)
