"""Real crystal structures and physically shaped records for the graph/model/dataset tests.

Structures are textbook cells (experimental lattice constants, rounded): fcc Al, bcc Nb, hcp Mg,
rocksalt NbC, A15 Nb3Sn (8 atoms), a skewed triclinic ternary, a tiny simple-cubic cell with
a < r_max / 2 and a strongly sheared cell.  α²F and PhDOS are sums of Gaussian phonon peaks whose
frequencies scale like 1/sqrt(mass) (not QE data: unit tests only).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from betenet.records import MaterialRecord


def fcc_primitive(a: float) -> Lattice:
    return Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])


def structures() -> dict[str, Structure]:
    """name -> Structure."""
    return {
        "Al-fcc": Structure(fcc_primitive(4.05), ["Al"], [[0, 0, 0]]),
        "Nb-bcc": Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "Mg-hcp": Structure(Lattice.hexagonal(3.21, 5.21), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]),
        "NbC-rocksalt": Structure(fcc_primitive(4.47), ["Nb", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "Nb3Sn-A15": Structure(
            Lattice.cubic(5.29),
            ["Sn", "Sn", "Nb", "Nb", "Nb", "Nb", "Nb", "Nb"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0, 0.5], [0.75, 0, 0.5], [0.5, 0.25, 0], [0.5, 0.75, 0],
             [0, 0.5, 0.25], [0, 0.5, 0.75]],
        ),
        "NbSnC-triclinic": Structure(
            Lattice.from_parameters(3.1, 3.6, 5.3, 71.0, 83.0, 109.0),
            ["Nb", "Sn", "C"],
            [[0.1, 0.2, 0.3], [0.55, 0.6, 0.1], [0.9, 0.35, 0.7]],
        ),
        "Po-tiny-sc": Structure(Lattice.cubic(1.9), ["Po"], [[0, 0, 0]]),
        "CuZr-sheared": Structure(
            Lattice([[2.6, 0.0, 0.0], [2.45, 0.9, 0.0], [0.3, 0.2, 2.8]]),
            ["Cu", "Zr"],
            [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]],
        ),
    }


def _peaks(omega: np.ndarray, centres, weights, width: float) -> np.ndarray:
    out = np.zeros_like(omega)
    for c, w in zip(centres, weights):
        out += w * np.exp(-0.5 * ((omega - c) / width) ** 2) / (width * np.sqrt(2 * np.pi))
    return out


def make_record(material_id: str, structure: Structure, *, lam: float = 0.6, seed: int = 0) -> MaterialRecord:
    """A record with Gaussian-peak α²F (λ ≈ ``lam``), coarse and fine site PhDOS (3 modes per site)."""
    rng = np.random.default_rng(seed)
    omega = np.arange(0.1, 110.0, 0.1)
    centres = [float(np.clip(190.0 / np.sqrt(Element(str(sp)).atomic_mass) * rng.uniform(0.9, 1.1), 6, 90))
               for sp in structure.species]
    w = np.ones(len(centres)) / len(centres)
    g = lam * w / (2.0 * np.sum(w / np.array(centres)))
    a2f = _peaks(omega, centres, g, width=2.5)
    fine_site = np.stack([_peaks(omega, [c], [3.0], width=2.0) for c in centres])
    coarse_omega = np.arange(0.0, 110.0, 0.5)
    coarse_site = np.stack([_peaks(coarse_omega, [1.05 * c], [3.0], width=4.0) for c in centres])
    return MaterialRecord(
        material_id=material_id,
        structure=structure,
        a2f_omega_meV=omega,
        a2f=a2f,
        phdos_omega_meV=omega,
        phdos_total=fine_site.sum(0),
        phdos_site=fine_site,
        phdos_coarse_omega_meV=coarse_omega,
        phdos_coarse_total=coarse_site.sum(0),
        phdos_coarse_site=coarse_site,
        source="test",
    )


def make_records(names: list[str] | None = None) -> list[MaterialRecord]:
    sts = structures()
    names = list(sts) if names is None else names
    return [make_record(f"test-{n}", sts[n], lam=0.3 + 0.2 * i, seed=i) for i, n in enumerate(names)]
