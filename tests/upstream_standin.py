"""A SYNTHETIC stand-in for the authors' ``database.json``, for tests only.

The real file (~85 MB) is not available where this project is built.  This module writes a tiny file
in the published format (pandas ``columns`` orient, the published column names, 0.1 meV α²F grid from
0.25 meV, PhDOS grids from 0, eDOS on ±60 meV) for a handful of real row indices of the paper's split,
whose structures are the vendored ``data/upstream/structures/<row>.cif``.  **Every number in it is
made up** (smooth Gaussian spectra whose centre follows the mean atomic mass, so that a model has
something to learn); every row carries the column ``synthetic_standin`` saying so, and ``comp_name``
ends in ``_mp_synthetic``.  Nothing here is committed as data: tests write it into a temporary directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from betenet import upstream_split as us
from betenet.physics import moments

#: Rows of the paper's split with a vendored CIF of <= 2 atoms: 14 from the training set, 6 from the test set.
TRAIN_ROWS = (7, 8, 9, 10, 13, 14, 15, 21, 23, 41, 45, 48, 49, 52)
TEST_ROWS = (0, 18, 30, 54, 77, 101)
#: A training row of the split that has no CIF upstream: the converter must refuse it (and only it).
ROW_WITHOUT_CIF = 5
LABEL = "SYNTHETIC stand-in written by tests/upstream_standin.py: not the authors' data"
K_PER_MEV = 11.604518


def _gauss(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - centre) / width) ** 2)


def standin_row(row: int, structure) -> dict:
    """One synthetic row in the published format for ``structure`` (a pymatgen Structure)."""
    rng = np.random.default_rng(1000 + row)
    n = len(structure)
    mass = float(np.mean([site.specie.atomic_mass for site in structure]))
    centre = 45.0 / math.sqrt(mass / 20.0) + rng.uniform(-1.0, 1.0)  # heavier -> softer
    width = 0.25 * centre
    w = 0.25 + 0.1 * np.arange(600)  # 0.25 ... 60.15 meV
    a2f = rng.uniform(0.2, 0.6) * _gauss(w, centre, width) * (1.0 - np.exp(-((w / 3.0) ** 2)))
    ph_w = 0.1 * np.arange(601)  # 0 ... 60 meV
    site = np.stack([_gauss(ph_w, centre * (1.0 + 0.1 * i), width) for i in range(n)])
    site /= np.trapezoid(site.sum(0), ph_w) / (3 * n)
    coarse_site = np.stack([_gauss(ph_w, centre * (1.0 + 0.1 * i) * 1.02, 1.3 * width) for i in range(n)])
    coarse_site /= np.trapezoid(coarse_site.sum(0), ph_w) / (3 * n)
    ew = np.arange(-60.0, 61.0)
    esite = np.stack([np.full(ew.size, rng.uniform(0.05, 0.5)) + 0.001 * ew * (i + 1) for i in range(n)])
    m = moments(w, a2f)
    formula = "".join(f"{el}{int(k)}" for el, k in structure.composition.get_el_amt_dict().items())
    return {
        "comp": structure.composition.reduced_formula,
        "Freq_meV": w.tolist(),
        "a2F": a2f.tolist(),
        "PhFreq_meV": ph_w.tolist(),
        "Tot_PhDOS": site.sum(0).tolist(),
        "Site_Proj_PhDOS": site.tolist(),
        "lambda": float(m.lambda_),
        "w_log": float(m.omega_log_K / K_PER_MEV),  # meV
        "w_sq": float((m.omega_2_K / K_PER_MEV) ** 2),  # meV^2
        "comp_name": f"{formula}_mp_synthetic",
        "Tot_PhDOS_dense": site.sum(0).tolist(),
        "Site_Proj_PhDOS_dense": site.tolist(),
        "Tot_eDOS_eng_meV": ew.tolist(),
        "Tot_eDOS": esite.sum(0).tolist(),
        "Site_proj_eDOS_eng_meV": ew.tolist(),
        "Site_proj_eDOS": esite.tolist(),
        "Ph_2x2x2_interpolated_Freq_meV": ph_w.tolist(),
        "Ph_2x2x2_interpolated_Tot_DOS": coarse_site.sum(0).tolist(),
        "Ph_2x2x2_interpolated_Site_Proj_DOS": coarse_site.tolist(),
        "synthetic_standin": LABEL,
    }


def write_standin(root: Path, rows: tuple[int, ...] = TRAIN_ROWS + TEST_ROWS) -> Path:
    """Write ``root/database.json`` (synthetic, see the module docstring) and link ``root/structures``
    and ``root/indices`` to the vendored ones, so that ``root`` can stand for ``data/upstream``
    (``BETENET_UPSTREAM_DIR``).  Row :data:`ROW_WITHOUT_CIF` is added with made-up spectra of a
    one-atom cell; its structure file does not exist.  Returns the JSON path."""
    from pymatgen.core import Lattice, Structure

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    vendored = us.upstream_dir()
    for name in ("structures", "indices"):
        link = root / name
        if not link.exists():
            link.symlink_to(vendored / name, target_is_directory=True)
    table: dict[int, dict] = {}
    for row in rows:
        table[row] = standin_row(row, Structure.from_file(vendored / "structures" / f"{row}.cif"))
    table[ROW_WITHOUT_CIF] = standin_row(ROW_WITHOUT_CIF, Structure(Lattice.cubic(3.0), ["Al"], [[0, 0, 0]]))
    columns = list(next(iter(table.values())))
    data = {col: {str(i): table[i][col] for i in sorted(table)} for col in columns}
    path = root / "database.json"
    path.write_text(json.dumps(data))
    return path
