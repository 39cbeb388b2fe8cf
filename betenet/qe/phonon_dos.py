"""Phonon DOS and α²F helpers around matdyn.x: the interpolation mesh, the coarse q mesh taken from the
el-ph one, and the Gaussian fallback for matdyn 6.7's tetrahedron DOS when it turns NaN.

matdyn 6.7's tetrahedron integration gives NaN when whole tetrahedra are degenerate (the short-ranged
2x2x2 force constants of one-atom cubic cells; B2 BaCd and L1_2 Al3Sc at 16^3).  The workflow then reruns
matdyn on the full mesh (:func:`betenet.qe.inputs.matdyn_full_mesh_input`) and integrates with Gaussians:
:func:`write_gaussian_phdos` (site-projected PhDOS in matdyn's own file format) and
:func:`gaussian_a2f_columns` (α²F of every broadening from matdyn's linewidths), widths
:data:`COARSE_DOS_SIGMA_MEV` and :data:`FINE_DOS_SIGMA_MEV`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from ..constants import CMM1_IN_MEV, GHZ_IN_MEV, RY_IN_MEV
from .dyn import parse_dyn0, parse_dyn_basis
from .parsers import (
    QEParseError,
    parse_a2fmatdyn_header,
    parse_matdyn_eig,
    parse_matdyn_freq,
)

__all__ = [
    "COARSE_DOS_SIGMA_MEV",
    "FINE_DOS_SIGMA_MEV",
    "MATDYN_EPS_W2_RY",
    "matdyn_mesh",
    "coarse_dyn_subset",
    "dos_file_finite",
    "gaussian_site_dos",
    "gaussian_a2f",
    "write_gaussian_phdos",
    "gaussian_a2f_columns",
]


def matdyn_mesh(structure: Structure, n_longest: int) -> tuple[int, int, int]:
    """matdyn's interpolation mesh: ``n_longest`` along the longest reciprocal vector, the others in
    proportion (at least 2)."""
    b = np.asarray(structure.lattice.reciprocal_lattice_crystallographic.abc)
    return tuple(max(2, int(round(n_longest * x / b.max()))) for x in b)  # type: ignore[return-value]


#: Gaussian width (meV) of the fallback coarse phonon DOS (the 2 meV target bins and the 10 meV
#: Savitzky-Golay window are much wider).
COARSE_DOS_SIGMA_MEV = 1.0
#: Gaussian width (meV) of the fine-mesh PhDOS and α²F when matdyn's tetrahedra give NaN.  On our fcc Al
#: and bcc Nb runs (16^3 mesh) it reproduces the tetrahedron λ to 0.3 % and ω_log to 0.5 % for every
#: broadening (tests/test_qe_real.py).
FINE_DOS_SIGMA_MEV = 0.5
#: matdyn's ``eps_w2`` (Ry): modes at or below this frequency get zero linewidth in ``a2Fdos``.
MATDYN_EPS_W2_RY = 1e-7


def coarse_divides(fine: Sequence[int], coarse: Sequence[int]) -> bool:
    """Whether the ``coarse`` q mesh's points are points of the ``fine`` mesh (each subdivision a multiple)."""
    return len(fine) == len(coarse) == 3 and all(int(f) % int(c) == 0 for f, c in zip(fine, coarse))


def coarse_dyn_subset(src_dir: Path, fildyn: str, dest_dir: Path, dest_fildyn: str, coarse: tuple[int, int, int]) -> int:
    """Reuse the dynamical matrices of a ph.x ``ldisp`` run for a coarser q mesh that divides it.

    When every subdivision of the el-ph q mesh (``<fildyn>0``) is a multiple of ``coarse``, the
    coarse mesh's points are a subset of the fine mesh's, and because symmetry maps mesh points onto
    mesh points, each coarse star is one of the fine mesh's irreducible stars: its ``<fildyn>N`` file
    (which holds the whole star) is exactly what ph.x would write for the coarse mesh.  Those files are
    copied to ``dest_dir/<dest_fildyn>1..M`` with a matching ``<dest_fildyn>0``, ready for q2r.x.
    Returns M, or 0 when the meshes are not commensurate (nothing is written then).
    """
    src_dir, dest_dir = Path(src_dir), Path(dest_dir)
    dyn0 = src_dir / f"{fildyn}0"
    fine, qs = parse_dyn0(dyn0)
    rows = dyn0.read_text().split("\n")
    coarse = tuple(int(c) for c in coarse)
    if not coarse_divides(fine, coarse) or fine == coarse:
        return 0
    basis = parse_dyn_basis(src_dir / f"{fildyn}1")
    frac = qs @ basis.T  # q (2pi/alat, cartesian) . a_i (alat) = crystal coordinate along b_i
    on = np.all(np.abs(frac * np.array(coarse) - np.round(frac * np.array(coarse))) < 1e-5, axis=1)
    picked = [i + 1 for i in np.flatnonzero(on)]
    if not picked:
        raise QEParseError(f"{dyn0}: no q point of the {coarse} mesh among the {fine} mesh's irreducible points")
    dest_dir.mkdir(parents=True, exist_ok=True)
    for j, i in enumerate(picked, start=1):
        shutil.copyfile(src_dir / f"{fildyn}{i}", dest_dir / f"{dest_fildyn}{j}")
    lines = [" ".join(f"{c:4d}" for c in coarse), f"{len(picked):4d}"]
    lines += [rows[1 + i] for i in picked]
    (dest_dir / f"{dest_fildyn}0").write_text("\n".join(lines) + "\n")
    return len(picked)


def dos_file_finite(path: Path) -> bool:
    """False if a matdyn DOS file holds NaN/inf (or cannot be read as numbers)."""
    try:
        data = np.loadtxt(path, comments="#")
    except ValueError:
        return False
    return bool(data.size) and bool(np.all(np.isfinite(data)))


def gaussian_site_dos(omega, freqs, weights, sigma):
    """Site-projected DOS ``g_s(E) = (1/n_q) sum_{q,nu} w_{q nu s} G_sigma(E - w_{q nu})`` (units of 1/[omega]).

    ``weights`` rows are renormalised to 1 so that ``sum_s ∫ g_s = 3N`` exactly (before truncation
    of the energy range).
    """
    omega = np.asarray(omega, float)
    freqs = np.asarray(freqs, float)
    w = np.asarray(weights, float)
    w = w / w.sum(axis=1, keepdims=True)
    n_q = len(freqs) / (3 * w.shape[1])
    return _gaussian_sum(omega, freqs, w, sigma) / n_q


def _gaussian_sum(omega: np.ndarray, centres: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """``out[k] = Σ_i weights[i, k] G_σ(omega − centres[i])`` with normalised Gaussians, shape (n_k, n_omega);
    the centres are taken 4096 at a time to bound the memory of the (centres × omega) kernel."""
    out = np.zeros((weights.shape[1], omega.size))
    for lo in range(0, len(centres), 4096):
        d = (omega[None, :] - centres[lo:lo + 4096, None]) / sigma
        out += weights[lo:lo + 4096].T @ (np.exp(-0.5 * d * d) / (sigma * np.sqrt(2 * np.pi)))
    return out


def gaussian_a2f(omega_meV, freq_meV, gamma_meV, dos_ef_per_Ry: float, sigma_meV: float) -> np.ndarray:
    """Eliashberg function on ``omega_meV`` from mode linewidths, with matdyn's ``a2Fdos`` definitions.

    ``α²F(ω) = 1/(2π N(E_F)) · (1/n_q) Σ_{qν} (γ_{qν}/ω_{qν}) δ_σ(ω − ω_{qν})``, with ``freq_meV`` and
    ``gamma_meV`` of shape (n_q, n_modes) over a full uniform mesh (matdyn's ``elph.gamma.N`` converted
    to meV), ``dos_ef_per_Ry`` the N(E_F) matdyn reads from ``elph_dir/a2Fmatdyn.6N`` (states/Ry/cell)
    and δ a normalised Gaussian of width ``sigma_meV``.  As in matdyn, modes at or below
    ``MATDYN_EPS_W2_RY`` (acoustic modes at Γ, unstable modes) carry no weight.  Then
    ``2∫α²F/ω dω`` equals matdyn's mode sum ``(1/(π N(E_F) n_q)) Σ γ/ω²`` up to the Gaussian tails.
    """
    omega = np.asarray(omega_meV, float)
    w = np.asarray(freq_meV, float)
    g = np.asarray(gamma_meV, float)
    if w.shape != g.shape or w.ndim != 2:
        raise ValueError(f"frequencies {w.shape} and linewidths {g.shape} must both be (n_q, n_modes)")
    if not dos_ef_per_Ry > 0:
        raise ValueError(f"N(E_F) must be positive, got {dos_ef_per_Ry}")
    n_q = w.shape[0]
    w, g = w.ravel(), g.ravel()
    ok = w > MATDYN_EPS_W2_RY * RY_IN_MEV
    out = _gaussian_sum(omega, w[ok], (g[ok] / w[ok])[:, None], sigma_meV)[0]
    # δ in 1/meV -> 1/Ry to match N(E_F) in states/Ry
    return out / n_q * RY_IN_MEV / dos_ef_per_Ry / (2 * np.pi)


def write_gaussian_phdos(dos_file: Path, eig_file: Path, n_sites: int, sigma_meV: float) -> None:
    """Overwrite matdyn's ``dos_file`` (its format and energy grid: cm^-1, states/cm^-1, total then one
    column per atom) with the site-projected DOS by Gaussian broadening (width ``sigma_meV``) of the modes
    of matdyn's ``fleig`` file ``eig_file``: every mode of every q point contributes ``|e_s|^2 g(E - w)``
    to site ``s`` (:func:`gaussian_site_dos`)."""
    freq_cm1, weights = parse_matdyn_eig(eig_file, n_sites=n_sites)
    omega_cm1 = np.loadtxt(dos_file, comments="#", usecols=0)
    site = gaussian_site_dos(omega_cm1, freq_cm1, weights, sigma_meV / CMM1_IN_MEV)
    rows = np.column_stack([omega_cm1, site.sum(axis=0), site.T])
    np.savetxt(dos_file, rows, fmt="%.10E", header="Frequency[cm^-1] DOS PDOS (Gaussian, betenet)")


def gaussian_a2f_columns(gdir: Path, omega_meV: np.ndarray, n_broadenings: int, sigma_meV: float) -> list[np.ndarray]:
    """α²F of broadenings 1..``n_broadenings`` on ``omega_meV`` from a full-mesh matdyn run in ``gdir``:
    its frequencies (``matdyn.freq``), linewidths (``elph.gamma.N``, GHz) and N(E_F)
    (``elph_dir/a2Fmatdyn.6N``) through :func:`gaussian_a2f`."""
    gdir = Path(gdir)
    _, freq_cm1 = parse_matdyn_freq(gdir / "matdyn.freq")
    cols = []
    for i in range(1, n_broadenings + 1):
        _, gamma_GHz = parse_matdyn_freq(gdir / f"elph.gamma.{i}")
        if gamma_GHz.shape != freq_cm1.shape:
            raise QEParseError(f"{gdir / f'elph.gamma.{i}'}: {gamma_GHz.shape} linewidths for {freq_cm1.shape} frequencies")
        cols.append(gaussian_a2f(omega_meV, freq_cm1 * CMM1_IN_MEV, gamma_GHz * GHZ_IN_MEV,
                                 parse_a2fmatdyn_header(gdir / "elph_dir" / f"a2Fmatdyn.{60 + i}")[2], sigma_meV))
    return cols
