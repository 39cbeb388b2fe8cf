"""Is the validated level's λ converged in the q mesh for a bcc d metal?  bcc Ta at the validated level (dense
la2F mesh 24^3, ph.x's scf mesh 12^3, q 4^3: the level's own run, data/qe-validated/Ta1-bcc) against the same
calculation with q 6^3 (q density 12 per Å^-1 instead of 8; the k meshes and cutoffs are the level run's), in
runs/.  bcc Nb at the level's q 4^3 was rejected for a Fourier-interpolation artefact (matdyn dips below zero
between the q points although every ph.x point is stable) and bcc Ta's level run gives λ ≈ 1.0, above the
tunnelling value 0.73: both point at the q mesh.  Run (resumable; ~2x the level's Ta el-ph run):

    OMP_NUM_THREADS=1 .venv/bin/python data/studies/validated-q-convergence/run.py [--table] [--material Nb1-bcc]
        [--k-density 74]

``--material`` (default Ta1-bcc) takes another one-atom material of the level; ``--k-density`` (per Å^-1, 2π
included; default the level's) also makes the dense mesh denser (the scf mesh stays half of it).  With
``--table`` it only prints λ(σ) of both q meshes, the plateau each gives
(:func:`betenet.qe.broadening.select_plateau`), ω_log and the lowest interpolated phonon frequency.
"""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from betenet.config import QE_VALIDATED
from betenet.paths import DATA_DIR
from betenet.qe.broadening import lambda_sigma_table
from betenet.qe.dataset import default_candidates
from betenet.qe.refinement import load_refinement
from betenet.records import load_record

def _arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


MATERIAL = _arg("--material", "Ta1-bcc")
K_DENSITY = float(_arg("--k-density", "nan"))
here = Path(__file__).resolve().parent
LEVEL = DATA_DIR / "qe-validated" / MATERIAL
REFINEMENT = load_refinement(LEVEL)
if REFINEMENT is None:  # the level's run and this study's denser-q rerun: (run directory, record)
    RUNS = {"level": (LEVEL, DATA_DIR / "records-validated" / f"{MATERIAL}.json"),
            "denser q": (here / "runs" / MATERIAL, here / "records" / f"{MATERIAL}.json")}
else:  # the denser rerun became the level's refined run (`betenet qe refine`); the q 4^3 run is the one it superseded
    RUNS = {"level": (LEVEL.parent / REFINEMENT["supersedes"][0]["run_dir"], Path("/nonexistent")),
            "denser q": (LEVEL, DATA_DIR / "records-validated" / f"{MATERIAL}.json")}


def config():
    """The level run's settings (the cutoffs its scf.in ran at) with q density 12 per Å^-1."""
    scf = (DATA_DIR / "qe-validated" / MATERIAL / "scf.in").read_text()
    ecut = {k.strip(): float(v.strip().rstrip(",")) for k, v in (l.split("=", 1) for l in scf.splitlines()
                                                                  if l.strip().startswith(("ecutwfc", "ecutrho")))}
    cfg = dataclasses.replace(QE_VALIDATED, q_density_per_invA=12.0, ecutwfc_Ry=ecut["ecutwfc"], ecutrho_Ry=ecut["ecutrho"])
    if np.isfinite(K_DENSITY):
        cfg = dataclasses.replace(cfg, k_density_per_invA=K_DENSITY)
    return cfg


def run() -> None:
    from betenet.qe.workflow import run_material

    if REFINEMENT is not None:
        sys.exit(f"{MATERIAL} is now the validated level's refined run: betenet qe run --accuracy validated --ids {MATERIAL}")
    cfg = config()
    cands = default_candidates(8, cfg)
    _, structure, proto = cands[cands.ids.index(MATERIAL)]
    st = run_material(MATERIAL, structure, cfg, runs_dir=here / "runs", records_dir=here / "records", prototype=proto)
    print(st.state, st.reason or "")


def _mesh(d: Path) -> str:
    g = json.loads((d / "grids.json").read_text())
    return f"dense {g['k'][0]}^3 / scf {g['k_scf'][0]}^3 / q {g['q'][0]}^3"


def table() -> None:
    runs = {f"{m} ({_mesh(d)})": d for m, (d, _) in RUNS.items() if (d / "grids.json").exists() and (d / "lambda").exists()}
    print(lambda_sigma_table(runs, QE_VALIDATED))
    for m, (_, p) in RUNS.items():
        if p.exists():
            rec = load_record(p)
            w, g = np.asarray(rec.phdos_omega_meV), np.asarray(rec.phdos_total)
            below = float(np.trapezoid(g[w < 0], w[w < 0])) / float(np.trapezoid(g, w)) if (w < 0).any() else 0.0
            print(f"- {m} record: λ {rec.lambda_:.3f}, ω_log {rec.omega_log_K:.0f} K, ω₂ {rec.omega_2_K:.0f} K, "
                  f"T_c(AD, μ*=0.1) {rec.tc_ad_K:.2f} K, PhDOS weight below 0: {100 * below:.2f} %, flags {rec.flags}")


if __name__ == "__main__":
    if "--table" not in sys.argv:
        run()
    table()
