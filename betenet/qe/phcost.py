"""What an el-ph ph.x run will cost before it runs: k points per irreducible q point, and a CPU estimate.

ph.x solves the linear response of each irreducible q point on the scf k mesh reduced by the *small
group of q* only (the crystal's rotations that leave q unchanged up to a reciprocal lattice vector), and
for q ≠ 0 it needs every k+q as well, so its log's ``number of k points=`` is twice the irreducible
count there.  The reduction is what makes points of one mesh so unequal: on fluorite Al2Pd (the
paper's row 501, scf 9³, q 3³) ph.x runs 35 k points at Γ and 450 at the point of lowest symmetry,
and the second took ten times the first's wall time.  :func:`ph_kpoint_counts` gives these counts
from spglib (``get_stabilized_reciprocal_mesh`` with q as the stabilised point);
``tests/test_phcost.py`` checks them against the archived ph.x logs of ``data/qe-validated``.

The work of one point is close to (k points) × (modes, 3 per atom) × (bands) × (plane waves): one
Sternheimer solve per k point and mode, each a few applications of H to every occupied band.
:func:`ph_cost_units` is that product in units of 10⁶; :data:`CPU_S_PER_UNIT` turns it into seconds.
It was fitted on the archived q points of the validated runs (:func:`fit_cpu_per_unit` over
``data/qe-validated``: ph.x's CPU clock at 20 points of fcc Pt, bcc W, rocksalt NbC, fluorite Al2Pd and
Al2Pt), all of which lie within a factor of two of it except the Γ points of Al2Pd and Al2Pt (2.5×), where
fixed costs weigh more.  Whole runs: bcc V (row 503) took 2.85x its estimate (7,175 CPU-s; bcc Ta, the same k
points and modes, 1,618), the one run outside a factor of two so far.  It is an estimate for ordering candidates and planning a batch, not for
accounting: what a run cost is read from its logs (:func:`betenet.qe.summary.ph_cost_check` sets the two
side by side).
"""

from __future__ import annotations

import json
import math
import re
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import spglib
from pymatgen.core import Structure

from ..constants import BOHR_IN_ANGSTROM
from ..jsonio import read_json
from .parsers import QEParseError, parse_pw_output, qe_clock
from .pseudo import PseudoError, PseudoLibrary, read_upf_header

__all__ = [
    "CPU_S_PER_UNIT",
    "LoggedPoint",
    "QPointLoad",
    "fit_cpu_per_unit",
    "logged_kpoint_counts",
    "logged_points",
    "ph_cost_estimate",
    "ph_cost_units",
    "ph_kpoint_counts",
    "plane_wave_count",
    "pw_band_count",
    "remaining_elph",
]

#: Symmetry tolerance (Å) for spglib; pw.x's own default is of the same order for relaxed cells.
SYMPREC = 1e-3
#: CPU seconds per cost unit (:func:`ph_cost_units`): the median over the archived q points of the
#: validated runs of ph.x's CPU time divided by their units (``fit_cpu_per_unit(Path("data/qe-validated"))``:
#: 12.0 over 20 points, the development machine's cores, QE 6.7 with OpenBLAS, one thread).
CPU_S_PER_UNIT = 12.0


@dataclass(frozen=True)
class QPointLoad:
    """One irreducible q point of a ph.x run: its fractional coordinates (in the reciprocal basis), the
    number of q points in its star (its weight on the mesh) and the k points ph.x computes for it."""

    q_frac: tuple[float, float, float]
    multiplicity: int
    n_k: int


def _cell(structure: Structure):
    return (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])


def ph_kpoint_counts(structure: Structure, k_scf: Sequence[int], q: Sequence[int], *,
                     symprec: float = SYMPREC) -> list[QPointLoad]:
    """The irreducible q points of the Γ-centred ``q`` mesh and, for each, the number of k points ph.x
    runs on the Γ-centred ``k_scf`` mesh: the irreducible k under the small group of q (with time
    reversal), twice that for q ≠ 0 (k and k+q).  Raises ``ValueError`` when spglib finds no symmetry."""
    cell = _cell(structure)
    sym = spglib.get_symmetry(cell, symprec=symprec)
    if sym is None:
        raise ValueError(f"spglib found no symmetry for {structure.composition.reduced_formula} (symprec {symprec} Å)")
    rotations = sym["rotations"]
    q_mesh = [int(n) for n in q]
    k_mesh = [int(n) for n in k_scf]
    mapping, grid = spglib.get_ir_reciprocal_mesh(q_mesh, cell, is_shift=[0, 0, 0], symprec=symprec)
    irreducible, counts = np.unique(mapping, return_counts=True)
    out = []
    for i, mult in zip(irreducible, counts):
        qf = grid[i] / np.asarray(q_mesh, dtype=float)
        k_map, _ = spglib.get_stabilized_reciprocal_mesh(k_mesh, rotations, is_shift=[0, 0, 0],
                                                         is_time_reversal=True, qpoints=[qf])
        n = len(np.unique(k_map))
        gamma = not np.any(grid[i])
        out.append(QPointLoad(tuple(float(x) for x in qf), int(mult), n if gamma else 2 * n))
    return out


def pw_band_count(n_electrons: float) -> int:
    """pw.x's default number of bands for a smeared metal: max(⌈1.2 N/2⌉, N/2 + 4) (QE's ``setup``)."""
    half = n_electrons / 2
    return max(math.ceil(1.2 * half), math.ceil(half) + 4)


def plane_wave_count(volume_A3: float, ecutwfc_Ry: float) -> float:
    """Plane waves of a wavefunction: the k = 0 sphere |G|² < ecutwfc (Ry, a.u.): V k_c³ / (6π²)."""
    volume_bohr3 = volume_A3 / BOHR_IN_ANGSTROM**3
    return volume_bohr3 * ecutwfc_Ry**1.5 / (6 * math.pi**2)


def _units_per_k_point(structure: Structure, *, ecutwfc_Ry: float, n_electrons: float) -> float:
    """3 N_atoms modes × bands × plane waves / 10⁶: the cost units of one k point of a ph.x run."""
    return 3 * len(structure) * pw_band_count(n_electrons) * plane_wave_count(structure.volume, ecutwfc_Ry) / 1e6


def ph_cost_units(structure: Structure, k_scf: Sequence[int], q: Sequence[int], *, ecutwfc_Ry: float,
                  n_electrons: float, loads: Iterable[QPointLoad] | None = None) -> float:
    """Σ over irreducible q of k points × 3 N_atoms modes × bands × plane waves, in units of 10⁶."""
    if loads is None:
        loads = ph_kpoint_counts(structure, k_scf, q)
    n_k = sum(p.n_k for p in loads)
    return n_k * _units_per_k_point(structure, ecutwfc_Ry=ecutwfc_Ry, n_electrons=n_electrons)


_NK = re.compile(r"number of k points=\s*(\d+)")


@dataclass(frozen=True)
class LoggedPoint:
    """What ph.x logged for one archived q point: its k points and its clock (CPU and wall seconds)."""

    n_k: int
    cpu_s: float
    wall_s: float


def logged_points(run_dir: Path | str) -> dict[int, LoggedPoint]:
    """q index -> :class:`LoggedPoint`, read from the logs in ``<run_dir>/ph_elph.q/q<i>.tar.gz``."""
    out: dict[int, LoggedPoint] = {}
    for tar_path in sorted((Path(run_dir) / "ph_elph.q").glob("q*.tar.gz")):
        iq = int(tar_path.name[1:].split(".")[0])
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".out") and "ph_elph" in member.name:
                    text = tar.extractfile(member).read().decode(errors="replace")  # type: ignore[union-attr]
                    m = _NK.search(text.split("Calculation of q", 1)[-1])
                    clock = qe_clock(text)
                    if m and clock:
                        out[iq] = LoggedPoint(int(m.group(1)), *clock)
    return out


def logged_kpoint_counts(run_dir: Path | str) -> dict[int, int]:
    """q index -> the k points ph.x reported for it (:func:`logged_points`)."""
    return {iq: p.n_k for iq, p in logged_points(run_dir).items()}


def fit_cpu_per_unit(runs_dir: Path | str) -> tuple[float, list[dict]]:
    """CPU seconds per cost unit over every archived q point in ``runs_dir/<id>/ph_elph.q``: each point's
    CPU time (ph.x's own clock in its log) over its units, with the k points ph.x logged for it.  Returns
    the median and one row per point (material, q index, k points, units, CPU and wall seconds, ratio)."""
    rows = []
    for manifest in sorted(Path(runs_dir).glob("*/ph_elph.q/manifest.json")):
        run_dir = manifest.parent.parent
        missing = [n for n in ("relaxed.json", "scf.out.gz") if not (run_dir / n).exists()]
        if missing:
            raise QEParseError(f"{manifest.parent}: archived q points but no {' or '.join(missing)} in {run_dir} "
                               "(the run's earlier steps were not kept with it)")
        structure = Structure.from_dict(json.loads((run_dir / "relaxed.json").read_text()))
        scf = parse_pw_output(run_dir / "scf.out.gz")
        if scf.n_electrons is None or scf.ecutwfc_Ry is None:
            raise QEParseError(f"{scf.path}: no 'number of electrons' or 'kinetic-energy cutoff' line")
        per_k = _units_per_k_point(structure, ecutwfc_Ry=scf.ecutwfc_Ry, n_electrons=scf.n_electrons)
        for iq, point in sorted(logged_points(run_dir).items()):
            units = point.n_k * per_k
            rows.append({"material_id": run_dir.name, "q": iq, "n_k": point.n_k, "units": units,
                         "cpu_s": point.cpu_s, "wall_s": point.wall_s, "s_per_unit": point.cpu_s / units})
    if not rows:
        raise ValueError(f"no archived ph.x q points under {runs_dir}")
    return float(np.median([r["s_per_unit"] for r in rows])), rows


def remaining_elph(run_dir: Path | str) -> dict[str, Any]:
    """What an unfinished el-ph run still has to do: ``k_left``, the k points of its irreducible q points not
    yet archived in ``<run_dir>/ph_elph.q/`` (:func:`ph_kpoint_counts` on ``relaxed.json`` and ``grids.json``,
    less the counts ph.x logged for the archived points), and ``eta_s``, those k points at the run's own pace
    so far (wall seconds per k point over its archived points; the point in progress counts as not done, so
    this is an upper bound of the work, and the pace moves with what else shares the cores).  Both are
    ``None`` before the run has a relaxed structure and meshes; ``eta_s`` is ``None`` before its first
    archived point."""
    run_dir = Path(run_dir)
    grids_path, relaxed_path = run_dir / "grids.json", run_dir / "relaxed.json"
    if not (grids_path.exists() and relaxed_path.exists()):
        return {"k_left": None, "eta_s": None}
    grids = read_json(grids_path, error=QEParseError)  # a garbled file is an error naming it
    try:
        k_scf, q = grids["k_scf"], grids["q"]
    except (TypeError, KeyError) as exc:
        raise QEParseError(f"{grids_path}: expected JSON with 'k_scf' and 'q' meshes ({exc})") from exc
    structure = Structure.from_dict(read_json(relaxed_path, error=QEParseError))
    total = sum(p.n_k for p in ph_kpoint_counts(structure, k_scf, q))
    done = logged_points(run_dir)
    k_done = sum(p.n_k for p in done.values())
    k_left = max(total - k_done, 0)
    wall_done = sum(p.wall_s for p in done.values())
    return {"k_left": k_left, "eta_s": k_left * wall_done / k_done if k_done else None}


@cache
def _z_valence(upf: Path) -> float:
    """The valence charge of a UPF file (its header read once per process: every candidate asks again)."""
    return read_upf_header(upf).z_valence


def ph_cost_estimate(structure: Structure, grids: Mapping[str, Any], lib: PseudoLibrary) -> dict[str, Any]:
    """``ph_k_points`` (Σ over irreducible q of the k points ph.x runs) and ``est_ph_cpu_s`` (the el-ph ph.x
    run's CPU seconds: :func:`ph_cost_units` × :data:`CPU_S_PER_UNIT` at the library's cutoffs and valence
    charges; NaN when the library has no usable pseudopotential for an element) for the ``k_scf`` / ``q``
    meshes of ``grids``."""
    loads = ph_kpoint_counts(structure, grids["k_scf"], grids["q"])
    n_k = sum(p.n_k for p in loads)
    elements = [el.symbol for el in structure.composition.elements]
    try:
        entries = lib.require(elements)
        ecutwfc, _ = lib.cutoffs_Ry(elements)
    except PseudoError:
        return {"ph_k_points": n_k, "est_ph_cpu_s": float("nan")}
    zval = {el: _z_valence(e.path) for el, e in entries.items()}
    n_el = sum(zval[site.specie.symbol] for site in structure)
    units = ph_cost_units(structure, grids["k_scf"], grids["q"], ecutwfc_Ry=ecutwfc, n_electrons=n_el, loads=loads)
    return {"ph_k_points": n_k, "est_ph_cpu_s": units * CPU_S_PER_UNIT}
