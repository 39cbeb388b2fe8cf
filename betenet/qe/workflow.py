"""The per-material el-ph workflow of Methods IV.1, resumable, with a compact audit trail.

Steps (each a QE executable, skipped when already done)::

    relax          pw.x vc-relax                              -> relaxed.json, grids.json (kgrid)
    scf_dense      pw.x scf, dense k mesh, la2F=.true.        -> <outdir>/<prefix>.a2Fsave
    nscf_edos      pw.x nscf, dense k, tetrahedra_opt
    projwfc        projwfc.x: total + site-projected eDOS     -> edos.dat.gz        (band-gap filter)
    scf            pw.x scf, coarse k mesh
    scf_coarse     pw.x scf for those points, on a multiple of the 2x2x2 mesh (betenet.qe.coarse)
    ph_precheck    ph.x at the coarse mesh's points off Γ, where the q mesh lacks them (stability check)
    ph_elph        ph.x, q mesh, electron_phonon='interpolated' -> ph_freqs.json
    q2r            q2r.x la2F=.true.
    matdyn         matdyn.x la2F=.true., dos=.true.           -> a2f.dat.gz, lambda, phdos_fine.dos.gz
                   (filters: imaginary modes, negative α²F, NaN)
    ph_dip         ph.x at matdyn's deepest point, when only the interpolation dips (betenet.qe.dipcheck)
    ph_coarse      ph.x on the 2x2x2 q mesh (no el-ph)        (reused when it divides the q mesh; Γ always)
    q2r_coarse, matdyn_coarse                                 -> phdos_coarse.dos.gz
    record         MaterialRecord -> data/records/<id>.json (kept materials only)

``data/qe/<material_id>/`` (in git, :mod:`betenet.qe.status`) holds ``status.json`` (state, steps done,
wall times, failure reason), every input file, the head/tail of every log (gzipped), and the small parsed
outputs a record is rebuilt from (:func:`betenet.qe.record.build_record`).  Wavefunctions, charge densities
and dvscf files live in a scratch directory outside git (``QEConfig.scratch_dir``, ``$BETENET_SCRATCH`` or
``<tmp>/betenet-qe-scratch``), deleted when the material is finished.

A finished material (``kept``/``rejected``/``failed``) is never recomputed or overwritten unless
``force=True``, which first moves the old directory and record to ``*.bak-<timestamp>``.  A run
killed at any point resumes at the first unfinished step; inside ``ph.x`` at the first unfinished
irreducible q point (``QEConfig.ph_split_q``: one call per point, see :meth:`MaterialRun.ph_by_q`).
If the scratch directory was lost (another machine), the pw.x steps that ph.x needs (scf_dense, scf)
are redone, and the finished el-ph q points come back from ``<id>/ph_elph.q/``, where each point's
dynamical matrix, el-ph matrices and log are kept (:mod:`betenet.qe.qpoints`).

QE is launched through :func:`betenet.qe.runner.run_qe`; pw.x inputs are :class:`~betenet.qe.inputs.PWInput`
objects to the end (a retry changes the object, never the text: :func:`with_cg_diagonalization`,
:func:`with_loose_nscf_threshold`).
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from pymatgen.core import Structure

from ..config import QEConfig
from ..constants import CMM1_IN_MEV, IMAGINARY_MODE_THRESHOLD_MEV
from ..jsonio import utc_now
from ..locks import exclusive
from ..paths import QE_RUNS_DIR, RECORDS_DIR
from ..records import save_record
from .coarse import run_coarse, run_precheck, run_scf_coarse
from .dipcheck import dip_candidate, run_dip_check
from .dyn import dyn_phonons, parse_dyn0
from .filters import QualityReport, quality_report
from .inputs import (
    PREFIX,
    PseudoSpec,
    PWInput,
    QEInputError,
    check_structure,
    cutoffs_Ry,
    matdyn_full_mesh_input,
    matdyn_input,
    ph_input,
    projwfc_input,
    pseudo_specs,
    pw_input,
    q2r_input,
)
from .kgrid import Grids, grids_for_config, subdivisions
from .parsers import (
    PhononResult,
    QEParseError,
    parse_a2f_dos,
    parse_matdyn_freq,
    parse_ph_output,
    parse_projwfc,
    parse_pw_output,
)
from .phonon_dos import (
    COARSE_DOS_SIGMA_MEV,
    FINE_DOS_SIGMA_MEV,
    dos_file_finite,
    gaussian_a2f_columns,
    matdyn_mesh,
    write_gaussian_phdos,
)
from .pseudo import PseudoLibrary
from .qpoints import QPointArchive, fingerprint, q_order
from .record import build_record
from .refinement import carry_refinement, load_refinement, refined_config
from .retries import (
    DAVIDSON_FAILURE,
    NSCF_RETRY_ETHR_RY,
    n_electrons,
    with_cg_diagonalization,
    with_loose_nscf_threshold,
)
from .runner import POOLED_EXECUTABLES, QEError, qe_blas, run_qe, scratch_root
from .status import (
    PERSISTENT_STEPS,
    STEPS,
    MaterialStatus,
    backup,
    compact_log,
    compact_logs,
    gzip_copy,
    load_status,
    material_dir,
    material_lock_path,
    write_table,
)

__all__ = [
    "PREFIX",
    "COARSE_STEPS",
    "EDOS_STEPS",
    "SERIAL_STEPS",
    "QE_N_SIGMA",
    "DAVIDSON_FAILURE",
    "NSCF_RETRY_ETHR_RY",
    "check_settings",
    "with_cg_diagonalization",
    "with_loose_nscf_threshold",
    "MaterialRun",
    "Rejected",
    "run_material",
    "run_material_unlocked",
]

#: The steps that never run on MPI ranks (q2r.x, matdyn.x, the record), whatever ``QEConfig.mpi_procs``.
SERIAL_STEPS = ("q2r", "matdyn", "q2r_coarse", "matdyn_coarse", "record")
#: The eDOS steps: once projwfc is done their product (``edos.dat.gz``, E_F in the status) is in the run
#: directory, and a lost scratch does not make them run again (the later steps need only scf_dense and scf).
EDOS_STEPS = ("nscf_edos", "projwfc")
#: The steps of the coarse (2x2x2) phonon DOS; reused from the fine ones when the el-ph q mesh is 2x2x2.
COARSE_STEPS = ("ph_coarse", "q2r_coarse", "matdyn_coarse")


#: QE 6.7's q2r.x/matdyn.x read exactly 10 broadenings (``nsig = 10`` hard-coded in gammaq2r/a2Fdos).
QE_N_SIGMA = 10


def check_settings(cfg: QEConfig) -> None:
    """Reject settings QE 6.7 cannot run, naming the field."""
    if cfg.n_elph_smearings != QE_N_SIGMA:
        raise QEInputError(
            f"QEConfig.n_elph_smearings={cfg.n_elph_smearings}: QE 6.7 q2r.x/matdyn.x read exactly {QE_N_SIGMA} "
            "el-ph broadenings (the paper's 30 need a newer QE)"
        )
    if not 1 <= cfg.elph_smearing_index <= cfg.n_elph_smearings:
        raise QEInputError(
            f"QEConfig.elph_smearing_index={cfg.elph_smearing_index} outside 1..n_elph_smearings={cfg.n_elph_smearings}"
        )
    if int(cfg.mpi_procs) != cfg.mpi_procs or cfg.mpi_procs < 1:
        raise QEInputError(f"QEConfig.mpi_procs={cfg.mpi_procs!r}: expected a positive integer (MPI ranks per pw.x/ph.x call)")
    if cfg.elph_smearing_step_Ry <= 0 or cfg.degauss_Ry <= 0:
        raise QEInputError("QEConfig.elph_smearing_step_Ry and degauss_Ry must be positive")
    if len(cfg.coarse_q_grid) != 3 or any(int(n) < 1 for n in cfg.coarse_q_grid):
        raise QEInputError(f"QEConfig.coarse_q_grid={cfg.coarse_q_grid}: expected three positive integers")


def stage_pseudos(pseudos: Mapping[str, PseudoSpec], dest: Path) -> dict[str, PseudoSpec]:
    """Symlink the UPF files into one ``pseudo_dir`` (libraries may mix directories)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for el, spec in pseudos.items():
        target = dest / spec.filename
        if target.is_symlink() or target.exists():
            if target.resolve() != spec.path.resolve():
                target.unlink()
                target.symlink_to(spec.path.resolve())
        else:
            target.symlink_to(spec.path.resolve())
        out[el] = PseudoSpec(el, target, spec.ecutwfc_Ry, spec.ecutrho_Ry, spec.md5)
    return out


class MaterialRun:
    """State of one material's run (directories, settings, status) and its steps (:data:`STEPS`, one
    handler each: :meth:`handlers`)."""

    def __init__(
        self,
        material_id: str,
        structure: Structure,
        cfg: QEConfig,
        library: Any,
        runs_dir: Path,
        records_dir: Path,
        prototype: str | None,
        progress: Callable[[str], None] | None,
    ):
        self.mid = material_id
        self.cfg = cfg
        self.input_structure = structure
        self.dir = material_dir(material_id, runs_dir)
        self.records_dir = Path(records_dir)
        self.scratch = scratch_root(cfg) / material_id
        self.progress = progress
        self.status = load_status(material_id, runs_dir)
        self.status.prototype = prototype or self.status.prototype
        self.status.formula = structure.composition.reduced_formula
        self.status.n_atoms = len(structure)
        self.status.accuracy = cfg.accuracy
        els = sorted({sp.symbol for sp in structure.composition.elements})
        specs = pseudo_specs(library, els)
        self.pseudos_orig = specs
        self.pseudos = stage_pseudos(specs, self.scratch / "pseudo")
        self.ecutwfc, self.ecutrho = cutoffs_Ry(specs, cfg.ecutwfc_Ry, cfg.ecutrho_Ry)

    # -- bookkeeping --------------------------------------------------------------------------
    def save(self) -> None:
        self.status.save(self.dir)

    def _scratch_ok(self) -> bool:
        token_file = self.scratch / ".betenet-token"
        return bool(self.status.scratch_token) and token_file.exists() and token_file.read_text().strip() == self.status.scratch_token

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self._scratch_ok():
            # scratch lost (or first run): everything that needs it is redone.  Files left in a
            # directory without our token belong to another run (a forced rerun, other settings):
            # removed, so that no per-q progress record of that run is taken for ours.
            keep = set(PERSISTENT_STEPS)
            if self.status.done("projwfc"):  # the eDOS is in the run directory: nscf + projwfc need no redo
                keep |= set(EDOS_STEPS)
            for step in STEPS:
                if step not in keep and step in self.status.steps:  # type: ignore[operator]
                    self.status.steps.pop(step)  # type: ignore[union-attr]
            if self.scratch.exists():
                shutil.rmtree(self.scratch)
            self.scratch.mkdir(parents=True, exist_ok=True)
            self.pseudos = stage_pseudos(self.pseudos_orig, self.scratch / "pseudo")
            self.status.scratch_token = uuid.uuid4().hex
            (self.scratch / ".betenet-token").write_text(self.status.scratch_token)
        if self.status.started_at is None:
            self.status.started_at = utc_now()
        self.status.state = "running"
        self.save()

    def qe(self, step: str, executable: str, inp: PWInput | str, *, cwd: Path | None = None) -> float:
        """Run one executable for ``step`` and archive input + compact log; returns wall time.

        ``inp``: a :class:`PWInput` for pw.x (so that a retry can change it), the input text otherwise."""
        cwd = cwd or self.scratch
        if self.progress:
            self.progress(f"{self.mid}: {step}")
        # pw.x retries when bands stay unconverged ("too many bands are not converged"), each failed try
        # archived as <step>.<label>.out.gz and the archived input the one that ran last:
        # * Davidson gave up (seen for fcc Ir's tetrahedron nscf): conjugate gradients, slower but robust;
        # * CG too (fcc Sc, Al3Sc nscf): an nscf run at a bounded threshold (NSCF_RETRY_ETHR_RY).
        retries: list[tuple[str, Callable[[PWInput], PWInput | None]]] = [
            ("davidson-failed", with_cg_diagonalization),
            ("cg-failed", lambda p: with_loose_nscf_threshold(p, n_electrons(cwd / f"{step}.out") or 0.0)),
        ]
        text = inp.to_str() if isinstance(inp, PWInput) else inp
        try:
            while True:
                try:
                    wall = run_qe(executable, text, cwd, step, omp_threads=self.cfg.omp_threads, mpi_procs=self._ranks(executable),
                                  timeout_s=self.cfg.step_timeout_s)
                    break
                except QEError as exc:
                    if not isinstance(inp, PWInput) or DAVIDSON_FAILURE not in exc.tail or not retries:
                        raise
                    label, rewrite = retries.pop(0)
                    retry = rewrite(inp)
                    if retry is None:
                        raise
                    (self.dir / f"{step}.{label}.out.gz").write_bytes(gzip.compress(exc.tail.encode()))
                    inp, text = retry, retry.to_str()
        finally:
            self._archive(step, text, cwd / f"{step}.out")
        return wall

    def _archive(self, step: str, text: str, out: Path) -> None:
        """``<step>.in`` and the head/tail of the log ``out`` (when it exists) into the material's directory."""
        (self.dir / f"{step}.in").write_text(text)
        if out.exists():
            compact_log(out, self.dir / f"{step}.out.gz")

    def mark(self, step: str, wall: float, **extra: Any) -> None:
        if self.cfg.mpi_procs > 1 and step not in SERIAL_STEPS:  # QE's CPU clock is rank 0's: accounting multiplies
            extra = {"mpi_procs": int(self.cfg.mpi_procs), **extra}
        self.status.steps[step] = {"done": True, "wall_s": round(wall, 2), "finished_at": utc_now(), "blas": qe_blas(), **extra}  # type: ignore[index]
        self.save()

    # -- structures/grids ---------------------------------------------------------------------
    @property
    def relaxed(self) -> Structure:
        return Structure.from_dict(json.loads((self.dir / "relaxed.json").read_text()))

    @property
    def grids(self) -> Grids:
        g = json.loads((self.dir / "grids.json").read_text())
        return Grids(**{k: tuple(v) for k, v in g.items()})

    def pw(self, structure: Structure, calculation: str, kpoints, *, outdir: str = "./out", **kw: Any) -> PWInput:
        return pw_input(
            structure,
            self.pseudos,
            calculation=calculation,
            kpoints=kpoints,
            ecutwfc_Ry=self.ecutwfc,
            ecutrho_Ry=self.ecutrho,
            outdir=outdir,
            prefix=PREFIX,
            degauss_Ry=self.cfg.degauss_Ry,
            conv_thr=self.cfg.conv_thr_Ry,
            input_dft=self.cfg.input_dft,
            press_conv_thr_kbar=self.cfg.press_conv_thr_kbar,
            **kw,
        )

    # -- steps --------------------------------------------------------------------------------
    def step_relax(self) -> None:
        s = self.input_structure
        k = subdivisions(s, self.cfg.relax_k_density_per_invA)
        wall = self.qe("relax", "pw.x", self.pw(s, "vc-relax", k))
        res = parse_pw_output(self.scratch / "relax.out")
        if not res.converged or res.structure is None:
            raise Rejected("not_converged", f"vc-relax did not converge ({res.errors or 'no final coordinates'})")
        relaxed = res.structure
        check_structure(relaxed, name=f"{self.mid} relaxed structure")
        (self.dir / "relaxed.json").write_text(json.dumps(relaxed.as_dict()))
        grids = grids_for_config(relaxed, self.cfg)
        (self.dir / "grids.json").write_text(json.dumps(asdict(grids)))
        self.mark(
            "relax",
            wall,
            relax_k=list(k),
            energy_Ry=res.total_energy_Ry,
            volume_change=relaxed.volume / s.volume - 1.0,
            bfgs_steps=res.n_relax_steps,
        )

    def step_scf_dense(self) -> None:
        g = self.grids
        wall = self.qe("scf_dense", "pw.x", self.pw(self.relaxed, "scf", g.k, la2F=True))
        res = parse_pw_output(self.scratch / "scf_dense.out")
        if not res.converged:
            raise Rejected("not_converged", f"dense scf did not converge ({res.errors})")
        self.mark("scf_dense", wall, fermi_energy_eV=res.fermi_energy_eV, energy_Ry=res.total_energy_Ry)

    def step_nscf_edos(self) -> None:
        wall = self.qe("nscf_edos", "pw.x", self.pw(self.relaxed, "nscf", self.grids.k, occupations="tetrahedra_opt"))
        res = parse_pw_output(self.scratch / "nscf_edos.out")
        ef = res.fermi_energy_eV if res.fermi_energy_eV is not None else res.homo_eV
        if ef is None:
            raise QEParseError(f"{self.scratch / 'nscf_edos.out'}: no Fermi energy / highest occupied level")
        self.mark("nscf_edos", wall, fermi_energy_eV=ef, homo_eV=res.homo_eV, lumo_eV=res.lumo_eV)

    def step_projwfc(self) -> None:
        ef = float(self.status.steps["nscf_edos"]["fermi_energy_eV"])  # type: ignore[index]
        lo, hi = self.cfg.edos_window_eV
        text = projwfc_input(
            prefix=PREFIX, outdir="./out", filpdos="pdos", emin_eV=ef + lo, emax_eV=ef + hi, delta_eV=self.cfg.edos_delta_eV
        ).to_str()
        wall = self.qe("projwfc", "projwfc.x", text)
        pd = parse_projwfc(self.scratch, "pdos", ef, n_sites=len(self.relaxed))
        write_table(
            self.dir / "edos.dat.gz",
            f"E-E_F (meV), total eDOS (states/eV/cell), site-projected eDOS x {pd.site.shape[0]}; E_F = {ef} eV",
            [pd.energy_meV, pd.total, *pd.site],
        )
        for p in self.scratch.glob("pdos.pdos_*"):
            p.unlink()
        self.mark("projwfc", wall, dos_ef_per_eV=pd.dos_ef_per_eV)
        q = self._quality(stage="edos")
        if not q.kept:
            raise Rejected(q.reason or "band_gap", q.detail)

    def step_scf(self) -> None:
        wall = self.qe("scf", "pw.x", self.pw(self.relaxed, "scf", self.grids.k_scf))
        res = parse_pw_output(self.scratch / "scf.out")
        if not res.converged:
            raise Rejected("not_converged", f"scf did not converge ({res.errors})")
        self.mark("scf", wall, fermi_energy_eV=res.fermi_energy_eV, energy_Ry=res.total_energy_Ry)

    def ph_by_q(
        self,
        step: str,
        make_input: Callable[[int | None], str],
        *,
        cwd: Path,
        fildyn: str,
        stop_below_meV: float | None = None,
        archive: QPointArchive | None = None,
        gamma_from: Path | None = None,
        skip_gamma: bool = False,
    ) -> tuple[float, PhononResult, dict[str, Any]]:
        """Run the ph.x ``ldisp`` calculation of ``step``; returns (wall s, frequencies, status extras:
        ``n_q_irr`` and, when split, ``split_q``, ``q_wall_s``, ``stopped_at_q``).

        With ``QEConfig.ph_split_q`` each irreducible q point is its own ph.x call
        (``make_input(i)``: ``start_q = last_q = i``) in the same ``outdir``.  The first call writes
        ``<fildyn>0``, the list of irreducible points; each finished point is recorded in
        ``<cwd>/<step>.progress.json``, so a killed run resumes at its first unfinished point.
        ``out/_ph0`` (the previous point's nscf and dvscf, or a killed call's half-written files) is
        removed before each call: every point starts clean, as in one ph.x call (why a point is the unit of
        resumption: :mod:`betenet.qe.qpoints`).  The per-point logs are archived together (head/tail of each)
        as ``<step>.out.gz``; ``<step>.in`` is the first computed point's input (the others differ only in
        ``start_q``/``last_q``).

        ``stop_below_meV``: stop after the first point other than Γ with a frequency below it (the
        material fails the imaginary-mode filter whatever the other points give); the extras then
        hold ``stopped_at_q`` and the frequencies cover the points computed.
        ``archive``: each finished point is also kept in the run directory
        (:class:`~betenet.qe.qpoints.QPointArchive`); when the scratch directory was lost, the archived
        points are restored into ``cwd`` and only the others are computed.
        ``gamma_from``: Γ's dynamical matrix (``<fildyn>1``) of another run on the same scf, copied instead of
        computed (extras ``gamma_reused_from``, Γ's wall 0); ph.x's next point then writes ``<fildyn>0``.
        ``skip_gamma``: the points other than Γ only (a later call adds Γ, e.g. with ``gamma_from``).
        Without ``ph_split_q``, one call (``make_input(None)``) and no early stop.
        """
        if (gamma_from is not None or skip_gamma) and (archive is not None or not self.cfg.ph_split_q):
            raise ValueError("ph_by_q: gamma_from and skip_gamma are for a split run without an archive")
        if not self.cfg.ph_split_q:
            wall = self.qe(step, "ph.x", make_input(None), cwd=cwd)
            ph = parse_ph_output(cwd / f"{step}.out")
            return wall, ph, {"n_q_irr": int(len(ph.q_cart_2pi_alat))}
        progress_path = cwd / f"{step}.progress.json"
        progress: dict[str, Any] = json.loads(progress_path.read_text()) if progress_path.exists() else {}
        if archive is not None and not progress:
            restored = archive.restore(cwd)
            if restored:
                progress = restored
                progress_path.write_text(json.dumps(progress))
                if self.progress:
                    self.progress(f"{self.mid}: {step}: {len(progress['q_wall_s'])} q point(s) restored from {archive.directory}")
        q_wall: dict[str, float] = progress.setdefault("q_wall_s", {})
        n_q = progress.get("n_q")
        parts: list[PhononResult] = []
        extra: dict[str, Any] = {"split_q": True}
        order = [2] if skip_gamma else [1]  # ph.x's first call writes <fildyn>0, the list of the points
        done_q: list[int] = []
        reused, listed = progress.get("gamma_from"), False
        while order:
            iq = order.pop(0)
            name = f"{step}.q{iq}"
            if iq == 1 and gamma_from is not None and "1" not in q_wall:
                shutil.copyfile(gamma_from, cwd / f"{fildyn}1")
                q_wall["1"], reused = 0.0, gamma_from.name
                progress["gamma_from"] = reused
                progress_path.write_text(json.dumps(progress))
            elif str(iq) not in q_wall:
                shutil.rmtree(cwd / "out" / "_ph0", ignore_errors=True)
                text = make_input(iq)
                try:
                    wall = self._run_ph_q(name, text, cwd, label=f"{step} q {iq}/{n_q or '?'}")
                except QEError:
                    self._archive(step, text, cwd / f"{name}.out")
                    raise
                q_wall[str(iq)] = round(wall, 2)
                if n_q is None:
                    n_q = int(len(parse_dyn0(cwd / f"{fildyn}0")[1]))
                    progress["n_q"] = n_q
                if archive is not None:
                    archive.save(cwd, iq, wall, n_q)
                progress_path.write_text(json.dumps(progress))
            parts.append(dyn_phonons(cwd / f"{fildyn}1") if iq == 1 and reused else parse_ph_output(cwd / f"{name}.out"))
            done_q.append(iq)
            if stop_below_meV is not None and parts[-1].min_freq_meV() < stop_below_meV:
                extra["stopped_at_q"] = iq
                break
            if not listed and (cwd / f"{fildyn}0").exists():  # after ph.x's first call
                order = [i for i in q_order(parse_dyn0(cwd / f"{fildyn}0")[1], self.cfg.ph_q_order) if i not in done_q]
                listed = True
            elif not listed:  # Γ copied: ph.x's point 2 writes the list
                order = [2]
        done = len(parts)
        ph = PhononResult(
            cwd / f"{step}.q*.out",
            np.concatenate([p.q_cart_2pi_alat for p in parts]),
            np.concatenate([p.freq_THz for p in parts]),
            np.concatenate([p.freq_cm1 for p in parts]),
            all(p.job_done for p in parts),
            sum(p.wall_time_s or 0.0 for p in parts),
        )
        ran = [i for i in done_q if not (i == 1 and reused)]
        if ran:
            shutil.copyfile(cwd / f"{step}.q{ran[0]}.in", self.dir / f"{step}.in")
        compact_logs([cwd / f"{step}.q{i}.out" for i in ran], self.dir / f"{step}.out.gz")
        if reused:
            extra["gamma_reused_from"] = reused
        walls = [q_wall[str(i)] for i in done_q]
        if done_q != list(range(1, done + 1)):
            extra["q_order"] = done_q
        return float(sum(walls)), ph, {"n_q_irr": int(n_q), **extra, "q_wall_s": walls}

    def q_archive(self, step: str, fildyn: str, ph_input_text: str) -> QPointArchive:
        """The run directory's archive of ``step``'s finished q points (``<dir>/<step>.q``), fingerprinted
        by the scf and dense-scf inputs that ph.x reads, the pseudopotentials and the ph.x input."""
        inputs = [(self.dir / f"{name}.in").read_text() for name in ("scf_dense", "scf")] + [ph_input_text]
        fp = fingerprint(inputs, [spec.md5 or spec.filename for spec in self.pseudos_orig.values()])
        return QPointArchive(self.dir / f"{step}.q", step, fildyn, fp)

    def _run_ph_q(self, name: str, text: str, cwd: Path, *, label: str) -> float:
        if self.progress:
            self.progress(f"{self.mid}: {label}")
        return run_qe("ph.x", text, cwd, name, omp_threads=self.cfg.omp_threads, timeout_s=self.cfg.step_timeout_s,
                      mpi_procs=self._ranks("ph.x"))

    def _ranks(self, executable: str) -> int:
        """MPI ranks of one call: ``QEConfig.mpi_procs`` for the pooled executables, 1 for q2r.x/matdyn.x."""
        return int(self.cfg.mpi_procs) if executable in POOLED_EXECUTABLES else 1

    def step_ph_elph(self) -> None:
        def make_input(only_q: int | None) -> str:
            return ph_input(
                self.relaxed,
                prefix=PREFIX,
                outdir="./out",
                q=self.grids.q,
                fildyn="elph.dyn",
                elph=True,
                el_ph_sigma_Ry=self.cfg.elph_smearing_step_Ry,
                el_ph_nsigma=self.cfg.n_elph_smearings,
                tr2_ph=self.cfg.tr2_ph,
                only_q=only_q,
            ).to_str()

        stop = -IMAGINARY_MODE_THRESHOLD_MEV if self.cfg.ph_stop_at_imaginary else None
        archive = self.q_archive("ph_elph", "elph.dyn", make_input(1)) if self.cfg.ph_split_q else None
        wall, ph, extra = self.ph_by_q("ph_elph", make_input, cwd=self.scratch, fildyn="elph.dyn", stop_below_meV=stop,
                                       archive=archive)
        (self.dir / "ph_freqs.json").write_text(
            json.dumps({"q_cart_2pi_alat": ph.q_cart_2pi_alat.tolist(), "freq_meV": np.round(ph.freq_meV, 4).tolist()})
        )
        self.mark("ph_elph", wall, min_freq_meV=ph.min_freq_meV(), **extra)
        at = extra.get("stopped_at_q")
        if at is not None:  # the ph.x points alone fail the imaginary-mode filter
            q = self._quality(stage="phonons")
            raise Rejected(q.reason or "imaginary_modes", f"{q.detail} at ph.x q point {at} of {extra['n_q_irr']}; "
                           "ph.x stopped there (QEConfig.ph_stop_at_imaginary)")

    def step_q2r(self, coarse: bool = False) -> None:
        name = "q2r_coarse" if coarse else "q2r"
        cwd = self.scratch / "coarse" if coarse else self.scratch
        text = q2r_input(fildyn=("coarse.dyn" if coarse else "elph.dyn"), flfrc="fc", la2F=not coarse).to_str()
        wall = self.qe(name, "q2r.x", text, cwd=cwd)
        self.mark(name, wall)

    def step_matdyn(self, coarse: bool = False) -> None:
        name = "matdyn_coarse" if coarse else "matdyn"
        cwd = self.scratch / "coarse" if coarse else self.scratch
        nk = matdyn_mesh(self.relaxed, self.cfg.matdyn_nq)
        text = matdyn_input(
            self.relaxed, flfrc="fc", nk=nk, fldos="phdos.dos", flfrq="matdyn.freq", la2F=not coarse,
            delta_meV=self.cfg.phdos_delta_meV,
        ).to_str()
        wall = self.qe(name, "matdyn.x", text, cwd=cwd)
        _, freq_cm1 = parse_matdyn_freq(cwd / "matdyn.freq")
        min_freq = float(freq_cm1.min() * CMM1_IN_MEV)
        if coarse:
            method = "tetrahedra"
            if not dos_file_finite(cwd / "phdos.dos"):
                # matdyn 6.7's tetrahedron DOS turns NaN when whole tetrahedra are degenerate,
                # which the short-ranged 2x2x2 force constants of one-atom cubic cells produce.
                wall += self._gaussian_coarse_dos(cwd, nk)
                method = f"gaussian (sigma {COARSE_DOS_SIGMA_MEV} meV; tetrahedra gave NaN)"
            gzip_copy(cwd / "phdos.dos", self.dir / "phdos_coarse.dos.gz")
            self.mark(name, wall, nk=list(nk), min_freq_meV=min_freq, dos_method=method)
            return
        omega = None
        cols = []
        for i in range(1, self.cfg.n_elph_smearings + 1):
            a = parse_a2f_dos(cwd / f"a2F.dos{i}", allow_nan=True)
            if omega is None:
                omega = a.omega_meV
            elif a.omega_meV.shape != omega.shape or not np.allclose(a.omega_meV, omega):
                raise QEParseError(f"{cwd / f'a2F.dos{i}'}: frequency grid differs from a2F.dos1")
            cols.append(a.a2f)
        extra: dict[str, str] = {}
        if not (dos_file_finite(cwd / "phdos.dos") and all(np.all(np.isfinite(c)) for c in cols)):
            # Same matdyn 6.7 tetrahedron failure as for the coarse mesh (seen on B2 BaCd and L1_2
            # Al3Sc at 16^3): integrate both spectra with Gaussians over the full mesh instead.
            g_wall, cols = self._gaussian_fine(cwd, nk, omega)
            wall += g_wall
            method = f"gaussian (sigma {FINE_DOS_SIGMA_MEV} meV; tetrahedra gave NaN)"
            extra = {"dos_method": method, "a2f_method": method}
        gzip_copy(cwd / "phdos.dos", self.dir / "phdos_fine.dos.gz")
        shutil.copyfile(cwd / "lambda", self.dir / "lambda")
        sig = [round(self.cfg.elph_smearing_step_Ry * i, 6) for i in range(1, self.cfg.n_elph_smearings + 1)]
        write_table(
            self.dir / "a2f.dat.gz",
            "omega (meV), alpha2F total (dimensionless) for el-ph broadenings (Ry): " + " ".join(map(str, sig)),
            [omega, *cols],
        )
        self.mark(name, wall, nk=list(nk), min_freq_meV=min_freq, **extra)
        q = self._quality(stage="phonons")
        if not q.kept and not dip_candidate(self.status.steps or {}, self.cfg):  # a dip alone: step ph_dip decides
            raise Rejected(q.reason or "rejected", q.detail)

    def step_ph_dip(self) -> None:
        if run_dip_check(self):
            q = self._quality(stage="phonons")
            if not q.kept:
                raise Rejected(q.reason or "rejected", q.detail)

    def _matdyn_full_mesh(self, step: str, cwd: Path, nk, *, la2F: bool) -> tuple[float, Path]:
        """Rerun matdyn.x in ``cwd/gauss`` on the explicit (unreduced) ``nk`` mesh
        (:func:`~betenet.qe.inputs.matdyn_full_mesh_input`), with ``la2F`` from the el-ph force constants
        in ``cwd/elph_dir``.  Returns (wall seconds, the directory)."""
        gdir = cwd / "gauss"
        gdir.mkdir(exist_ok=True)
        shutil.copyfile(cwd / "fc", gdir / "fc")
        if la2F:
            shutil.copytree(cwd / "elph_dir", gdir / "elph_dir", dirs_exist_ok=True)
        text = matdyn_full_mesh_input(self.relaxed, nk=nk, la2F=la2F).to_str()
        return self.qe(step, "matdyn.x", text, cwd=gdir), gdir

    def _gaussian_coarse_dos(self, cwd: Path, nk) -> float:
        """Site-projected coarse phonon DOS by Gaussian broadening over the full ``nk`` mesh, written over
        ``cwd/phdos.dos`` in matdyn's own format (:func:`~betenet.qe.phonon_dos.write_gaussian_phdos`)."""
        wall, gdir = self._matdyn_full_mesh("matdyn_coarse_gauss", cwd, nk, la2F=False)
        write_gaussian_phdos(cwd / "phdos.dos", gdir / "matdyn.eig", len(self.relaxed), COARSE_DOS_SIGMA_MEV)
        return wall

    def _gaussian_fine(self, cwd: Path, nk, omega_meV: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Fine PhDOS (over ``cwd/phdos.dos``) and α²F of every broadening (on matdyn's ``a2F.dosN`` grid
        ``omega_meV``: :func:`~betenet.qe.phonon_dos.gaussian_a2f_columns`) by Gaussian broadening over the
        full ``nk`` mesh.  Returns (wall seconds, one α²F column per broadening)."""
        wall, gdir = self._matdyn_full_mesh("matdyn_gauss", cwd, nk, la2F=True)
        write_gaussian_phdos(cwd / "phdos.dos", gdir / "matdyn.eig", len(self.relaxed), FINE_DOS_SIGMA_MEV)
        return wall, gaussian_a2f_columns(gdir, omega_meV, self.cfg.n_elph_smearings, FINE_DOS_SIGMA_MEV)

    def step_scf_coarse(self) -> None:
        failed = run_scf_coarse(self)
        if failed is not None:
            raise Rejected("not_converged", failed)

    def step_ph_precheck(self) -> None:
        detail = run_precheck(self)
        if detail is not None:
            raise Rejected("imaginary_modes", detail)

    def step_ph_coarse(self) -> None:
        run_coarse(self)

    def step_record(self) -> None:
        t0 = time.perf_counter()
        rec = build_record(self.mid, self.cfg, runs_dir=self.dir.parent, status=self.status, pseudos=self.pseudos_orig)
        save_record(rec, self.records_dir)
        self.mark("record", time.perf_counter() - t0)

    # -- driver -------------------------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[[], None]]:
        """``step -> handler`` for every step of :data:`STEPS`; a handler raises :class:`Rejected` when
        the material fails a filter that its step makes decidable."""
        return {
            "relax": self.step_relax,
            "scf_dense": self.step_scf_dense,
            "nscf_edos": self.step_nscf_edos,
            "projwfc": self.step_projwfc,
            "scf": self.step_scf,
            "scf_coarse": self.step_scf_coarse,
            "ph_precheck": self.step_ph_precheck,
            "ph_elph": self.step_ph_elph,
            "q2r": self.step_q2r,
            "matdyn": self.step_matdyn,
            "ph_dip": self.step_ph_dip,
            "ph_coarse": self.step_ph_coarse,
            "q2r_coarse": lambda: self.step_q2r(coarse=True),
            "matdyn_coarse": lambda: self.step_matdyn(coarse=True),
            "record": self.step_record,
        }

    def coarse_is_fine_mesh(self) -> bool:
        """True when the el-ph q mesh is the coarse one: the coarse steps then reuse the fine results."""
        return (self.dir / "grids.json").exists() and tuple(self.cfg.coarse_q_grid) == tuple(self.grids.q)

    def run(self) -> None:
        handlers = self.handlers()
        for step in STEPS:
            if self.status.done(step):
                continue
            if step in COARSE_STEPS and self.coarse_is_fine_mesh():
                if step == "matdyn_coarse":
                    shutil.copyfile(self.dir / "phdos_fine.dos.gz", self.dir / "phdos_coarse.dos.gz")
                self.mark(step, 0.0, reused_from="q mesh equals the coarse 2x2x2 mesh")
                continue
            handlers[step]()

    def _quality(self, stage: str) -> QualityReport:
        q = quality_report(self.dir, self.cfg, stage=stage)
        self.status.quality = {**(self.status.quality or {}), **q.checks}
        self.save()
        return q


class Rejected(Exception):
    """A material failed a quality filter: ``reason`` (a :data:`betenet.qe.filters.REASONS` entry) and ``detail``."""

    def __init__(self, reason: str, detail: str | None = None):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def run_material(material_id: str, structure: Structure, cfg: QEConfig, *, runs_dir: Path | None = None,
                 **kw: Any) -> MaterialStatus:
    """:func:`run_material_unlocked` under the material's lock: a second run of the same material
    (another ``qe run``, another worker) raises :class:`betenet.locks.LockBusyError` at once instead
    of running QE into the same directories.  A crashed run's lock is released by the kernel."""
    with exclusive(material_lock_path(material_id, runs_dir), f"the QE run of material {material_id!r}"):
        return run_material_unlocked(material_id, structure, cfg, runs_dir=runs_dir, **kw)


def run_material_unlocked(
    material_id: str,
    structure: Structure,
    cfg: QEConfig,
    *,
    library: Any = None,
    runs_dir: Path | None = None,
    records_dir: Path | None = None,
    prototype: str | None = None,
    force: bool = False,
    retry_failed: bool = False,
    progress: Callable[[str], None] | None = None,
) -> MaterialStatus:
    """Run (or resume) the whole workflow for one material; return its final :class:`MaterialStatus`.

    QE failures and quality-filter rejections are recorded in ``status.json`` (``state`` ``failed`` /
    ``rejected`` with ``reason``) and returned, not raised; a malformed structure or a missing
    pseudopotential raises :class:`~betenet.qe.inputs.QEInputError` before anything runs.
    """
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    records_dir = Path(records_dir or RECORDS_DIR)
    run_dir = material_dir(material_id, runs_dir)
    cfg = refined_config(cfg, run_dir)  # a refined material's denser meshes
    check_settings(cfg)
    check_structure(structure, max_atoms=cfg.max_atoms, name=f"material {material_id!r}")
    if library is None:
        library = PseudoLibrary.for_level(cfg)
    status = load_status(material_id, runs_dir)
    if status.final and not force and not (retry_failed and status.state == "failed"):
        return status
    if force:
        refinement = load_refinement(run_dir)
        backups = [backup(run_dir), backup(records_dir / f"{material_id}.json")]
        carry_refinement(refinement, run_dir, backups[0], state=status.state, record=backups[1])  # the rerun stays refined
        if any(backups) and progress:
            progress(f"{material_id}: previous results moved to {[str(b) for b in backups if b]}")
    elif status.state == "failed":  # retry: start again from the persistent steps
        status.state, status.reason, status.detail = "pending", None, None
        status.save(run_dir)
    try:
        run = MaterialRun(material_id, structure, cfg, library, runs_dir, records_dir, prototype, progress)
    except QEInputError:
        raise
    except Exception as exc:  # a library's own error type (e.g. PseudoError) for a missing element
        raise QEInputError(f"material {material_id!r}: {exc}") from exc
    run.prepare()
    try:
        run.run()
        run.status.state = "kept"
        run.status.reason = None
    except Rejected as rej:
        run.status.state, run.status.reason, run.status.detail = "rejected", rej.reason, rej.detail
    except QEError as err:
        run.status.state, run.status.reason = "failed", f"{err.executable} {err.reason}"
        run.status.detail = str(err)[-3000:]
    except (QEParseError, QEInputError) as err:
        run.status.state, run.status.reason, run.status.detail = "failed", type(err).__name__, str(err)[-3000:]
    finally:
        if run.status.state == "running":  # interrupted (KeyboardInterrupt, unexpected error): resumable
            run.save()
    run.status.finished_at = utc_now()
    run.save()
    # a failed step can be retried from its scratch; a NaN rejection (since the Gaussian fallback of
    # step_matdyn, only if that too gives NaN) keeps fc, elph_dir and the matdyn files for diagnosis
    if not cfg.keep_scratch and run.status.state != "failed" and run.status.reason != "nan":
        shutil.rmtree(run.scratch, ignore_errors=True)
    return run.status
