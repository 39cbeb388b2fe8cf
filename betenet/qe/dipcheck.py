"""The interpolation-dip check: DFPT at the point where matdyn's Fourier interpolation goes imaginary.

A material's phonons are computed by ph.x on a coarse q mesh and Fourier-interpolated by matdyn.x onto a
dense one.  Between the mesh points the interpolation can dip below zero while every computed point is
stable: B2 ScAl at q 3³ (lowest ph.x mode 6.2 meV) dips to -2.0 meV on the [0ξξ] transverse-acoustic
branch near Γ, on 3 of matdyn's 455 irreducible 24³ points; bcc V (q 4³) to -5.9 meV, B1 TaC (q 4³) to
-3.0 meV.  The imaginary-mode filter cannot tell an instability between the mesh points from an
interpolation artefact, and rejecting on the interpolation loses the material (and its CPU) on a guess.

With ``QEConfig.dip_check`` the workflow (step ``ph_dip``, after matdyn) computes the phonons by DFPT
(ph.x, no el-ph, one q point) at the deepest interpolated point and :func:`dip_verdict` decides:

* DFPT unstable there (below -1 meV): rejected for imaginary modes, with DFPT's frequency in the detail;
* stable, and the dip covers at most ``QEConfig.dip_max_fraction`` of the interpolation mesh's
  irreducible points: an interpolation artefact; the material goes on to the α²F filters and, if kept,
  its record says so (``quality.interpolation_dip``);
* a dip wider than that: rejected; a denser q mesh is the way back (:mod:`betenet.qe.refinement`).  DFPT is
  then not run (it could not change the verdict; B1 TaC's dip point has 1,100 k points).

Only the deepest point is checked (a second, separate dip region would not be).  The fraction counts
irreducible points, not their weights: points on symmetry lines have small stars, so it over-states
a dip along a line, the conservative side.  The α²F of a kept material is still the interpolation's:
the few modes below zero carry no weight in its positive-frequency spectrum.

:func:`betenet.qe.status.reopen_for_dip_check` sends a material rejected before this check (for a dip alone) back to
``pending``; the next ``betenet qe run`` resumes it from its relaxation, its el-ph q points restored from
``ph_elph.q/`` (no el-ph recomputed), and runs the check.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import QEConfig
from ..constants import CMM1_IN_MEV, IMAGINARY_MODE_THRESHOLD_MEV
from .convergence import snap_q
from .inputs import PREFIX, ph_input
from .parsers import QEParseError, parse_matdyn_freq, parse_ph_output

__all__ = ["DIP_STEP", "Dip", "dip_candidate", "dip_verdict", "find_dip", "run_dip_check", "too_wide"]

#: The workflow step (status.json ``steps`` key, ``<step>.in`` / ``.out.gz`` in the run directory).
DIP_STEP = "ph_dip"


def dip_candidate(steps: Mapping[str, Any], cfg: QEConfig) -> bool:
    """True when ``cfg`` checks dips, every ph.x point is stable and matdyn's mesh goes below -1 meV."""
    ph = (steps.get("ph_elph") or {}).get("min_freq_meV")
    md = (steps.get("matdyn") or {}).get("min_freq_meV")
    thr = -IMAGINARY_MODE_THRESHOLD_MEV
    return bool(cfg.dip_check) and ph is not None and md is not None and float(ph) >= thr and float(md) < thr


@dataclass(frozen=True)
class Dip:
    """The deepest point of matdyn's interpolation mesh and how much of the mesh dips."""

    q_cart_2pi_alat: tuple[float, float, float]
    min_freq_meV: float
    n_below: int  #: irreducible mesh points with a mode below -1 meV
    n_points: int  #: irreducible points of the interpolation mesh

    @property
    def fraction(self) -> float:
        return self.n_below / self.n_points


def too_wide(n_below: int, n_points: int, cfg: QEConfig) -> bool:
    """True when the dip covers more than ``QEConfig.dip_max_fraction`` of the mesh: rejected whatever DFPT says."""
    return n_below / n_points > cfg.dip_max_fraction


def find_dip(freq_path: Path | str) -> Dip:
    """:class:`Dip` of a matdyn ``flfrq`` file (q in Cartesian 2π/alat, as ph.x's ``xq`` wants it)."""
    q, cm1 = parse_matdyn_freq(Path(freq_path))
    lowest = cm1.min(axis=1) * CMM1_IN_MEV
    i = int(np.argmin(lowest))
    n_below = int(np.sum(lowest < -IMAGINARY_MODE_THRESHOLD_MEV))
    return Dip(tuple(float(x) for x in q[i]), float(lowest[i]), n_below, len(lowest))  # type: ignore[arg-type]


def dip_verdict(step: Mapping[str, Any], cfg: QEConfig) -> tuple[bool, str]:
    """``(artefact, detail)`` of a finished ``ph_dip`` step: ``artefact`` is True when DFPT at the dip is
    stable and the dip is narrow enough (``QEConfig.dip_max_fraction``); ``detail`` says which and why."""
    try:
        dfpt = None if step["min_freq_meV"] is None else float(step["min_freq_meV"])
        depth = float(step["matdyn_min_freq_meV"])
        n_below, n_points = int(step["matdyn_points_below"]), int(step["matdyn_points"])
        q = [round(float(x), 4) for x in step["q_cart_2pi_alat"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise QEParseError(f"status.json steps[{DIP_STEP!r}]: expected min_freq_meV, matdyn_min_freq_meV, "
                           f"matdyn_points_below, matdyn_points, q_cart_2pi_alat ({exc})") from None
    where = f"matdyn dips to {depth:.2f} meV at q = {q} (2π/alat) on {n_below}/{n_points} interpolated points"
    if too_wide(n_below, n_points, cfg):  # run_dip_check then runs no DFPT point
        dfpt_note = "DFPT at the dip not run, it could not change the verdict" if dfpt is None else f"DFPT there {dfpt:.2f} meV"
        return False, (f"{where} (> {cfg.dip_max_fraction:.0%}): the q mesh is too coarse for this material "
                       f"(betenet qe refine --q-density ...); {dfpt_note}")
    if dfpt is None:  # checked under a smaller dip_max_fraction: no DFPT point to decide with
        return False, f"{where}; DFPT at the dip not run (the dip was wider than the limit when it was checked)"
    if dfpt < -IMAGINARY_MODE_THRESHOLD_MEV:
        return False, f"{where}; DFPT there gives {dfpt:.2f} meV: unstable between the ph.x q points"
    return True, f"{where}; DFPT there is stable ({dfpt:.2f} meV): an interpolation artefact"


def run_dip_check(run: Any) -> bool:
    """The ``ph_dip`` step of a :class:`~betenet.qe.workflow.MaterialRun` (``run``): one phonon-only ph.x
    call at matdyn's deepest point, in the scratch directory that holds the el-ph run's scf.  Marks the step
    (skipped, with wall 0, when the material is no candidate) and returns whether there is a verdict to take
    (ph.x ran, or the dip is too wide for it to matter)."""
    steps = run.status.steps or {}
    if not dip_candidate(steps, run.cfg):
        run.mark(DIP_STEP, 0.0, skipped="no interpolation dip" if run.cfg.dip_check else "dip check off at this level")
        return False
    dip = find_dip(run.scratch / "matdyn.freq")
    found = {"matdyn_min_freq_meV": round(dip.min_freq_meV, 4), "matdyn_points_below": dip.n_below, "matdyn_points": dip.n_points}
    if too_wide(dip.n_below, dip.n_points, run.cfg):  # rejected whatever DFPT says there: not worth its CPU
        run.mark(DIP_STEP, 0.0, q_cart_2pi_alat=list(dip.q_cart_2pi_alat), **found, min_freq_meV=None,
                 skipped=f"dip on {dip.fraction:.1%} of the mesh > QEConfig.dip_max_fraction")
        return True
    structure = run.relaxed
    # matdyn prints q with 6 decimals: back onto its mesh point (1/24 is 0.041667), as the check-q tool does
    q = snap_q(structure.lattice.matrix, dip.q_cart_2pi_alat)
    shutil.rmtree(run.scratch / "out" / "_ph0", ignore_errors=True)  # the last el-ph point's files
    text = ph_input(structure, prefix=PREFIX, outdir="./out", q=None, xq=q, fildyn="dip.dyn", elph=False,
                    tr2_ph=run.cfg.tr2_ph).to_str()
    wall = run.qe(DIP_STEP, "ph.x", text)
    ph = parse_ph_output(run.scratch / f"{DIP_STEP}.out")
    run.mark(DIP_STEP, wall, q_cart_2pi_alat=[round(x, 10) for x in q], **found,
             freq_meV=[round(float(f), 4) for f in np.ravel(ph.freq_meV)], min_freq_meV=round(float(np.min(ph.freq_meV)), 4))
    return True
