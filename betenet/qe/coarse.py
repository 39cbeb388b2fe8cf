"""The coarse (2×2×2) q mesh's ph.x points: a stability pre-check before the el-ph run, then the coarse PhDOS.

The coarse PhDOS (Methods: force constants on a 2×2×2 q mesh, Fourier-interpolated) needs ph.x at the coarse
mesh's points.  When the el-ph q mesh holds them (q 2³, 4³, ...) they are copied from the el-ph run
(:func:`~betenet.qe.phonon_dos.coarse_dyn_subset`).  Otherwise (q 3³, 3×3×2, ...) they are a ph.x run of their
own, and they are the zone-boundary points that the el-ph run never samples: X, M and R of a simple cubic
cell, X and L of fcc, A, M and L of hcp.  An instability there went unseen.  At the validated level five of
the nineteen labels with a separate coarse run had an imaginary mode at a coarse point: B2 AlRu −23.8 meV
at M, B2 MgRh −4.9 meV at M, B2 AlPd −6.0 meV at X, CsCl NbN −11.2 meV at R, L1₀ TiAl −2.7 meV (the
archived ``ph_coarse.out.gz`` logs; CHANGELOG 2026-12-06).  The M point decides the dynamical stability of
B2 compounds, and force constants out to the fourth neighbours are needed to get it right (Ono & Kobayashi,
Sci. Rep. 2022, doi:10.1038/s41598-022-10658-2): an interpolation from a 3³ mesh cannot see it.

Those five ran on odd scf meshes (9³; TiAl 9×9×6), on which a point half a reciprocal vector away has its
k + q off the mesh.  On an even mesh the same points are stable: AlRu at M +14.0 meV at 12³ (−23.8 at 9³;
``betenet qe check-q up0542-AlRu --accuracy validated --k 10 12 --q 0 -0.5 -0.5``), and B2 MgRh's M was
+11.6 meV at the screening level's 6³.  So the coarse points run on an scf of their own (step
``scf_coarse``) whose mesh is a multiple of the coarse mesh: the smallest one at least as dense as the el-ph
run's (:func:`coarse_scf_mesh`; 9³ → 10³), or the el-ph run's own scf when it already is one.

The workflow computes them first (step ``ph_precheck``, before ``ph_elph``), phonons only, stopping at the
first point below the imaginary-mode threshold: such a material is rejected before its el-ph run, the cheap
stability check that the issue on trustworthy labels asks for.  Step ``ph_coarse`` then adds Γ (the el-ph
run's ``elph.dyn1``, copied, where both share the scf) and finds the other points done, so the check costs
a kept material one pw.x scf at most.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import IMAGINARY_MODE_THRESHOLD_MEV
from ..jsonio import read_json
from ..locks import exclusive
from .dyn import parse_dyn_modes
from .inputs import PREFIX, ph_input
from .parsers import PhononResult, QEParseError, gamma_mask, parse_ph_output, parse_pw_output
from .phonon_dos import coarse_divides, coarse_dyn_subset
from .status import FINAL_STATES, load_status, material_dir, material_lock_path, reopen

__all__ = ["PRECHECK_STEP", "SCF_STEP", "coarse_scf_mesh", "coarse_stability", "reopen_for_coarse", "run_coarse",
           "run_precheck", "run_scf_coarse"]

SCF_STEP = "scf_coarse"
PRECHECK_STEP = "ph_precheck"
COARSE_STEP = "ph_coarse"


def coarse_scf_mesh(k_scf: Any, coarse: Any) -> tuple[int, int, int]:
    """The scf mesh of the coarse q points: per direction the smallest multiple of the coarse mesh's
    subdivision that is at least ``k_scf``'s (9 → 10 for a 2×2×2 mesh; an even mesh is kept)."""
    return tuple(-(-int(k) // int(c)) * int(c) for k, c in zip(k_scf, coarse))  # type: ignore[return-value]


def run_scf_coarse(run: Any) -> str | None:
    """Step ``scf_coarse`` of a :class:`~betenet.qe.workflow.MaterialRun`: the scf that the coarse mesh's
    own ph.x points run on, in ``<scratch>/coarse`` (a fresh directory: the points of an earlier scf are
    not reused).  Nothing to do when the el-ph mesh holds the coarse points; the el-ph run's scf copied when
    its mesh is already a multiple of the coarse mesh; else pw.x on :func:`coarse_scf_mesh`.  Returns the
    reason not to go on (scf not converged), else ``None``."""
    mesh, k_scf = run.cfg.coarse_q_grid, tuple(run.grids.k_scf)
    cdir = run.scratch / "coarse"
    shutil.rmtree(cdir, ignore_errors=True)
    if coarse_divides(run.grids.q, mesh):
        run.mark(SCF_STEP, 0.0, reused_from="the el-ph q mesh holds the coarse mesh's points")
        return None
    (cdir / "out").mkdir(parents=True)
    k = coarse_scf_mesh(k_scf, mesh)
    if k == k_scf:
        shutil.copytree(run.scratch / "out" / f"{PREFIX}.save", cdir / "out" / f"{PREFIX}.save")
        run.mark(SCF_STEP, 0.0, k=list(k), reused_from="the el-ph run's scf (its mesh is a multiple of the coarse mesh)")
        return None
    wall = run.qe(SCF_STEP, "pw.x", run.pw(run.relaxed, "scf", k), cwd=cdir)
    res = parse_pw_output(cdir / f"{SCF_STEP}.out")
    run.mark(SCF_STEP, wall, k=list(k), fermi_energy_eV=res.fermi_energy_eV, energy_Ry=res.total_energy_Ry)
    return None if res.converged else f"scf on the coarse points' mesh {k} did not converge ({res.errors})"


def _coarse_ph(run: Any, **kw: Any) -> tuple[float, PhononResult, dict[str, Any]]:
    """ph.x (phonons only) on the coarse q mesh in ``<scratch>/coarse``, on step ``scf_coarse``'s scf (``kw``:
    :meth:`~betenet.qe.workflow.MaterialRun.ph_by_q`'s); points done before (by the pre-check) are kept."""
    cdir = run.scratch / "coarse"

    def make_input(only_q: int | None) -> str:
        return ph_input(run.relaxed, prefix=PREFIX, outdir="./out", q=run.cfg.coarse_q_grid, fildyn="coarse.dyn",
                        elph=False, tr2_ph=run.cfg.tr2_ph, only_q=only_q).to_str()

    return run.ph_by_q(COARSE_STEP, make_input, cwd=cdir, fildyn="coarse.dyn", **kw)


def run_precheck(run: Any) -> str | None:
    """Step ``ph_precheck`` of a :class:`~betenet.qe.workflow.MaterialRun`: the coarse mesh's points other than
    Γ, where the el-ph q mesh does not hold them.  Marks the step (wall 0 and ``reused_from`` when there is
    nothing to do) and returns the rejection detail when a point is unstable, else ``None``."""
    mesh = run.cfg.coarse_q_grid
    if coarse_divides(run.grids.q, mesh):
        run.mark(PRECHECK_STEP, 0.0, reused_from="the el-ph q mesh holds the coarse mesh's points")
        return None
    if not run.cfg.ph_split_q:  # one ph.x call for the whole coarse mesh, in step ph_coarse
        run.mark(PRECHECK_STEP, 0.0, skipped="QEConfig.ph_split_q off: the coarse points run in one call, after the el-ph run")
        return None
    wall, ph, extra = _coarse_ph(run, skip_gamma=True, stop_below_meV=-IMAGINARY_MODE_THRESHOLD_MEV)
    low = ph.min_freq_meV()
    run.mark(PRECHECK_STEP, wall, min_freq_meV=round(low, 4), **extra)
    at = extra.get("stopped_at_q")
    if at is None:
        return None
    q = np.round(ph.q_cart_2pi_alat[-1], 4).tolist()
    return (f"lowest frequency {low:.2f} meV < -{IMAGINARY_MODE_THRESHOLD_MEV} meV at q = {q} (2π/alat), point {at} "
            f"of the coarse {'x'.join(map(str, mesh))} mesh's {extra['n_q_irr']}, computed before the el-ph run "
            f"({PRECHECK_STEP})")


def run_coarse(run: Any) -> None:
    """Step ``ph_coarse``: the coarse mesh's dynamical matrices, copied from the el-ph run where its mesh holds
    them, else ph.x's (Γ copied from the el-ph run where both share the scf, the other points the
    pre-check's).  The step's wall is what it computed itself: the pre-check's points are in that step's wall
    (both in its log)."""
    mesh = run.cfg.coarse_q_grid
    if coarse_divides(run.grids.q, mesh):
        t0 = time.perf_counter()
        shutil.rmtree(run.scratch / "coarse", ignore_errors=True)
        n = coarse_dyn_subset(run.scratch, "elph.dyn", run.scratch / "coarse", "coarse.dyn", mesh)
        run.mark(COARSE_STEP, time.perf_counter() - t0, reused_from=f"{n} of the el-ph dynamical-matrix files (q subset)")
        return
    gamma = run.scratch / "elph.dyn1"  # the el-ph run's Γ: the same dynamical matrix where the scf is the same
    same_scf = coarse_divides(run.grids.k_scf, mesh)  # scf_coarse then copied the el-ph run's scf
    reuse = same_scf and run.cfg.ph_split_q and gamma.is_file() and not np.any(parse_dyn_modes(gamma)[0])
    wall, _, extra = _coarse_ph(run, gamma_from=gamma if reuse else None)
    pre = sum((run.status.steps.get(PRECHECK_STEP) or {}).get("q_wall_s") or [])
    run.mark(COARSE_STEP, wall - pre, **extra)


def coarse_stability(runs_dir: Path, coarse_q_grid: Any = (2, 2, 2)) -> "Any":
    """The lowest frequency off Γ that ph.x found at the coarse mesh's own points, for every finished material
    of ``runs_dir`` whose coarse points were a ph.x run of their own (their archived ``ph_coarse.out.gz``):
    one row each (``material_id, state, q, k_scf, coarse_k_commensurate, min_freq_meV, q_2pi_alat``), the
    unstable first.  ``k_scf``: the scf mesh those points ran on (step ``scf_coarse``'s where it ran, else the
    el-ph run's); ``coarse_k_commensurate``: whether it is a multiple of
    the coarse mesh (each q point's k + q on the mesh).  Runs moved aside (``.bak-``) are not read."""
    import pandas as pd

    rows = []
    for d in sorted(Path(runs_dir).iterdir()):
        log, grids = d / f"{COARSE_STEP}.out.gz", d / "grids.json"
        if ".bak-" in d.name or not log.is_file() or not grids.is_file():
            continue
        status = load_status(d.name, Path(runs_dir))
        state = status.state
        if state not in FINAL_STATES:
            continue
        g = read_json(grids, error=QEParseError)
        k = ((status.steps or {}).get(SCF_STEP) or {}).get("k") or g["k_scf"]
        ph = parse_ph_output(log, require_done=False)
        off = ~gamma_mask(ph.q_cart_2pi_alat)
        if not off.any():
            continue
        low = ph.freq_meV[off].min(axis=1)
        i = int(np.argmin(low))
        rows.append({"material_id": d.name, "state": state, "q": "x".join(map(str, g["q"])),
                     "k_scf": "x".join(map(str, k)), "coarse_k_commensurate": coarse_divides(k, coarse_q_grid),
                     "min_freq_meV": round(float(low[i]), 2),
                     "q_2pi_alat": tuple(round(float(x), 4) for x in ph.q_cart_2pi_alat[off][i])})
    cols = ["material_id", "state", "q", "k_scf", "coarse_k_commensurate", "min_freq_meV", "q_2pi_alat"]
    return pd.DataFrame(rows, columns=cols).sort_values("min_freq_meV", kind="stable").reset_index(drop=True)


def reopen_for_coarse(material_id: str, coarse_q_grid: Any = (2, 2, 2), *, runs_dir: Path) -> str:
    """Send a kept material whose coarse points were computed on the el-ph run's scf, on a mesh that is no
    multiple of the coarse mesh (before step ``scf_coarse`` existed), back to ``pending`` (``status.json`` copied
    to ``status.json.bak-<time>`` first; the earlier verdict kept in ``quality.reopened``), under the
    material's lock.  The next ``betenet qe run --ids ID`` redoes the cheap pw.x steps, restores the el-ph q
    points from ``ph_elph.q/`` (none recomputed), computes the coarse points on :func:`coarse_scf_mesh` (the
    pre-check rejects it if one is unstable there) and rebuilds the record.  Returns what was done;
    ``ValueError`` naming the file when the material is not such a case."""
    runs_dir = Path(runs_dir)
    with exclusive(material_lock_path(material_id, runs_dir), f"the QE run of material {material_id!r}"):
        d = material_dir(material_id, runs_dir)
        status = load_status(material_id, runs_dir)
        where, steps = d / "status.json", status.steps or {}
        if status.state != "kept":
            raise ValueError(f"{where}: state {status.state!r}; expected kept")
        if SCF_STEP in steps or (steps.get(COARSE_STEP) or {}).get("reused_from"):
            raise ValueError(f"{where}: the coarse points were not a ph.x run on the el-ph scf "
                             f"({SCF_STEP}: {steps.get(SCF_STEP)}, {COARSE_STEP}: {steps.get(COARSE_STEP)})")
        k_scf = tuple(read_json(d / "grids.json", error=QEParseError)["k_scf"])
        if coarse_divides(k_scf, coarse_q_grid):
            raise ValueError(f"{d / 'grids.json'}: scf mesh {k_scf} is already a multiple of the coarse mesh {tuple(coarse_q_grid)}")
        return reopen(d, status, f"reopened: the coarse points ran on the odd scf mesh {'x'.join(map(str, k_scf))}; "
                      f"redone on {'x'.join(map(str, coarse_scf_mesh(k_scf, coarse_q_grid)))} (betenet.qe.coarse)")
