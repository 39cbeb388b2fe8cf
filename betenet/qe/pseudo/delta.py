"""The Δ gauge of Lejaeghere et al. (Science 351, aad3000 (2016)) and the published WIEN2k PBE equations of state
it is measured against: a way to check an all-electron reference (and a pseudopotential family) on an
independent, published all-electron result before trusting it.

Δ between two equations of state of the same solid is the root-mean-square difference of their Birch-Murnaghan
E(V), each counted from its own minimum, over the volume interval ±6 % around the mean of their V0
(meV/atom): ``Δ = sqrt(∫ (E1 - E2)² dV / (V_b - V_a))``.  The published codes of that study agree with WIEN2k
within ~1 meV/atom on average; two all-electron codes within ~0.3 meV/atom.

:data:`WIEN2K_PBE` holds WIEN2k's PBE V0, B0, B1 (WIEN2k 13.1, S. Cottenier; the reference file of the Δ
package v3.1, https://molmod.ugent.be/deltacodesdft) of the elements whose Δ-test crystal is the reference solid
used here (:func:`~betenet.qe.pseudo.solids.reference_structure`: fcc, bcc and hcp metals).  The Δ test fixes
each crystal's shape at WIEN2k's PBE optimum (hcp c/a), the scans here at experiment
(:data:`DELTA_C_OVER_A` gives the difference; its effect on V0 is second order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import PseudoError

__all__ = ["DELTA_C_OVER_A", "DELTA_SOURCE", "WIEN2K_PBE", "BirchMurnaghan", "birch_murnaghan_energy", "delta_meV"]

DELTA_SOURCE = ("WIEN2k 13.1 (S. Cottenier), reference file of the Δ package v3.1; K. Lejaeghere et al., "
                "Science 351, aad3000 (2016), https://molmod.ugent.be/deltacodesdft")
_GPA_IN_EV_PER_A3 = 1.0 / 160.21766208


@dataclass(frozen=True)
class BirchMurnaghan:
    """Third-order Birch-Murnaghan equation of state: V0 (Å³/atom), B0 (GPa), B1 = dB/dP."""

    v0_A3: float
    b0_GPa: float
    b1: float

    def __post_init__(self) -> None:
        if not (self.v0_A3 > 0 and self.b0_GPa > 0 and math.isfinite(self.b1)):
            raise PseudoError(f"Birch-Murnaghan parameters must be V0 > 0 Å³, B0 > 0 GPa and a finite B1, got "
                              f"V0 {self.v0_A3}, B0 {self.b0_GPa}, B1 {self.b1}")


#: WIEN2k PBE (V0 Å³/atom, B0 GPa, B1) of the Δ test, for the elements whose Δ crystal is the reference solid here.
WIEN2K_PBE: dict[str, BirchMurnaghan] = {el: BirchMurnaghan(*v) for el, v in {
    "Mg": (22.9355, 35.933, 4.07), "Al": (16.4796, 78.077, 4.57), "Sc": (24.6196, 54.393, 3.42),
    "Ti": (17.3900, 112.213, 3.58), "V": (13.4520, 181.674, 3.75), "Cu": (11.9571, 141.06, 4.85),
    "Nb": (18.1368, 171.270, 3.55), "Mo": (15.7862, 258.928, 4.33), "Ru": (13.7619, 312.502, 4.95),
    "Rh": (14.0396, 257.824, 5.32), "Pd": (15.3101, 168.629, 5.56), "Ta": (18.2856, 195.147, 3.71),
    "W": (16.1394, 301.622, 4.28), "Pt": (15.6420, 248.711, 5.46), "Au": (17.9745, 139.109, 5.76),
    "Pb": (32.0028, 39.544, 4.53),
}.items()}

#: c/a of the Δ test's hcp crystals (WIEN2k's PBE optimum); the scans here keep the experimental c/a.
DELTA_C_OVER_A = {"Mg": 5.171978 / 3.194049}


def birch_murnaghan_energy(eos: BirchMurnaghan, volumes_A3) -> np.ndarray:
    """E(V) - E(V0) of ``eos`` (eV/atom) at ``volumes_A3`` (Å³/atom)."""
    v = np.asarray(volumes_A3, float)
    if np.any(v <= 0):
        raise PseudoError(f"volumes must be positive, got {v.min():g} Å³")
    x = (eos.v0_A3 / v) ** (2.0 / 3.0) - 1.0
    b0 = eos.b0_GPa * _GPA_IN_EV_PER_A3
    return 9.0 * eos.v0_A3 * b0 / 16.0 * (x**3 * eos.b1 + x**2 * (6.0 - 4.0 * (x + 1.0)))


def delta_meV(a: BirchMurnaghan, b: BirchMurnaghan, width: float = 0.06, points: int = 2001) -> float:
    """Δ (meV/atom) between two equations of state: the RMS of E_a(V) - E_b(V), each from its own minimum, over
    V in [1 - ``width``, 1 + ``width``] x the mean of the two V0 (Simpson's rule on ``points`` volumes)."""
    if points < 3 or points % 2 == 0:
        raise ValueError(f"points must be odd and >= 3 (Simpson's rule), got {points}")
    vm = 0.5 * (a.v0_A3 + b.v0_A3)
    v = np.linspace((1.0 - width) * vm, (1.0 + width) * vm, points)
    d2 = (birch_murnaghan_energy(a, v) - birch_murnaghan_energy(b, v)) ** 2
    h = v[1] - v[0]
    integral = h / 3.0 * (d2[0] + d2[-1] + 4.0 * d2[1:-1:2].sum() + 2.0 * d2[2:-1:2].sum())
    return 1e3 * math.sqrt(integral / (v[-1] - v[0]))
