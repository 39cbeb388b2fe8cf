"""bcc Nb at the validated level with ecutrho 320 Ry (runs/Nb1-bcc, the level's first Nb run, before the phonon
check of the PseudoDojo index raised Nb's ecutrho) against 640 Ry (data/qe-validated/Nb1-bcc, the level's
cutoff; since Nb's refinement to q 6^3, the run that refinement moved aside in data/qe-validated): λ(σ) of both, the plateau each gives, ω_log at it, and the lowest phonon frequency on the ph.x
q points and on matdyn's interpolation mesh.  Both runs are finished; this only reads them:

    .venv/bin/python data/studies/validated-nb-ecutrho/table.py
"""
import json
from pathlib import Path

import numpy as np

from betenet.config import QE_VALIDATED
from betenet.paths import DATA_DIR
from betenet.qe.broadening import choose_for_run, lambda_sigma_table
from betenet.qe.parsers import parse_lambda_file
from betenet.qe.refinement import load_refinement

here = Path(__file__).resolve().parent
LEVEL = DATA_DIR / "qe-validated" / "Nb1-bcc"
_ref = load_refinement(LEVEL)  # after `betenet qe refine Nb1-bcc` the 80/640 Ry q 4^3 run is the one it superseded
RUNS = {"80/320 Ry": here / "runs" / "Nb1-bcc",
        "80/640 Ry": LEVEL if _ref is None else LEVEL.parent / _ref["supersedes"][0]["run_dir"]}


def _ecut(d: Path) -> str:
    kv = dict(l.split("=", 1) for l in (d / "scf.in").read_text().splitlines() if l.strip().startswith(("ecutwfc", "ecutrho")))
    return " / ".join(v.strip().rstrip(",") for v in kv.values())


if __name__ == "__main__":
    print(lambda_sigma_table(RUNS, QE_VALIDATED))
    print()
    print("| run | ecutwfc / ecutrho in scf.in | σ | λ | ω_log (K) | lowest ph.x ω (meV, Γ excluded) | lowest interpolated ω (meV) | state |")
    print("|---|---|---|---|---|---|---|---|")
    for label, d in RUNS.items():
        c = choose_for_run(d, QE_VALIDATED)
        row = parse_lambda_file(d / "lambda")[c.index - 1]
        ph = json.loads((d / "ph_freqs.json").read_text())
        f = np.array(ph["freq_meV"])[1:]  # the first q point is Γ
        st = json.loads((d / "status.json").read_text())
        print(f"| {label} | {_ecut(d)} | {c.sigma_Ry:.3f} ({c.method}) | {row.lambda_:.3f} | {row.omega_log_K:.0f} | {f.min():.2f} | "
              f"{st['steps']['matdyn']['min_freq_meV']:.2f} | {st['state']} ({st.get('reason')}) |")
