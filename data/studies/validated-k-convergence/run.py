"""Is the validated level's λ(σ) converged in the dense k mesh?  fcc Al at the validated level (scf 12^3,
q 4^3) with the dense la2F mesh at 24^3 (the level's own run, data/qe-validated/Al1-fcc) and at 36^3
(this study, in runs/).  Run (resumable; ~ one Al el-ph run of CPU):

    OMP_NUM_THREADS=1 .venv/bin/python data/studies/validated-k-convergence/run.py [--table]

With ``--table`` it only prints λ(σ) of both meshes and the plateau each gives
(:func:`betenet.qe.broadening.select_plateau`).
"""
import dataclasses
import sys
from pathlib import Path

from betenet.config import QE_VALIDATED
from betenet.paths import DATA_DIR
from betenet.qe.broadening import select_plateau
from betenet.qe.parsers import parse_lambda_file

here = Path(__file__).resolve().parent
MESHES = {"24^3 (level)": (DATA_DIR / "qe-validated", 48.0), "36^3": (here / "runs", 72.0)}


def run() -> None:
    from betenet.qe.dataset import default_candidates
    from betenet.qe.workflow import run_material

    # the level's run used 40/160 Ry (the provisional cutoff of the PseudoDojo index at the time): same here
    cfg = dataclasses.replace(QE_VALIDATED, k_density_per_invA=72.0, ecutwfc_Ry=40.0, ecutrho_Ry=160.0)
    cands = default_candidates(8, cfg)
    _, structure, proto = cands[cands.ids.index("Al1-fcc")]
    st = run_material("Al1-fcc", structure, cfg, runs_dir=here / "runs", records_dir=here / "records", prototype=proto)
    print(st.state, st.reason or "")


def table() -> None:
    print("| σ (Ry) | " + " | ".join(f"λ, dense {m}" for m in MESHES) + " |")
    print("|---|" + "---|" * len(MESHES))
    rows = {m: parse_lambda_file(d / "Al1-fcc" / "lambda") for m, (d, _) in MESHES.items() if (d / "Al1-fcc" / "lambda").exists()}
    if not rows:
        print("(no finished run yet)")
        return
    first = next(iter(rows.values()))
    for i, r in enumerate(first):
        print(f"| {r.broadening_Ry:.3f} | " + " | ".join(f"{rows[m][i].lambda_:.4f}" if m in rows else "–" for m in MESHES) + " |")
    print()
    for m, rr in rows.items():
        c = select_plateau([r.broadening_Ry for r in rr], [r.lambda_ for r in rr], fallback_index=QE_VALIDATED.elph_smearing_index)
        print(f"- dense {m}: plateau at σ = {c.sigma_Ry:.3f} Ry ({c.method}), λ = {rr[c.index - 1].lambda_:.4f}, "
              f"flatness {100 * c.spread:.1f} %")


if __name__ == "__main__":
    if "--table" not in sys.argv:
        run()
    table()
