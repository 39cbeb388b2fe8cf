"""Single-q convergence checks of a finished (or rejected) material's phonons.

Is an imaginary mode of ``data/qe/<ID>`` physical, or a property of the settings?
:func:`single_q_phonons` reruns the material's own ``scf.in`` (relaxed cell, pseudopotentials,
cutoffs, smearing) with another scf k mesh and/or cutoff and/or smearing, then ``ph.x`` at one q point,
and returns the frequencies.  At the dataset's own settings it reproduces the frequencies stored in
``ph_freqs.json`` (a test checks this on fcc Al), so any change comes from the setting that was changed.
``data/studies/2026-11-25-scf-k-convergence`` is such a study (fcc Rh at W: -35 meV with the 6x6x6 scf
mesh of the ``screening`` level, +24.6 meV with 12x12x12).

    betenet qe check-q Rh1-fcc --k 6 8 12 [--q QX QY QZ] [--ecutwfc E --ecutrho R] [--degauss D] [--frozen]

Is ph.x's linear response right for this material at these settings?  :func:`frozen_single_q` freezes the
highest mode ph.x found at a zone-boundary q (2q a reciprocal-lattice vector) in a twice-as-large cell and
takes its frequency from the ground-state forces on the same k points
(:func:`betenet.qe.pseudo.frozen.frozen_mode`): the two differ only by the method (``--frozen``).

:func:`relaxed_volume` does the same for the geometry: it reruns the material's own ``relax.in``
(vc-relax from the prototype) with other cutoffs and compares the relaxed volume with ``relaxed.json``
(``betenet qe check-relax ID ... --ecutwfc 60 --ecutrho 480``).

Nothing under ``data/qe`` is written: each run has its own directory under ``--workdir``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pymatgen.core import Structure

from ..paths import PSEUDO_DIR
from .dyn import parse_dyn_modes
from .inputs import PREFIX, Namelist, NamelistInput, PWInput, QEInputError
from .parsers import gamma_mask, parse_ph_output, parse_pw_output
from .pseudo import PseudoLibrary
from .pseudo.frozen import frozen_mode
from .runner import run_qe

__all__ = ["FROZEN_STUDY_DIR", "RelaxResult", "SingleQResult", "frozen_audits", "frozen_single_q", "lowest_q", "relaxed_volume",
           "single_q_phonons", "snap_q"]

#: Saved :func:`frozen_single_q` results on the labels' own structures (``runs/<id>-<q>.json``; chapter 00).
FROZEN_STUDY_DIR: Path = PSEUDO_DIR.parent / "studies" / "linear-response"


@dataclass
class SingleQResult:
    material_id: str
    k_scf: tuple[int, int, int]
    q_cart_2pi_alat: tuple[float, float, float]
    freq_meV: list[float]
    ecutwfc_Ry: float
    ecutrho_Ry: float
    degauss_Ry: float
    wall_s: dict[str, float] = field(default_factory=dict)
    workdir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def lowest_q(material_dir: str | Path) -> tuple[float, float, float]:
    """The off-Γ q point (2π/alat, as ph.x prints it) of the lowest frequency in ``ph_freqs.json``."""
    path = Path(material_dir) / "ph_freqs.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no ph.x frequencies (the material's el-ph step has not finished)")
    ph = json.loads(path.read_text())
    q = np.asarray(ph["q_cart_2pi_alat"], dtype=float)
    f = [min(v) for v in ph["freq_meV"]]
    off = np.flatnonzero(~gamma_mask(q)).tolist()
    if not off:
        raise ValueError(f"{path}: only Γ was computed")
    i = min(off, key=lambda j: f[j])
    return tuple(float(x) for x in q[i])  # type: ignore[return-value]


def snap_q(lattice_A: Any, q_cart_2pi_alat: Sequence[float], *, max_denominator: int = 60,
           tol: float = 1e-6) -> tuple[float, float, float]:
    """``q`` (Cartesian, 2π/alat, alat = |a1| of ``lattice_A``) moved onto the point whose crystal coordinates are the
    nearest fractions of denominator ≤ ``max_denominator`` (any q mesh up to 60 per axis), when each is within
    ``tol`` of one; else q is returned as given.  ph.x prints q with seven decimals (1e-7 in crystal coordinates),
    and a q a hair off a mesh point makes k + q miss the k mesh: 4e-6 off H moved PseudoDojo Mo's ph.x phonon from
    18.245 to 17.554 meV (CHANGELOG 2026-12-05)."""
    lat = np.asarray(lattice_A, dtype=float)
    alat = float(np.linalg.norm(lat[0]))
    q = np.asarray(q_cart_2pi_alat, dtype=float)
    frac = lat @ q / alat
    exact = np.array([float(Fraction(float(x)).limit_denominator(max_denominator)) for x in frac])
    if np.max(np.abs(exact - frac)) > tol:
        return tuple(float(x) for x in q)  # type: ignore[return-value]
    return tuple(float(x) for x in np.linalg.solve(lat, exact * alat))  # type: ignore[return-value]


def _rerun_input(path: Path, workdir: Path, pseudo_dir: str | Path | None, ecutwfc_Ry: float | None,
                 ecutrho_Ry: float | None, **control: Any) -> PWInput:
    """A material's own pw.x input ``path`` made ready to rerun in the empty ``workdir``: the project's
    pseudopotentials (or ``pseudo_dir``), a local outdir, and the cutoffs that are not ``None``."""
    if workdir.exists() and any(workdir.iterdir()):
        raise FileExistsError(f"{workdir} is not empty; choose a new --workdir (nothing is overwritten)")
    pw = PWInput.from_str(path.read_text(), origin=str(path))
    pdir = Path(pseudo_dir) if pseudo_dir is not None else PSEUDO_DIR
    missing = [f for _, _, f in pw.species if not (pdir / f).exists()]
    if missing:
        raise QEInputError(f"pseudopotential(s) {missing} not found in {pdir} (set pseudo_dir)")
    pw.control.update(pseudo_dir=str(pdir.resolve()) + "/", outdir="./out", prefix=PREFIX, **control)
    if ecutwfc_Ry is not None:
        pw.system["ecutwfc"] = float(ecutwfc_Ry)
    if ecutrho_Ry is not None:
        pw.system["ecutrho"] = float(ecutrho_Ry)
    return pw


def single_q_phonons(
    material_dir: str | Path,
    q_cart_2pi_alat: Sequence[float],
    *,
    k_scf: Sequence[int] | int,
    workdir: str | Path,
    pseudo_dir: str | Path | None = None,
    ecutwfc_Ry: float | None = None,
    ecutrho_Ry: float | None = None,
    degauss_Ry: float | None = None,
    tr2_ph: float = 1e-12,
    omp_threads: int = 1,
    timeout_s: float = 3600.0,
) -> SingleQResult:
    """``pw.x`` scf + ``ph.x`` at one q for ``data/qe/<ID>`` with changed settings (module docstring).

    ``q_cart_2pi_alat``: Cartesian, units 2π/alat, alat = the length of the first cell vector (how
    ph.x prints q for the dataset's ``ibrav=0`` cells; :func:`lowest_q` gives the worst one).
    ``k_scf``: the scf k mesh (one int = cubic).  ``None`` settings keep the material's own.
    ``workdir`` must not exist yet or be empty: nothing is overwritten.
    """

    material_dir = Path(material_dir)
    scf_path = material_dir / "scf.in"
    if not scf_path.exists():
        raise FileNotFoundError(f"{scf_path}: no scf input (has the material passed its scf step?)")
    k = (int(k_scf),) * 3 if np.isscalar(k_scf) else tuple(int(x) for x in k_scf)  # type: ignore[arg-type]
    if len(k) != 3 or min(k) < 1:
        raise ValueError(f"k_scf must be one or three positive integers, got {k_scf!r}")
    q = tuple(float(x) for x in q_cart_2pi_alat)
    if len(q) != 3 or not np.all(np.isfinite(q)):
        raise ValueError(f"q must be three finite numbers (2π/alat), got {q_cart_2pi_alat!r}")
    workdir = Path(workdir)
    pw = _rerun_input(scf_path, workdir, pseudo_dir, ecutwfc_Ry, ecutrho_Ry, calculation="scf")
    q = snap_q(pw.lattice_A, q)  # ph.x's printed q (7 decimals) back onto its mesh point
    if degauss_Ry is not None:
        pw.system["degauss"] = float(degauss_Ry)
    pw.kpoints = k
    wall = {"scf": run_qe("pw.x", pw.to_str(), workdir, "scf", omp_threads=omp_threads, timeout_s=timeout_s)}
    masses = {f"amass({i + 1})": float(m) for i, (_, m, _) in enumerate(pw.species)}  # the scf's own order
    params = {"prefix": PREFIX, "outdir": "./out", "fildyn": "dyn", "tr2_ph": float(tr2_ph), **masses}
    ph_text = NamelistInput(Namelist("inputph", params), title="betenet single-q check",
                            trailer=" ".join(f"{x:.12f}" for x in q) + "\n").to_str()
    wall["ph"] = run_qe("ph.x", ph_text, workdir, "ph", omp_threads=omp_threads, timeout_s=timeout_s)
    ph = parse_ph_output(workdir / "ph.out")
    res = SingleQResult(
        material_id=material_dir.name, k_scf=k, q_cart_2pi_alat=q, freq_meV=[float(x) for x in ph.freq_meV[-1]],
        ecutwfc_Ry=float(pw.system["ecutwfc"]), ecutrho_Ry=float(pw.system.get("ecutrho", 4 * pw.system["ecutwfc"])),
        degauss_Ry=float(pw.system.get("degauss", 0.0)), wall_s={k_: round(v, 1) for k_, v in wall.items()},
        workdir=str(workdir),
    )
    (workdir / "result.json").write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    return res


def frozen_single_q(res: SingleQResult, lib: PseudoLibrary, *, u_A: float = 0.02, timeout_s: float = 3600.0) -> dict[str, Any]:
    """The highest mode of a :func:`single_q_phonons` run (its ``dyn`` file) frozen on the same k points, cutoffs and
    smearing (:func:`betenet.qe.pseudo.frozen.frozen_mode`, in ``<workdir>/frozen``; ``lib``: the level's
    pseudopotentials, the files the run used): ``{"phx_meV", "frozen_meV", "diff_pct", "force_alignment", ...}``,
    also written to ``<workdir>/frozen.json``.  :class:`ValueError` unless q is a zone-boundary point (each crystal
    coordinate 0 or 1/2) and the mesh holds k + q (even where q has 1/2)."""
    wd = Path(res.workdir)
    st = PWInput.from_str((wd / "scf.in").read_text(), origin=str(wd / "scf.in")).structure
    lat = st.lattice.matrix
    q_frac = lat @ np.asarray(res.q_cart_2pi_alat) / np.linalg.norm(lat[0])  # alat = |a1| for these ibrav=0 cells
    if not np.allclose(2 * q_frac, np.round(2 * q_frac), atol=1e-5):
        raise ValueError(f"q = {res.q_cart_2pi_alat} (2π/alat) is {np.round(q_frac, 4).tolist()} in crystal coordinates: "
                         "a frozen mode needs each to be 0 or 1/2")
    half = np.abs(np.mod(np.round(2 * q_frac), 2)) == 1
    if any(h and n % 2 for h, n in zip(half, res.k_scf)):
        raise ValueError(f"k mesh {res.k_scf} does not hold k + q for q = {np.round(q_frac, 4).tolist()}: use even "
                         "subdivisions where q has 1/2")
    _, w, modes = parse_dyn_modes(wd / "dyn")
    fz = frozen_mode(st, np.mod(np.round(2 * q_frac), 2) / 2, modes[int(np.argmax(w))], res.ecutwfc_Ry, wd / "frozen", lib=lib,
                     mesh=res.k_scf, ecutrho_Ry=res.ecutrho_Ry, degauss_Ry=res.degauss_Ry, u_A=u_A, timeout_s=timeout_s)
    phx = float(max(res.freq_meV))
    out = {"material_id": res.material_id, "phx_meV": phx, "frozen_meV": fz["omega_meV"],
           "diff_pct": 100 * (phx - fz["omega_meV"]) / fz["omega_meV"], **{k: v for k, v in fz.items() if k != "omega_meV"}}
    (wd / "frozen.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def frozen_audits(study_dir: Path | str = FROZEN_STUDY_DIR) -> list[dict[str, Any]]:
    """One row per saved :func:`frozen_single_q` result (``<study_dir>/runs/*.json``): material, q (crystal), k mesh,
    cutoffs, ph.x's and the frozen frequency of the mode, their difference and the forces' alignment."""
    rows = []
    for f in sorted((Path(study_dir) / "runs").glob("*.json")):
        d = json.loads(f.read_text())
        rows.append({"material": d["material_id"], "level": d.get("accuracy", ""), "q (crystal)": " ".join(f"{x:g}" for x in d["q_frac"]),
                     "k": "x".join(str(n) for n in d["kpoints"]), "cutoffs_Ry": f"{d['ecutwfc_Ry']:g}/{d['ecutrho_Ry']:g}",
                     "phx_meV": d["phx_meV"], "frozen_meV": d["frozen_meV"], "diff_pct": d["diff_pct"],
                     "force_alignment": d["force_alignment"]})
    return rows


@dataclass
class RelaxResult:
    material_id: str
    ecutwfc_Ry: float
    ecutrho_Ry: float
    volume_A3_per_atom: float
    dataset_volume_A3_per_atom: float
    #: (V / V_dataset)^(1/3) - 1 in %: the change of the lattice scale.
    delta_a_pct: float
    wall_s: float = 0.0
    workdir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def relaxed_volume(
    material_dir: str | Path,
    *,
    workdir: str | Path,
    ecutwfc_Ry: float | None = None,
    ecutrho_Ry: float | None = None,
    pseudo_dir: str | Path | None = None,
    omp_threads: int = 1,
    timeout_s: float = 3600.0,
) -> RelaxResult:
    """Rerun ``data/qe/<ID>/relax.in`` (same start, k mesh, smearing, thresholds) with other cutoffs;
    the relaxed volume per atom against the dataset's ``relaxed.json``.  ``None`` keeps a cutoff.
    ``workdir`` must not exist yet or be empty: nothing is overwritten."""
    material_dir = Path(material_dir)
    relax_path, relaxed_path = material_dir / "relax.in", material_dir / "relaxed.json"
    for f in (relax_path, relaxed_path):
        if not f.exists():
            raise FileNotFoundError(f"{f}: missing (has the material passed its relax step?)")
    workdir = Path(workdir)
    pw = _rerun_input(relax_path, workdir, pseudo_dir, ecutwfc_Ry, ecutrho_Ry)
    wall = run_qe("pw.x", pw.to_str(), workdir, "relax", omp_threads=omp_threads, timeout_s=timeout_s)
    res = parse_pw_output(workdir / "relax.out")
    shutil.rmtree(workdir / "out", ignore_errors=True)  # wavefunctions/charge: MBs, not needed afterwards
    if not res.converged or res.structure is None:
        raise RuntimeError(f"{workdir / 'relax.out'}: vc-relax did not converge ({res.errors or 'no final coordinates'})")
    ref = Structure.from_dict(json.loads(relaxed_path.read_text()))
    v, v0 = res.structure.volume / len(res.structure), ref.volume / len(ref)
    out = RelaxResult(
        material_id=material_dir.name, ecutwfc_Ry=float(pw.system["ecutwfc"]),
        ecutrho_Ry=float(pw.system.get("ecutrho", 4 * pw.system["ecutwfc"])), volume_A3_per_atom=round(v, 5),
        dataset_volume_A3_per_atom=round(v0, 5), delta_a_pct=round(100 * ((v / v0) ** (1 / 3) - 1), 3),
        wall_s=round(wall, 1), workdir=str(workdir),
    )
    (workdir / "result.json").write_text(json.dumps(out.to_dict(), indent=2) + "\n")
    return out
