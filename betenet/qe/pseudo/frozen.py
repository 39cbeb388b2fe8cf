"""Frozen-phonon cross-check of a zone-boundary phonon (a second opinion on ph.x).

The phonon stage of the pseudopotential checks (:mod:`betenet.qe.pseudodojo`) trusts ph.x's linear response
(DFPT).  A frozen phonon uses the ground state only, so the two disagree exactly when the linear response (or
how it is run) is at fault; the cross-check found ph.x run at a q ~7e-6 off the zone boundary (from pw.x's
four-decimal alat), which moved metals' frequencies by percents (bcc Mo at H: 17.554 against 18.245 meV at the
exact q; frozen 18.298 meV).

The check covers the monatomic cubic references, where the zone-boundary mode fits a small conventional
cell:

* **bcc, H** = (0, 0, 1) 2π/a: the 2-atom simple-cubic cell.  The corner atom moves +u along z and the
  body-centre atom −u.  This is the phase cos(q·R) of H, where the three modes are degenerate.
* **fcc, X** = (0, 0, 1) 2π/a: the 4-atom cubic cell.  The atoms of the z = 0 layer move +u along z, those
  of z = a/2 −u.  This is the longitudinal mode at X, usually but not always the highest of the three
  (PseudoDojo Rh: its transverse pair lies above it; :func:`betenet.qe.pseudodojo.frozen_counterpart`).

The force on each atom along the pattern gives ω² = −⟨F·e⟩ / (M u).  This is harmonic for a small ``u``
(0.02 Å), and one pw.x run with ``tprnfor`` suffices, since the pattern keeps the forces on the pattern.

Where symmetry does not fix the pattern (hcp at M, diamond at X, compounds), :func:`frozen_mode` freezes a mode
ph.x computed (its displacement pattern from the dynamical-matrix file, :func:`betenet.qe.dyn.parse_dyn_modes`)
at any q with 2q a reciprocal-lattice vector, in the smallest supercell that holds it (twice the cell:
:func:`zone_boundary_cell`).  The frequency is the Rayleigh quotient ω² = −Σ F·p / (u Σ M |p|²), exact for an
eigenvector and wrong only to second order in an error of the pattern; how parallel the forces are to the pattern
(``force_alignment``: the cosine of the forces and the mass-weighted pattern, 1 for an eigen-displacement of the
frozen force constants) says whether the pattern is one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
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

__all__ = ["folded_kpoints", "frozen_mode", "frozen_phonon", "mode_supercell", "zone_boundary_cell", "zone_boundary_supercell"]

#: electron masses per atomic mass unit; Rydberg atomic units measure mass in m_e / 2
_ME_PER_AMU = 1822.888486


def _masses_ry(cell: Structure) -> np.ndarray:
    return np.array([float(Element(s.specie.symbol).atomic_mass) for s in cell]) * _ME_PER_AMU / 2


def _omega_meV(w2_ry2: float) -> float:
    return math.copysign(math.sqrt(abs(w2_ry2)), w2_ry2) * RY_IN_MEV


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


def folded_kpoints(primitive: Structure, supercell: Structure, mesh: Sequence[int]) -> np.ndarray:
    """The unshifted Monkhorst-Pack ``mesh`` of ``primitive`` folded into the Brillouin zone of ``supercell``
    (same Cartesian frame): rows ``(k1, k2, k3, weight)`` in crystal coordinates of the supercell's reciprocal
    cell, equal weights.  A pw.x run of the supercell on this list (``nosym``) samples exactly the k points that
    ph.x at a zone-boundary q of the primitive cell samples on ``mesh``, so the two phonons differ only by the
    method.  :class:`PseudoError` when the supercell is not a multiple of the primitive cell."""
    n = np.asarray([int(m) for m in mesh])
    if n.shape != (3,) or np.any(n < 1):
        raise PseudoError(f"mesh: expected three positive subdivisions, got {tuple(mesh)}")
    idx = np.stack(np.meshgrid(*[np.arange(m) for m in n], indexing="ij"), axis=-1).reshape(-1, 3)
    k_cart = (idx / n) @ primitive.lattice.reciprocal_lattice.matrix  # 2π included
    frac = k_cart @ supercell.lattice.matrix.T / (2 * math.pi)
    frac = np.round(np.mod(np.round(frac, 9), 1.0), 9) % 1.0
    unique = np.unique(np.round(frac, 7), axis=0)
    ratio = supercell.volume / primitive.volume
    if abs(ratio - round(ratio)) > 1e-6 or len(unique) * round(ratio) != len(idx):
        raise PseudoError(f"the {tuple(n)} mesh of the primitive cell does not fold onto the supercell "
                          f"({len(idx)} points -> {len(unique)}, volume ratio {ratio:.4f})")
    return np.column_stack([unique, np.ones(len(unique))])


def frozen_phonon(element: str, ecutwfc_Ry: float, workdir: Path | str, *, lib: PseudoLibrary, ecutrho_Ry: float | None = None,
                  kspacing_invA: float = 0.25, degauss_Ry: float = 0.02, u_A: float = 0.02,
                  mesh: Sequence[int] | None = None, timeout_s: float = 3600.0) -> dict[str, Any]:
    """ω (meV; negative = imaginary) of the frozen zone-boundary mode (:func:`zone_boundary_supercell`) at
    these cutoffs (same smearing as the other checks).  Also returns the label, the k mesh, the amplitudes
    (``u_A``, always a list; ``omega_at_u_meV`` the frequency at each), the restoring
    force constant (Ry/bohr²) and the runs' CPU time.

    Without ``mesh``: one pw.x run at +u on the supercell's own mesh of spacing ``kspacing_invA``.  With
    ``mesh`` (the unshifted mesh of the primitive reference cell): the k points are that mesh folded into the
    supercell (:func:`folded_kpoints`, ``nosym``), the same set ph.x samples at the zone-boundary q on
    ``mesh``, and the harmonic force constant is extrapolated from runs at u and u/2 (Richardson: the force
    constant at amplitude u is k0 + b u^2 + ...; no odd terms, since a lattice translation with cos(q·R) = -1
    maps each pattern onto its negative).  bcc Ta at H, 70/280 Ry, 6^3 k: 19.19 meV at u = 0.02 Å,
    19.32 meV at 0.01 Å, so the one-amplitude value is 0.7 % low."""
    ecutrho_Ry = ecutrho_Ry or 4 * ecutwfc_Ry
    workdir = Path(workdir)
    label, cell, pattern = zone_boundary_supercell(element, u_A)
    if mesh is None:
        k, klist, amps = kpoint_grid(cell, kspacing_invA), None, (u_A,)
    else:
        prim, _ = reference_structure(element)
        k, klist, amps = tuple(int(m) for m in mesh), folded_kpoints(prim, cell, mesh), (u_A, u_A / 2)
    forces, cpu = [], 0.0
    for u in amps:
        _, cell, _ = zone_boundary_supercell(element, u)
        wd = workdir / f"u{u:g}" if len(amps) > 1 else workdir
        f, c = _pw_forces(cell, lib, ecutwfc_Ry, ecutrho_Ry, wd, kpoints=k, klist=klist, kspacing_invA=kspacing_invA,
                          degauss_Ry=degauss_Ry, timeout_s=timeout_s)
        cpu += c
        forces.append(float(np.mean(np.sum(f * pattern, axis=1))))  # Ry/bohr along the pattern; restoring: < 0
    fcs = [-f / (u / BOHR_IN_ANGSTROM) for f, u in zip(forces, amps)]  # Ry/bohr^2 at each amplitude
    fc = (4 * fcs[1] - fcs[0]) / 3 if len(fcs) > 1 else fcs[0]
    mass = float(_masses_ry(cell)[0])  # Rydberg units; one element
    return {"q_label": label, "omega_meV": _omega_meV(fc / mass), "omega_at_u_meV": [_omega_meV(c / mass) for c in fcs],
            "u_A": list(amps), "extrapolated": len(amps) > 1, "kpoints": list(k),
            "ecutwfc_Ry": ecutwfc_Ry, "ecutrho_Ry": ecutrho_Ry, "degauss_Ry": degauss_Ry,
            "folded_mesh": klist is not None, "n_k": None if klist is None else len(klist),
            "mean_force_Ry_per_bohr": forces[0], "force_constant_Ry_per_bohr2": fc, "cpu_s": cpu}


def zone_boundary_cell(q_frac: Sequence[float]) -> np.ndarray:
    """The 3x3 integer matrix (rows: supercell vectors in units of the primitive ones) of the smallest supercell
    in which a phonon at ``q_frac`` (crystal coordinates of the reciprocal cell) is periodic: the lattice
    vectors R with q·R an integer.  It has twice the primitive volume.  :class:`PseudoError` unless 2q is a
    reciprocal-lattice vector and q is not (the zone-boundary points where ph.x's modes can be made real)."""
    q = np.mod(np.asarray(q_frac, dtype=float), 1.0)
    m = np.round(2 * q).astype(int) % 2
    if q.shape != (3,) or not np.allclose(2 * q, np.round(2 * q), atol=1e-6) or not m.any():
        raise PseudoError(f"q = {tuple(np.round(q_frac, 6))}: a frozen mode needs a zone-boundary q with 2q a "
                          "reciprocal-lattice vector (each crystal coordinate 0 or 1/2, not all 0)")
    i = int(np.flatnonzero(m)[0])
    rows = [2 * np.eye(3, dtype=int)[i]] + [np.eye(3, dtype=int)[j] + m[j] * np.eye(3, dtype=int)[i] for j in range(3) if j != i]
    return np.array(rows)


def mode_supercell(primitive: Structure, q_frac: Sequence[float], mode: np.ndarray, u_A: float) -> tuple[Structure, np.ndarray]:
    """``(cell, pattern)``: the :func:`zone_boundary_cell` of ``primitive`` with the atoms displaced by ``u_A``
    (Å, the largest displacement) along the real pattern of ``mode`` (complex (nat, 3), Cartesian, QE's
    convention u_j(R) = e_j exp(i q·R) with R the primitive lattice vector of the atom's cell), and that pattern
    (n, 3; largest row norm 1).  ph.x's dynamical matrix at such a q is real, so a global phase makes the mode
    real (within a degenerate pair, the real combination of the larger norm)."""
    e = np.asarray(mode, dtype=complex)
    if e.shape != (len(primitive), 3):
        raise PseudoError(f"mode: expected ({len(primitive)}, 3) displacements, got {e.shape}")
    k = int(np.argmax(np.abs(e)))
    e = e * np.exp(-1j * np.angle(e.flat[k]))
    e = e.real if np.linalg.norm(e.real) >= np.linalg.norm(e.imag) else e.imag
    sc = zone_boundary_cell(q_frac)
    lat = Lattice(sc @ primitive.lattice.matrix)
    inv = np.linalg.inv(sc.astype(float))
    species, cart, pattern = [], [], []
    for r in itertools.product(range(-2, 3), repeat=3):  # the primitive cells inside the supercell
        for j, site in enumerate(primitive):
            f = (np.asarray(r) + site.frac_coords) @ inv
            if np.all(f >= -1e-9) and np.all(f < 1 - 1e-9):
                species.append(site.specie)
                cart.append(primitive.lattice.get_cartesian_coords(np.asarray(r) + site.frac_coords))
                pattern.append(math.cos(2 * math.pi * float(np.dot(q_frac, r))) * e[j])
    pattern = np.array(pattern)
    if len(pattern) != 2 * len(primitive) or np.linalg.norm(pattern, axis=1).max() < 1e-8:
        raise PseudoError(f"mode_supercell: {len(pattern)} sites for a {2 * len(primitive)}-site cell, or a zero pattern")
    pattern /= np.linalg.norm(pattern, axis=1).max()
    return Structure(lat, species, np.array(cart) + u_A * pattern, coords_are_cartesian=True), pattern


def _pw_forces(cell: Structure, lib: PseudoLibrary, ecutwfc_Ry: float, ecutrho_Ry: float, wd: Path, *,
               kpoints: Sequence[int], klist: np.ndarray | None, degauss_Ry: float, timeout_s: float,
               kspacing_invA: float = 1.0, conv_thr_Ry: float | None = None) -> tuple[np.ndarray, float]:
    """pw.x scf with forces of ``cell`` in ``wd``: ``(forces (n, 3) Ry/bohr, CPU s)``.  ``klist``: an explicit k list
    (crystal coordinates; ``nosym``: the list is the whole folded mesh, no symmetry unfolding on top), else the
    Monkhorst-Pack ``kpoints``; ``conv_thr_Ry`` default :func:`scf_input`'s."""
    wd.mkdir(parents=True, exist_ok=True)
    files = lib.stage(sorted({s.specie.symbol for s in cell}), wd / "pseudo")
    inp = scf_input(cell, (wd / "pseudo").resolve(), files, ecutwfc_Ry, ecutrho_Ry, kspacing_invA=kspacing_invA,
                    degauss_Ry=degauss_Ry, kpoints=tuple(int(m) for m in kpoints))
    inp.control["tprnfor"] = True
    if conv_thr_Ry is not None:
        inp.electrons["conv_thr"] = conv_thr_Ry
    if klist is not None:
        inp.klist = klist
        inp.system["nosym"] = True
    r = run_pw(inp, wd, timeout_s)
    f = parse_pw_forces(wd / "pw.out")
    if f.shape != (len(cell), 3):
        raise PseudoError(f"{wd / 'pw.out'}: {len(f)} forces for a {len(cell)}-atom cell")
    return f, r["cpu_s"]


def frozen_mode(primitive: Structure, q_frac: Sequence[float], mode: np.ndarray, ecutwfc_Ry: float, workdir: Path | str, *,
                lib: PseudoLibrary, mesh: Sequence[int], ecutrho_Ry: float | None = None, degauss_Ry: float = 0.02,
                u_A: float = 0.02, timeout_s: float = 3600.0) -> dict[str, Any]:
    """ω (meV; negative = imaginary) of ``mode`` at ``q_frac`` frozen into :func:`mode_supercell`: pw.x with
    forces at amplitudes u and u/2 on ``mesh`` of ``primitive`` folded into the supercell (:func:`folded_kpoints`,
    ``nosym``: the k points ph.x samples at q on ``mesh``), the Rayleigh quotient at each and its u -> 0 limit
    (Richardson: at a q with 2q in the reciprocal lattice a translation maps the pattern onto its negative, so
    there are no odd terms).  Returns ``omega_meV``, ``omega_at_u_meV``, ``u_A``, ``force_alignment`` (the
    cosine of the forces and M p, the pattern weighted by the masses, at the smaller amplitude: 1 when p is an
    eigen-displacement of the frozen force constants), ``n_k``, ``cpu_s``.

    ``mode`` is a displacement pattern (what ph.x writes: the eigenvector of the dynamical matrix divided by
    sqrt(M)); the frequency is the Rayleigh quotient of Φ p = ω² M p."""
    ecutrho_Ry = ecutrho_Ry or 4 * ecutwfc_Ry
    workdir = Path(workdir)
    amps = (u_A, u_A / 2)
    cell0, pattern = mode_supercell(primitive, q_frac, mode, 0.0)
    klist = folded_kpoints(primitive, cell0, mesh)
    mp = _masses_ry(cell0)[:, None] * pattern  # an eigen-displacement p has forces -ω² M p u
    w2, align, cpu = [], 0.0, 0.0
    for u in amps:
        cell = Structure(cell0.lattice, cell0.species, cell0.cart_coords + u * pattern, coords_are_cartesian=True)
        f, c = _pw_forces(cell, lib, ecutwfc_Ry, ecutrho_Ry, workdir / f"u{u:g}", kpoints=mesh, klist=klist,
                          degauss_Ry=degauss_Ry, timeout_s=timeout_s,
                          conv_thr_Ry=1e-11 * len(cell))  # forces at u/2 = 0.01 Å are ~1e-3 Ry/bohr
        cpu += c
        proj = float(np.sum(f * pattern))  # Ry/bohr
        w2.append(-proj / ((u / BOHR_IN_ANGSTROM) * float(np.sum(mp * pattern))))
        align = abs(float(np.sum(f * mp))) / max(float(np.linalg.norm(f) * np.linalg.norm(mp)), 1e-30)
    w2_0 = (4 * w2[1] - w2[0]) / 3
    return {"omega_meV": _omega_meV(w2_0), "omega_at_u_meV": [_omega_meV(x) for x in w2], "u_A": list(amps),
            "extrapolated": True, "force_alignment": align, "q_frac": [float(x) for x in q_frac],
            "supercell": zone_boundary_cell(q_frac).tolist(), "kpoints": [int(m) for m in mesh], "n_k": len(klist),
            "ecutwfc_Ry": ecutwfc_Ry, "ecutrho_Ry": ecutrho_Ry, "degauss_Ry": degauss_Ry, "cpu_s": cpu}
