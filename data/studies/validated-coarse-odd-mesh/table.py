"""B2 AlRu (the paper's row 542) at M = (0, ½, ½) 2π/a against the scf k mesh ph.x runs on: the validated run's coarse
2×2×2 point (data/qe-validated/up0542-AlRu, scf 9³, odd: k + q off the mesh) and the check-q runs kept here
(runs/k*, 10³ and 12³, even).  It only reads finished runs:

    .venv/bin/python data/studies/validated-coarse-odd-mesh/table.py
"""
from pathlib import Path

import numpy as np

from betenet.paths import DATA_DIR
from betenet.qe.inputs import PWInput
from betenet.qe.parsers import parse_ph_output

here = Path(__file__).resolve().parent
M = np.array([0.0, -0.5, -0.5])


def _mesh(scf: Path) -> str:
    return "×".join(map(str, PWInput.from_str(scf.read_text(), origin=str(scf)).kpoints))


def _at_m(log: Path) -> np.ndarray:
    ph = parse_ph_output(log, require_done=False)
    i = next(j for j, q in enumerate(ph.q_cart_2pi_alat) if np.allclose(q, M, atol=1e-6))
    return ph.freq_meV[i]


if __name__ == "__main__":
    run = DATA_DIR / "qe-validated" / "up0542-AlRu"
    rows = [("validated run, coarse point", _mesh(run / "scf.in"), _at_m(run / "ph_coarse.out.gz"))]
    for d in sorted((here / "runs").iterdir()):
        rows.append((f"check-q {d.name}", _mesh(d / "scf.in"), _at_m(d / "ph.out.gz")))
    print("| run | scf k | modes at M (meV) |")
    print("|---|---|---|")
    for name, k, f in rows:
        print(f"| {name} | {k} | {', '.join(f'{x:.2f}' for x in f)} |")
