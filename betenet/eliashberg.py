"""T_c from the linearised isotropic Migdal–Eliashberg equations on the Matsubara axis.

Equations (e.g. Allen & Mitrović, Solid State Physics 37, 1 (1982); Carbotte, Rev. Mod. Phys. 62,
1027 (1990)), at temperature T with fermionic Matsubara frequencies ω_n = πT(2n+1)::

    λ(n-m) = 2 ∫ ω α²F(ω) / (ω² + (ω_n - ω_m)²) dω                   (λ(0) = λ)
    Z_n    = 1 + (πT/ω_n) Σ_m λ(n-m) sgn(ω_m)                        (normal-state renormalisation)
    Z_n Δ_n = πT Σ_{|ω_m| < ω_c} [λ(n-m) - μ*] Δ_m / |ω_m|           (linearised gap equation)

Only even-frequency gaps (Δ_{-n-1} = Δ_n) matter, so the sums are folded onto n, m ≥ 0.  The Z sum is
done exactly (it telescopes: Σ_m λ(n-m) sgn(ω_m) = λ(0) + 2 Σ_{k=1}^{n} λ(k)); the gap sum runs over the
N positive frequencies ω_m ≤ ω_c.  With a_m = [(2m+1) Z_m]^{-1/2} the kernel becomes the symmetric matrix::

    A_nm = a_n [λ(n-m) + λ(n+m+1) - 2μ*] a_m ,

whose largest eigenvalue ρ(T) decreases with T; **T_c is where ρ(T_c) = 1** (found with Brent's method
on ln T).  If ρ ≤ 1 already at the floor temperature ``t_floor_K`` the function returns 0 ("no T_c above
the floor").

μ* convention
-------------
μ* is used **as given, at the Matsubara cutoff** ω_c = ``cutoff_factor`` × ω_max (default 10 × ω_max, where
ω_max is the frequency below which all but ``OMEGA_MAX_TAIL`` = 10⁻⁴ of ∫|α²F|dω lies); it is **not**
rescaled.  To compare with a μ* quoted for another cutoff ω_c', use :func:`rescale_mu_star` (Morel–Anderson: 1/μ*(ω_c) = 1/μ*(ω_c') + ln(ω_c'/ω_c)).

Numerics and speed
------------------
λ(k) is computed by trapezoidal quadrature on the α²F grid (λ(0) is then exactly
:func:`betenet.physics.lambda_from_a2f`) for bosonic frequencies ν_k = 2πTk ≤ 4 ω_max, and from the
moment expansion λ(ν) = (2/ν²) Σ_p (-1)^p M_{2p+1}/ν^{2p} (p ≤ 3, relative error < 2e-5) beyond.  The
largest eigenvalue comes from a dense symmetric solver for N ≤ ``DENSE_MAX`` and otherwise from Lanczos
(``scipy.sparse.linalg.eigsh``) with FFT Toeplitz + Hankel matrix-vector products, so low temperatures
(N ~ 10⁴ frequencies) stay cheap.  One α²F takes well under a second.

Validation (``tests/test_eliashberg.py``)
-----------------------------------------
* μ* = 0, single-peak spectra, λ = 0.4-0.6: T_c(Eliashberg)/T_c(Allen–Dynes) = 1.03-1.04 (1.01 at λ = 1.5).
* μ* = 0.1 at ω_c = 10 ω_max, λ = 0.4 / 0.5 / 0.6: ratio ≈ 1.54 / 1.30 / 1.21 (1.10 at λ = 1, 1.07 at 1.5).
  The whole gap is the μ* convention: a μ* at a Matsubara cutoff of 10 ω_max is a weaker repulsion than
  the same number in the Allen–Dynes formula (Morel–Anderson: ≈ 0.1/(1 + 0.1 ln 10) ≈ 0.08 at the
  phonon scale), and T_c is exponentially sensitive to λ - μ* when λ is small.
* Einstein spectrum, μ* = 0: weak coupling approaches 1.134 e^{-1/2} ω_E exp[-(1+λ)/λ] (the 1/√e
  correction to BCS of Marsiglio et al., arXiv:1807.04907); strong coupling approaches 0.1827 ω_E √λ
  (Allen & Dynes 1975).
* Morel–Anderson invariance: changing ω_c from 5 to 80 ω_max with μ* rescaled by :func:`rescale_mu_star`
  changes T_c by < 1 %.
* An independent dense, unfolded, unsymmetrised solver gives the same ρ(T); dense and Lanczos agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh
from scipy.optimize import brentq
from scipy.signal import fftconvolve
from scipy.sparse.linalg import LinearOperator, eigsh

from .constants import K_PER_MEV, MU_STAR_DEFAULT

__all__ = [
    "EliashbergResult",
    "eliashberg_tc_K",
    "eliashberg_tc",
    "largest_eigenvalue",
    "rescale_mu_star",
    "DEFAULT_CUTOFF_FACTOR",
    "DEFAULT_T_FLOOR_K",
    "DENSE_MAX",
    "OMEGA_MAX_TAIL",
]

#: Matsubara cutoff ω_c in units of the largest phonon frequency with non-zero α²F.
DEFAULT_CUTOFF_FACTOR: float = 10.0
#: Below this temperature (K) the solver stops looking and reports T_c = 0.
DEFAULT_T_FLOOR_K: float = 0.1
#: Largest number of positive Matsubara frequencies handled with a dense eigen-solver.
DENSE_MAX: int = 600
#: ω_max ignores the highest-frequency tail holding this fraction of ∫|α²F| dω (Gaussian tails, noise).
OMEGA_MAX_TAIL: float = 1e-4
#: ν above this multiple of ω_max uses the moment expansion of λ(ν).
_SERIES_FROM = 4.0


@dataclass(frozen=True)
class EliashbergResult:
    """Outcome of :func:`eliashberg_tc`: T_c (K; 0 = none above ``t_floor_K``) and the settings used."""

    tc_K: float
    mu_star: float
    cutoff_meV: float
    t_floor_K: float
    n_matsubara: int
    n_evaluations: int


class _Kernel:
    """λ(ν) for one α²F, with the quadrature weights and moments precomputed."""

    def __init__(self, omega_meV, a2f):
        w = np.asarray(omega_meV, dtype=float)
        y = np.asarray(a2f, dtype=float)
        if w.ndim != 1 or y.shape != w.shape:
            raise ValueError(f"omega_meV and a2f must be 1-D of equal length, got {w.shape} and {y.shape}")
        if w.size < 2 or not np.all(np.diff(w) > 0):
            raise ValueError("omega_meV must be strictly increasing with >= 2 points")
        if not np.all(np.isfinite(y)):
            raise ValueError("a2f contains NaN/inf")
        dx = np.diff(w)
        weights = np.zeros_like(w)
        weights[:-1] += dx / 2
        weights[1:] += dx / 2
        keep = (w > 0) & (y != 0)
        self.w = w[keep]
        self.g = (weights * y)[keep]  # quadrature weight × α²F
        self.omega_max_meV = _omega_max(self.w, self.g)
        self.lambda_ = float(2.0 * np.sum(self.g / self.w)) if self.w.size else 0.0
        self.moments = [float(np.sum(self.g * self.w**p)) for p in (1, 3, 5, 7)]

    def lam(self, nu_meV: np.ndarray) -> np.ndarray:
        """λ(ν) for bosonic Matsubara energies ν (meV)."""
        nu = np.asarray(nu_meV, dtype=float)
        out = np.empty_like(nu)
        if self.w.size == 0:
            out[:] = 0.0
            return out
        exact = nu <= _SERIES_FROM * self.omega_max_meV
        ne = np.nonzero(exact)[0]
        for start in range(0, ne.size, 4096):  # chunked: (chunk × n_omega) temporaries stay small
            idx = ne[start : start + 4096]
            v2 = nu[idx, None] ** 2
            out[idx] = 2.0 * np.sum(self.g * self.w / (self.w**2 + v2), axis=1)
        far = ~exact
        if np.any(far):
            inv = 1.0 / nu[far] ** 2
            m1, m3, m5, m7 = self.moments
            out[far] = 2.0 * inv * (m1 - inv * (m3 - inv * (m5 - inv * m7)))
        return out


def _omega_max(w: np.ndarray, g: np.ndarray) -> float:
    """Largest phonon energy of α²F: where the cumulative |α²F| area reaches 1 - OMEGA_MAX_TAIL of the total."""
    if w.size == 0:
        return 0.0
    cum = np.cumsum(np.abs(g))
    return float(w[min(int(np.searchsorted(cum, (1.0 - OMEGA_MAX_TAIL) * cum[-1])), w.size - 1)])


def rescale_mu_star(mu_star: float, from_cutoff_meV: float, to_cutoff_meV: float) -> float:
    """Morel–Anderson rescaling of μ* between Matsubara/energy cutoffs: μ*/(1 + μ* ln(from/to))."""
    return float(mu_star / (1.0 + mu_star * math.log(from_cutoff_meV / to_cutoff_meV)))


def _n_matsubara(T_meV: float, cutoff_meV: float) -> int:
    """Number of positive fermionic frequencies πT(2n+1) ≤ ω_c (at least 1)."""
    return max(1, int(math.floor((cutoff_meV / (math.pi * T_meV) - 1.0) / 2.0)) + 1)


def _rho(kernel: _Kernel, T_K: float, mu_star: float, cutoff_meV: float) -> tuple[float, int]:
    """Largest eigenvalue of the symmetrised linearised gap kernel at T, and the number of frequencies."""
    T = T_K / K_PER_MEV  # meV
    n = _n_matsubara(T, cutoff_meV)
    lam = kernel.lam(2.0 * math.pi * T * np.arange(2 * n))  # λ(0) ... λ(2N-1)
    idx = np.arange(n)
    z = 1.0 + (lam[0] + 2.0 * np.concatenate(([0.0], np.cumsum(lam[1:n])))) / (2 * idx + 1)
    a = 1.0 / np.sqrt((2 * idx + 1) * z)
    if n <= DENSE_MAX:
        kmat = lam[np.abs(idx[:, None] - idx[None, :])] + lam[idx[:, None] + idx[None, :] + 1] - 2.0 * mu_star
        amat = a[:, None] * kmat * a[None, :]
        top = eigh(amat, eigvals_only=True, subset_by_index=[n - 1, n - 1])
        return float(top[0]), n
    toeplitz_kernel = np.concatenate((lam[n - 1 : 0 : -1], lam[:n]))  # λ(N-1) ... λ(1) λ(0) λ(1) ... λ(N-1)
    hankel_kernel = lam[1 : 2 * n]  # λ(1) ... λ(2N-1)

    def matvec(x):
        x = np.ravel(x)
        ax = a * x
        t = fftconvolve(ax, toeplitz_kernel, mode="full")[n - 1 : 2 * n - 1]
        h = fftconvolve(ax[::-1], hankel_kernel, mode="full")[n - 1 : 2 * n - 1]
        return a * (t + h - 2.0 * mu_star * np.sum(ax))

    op = LinearOperator((n, n), matvec=matvec, dtype=float)
    vals = eigsh(op, k=1, which="LA", v0=a.copy(), tol=1e-10, maxiter=20 * n, return_eigenvectors=False)
    return float(vals[0]), n


def largest_eigenvalue(
    omega_meV, a2f, T_K: float, mu_star: float = MU_STAR_DEFAULT, *, cutoff_factor: float = DEFAULT_CUTOFF_FACTOR
) -> float:
    """ρ(T): largest eigenvalue of the linearised Eliashberg kernel at ``T_K`` (T < T_c ⇔ ρ > 1)."""
    kernel = _Kernel(omega_meV, a2f)
    if kernel.lambda_ <= 0:
        return 0.0 if mu_star >= 0 else float("nan")
    return _rho(kernel, float(T_K), float(mu_star), cutoff_factor * kernel.omega_max_meV)[0]


def eliashberg_tc(
    omega_meV,
    a2f,
    mu_star: float = MU_STAR_DEFAULT,
    *,
    cutoff_factor: float = DEFAULT_CUTOFF_FACTOR,
    t_floor_K: float = DEFAULT_T_FLOOR_K,
    rtol: float = 1e-4,
) -> EliashbergResult:
    """Solve ρ(T_c) = 1 for one α²F (1-D, meV grid); see the module docstring for conventions."""
    kernel = _Kernel(omega_meV, a2f)
    cutoff = cutoff_factor * kernel.omega_max_meV
    evaluations = 0
    cache: dict[float, tuple[float, int]] = {}

    def rho(T: float) -> float:
        nonlocal evaluations
        if T not in cache:
            evaluations += 1
            cache[T] = _rho(kernel, T, mu_star, cutoff)
        return cache[T][0]

    def result(tc: float, T_for_n: float) -> EliashbergResult:
        n = cache[T_for_n][1] if T_for_n in cache else 0
        return EliashbergResult(float(tc), float(mu_star), float(cutoff), float(t_floor_K), n, evaluations)

    if kernel.lambda_ <= 0 or rho(t_floor_K) <= 1.0:
        return result(0.0, t_floor_K)
    # Upper bracket: start at 5 % of ω_max (above any weak/intermediate-coupling T_c), double while ρ > 1.
    w_max_K = kernel.omega_max_meV * K_PER_MEV
    lo, hi = t_floor_K, max(2.0 * t_floor_K, 0.05 * w_max_K)
    while rho(hi) > 1.0:
        lo, hi = hi, 2.0 * hi
        if hi > 100.0 * w_max_K:  # pragma: no cover - unphysical kernel
            raise RuntimeError("no upper bracket for T_c: ρ(T) > 1 far above the phonon energies")
    # Narrow the bracket geometrically from above before Brent (low-T evaluations are the costly ones).
    while hi / lo > 8.0:
        mid = math.sqrt(lo * hi)
        if rho(mid) > 1.0:
            lo = mid
        else:
            hi = mid
    log_tc = brentq(lambda lt: rho(math.exp(lt)) - 1.0, math.log(lo), math.log(hi), xtol=rtol, rtol=rtol)
    tc = math.exp(log_tc)
    return result(tc, lo)


def eliashberg_tc_K(
    omega_meV,
    a2f,
    mu_star: float = MU_STAR_DEFAULT,
    *,
    cutoff_factor: float = DEFAULT_CUTOFF_FACTOR,
    t_floor_K: float = DEFAULT_T_FLOOR_K,
):
    """Isotropic Eliashberg T_c (K) of α²F(ω) (ω in meV); 0 where no T_c above ``t_floor_K``.

    ``a2f`` may have leading axes ``(..., n_omega)``: each spectrum is solved in turn and an array of shape
    ``a2f.shape[:-1]`` is returned (a float for a single spectrum).
    """
    y = np.asarray(a2f, dtype=float)
    if y.ndim == 1:
        return eliashberg_tc(omega_meV, y, mu_star, cutoff_factor=cutoff_factor, t_floor_K=t_floor_K).tc_K
    flat = y.reshape(-1, y.shape[-1])
    out = np.array(
        [eliashberg_tc(omega_meV, row, mu_star, cutoff_factor=cutoff_factor, t_floor_K=t_floor_K).tc_K for row in flat]
    )
    return out.reshape(y.shape[:-1])
