"""Commensurate k- and q-point grids from point densities (Methods IV.1 of the paper).

The electron-phonon interpolation scheme (Wierzbowska et al.) needs the dense k mesh to be a
multiple of the q mesh along each reciprocal direction.  The paper's recipe:

1. subdivisions from user k- and q-point *densities* (points per Å⁻¹ of reciprocal-vector length,
   crystallographic convention |b_i| = 1/d_i, no 2π) on the *relaxed* lattice;
2. each direction independently: if ``k % q != 0`` try ``k + 1``, then ``k - 1``;
3. if still not commensurate, reduce ``q`` by one and repeat; when ``q`` would go below its floor,
   raise :class:`GridError`.

With the floor at 1 the algorithm always succeeds (every k is a multiple of 1); a larger floor
(``q_min``) turns "q collapsed to almost nothing" into an error, as the paper does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

__all__ = [
    "GridError",
    "Grids",
    "subdivisions",
    "commensurate_pair",
    "commensurate_grids",
    "grids_for_config",
    "nearest_divisor",
    "mesh_density",
]

#: Tolerance so that density * |b| = 6.0000000001 gives 6, not 7.
_CEIL_TOL = 1e-6


class GridError(ValueError):
    """No commensurate k/q pair exists with q above its floor (message names the direction)."""


@dataclass(frozen=True)
class Grids:
    """Commensurate Monkhorst-Pack subdivisions (Γ-centred) for one lattice.

    ``k``: dense electronic mesh (el-ph double-delta integration, ``la2F``); ``q``: phonon mesh;
    ``k_scf``: coarse mesh of the scf/ph.x run, near the target from its own density (or ceil(k/2)).
    QE 6.7's interpolated scheme needs the dense mesh to be a multiple of the coarse one too:
    otherwise the Γ-point linewidths come out NaN/overflowing (measured here on fcc Al: dense 18 /
    coarse 8 -> NaN, dense 18 / coarse 6 -> fine).  So after the paper's k/q step, ``k`` may be
    raised further (keeping ``q | k``) until it has a divisor within a factor 1.5 of that target.  ``k_density_per_invA`` / ``q_density_per_invA``: the
    densities actually achieved per direction (subdivisions / |b_i|).
    """

    k: tuple[int, int, int]
    q: tuple[int, int, int]
    k_scf: tuple[int, int, int]
    k_density_per_invA: tuple[float, float, float]
    q_density_per_invA: tuple[float, float, float]

    def as_dict(self) -> dict[str, list]:
        return {
            "k": list(self.k),
            "q": list(self.q),
            "k_scf": list(self.k_scf),
            "k_density_per_invA": [round(x, 4) for x in self.k_density_per_invA],
            "q_density_per_invA": [round(x, 4) for x in self.q_density_per_invA],
        }


def _lattice(cell: Structure | Lattice | np.ndarray) -> Lattice:
    if isinstance(cell, Structure):
        return cell.lattice
    if isinstance(cell, Lattice):
        return cell
    m = np.asarray(cell, dtype=float)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise GridError(f"lattice: expected a finite 3x3 matrix (Å), got shape {m.shape}")
    return Lattice(m)


def _reciprocal_lengths(lattice: Lattice) -> np.ndarray:
    if abs(lattice.volume) < 1e-8:
        raise GridError(f"lattice is singular (volume {lattice.volume:.3g} Å^3)")
    return np.asarray(lattice.reciprocal_lattice_crystallographic.abc, dtype=float)


def subdivisions(cell: Structure | Lattice | np.ndarray, density_per_invA: float) -> tuple[int, int, int]:
    """Subdivisions ``ceil(density * |b_i|)`` (at least 1) along each reciprocal direction."""
    if not (density_per_invA > 0 and math.isfinite(density_per_invA)):
        raise GridError(f"density_per_invA must be a positive number, got {density_per_invA!r}")
    lengths = _reciprocal_lengths(_lattice(cell))
    return tuple(max(1, math.ceil(density_per_invA * b - _CEIL_TOL)) for b in lengths)  # type: ignore[return-value]


def mesh_density(cell: Structure | Lattice | np.ndarray, mesh) -> tuple[float, float, float]:
    """Points per Å⁻¹ that ``mesh`` reaches along each reciprocal direction of ``cell``
    (``n_i / |b_i|``, crystallographic |b|, the convention of the density settings)."""
    n = np.asarray(mesh, dtype=float)
    if n.shape != (3,) or np.any(n < 1):
        raise GridError(f"mesh: expected three positive subdivisions, got {mesh!r}")
    return tuple(float(x) for x in n / _reciprocal_lengths(_lattice(cell)))  # type: ignore[return-value]


def commensurate_pair(k: int, q: int, *, q_min: int = 1, direction: int | None = None) -> tuple[int, int]:
    """The paper's per-direction rule: try k, k+1, k-1 for the current q, else q-1, down to ``q_min``.

    Returns ``(k, q)`` with ``k % q == 0``; raises :class:`GridError` if q would drop below ``q_min``.
    """
    if k < 1 or q < 1 or q_min < 1:
        raise GridError(f"subdivisions must be >= 1 (got k={k}, q={q}, q_min={q_min})")
    where = "" if direction is None else f" along direction {direction + 1}"
    if q < q_min:
        raise GridError(f"q subdivisions {q}{where} already below the floor q_min={q_min}")
    q_start = q
    while q >= q_min:
        for candidate in (k, k + 1, k - 1):
            if candidate >= 1 and candidate % q == 0:
                return candidate, q
        q -= 1
    raise GridError(
        f"no commensurate k/q grid{where}: k={k}, q tried {q_start}..{q_min} (k, k+1, k-1 not divisible); "
        f"lower q_min or change the densities"
    )


def nearest_divisor(n: int, target: int) -> int:
    """The divisor of ``n`` closest to ``target`` (ties -> the larger one)."""
    if n < 1:
        raise GridError(f"n must be >= 1, got {n}")
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), -d))


#: Default lowest coarse/target ratio that :func:`commensurate_grids` accepts for the scf mesh.
SCF_MIN_RATIO_DEFAULT = 1.0 / 1.5


def _dense_with_coarse_divisor(k: int, q: int, target: int, min_ratio: float = SCF_MIN_RATIO_DEFAULT) -> tuple[int, int]:
    """Smallest k' >= k with q | k' that has a divisor in ``[min_ratio * target, 1.5 * target]``;
    returns (k', that divisor nearest to ``target``)."""
    if not 0 < min_ratio <= 1:
        raise GridError(f"scf_min_ratio must be in (0, 1], got {min_ratio}")
    lo, hi = max(1, math.ceil(target * min_ratio - 1e-9)), max(1, math.floor(target * 1.5))
    for kk in range(k, 2 * k + 2 * q + 1):
        if kk % q:
            continue
        divs = [d for d in range(lo, hi + 1) if kk % d == 0]
        if divs:
            return kk, min(divs, key=lambda d: (abs(d - target), -d))
    return k, nearest_divisor(k, target)  # pragma: no cover - the loop always finds one (d = q multiple)


def commensurate_grids(
    cell: Structure | Lattice | np.ndarray,
    k_density_per_invA: float,
    q_density_per_invA: float,
    *,
    q_min: int = 1,
    scf_k_density_per_invA: float | None = None,
    scf_min_ratio: float = SCF_MIN_RATIO_DEFAULT,
) -> Grids:
    """Commensurate dense-k / q / coarse-scf-k subdivisions for ``cell`` (use the *relaxed* lattice).

    ``scf_k_density_per_invA``: density of the coarse mesh of the scf/ph.x run (the interpolated
    el-ph scheme does not need it commensurate); ``None`` -> half the dense mesh, rounded up.
    ``scf_min_ratio``: the coarse mesh is a divisor of the dense one of at least ``scf_min_ratio`` x
    its target subdivisions (the dense mesh is raised until one exists).  The default 2/3 lets a
    target of 4 become 3, too coarse for metals' phonons (``data/studies/2026-11-25-scf-k-convergence``);
    1.0 never goes below the target.
    """
    lattice = _lattice(cell)
    lengths = _reciprocal_lengths(lattice)
    k0 = subdivisions(lattice, k_density_per_invA)
    q0 = subdivisions(lattice, q_density_per_invA)
    ks, qs = [], []
    for i in range(3):
        k, q = commensurate_pair(k0[i], q0[i], q_min=q_min, direction=i)
        ks.append(k)
        qs.append(q)
    if scf_k_density_per_invA is None:
        targets = tuple(max(1, math.ceil(k / 2)) for k in ks)
    else:
        targets = subdivisions(lattice, scf_k_density_per_invA)
    k_scf = []
    for i in range(3):
        ks[i], d = _dense_with_coarse_divisor(ks[i], qs[i], targets[i], scf_min_ratio)
        k_scf.append(d)
    return Grids(
        k=tuple(ks),  # type: ignore[arg-type]
        q=tuple(qs),  # type: ignore[arg-type]
        k_scf=tuple(k_scf),  # type: ignore[arg-type]
        k_density_per_invA=tuple(float(k / b) for k, b in zip(ks, lengths)),  # type: ignore[arg-type]
        q_density_per_invA=tuple(float(q / b) for q, b in zip(qs, lengths)),  # type: ignore[arg-type]
    )


def grids_for_config(cell: Structure | Lattice | np.ndarray, qe: Any) -> Grids:
    """:func:`commensurate_grids` with the densities, q floor and scf rule of a
    :class:`betenet.config.QEConfig` (what the workflow writes to ``grids.json``)."""
    return commensurate_grids(
        cell,
        qe.k_density_per_invA,
        qe.q_density_per_invA,
        q_min=qe.q_min,
        scf_k_density_per_invA=qe.scf_k_density_per_invA,
        scf_min_ratio=qe.scf_k_min_ratio,
    )
