"""Physical constants, unit conversions and the fixed grids of the paper, named once.

Every conversion in the package goes through these names; no ``/0.08617`` scattered around.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "KB_MEV_PER_K",
    "MEV_PER_K",
    "K_PER_MEV",
    "RY_IN_MEV",
    "RY_IN_EV",
    "THZ_IN_MEV",
    "GHZ_IN_MEV",
    "CMM1_IN_MEV",
    "BOHR_IN_ANGSTROM",
    "TARGET_GRID_MEV",
    "TARGET_BIN_WIDTH_MEV",
    "N_TARGET_BINS",
    "FINE_GRID_STEP_MEV",
    "SAVGOL_WINDOW",
    "SAVGOL_ORDER",
    "MU_STAR_DEFAULT",
    "HIGH_TC_THRESHOLD_K",
    "IMAGINARY_MODE_THRESHOLD_MEV",
]

#: Boltzmann constant k_B in meV/K (CODATA 2018: 8.617333262e-5 eV/K).
KB_MEV_PER_K: float = 8.617333262e-2
MEV_PER_K: float = KB_MEV_PER_K
K_PER_MEV: float = 1.0 / KB_MEV_PER_K
#: 1 Rydberg in meV and eV (CODATA 2018: 13.605693122994 eV).
RY_IN_EV: float = 13.605693122994
RY_IN_MEV: float = RY_IN_EV * 1e3
#: h * 1 THz in meV (4.135667696e-3 eV).
THZ_IN_MEV: float = 4.135667696
#: h · 1 GHz in meV (matdyn writes linewidths in GHz)
GHZ_IN_MEV: float = THZ_IN_MEV * 1e-3
#: h c * 1 cm^-1 in meV (1.239841984e-4 eV; exact: 1.239841984332e-4 eV).  Kept at 10 digits: the matdyn inputs of the
#: stored runs write ``deltaE`` = 0.1 meV in cm^-1 with it (``0.8065543939508989``); the pseudopotential checks'
#: phonons use it too (they divided by 8.065543937 cm^-1/meV before: 3e-10 relative, far below their tolerances).
CMM1_IN_MEV: float = 0.1239841984
#: 1 Bohr in Å (CODATA 2018).
BOHR_IN_ANGSTROM: float = 0.529177210903

#: Bin centres of the paper's learning target: 51 points, 0.25 ... 100.25 meV, 2 meV apart (Methods IV.2).
TARGET_BIN_WIDTH_MEV: float = 2.0
N_TARGET_BINS: int = 51
TARGET_GRID_MEV: np.ndarray = 0.25 + TARGET_BIN_WIDTH_MEV * np.arange(N_TARGET_BINS)
TARGET_GRID_MEV.setflags(write=False)
#: Resolution of the DFT spectra before smoothing (the paper's files: 0.1 meV).
FINE_GRID_STEP_MEV: float = 0.1
#: Savitzky-Golay filter of the paper (window 101 points of the 0.1 meV grid, polynomial order 3).
SAVGOL_WINDOW: int = 101
SAVGOL_ORDER: int = 3

#: Coulomb pseudopotential used by the paper for Allen-Dynes T_c.
MU_STAR_DEFAULT: float = 0.1
#: The paper's "high-T_c" definition (Sec. II.3): T_c >= 5 K.
HIGH_TC_THRESHOLD_K: float = 5.0
#: Dynamical-stability filter: modes more imaginary than this are rejected (Methods IV.1: 1 meV).
IMAGINARY_MODE_THRESHOLD_MEV: float = 1.0
