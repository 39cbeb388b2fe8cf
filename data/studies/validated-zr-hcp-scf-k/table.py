"""hcp Zr's A point, (0, 0, ½) in units of 2π/c, against the scf k mesh ph.x runs on: the validated run
(data/qe-validated/Zr1-hcp, scf 9×9×5, rejected there), the check-q runs kept here (runs/k*), and the screening run
(data/qe/Zr1-hcp: another pseudopotential and cutoffs, scf 6×6×3).  It only reads finished runs:

    .venv/bin/python data/studies/validated-zr-hcp-scf-k/table.py
"""
import json
from pathlib import Path

import numpy as np

from betenet.paths import DATA_DIR
from betenet.qe.inputs import PWInput
from betenet.qe.parsers import parse_ph_output

here = Path(__file__).resolve().parent


def _a_point(run: Path) -> list[float]:
    """The frequencies (meV) at the one q point on the c* axis other than Γ (A, on a q mesh with 2 along c)."""
    ph = json.loads((run / "ph_freqs.json").read_text())
    q = np.array(ph["q_cart_2pi_alat"])
    i = next(j for j, v in enumerate(q) if abs(v[0]) < 1e-6 and abs(v[1]) < 1e-6 and abs(v[2]) > 1e-6)
    return ph["freq_meV"][i]


def _mesh(run: Path) -> str:
    scf = run / "scf.in"
    return "×".join(map(str, PWInput.from_str(scf.read_text(), origin=str(scf)).kpoints))


if __name__ == "__main__":
    rows = [("screening (ld1.x Zr)", _mesh(DATA_DIR / "qe" / "Zr1-hcp"), _a_point(DATA_DIR / "qe" / "Zr1-hcp")),
            ("validated run", _mesh(DATA_DIR / "qe-validated" / "Zr1-hcp"), _a_point(DATA_DIR / "qe-validated" / "Zr1-hcp"))]
    for d in sorted((here / "runs").iterdir()):
        rows.append((f"check-q {d.name}", _mesh(d), parse_ph_output(d / "ph.out.gz").freq_meV[-1]))
    print("| run | scf k | modes at A (meV) |")
    print("|---|---|---|")
    for name, k, f in rows:
        print(f"| {name} | {k} | {', '.join(f'{x:.2f}' for x in f)} |")
