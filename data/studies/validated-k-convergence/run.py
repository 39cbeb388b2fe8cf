"""Is the validated level's λ(σ) converged in the k meshes?  fcc Al at the validated level (dense la2F mesh
24^3, scf mesh of ph.x 12^3, q 4^3: the level's own run, data/qe-validated/Al1-fcc) against the same with
1.5x the dense density (k_density 72 per Å^-1; the commensuration then gives dense 32^3 with scf 16^3, so
both meshes are denser), in runs/.  Run (resumable; ~2.5 Al el-ph runs of CPU):

    OMP_NUM_THREADS=1 .venv/bin/python data/studies/validated-k-convergence/run.py [--table]

With ``--table`` it only prints λ(σ) of both meshes and the plateau each gives
(:func:`betenet.qe.broadening.select_plateau`).
"""
import dataclasses
import json
import sys
from pathlib import Path

from betenet.config import QE_VALIDATED
from betenet.paths import DATA_DIR
from betenet.qe.broadening import lambda_sigma_table

here = Path(__file__).resolve().parent
MESHES = {"level": DATA_DIR / "qe-validated", "denser": here / "runs"}


def run() -> None:
    from betenet.qe.dataset import default_candidates
    from betenet.qe.workflow import run_material

    # the level's run used 40/160 Ry (the provisional cutoff of the PseudoDojo index at the time): same here
    cfg = dataclasses.replace(QE_VALIDATED, k_density_per_invA=72.0, ecutwfc_Ry=40.0, ecutrho_Ry=160.0)
    cands = default_candidates(8, cfg)
    _, structure, proto = cands[cands.ids.index("Al1-fcc")]
    st = run_material("Al1-fcc", structure, cfg, runs_dir=here / "runs", records_dir=here / "records", prototype=proto)
    print(st.state, st.reason or "")


def _mesh(d: Path) -> str:
    g = json.loads((d / "Al1-fcc" / "grids.json").read_text())
    return f"dense {g['k'][0]}^3 / scf {g['k_scf'][0]}^3 / q {g['q'][0]}^3"


def table() -> None:
    runs = {f"{m} ({_mesh(d)})": d / "Al1-fcc" for m, d in MESHES.items() if (d / "Al1-fcc" / "grids.json").exists()}
    print(lambda_sigma_table(runs, QE_VALIDATED, tolerances=(0.05, QE_VALIDATED.elph_plateau_rel_tol)))


if __name__ == "__main__":
    if "--table" not in sys.argv:
        run()
    table()
