"""Frozen-phonon cross-check of a zone-boundary phonon (a second opinion on ph.x).

The phonon stage of the pseudopotential checks (:mod:`betenet.qe.pseudodojo`) trusts ph.x's linear response
(DFPT).  With some UPF files that trust is misplaced: for PseudoDojo PBEsol Na (2s2p semicore) the DFPT
frequency at H falls steadily with the cutoff and turns imaginary, while the pressure is converged and bcc Na
is stable.  A frozen phonon uses the ground state only, so the two disagree exactly when the linear response
is at fault.

The check covers the monatomic cubic references, where the zone-boundary mode fits a small conventional
cell:

* **bcc, H** = (0, 0, 1) 2π/a: the 2-atom simple-cubic cell.  The corner atom moves +u along z and the
  body-centre atom −u.  This is the phase cos(q·R) of H, where the three modes are degenerate.
* **fcc, X** = (0, 0, 1) 2π/a: the 4-atom cubic cell.  The atoms of the z = 0 layer move +u along z, those
  of z = a/2 −u.  This is the longitudinal mode at X, the highest of the three.

The force on each atom along the pattern gives ω² = −⟨F·e⟩ / (M u).  This is harmonic for a small ``u``
(0.02 Å), and one pw.x run with ``tprnfor`` suffices, since the pattern keeps the forces on the pattern.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from ...constants import BOHR_IN_ANGSTROM, RY_IN_MEV
from ..parsers import parse_pw_forces
from .errors import PseudoError
from .library import PseudoLibrary
from .runs import kpoint_grid, run_pw, scf_input
from .solids import reference_structure

__all__ = ["zone_boundary_supercell", "frozen_phonon"]

#: electron masses per atomic mass unit; Rydberg atomic units measure mass in m_e / 2
_ME_PER_AMU = 1822.888486


def zone_boundary_supercell(element: str, u_A: float, scale: float = 1.0) -> tuple[str, Structure, np.ndarray]:
    """``(q label, cell, pattern)`` for the frozen zone-boundary phonon of ``element``'s reference solid: the
    conventional cubic cell at ``scale`` × the experimental lattice with the atoms displaced by ``u_A`` (Å)
    along ``pattern`` (unit vector per atom, shape ``(n, 3)``).  :class:`PseudoError` for other solids."""
    _, x = reference_structure(element, scale)
    a = x.a_A * scale
    if x.structure == "bcc":
        frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
        label = "H"
    elif x.structure == "fcc":
        frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])
        label = "X"
    else:
        raise PseudoError(f"{element}: no frozen-phonon check for a {x.structure} reference (bcc H and fcc X only)")
    q = np.array([0.0, 0.0, 1.0])  # 2π/a
    phase = np.cos(2 * math.pi * frac @ q)  # ±1: the zone-boundary mode is real
    pattern = np.outer(phase, [0.0, 0.0, 1.0])
    cell = Structure(Lattice.cubic(a), [element] * len(frac), frac + pattern * u_A / a)
    return label, cell, pattern


def frozen_phonon(element: str, ecutwfc_Ry: float, workdir: Path | str, *, lib: PseudoLibrary, ecutrho_Ry: float | None = None,
                  kspacing_invA: float = 0.25, degauss_Ry: float = 0.02, u_A: float = 0.02,
                  timeout_s: float = 3600.0) -> dict[str, Any]:
    """ω (meV; negative = imaginary) of the frozen zone-boundary mode (:func:`zone_boundary_supercell`) at
    these cutoffs, from the forces of one pw.x run (same smearing as the other checks).  Also returns the
    label, the k mesh, the mean restoring force (Ry/bohr) and the run's CPU time."""
    label, cell, pattern = zone_boundary_supercell(element, u_A)
    ecutrho_Ry = ecutrho_Ry or 4 * ecutwfc_Ry
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files = lib.stage([element], workdir / "pseudo")
    k = kpoint_grid(cell, kspacing_invA)
    inp = scf_input(cell, (workdir / "pseudo").resolve(), files, ecutwfc_Ry, ecutrho_Ry,
                    kspacing_invA=kspacing_invA, degauss_Ry=degauss_Ry, kpoints=k)
    inp.control["tprnfor"] = True
    r = run_pw(inp, workdir, timeout_s)
    forces = parse_pw_forces(workdir / "pw.out")
    if forces.shape != pattern.shape:
        raise PseudoError(f"{workdir / 'pw.out'}: {len(forces)} forces for a {len(pattern)}-atom cell")
    f_along = float(np.mean(np.sum(forces * pattern, axis=1)))  # Ry/bohr; restoring: negative
    mass = float(Element(element).atomic_mass) * _ME_PER_AMU / 2  # Rydberg units
    w2 = -f_along / (mass * u_A / BOHR_IN_ANGSTROM)  # Ry^2
    omega = math.copysign(math.sqrt(abs(w2)), w2) * RY_IN_MEV
    return {"q_label": label, "omega_meV": omega, "u_A": u_A, "kpoints": list(k), "ecutwfc_Ry": ecutwfc_Ry,
            "ecutrho_Ry": ecutrho_Ry, "mean_force_Ry_per_bohr": f_along, "cpu_s": r["cpu_s"]}
