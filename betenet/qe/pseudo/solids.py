"""The reference solids of the pw.x checks: experimental lattice constants (:data:`EXPERIMENTAL_LATTICE`) and
their primitive cells (:func:`reference_structure`), shared by the ld1.x set's and the PseudoDojo set's validations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from pymatgen.analysis.eos import EOS, EOSBase, EOSError
from pymatgen.core import Lattice, Structure

from ...constants import RY_IN_EV
from .errors import PseudoError

__all__ = [
    "ExperimentalLattice", "EXPERIMENTAL_LATTICE", "reference_structure", "fit_lattice_constant", "eos_scan_scales",
    "eos_step", "next_eos_scale",
]

_KITTEL = "Kittel, Introduction to Solid State Physics, 8th ed. (2005), ch. 1, Tables 3-4 (room temperature unless noted)"
_WYCKOFF = "R. W. G. Wyckoff, Crystal Structures vol. 1 (1963), room temperature"


@dataclass(frozen=True)
class ExperimentalLattice:
    """Experimental lattice constant(s) (Å) of the reference solid of an element.

    ``structure``: fcc, bcc, hcp, diamond, bct (In), rocksalt or AlB2 (compound references for
    elements whose own solid is molecular or complex: ``formula`` names the compound; the other
    element must be validated on its own).  ``c_A`` for hcp/bct/AlB2 (c/a kept at experiment
    during the E(V) scan).  Values are not corrected for zero-point motion: PBEsol typically lands
    within about -1 % to +0.5 % of them (more for alkali metals).
    """

    element: str
    structure: str
    a_A: float
    c_A: float | None = None
    formula: str | None = None
    source: str = _KITTEL
    note: str = ""


def _x(el: str, st: str, a: float, c: float | None = None, **kw: Any) -> ExperimentalLattice:
    return ExperimentalLattice(el, st, a, c, **kw)


#: Reference solids and experimental lattice constants (Å).
EXPERIMENTAL_LATTICE: dict[str, ExperimentalLattice] = {
    x.element: x
    for x in [
        _x("Li", "bcc", 3.491, note="78 K"),
        _x("Na", "bcc", 4.225, note="5 K"),
        _x("K", "bcc", 5.225, note="5 K"),
        _x("Be", "hcp", 2.286, 3.584),
        _x("Mg", "hcp", 3.209, 5.211),
        _x("Ca", "fcc", 5.588),
        _x("Sr", "fcc", 6.085),
        _x("Ba", "bcc", 5.023),
        _x("Sc", "hcp", 3.309, 5.273),
        _x("Y", "hcp", 3.647, 5.731),
        _x("Ti", "hcp", 2.951, 4.686),
        _x("Zr", "hcp", 3.232, 5.147),
        _x("Hf", "hcp", 3.195, 5.051),
        _x("V", "bcc", 3.024),
        _x("Nb", "bcc", 3.300),
        _x("Ta", "bcc", 3.306),
        _x("Mo", "bcc", 3.147),
        _x("W", "bcc", 3.165),
        _x("Re", "hcp", 2.761, 4.456),
        _x("Ru", "hcp", 2.706, 4.282),
        _x("Os", "hcp", 2.734, 4.317),
        _x("Rh", "fcc", 3.803),
        _x("Ir", "fcc", 3.839),
        _x("Pd", "fcc", 3.891),
        _x("Pt", "fcc", 3.924),
        _x("Cu", "fcc", 3.615),
        _x("Ag", "fcc", 4.086),
        _x("Au", "fcc", 4.078),
        _x("Zn", "hcp", 2.665, 4.947),
        _x("Cd", "hcp", 2.979, 5.619),
        _x("Al", "fcc", 4.050),
        _x("In", "bct", 3.252, 4.946, note="body-centred tetragonal In (I4/mmm)"),
        _x("Tl", "hcp", 3.456, 5.525),
        _x("Pb", "fcc", 4.950),
        _x("C", "diamond", 3.567),
        _x("Si", "diamond", 5.431),
        _x("Ge", "diamond", 5.658),
        _x("Sn", "diamond", 6.489, note="alpha-Sn (grey tin)"),
        _x("B", "AlB2", 3.086, 3.524, formula="MgB2", source="Nagamatsu et al., Nature 410, 63 (2001)"),
        _x("N", "rocksalt", 4.240, formula="TiN", source=_WYCKOFF),
        _x("O", "rocksalt", 4.212, formula="MgO", source=_WYCKOFF),
    ]
}


def reference_structure(element: str, scale: float = 1.0) -> tuple[Structure, ExperimentalLattice]:
    """Primitive cell of the reference solid of ``element`` at ``scale`` x the experimental lattice.

    Returns ``(Structure, ExperimentalLattice)``; :class:`PseudoError` if there is no reference.
    """
    if element not in EXPERIMENTAL_LATTICE:
        raise PseudoError(f"no experimental reference solid for {element}; known: {', '.join(EXPERIMENTAL_LATTICE)}")
    x = EXPERIMENTAL_LATTICE[element]
    a = x.a_A * scale
    c = (x.c_A or 0.0) * scale
    if x.structure == "fcc":
        st = Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]), [element], [[0, 0, 0]])
    elif x.structure == "bcc":
        st = Structure(Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]]), [element], [[0, 0, 0]])
    elif x.structure == "bct":
        st = Structure(Lattice([[-a / 2, a / 2, c / 2], [a / 2, -a / 2, c / 2], [a / 2, a / 2, -c / 2]]), [element], [[0, 0, 0]])
    elif x.structure == "hcp":
        st = Structure(Lattice.hexagonal(a, c), [element, element], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    elif x.structure == "diamond":
        st = Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]), [element, element], [[0, 0, 0], [0.25, 0.25, 0.25]])
    elif x.structure == "rocksalt":
        other = x.formula.replace(element, "") if x.formula else ""
        st = Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]), [other, element], [[0, 0, 0], [0.5, 0.5, 0.5]])
    elif x.structure == "AlB2":
        other = re.sub(rf"{element}\d*", "", x.formula or "")
        st = Structure(Lattice.hexagonal(a, c), [other, element, element], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]])
    else:  # pragma: no cover - table is closed
        raise PseudoError(f"unknown reference structure {x.structure!r}")
    return st, x


def fit_lattice_constant(element: str, volumes_A3_per_atom: Sequence[float],
                         energies_Ry_per_atom: Sequence[float]) -> tuple[EOSBase, float]:
    """Birch-Murnaghan fit (pymatgen, energies in eV) of an E(V) scan of the reference solid of ``element``
    and the lattice constant it gives (Å): the experimental one times ``(V0 / V_exp)^(1/3)`` (c/a kept).

    The energies are fitted relative to the scan's lowest (the fit's ``e0`` and ``func`` are relative to it): on
    total energies (10^5 eV for Ta) MINPACK's relative tolerances stop the fit short of the least-squares minimum,
    and where it stops moves with the SciPy build (W's B1 1.8 or 2.4, Ta's V0 0.08 % apart, from the same points)."""
    st0, x = reference_structure(element)
    e = np.asarray(energies_Ry_per_atom, float)
    try:
        fit = EOS("birch_murnaghan").fit(np.array(volumes_A3_per_atom), (e - e.min()) * RY_IN_EV)
    except EOSError as exc:
        pts = ", ".join(f"{v:.3f} Å³: {e:.6f} Ry" for v, e in zip(volumes_A3_per_atom, energies_Ry_per_atom))
        raise PseudoError(f"{element}: E(V) of the {x.structure} reference solid cannot be fitted ({exc}); "
                          f"points per atom: {pts}") from exc
    v_exp = st0.volume / len(st0)
    return fit, x.a_A * (fit.v0 / v_exp) ** (1.0 / 3.0)


def next_eos_scale(scales: Sequence[float], energies: Sequence[float], step: float, max_points: int) -> float | None:
    """The lattice scale to add to an E(V) scan whose lowest energy is not inside it (None: it is inside).

    ``scales``/``energies``: the points so far (any order).  When the minimum is at the smallest (largest) scale,
    the scan goes one ``step`` further down (up): a Birch–Murnaghan fit of a minimum outside the points is an
    extrapolation.  :class:`PseudoError` once ``max_points`` points have not bracketed it (the scan is ±``step``
    per point around experiment, so this means a lattice constant far from experiment: a bad pseudopotential)."""
    order = np.argsort(scales)
    sc, en = np.asarray(scales, float)[order], np.asarray(energies, float)[order]
    i = int(np.argmin(en))
    if 0 < i < len(sc) - 1:
        return None
    if len(sc) >= max_points:
        raise PseudoError(f"E(V) minimum not bracketed by lattice scales {sc[0]:g}–{sc[-1]:g} of experiment after "
                          f"{len(sc)} points (lowest energy at {sc[i]:g})")
    return float(round(sc[0] - step if i == 0 else sc[-1] + step, 6))


def eos_step(scales: Sequence[float]) -> float:
    """The spacing an E(V) scan over ``scales`` is extended by (their smallest gap; 0.01 for a single point)."""
    return float(np.min(np.diff(sorted(scales)))) if len(scales) > 1 else 0.01


def eos_scan_scales(element: str, energy_at, scales: Sequence[float],
                    max_points: int) -> tuple[list[float], list[float], list[float]]:
    """Run ``energy_at(scale) -> E per atom`` of the reference solid of ``element`` on ``scales``, then extend them
    (:func:`next_eos_scale`, step the scan's own spacing) until the lowest energy is inside.  Returns the scales,
    the volumes per atom (Å³) and the energies, sorted by scale; :class:`PseudoError` naming ``element``."""
    done = {float(sc): float(energy_at(sc)) for sc in scales}
    step = eos_step(list(done))
    try:
        while (nxt := next_eos_scale(list(done), list(done.values()), step, max_points)) is not None:
            done[nxt] = float(energy_at(nxt))
    except PseudoError as exc:
        raise PseudoError(f"{element}: {exc}") from exc
    sc = sorted(done)
    vols = [(st := reference_structure(element, x)[0]).volume / len(st) for x in sc]
    return sc, vols, [done[x] for x in sc]
