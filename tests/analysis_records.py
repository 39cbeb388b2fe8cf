"""Small, physically shaped MaterialRecords for the analysis/splits/baseline/screening tests.

Real pymatgen structures (fcc unaries, B2 binaries, half-Heusler-like ternaries) with α²F made of
Gaussian phonon peaks whose frequency scales like 1/sqrt(mass) and whose strength sets λ; the
coarse PhDOS has the same peaks (unit weight per mode) slightly shifted, so α²F moments correlate
with PhDOS moments as in the paper's Fig. 2.  Not QE data: only for unit tests.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from betenet.records import MaterialRecord

ELEMENTS = ["Al", "Nb", "V", "Ta", "Mo", "Ti", "Zr", "Pd", "Cu", "Mg", "Sc", "C", "N"]


def _structure(els: list[str]) -> Structure:
    a = 4.0
    if len(els) == 1:
        return Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]), els, [[0, 0, 0]])
    if len(els) == 2:
        return Structure(Lattice.cubic(3.1), els, [[0, 0, 0], [0.5, 0.5, 0.5]])
    lat = Lattice([[0, 3.0, 3.0], [3.0, 0, 3.0], [3.0, 3.0, 0]])
    return Structure(lat, els, [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5]])


def _peaks(omega: np.ndarray, centres: list[float], weights: list[float], width: float) -> np.ndarray:
    out = np.zeros_like(omega)
    for c, w in zip(centres, weights):
        out += w * np.exp(-0.5 * ((omega - c) / width) ** 2) / (width * np.sqrt(2 * np.pi))
    return out


def make_records(n: int = 30, seed: int = 0) -> list[MaterialRecord]:
    """``n`` records with real structures and Gaussian-peak α²F / PhDOS on a 0.1 meV grid."""
    rng = np.random.default_rng(seed)
    omega = np.arange(0.1, 120.0, 0.1)
    records = []
    for i in range(n):
        k = [1, 2, 3][i % 3]
        els = list(rng.choice(ELEMENTS, size=k, replace=False))
        st = _structure(els)
        centres = [float(np.clip(160.0 / np.sqrt(Element(e).atomic_mass) * rng.uniform(0.8, 1.2), 5, 95)) for e in els]
        lam_target = float(rng.uniform(0.15, 1.3))
        # α²F = Σ g_i δ-like peaks; λ = 2 Σ g_i / ω_i (approximately, for narrow peaks)
        w = np.array([1.0 / len(centres)] * len(centres))
        g = lam_target * w / (2.0 * np.sum(w / np.array(centres)))
        a2f = _peaks(omega, centres, list(g), width=2.0)
        shift = rng.uniform(0.9, 1.1)
        ph = _peaks(omega, [c * shift for c in centres], [3.0] * len(centres), width=3.0)
        ph_site = np.stack([_peaks(omega, [c * shift], [3.0], width=3.0) for c in centres])
        records.append(
            MaterialRecord(
                material_id=f"t{i:03d}-{''.join(els)}",
                structure=st,
                a2f_omega_meV=omega,
                a2f=a2f,
                phdos_coarse_omega_meV=omega,
                phdos_coarse_total=ph,
                phdos_coarse_site=ph_site,
                edos_ef_per_eV=float(0.5 + 2.0 * lam_target + rng.normal(0, 0.3)),
                source="test",
            )
        )
    return records
