"""The per-material el-ph workflow of Methods IV.1, resumable, with a compact audit trail.

Steps (each a QE executable, skipped when already done)::

    relax          pw.x vc-relax                              -> relaxed.json, grids.json (kgrid)
    scf_dense      pw.x scf, dense k mesh, la2F=.true.        -> <outdir>/<prefix>.a2Fsave
    nscf_edos      pw.x nscf, dense k, tetrahedra_opt
    projwfc        projwfc.x: total + site-projected eDOS     -> edos.dat.gz        (band-gap filter)
    scf            pw.x scf, coarse k mesh
    ph_elph        ph.x, q mesh, electron_phonon='interpolated' -> ph_freqs.json
    q2r            q2r.x la2F=.true.
    matdyn         matdyn.x la2F=.true., dos=.true.           -> a2f.dat.gz, lambda, phdos_fine.dos.gz
                   (filters: imaginary modes, negative α²F, NaN)
    ph_coarse      ph.x on the 2x2x2 q mesh (no el-ph)        (reused when the q mesh is 2x2x2)
    q2r_coarse, matdyn_coarse                                 -> phdos_coarse.dos.gz
    record         MaterialRecord -> data/records/<id>.json (kept materials only)

``data/qe/<material_id>/`` (in git) holds ``status.json`` (state, steps done, wall times, failure
reason), every input file, the head/tail of every log (gzipped), and the small parsed outputs a
record is rebuilt from (:func:`build_record`).  Wavefunctions, charge densities and dvscf files
live in a scratch directory outside git (``QEConfig.scratch_dir``, ``$BETENET_SCRATCH`` or
``<tmp>/betenet-qe-scratch``), deleted when the material is finished.

A finished material (``kept``/``rejected``/``failed``) is never recomputed or overwritten unless
``force=True``, which first moves the old directory and record to ``*.bak-<timestamp>``.  A run
killed at any point resumes at the first unfinished step (steps that need the scratch files are
redone if the scratch directory was lost); inside ``ph.x`` at the first unfinished irreducible q point
(``QEConfig.ph_split_q``: one call per point, see :meth:`_Run.ph_by_q`).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import platform
import re
import shutil
import time
import uuid
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from pymatgen.core import Structure

from ..config import QEConfig
from ..constants import CMM1_IN_MEV, GHZ_IN_MEV, IMAGINARY_MODE_THRESHOLD_MEV, RY_IN_MEV
from ..paths import QE_RUNS_DIR, RECORDS_DIR
from .broadening import BroadeningChoice, choose_for_run
from .filters import QualityReport, quality_report
from .inputs import (
    Namelist,
    NamelistInput,
    PWInput,
    PseudoSpec,
    QEInputError,
    _amass,
    check_structure,
    cutoffs_Ry,
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
    check_elph_tables,
    min_freq_off_gamma,
    parse_a2f_dos,
    parse_a2fmatdyn_header,
    parse_dyn0,
    parse_lambda_file,
    parse_matdyn_freq,
    parse_ph_output,
    parse_phdos,
    parse_projwfc,
    parse_pw_output,
    read_json,
)
from .runner import EXECUTABLES, QEError, qe_available, qe_blas, run_qe, scratch_root  # noqa: F401  (re-exported until callers move)

__all__ = [
    "QEError",
    "STEPS",
    "FINAL_STATES",
    "QE_VERSION",
    "MaterialStatus",
    "run_qe",
    "run_material",
    "build_record",
    "load_status",
    "material_dir",
    "scratch_root",
    "qe_available",
    "check_settings",
    "coarse_dyn_subset",
    "reject_after_review",
    "refilter",
]

QE_VERSION = "QE 6.7"
PREFIX = "bn"
STEPS = (
    "relax",
    "scf_dense",
    "nscf_edos",
    "projwfc",
    "scf",
    "ph_elph",
    "q2r",
    "matdyn",
    "ph_coarse",
    "q2r_coarse",
    "matdyn_coarse",
    "record",
)
#: Steps whose products live only in data/qe/<id>/ (survive a lost scratch directory).
PERSISTENT_STEPS = ("relax",)
FINAL_STATES = ("kept", "rejected", "failed")
#: Lines of each log kept in the audit trail (head, tail).
LOG_HEAD, LOG_TAIL = 60, 200


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
    if cfg.elph_smearing_step_Ry <= 0 or cfg.degauss_Ry <= 0:
        raise QEInputError("QEConfig.elph_smearing_step_Ry and degauss_Ry must be positive")
    if len(cfg.coarse_q_grid) != 3 or any(int(n) < 1 for n in cfg.coarse_q_grid):
        raise QEInputError(f"QEConfig.coarse_q_grid={cfg.coarse_q_grid}: expected three positive integers")


#: pw.x's message when Davidson diagonalisation leaves bands unconverged (retried once with 'cg').
DAVIDSON_FAILURE = "too many bands are not converged"


def with_cg_diagonalization(text: str) -> str | None:
    """The pw.x input ``text`` with ``diagonalization = 'cg'`` in ``&ELECTRONS``; ``None`` when it
    already sets a diagonalization or has no ``&ELECTRONS`` namelist."""
    if "diagonalization" in text.lower():
        return None
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip().upper() == "&ELECTRONS":
            return "\n".join(lines[: i + 1] + ["  diagonalization = 'cg'"] + lines[i + 1 :])
    return None


#: Diagonalisation threshold (Ry) of the last retry of a non-self-consistent pw.x run whose bands Davidson
#: and CG both left unconverged.  pw.x sets an nscf run's threshold to 0.1 min(1e-2, conv_thr / N_el),
#: ~1e-12 Ry for the dataset's conv_thr; with the project's Sc pseudopotential neither method gets the
#: highest bands there (fcc Sc, L1_2 Al3Sc: "too many bands are not converged", while the scf converged).
#: At 1e-8 Ry Davidson finishes (fcc Sc, 12^3 k: 20 s; Al3Sc, 8^3 k: 32 s); an eigenvalue error of
#: ~1e-8 Ry (1e-7 eV) is far below the meV scale of the eDOS and of E_F that the step is used for.
NSCF_RETRY_ETHR_RY = 1e-8


def with_loose_nscf_threshold(text: str, n_electrons: float, ethr_Ry: float = NSCF_RETRY_ETHR_RY) -> str | None:
    """The nscf pw.x input ``text`` with Davidson and ``conv_thr = 10 ethr_Ry n_electrons`` (so that
    pw.x's nscf diagonalisation threshold is ``ethr_Ry``) instead of its diagonalization/conv_thr lines;
    ``None`` for a self-consistent input, one without ``&ELECTRONS``, or one already that loose."""
    if not re.search(r"calculation\s*=\s*['\"]nscf['\"]", text, re.IGNORECASE) or n_electrons <= 0:
        return None
    conv = 10.0 * ethr_Ry * n_electrons
    old = re.search(r"^\s*conv_thr\s*=\s*([0-9.eEdD+-]+)\s*$", text, re.MULTILINE)
    if old and float(old.group(1).lower().replace("d", "e")) >= conv * (1 - 1e-9):
        return None
    lines = [ln for ln in text.split("\n") if not re.match(r"\s*(diagonalization|conv_thr)\s*=", ln, re.IGNORECASE)]
    for i, line in enumerate(lines):
        if line.strip().upper() == "&ELECTRONS":
            return "\n".join(lines[: i + 1] + [f"  conv_thr = {conv:.3e}"] + lines[i + 1 :])
    return None


def _n_electrons(out: Path) -> float | None:
    """``number of electrons`` from a pw.x log (``None`` when absent)."""
    if out.exists():
        m = re.search(r"number of electrons\s*=\s*([0-9.]+)", out.read_text(errors="replace"))
        if m:
            return float(m.group(1))
    return None


def material_dir(material_id: str, runs_dir: Path | None = None) -> Path:
    return Path(runs_dir or QE_RUNS_DIR) / material_id


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------------


@dataclass
class MaterialStatus:
    """``status.json`` of one material."""

    material_id: str
    state: str = "pending"  # pending | running | kept | rejected | failed
    steps: dict[str, dict[str, Any]] | None = None
    reason: str | None = None
    detail: str | None = None
    scratch_token: str | None = None
    prototype: str | None = None
    formula: str | None = None
    n_atoms: int | None = None
    accuracy: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    quality: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.steps is None:
            self.steps = {}

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def done(self, step: str) -> bool:
        return bool(self.steps.get(step, {}).get("done"))  # type: ignore[union-attr]

    @property
    def wall_s(self) -> float:
        return float(sum(s.get("wall_s", 0.0) for s in self.steps.values()))  # type: ignore[union-attr]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "status.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        tmp.replace(directory / "status.json")


def load_status(material_id: str, runs_dir: Path | None = None) -> MaterialStatus:
    path = material_dir(material_id, runs_dir) / "status.json"
    if not path.exists():
        return MaterialStatus(material_id)
    data = read_json(path)  # QEParseError naming the file if it is empty or garbled
    known = set(MaterialStatus.__dataclass_fields__)
    return MaterialStatus(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------
# Audit-trail helpers
# --------------------------------------------------------------------------------------------


def _head_tail(src: Path) -> list[str]:
    """Lines of a log, the middle cut out when it is long (LOG_HEAD + LOG_TAIL kept)."""
    lines = src.read_text(errors="replace").splitlines(keepends=True)
    if len(lines) > LOG_HEAD + LOG_TAIL + 20:
        cut = len(lines) - LOG_HEAD - LOG_TAIL
        lines = lines[:LOG_HEAD] + [f"\n[... {cut} lines omitted by betenet ...]\n\n"] + lines[-LOG_TAIL:]
    return lines


def _compact_log(src: Path, dest: Path) -> None:
    """Gzip the head and tail of a log (the whole log when short) into ``dest``."""
    with gzip.open(dest, "wt") as fh:
        fh.writelines(_head_tail(src))


def _compact_logs(srcs: list[Path], dest: Path) -> None:
    """Several logs of one step (ph.x one q per call) in one gzip: the head/tail of each, in order,
    each after a ``==> betenet: <file> <==`` line."""
    with gzip.open(dest, "wt") as fh:
        for src in srcs:
            fh.write(f"==> betenet: {src.name} <==\n")
            fh.writelines(_head_tail(src))


def _gzip_copy(src: Path, dest: Path) -> None:
    with src.open("rb") as fi, gzip.open(dest, "wb") as fo:
        shutil.copyfileobj(fi, fo)


def _md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _stage_pseudos(pseudos: Mapping[str, PseudoSpec], dest: Path) -> dict[str, PseudoSpec]:
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


def _matdyn_mesh(structure: Structure, n_longest: int) -> tuple[int, int, int]:
    b = np.asarray(structure.lattice.reciprocal_lattice_crystallographic.abc)
    return tuple(max(2, int(round(n_longest * x / b.max()))) for x in b)  # type: ignore[return-value]


def _write_table(path: Path, header: str, columns: list[np.ndarray]) -> None:
    data = np.column_stack(columns)
    with gzip.open(path, "wt") as fh:
        np.savetxt(fh, data, fmt="%.6e", header=header)


def _read_table(path: Path) -> tuple[str, np.ndarray]:
    try:
        with gzip.open(path, "rt") as fh:
            header = fh.readline().lstrip("#").strip()
            data = np.loadtxt(fh, ndmin=2)
    except FileNotFoundError:
        raise QEParseError(f"{path}: file not found") from None
    except (OSError, EOFError, ValueError, zlib.error) as exc:  # a cut/garbled .gz or a malformed row
        raise QEParseError(f"{path}: corrupt, truncated or malformed table ({type(exc).__name__}: {exc})") from None
    return header, data


# --------------------------------------------------------------------------------------------
# The workflow
# --------------------------------------------------------------------------------------------


class _Run:
    """State of one material's run (directories, settings, status)."""

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
        self.pseudos = _stage_pseudos(specs, self.scratch / "pseudo")
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
            for step in STEPS:
                if step not in PERSISTENT_STEPS and step in self.status.steps:  # type: ignore[operator]
                    self.status.steps.pop(step)  # type: ignore[union-attr]
            if self.scratch.exists():
                shutil.rmtree(self.scratch)
            self.scratch.mkdir(parents=True, exist_ok=True)
            self.pseudos = _stage_pseudos(self.pseudos_orig, self.scratch / "pseudo")
            self.status.scratch_token = uuid.uuid4().hex
            (self.scratch / ".betenet-token").write_text(self.status.scratch_token)
        if self.status.started_at is None:
            self.status.started_at = _now()
        self.status.state = "running"
        self.save()

    def qe(self, step: str, executable: str, text: str, *, cwd: Path | None = None) -> float:
        """Run one executable for ``step`` and archive input + compact log; returns wall time."""
        cwd = cwd or self.scratch
        if self.progress:
            self.progress(f"{self.mid}: {step}")
        # pw.x retries when bands stay unconverged ("too many bands are not converged"), each failed try
        # archived as <step>.<label>.out.gz and the archived input the one that ran last:
        # * Davidson gave up (seen for fcc Ir's tetrahedron nscf): conjugate gradients, slower but robust;
        # * CG too (fcc Sc, Al3Sc nscf): an nscf run at a bounded threshold (NSCF_RETRY_ETHR_RY).
        retries = [
            ("davidson-failed", with_cg_diagonalization),
            ("cg-failed", lambda t: with_loose_nscf_threshold(t, _n_electrons(cwd / f"{step}.out") or 0.0)),
        ]
        try:
            while True:
                try:
                    wall = run_qe(executable, text, cwd, step, omp_threads=self.cfg.omp_threads,
                                  timeout_s=self.cfg.step_timeout_s)
                    break
                except QEError as exc:
                    if executable != "pw.x" or DAVIDSON_FAILURE not in exc.tail or not retries:
                        raise
                    label, rewrite = retries.pop(0)
                    retry = rewrite(text)
                    if retry is None:
                        raise
                    (self.dir / f"{step}.{label}.out.gz").write_bytes(gzip.compress(exc.tail.encode()))
                    text = retry
        finally:
            self._archive(step, text, cwd / f"{step}.out")
        return wall

    def _archive(self, step: str, text: str, out: Path) -> None:
        """``<step>.in`` and the head/tail of the log ``out`` (when it exists) into the material's directory."""
        (self.dir / f"{step}.in").write_text(text)
        if out.exists():
            _compact_log(out, self.dir / f"{step}.out.gz")

    def mark(self, step: str, wall: float, **extra: Any) -> None:
        self.status.steps[step] = {"done": True, "wall_s": round(wall, 2), "finished_at": _now(), "blas": qe_blas(), **extra}  # type: ignore[index]
        self.save()

    # -- structures/grids ---------------------------------------------------------------------
    @property
    def relaxed(self) -> Structure:
        return Structure.from_dict(json.loads((self.dir / "relaxed.json").read_text()))

    @property
    def grids(self) -> Grids:
        g = json.loads((self.dir / "grids.json").read_text())
        return Grids(**{k: tuple(v) for k, v in g.items()})

    def pw(self, structure: Structure, calculation: str, kpoints, *, outdir: str = "./out", **kw: Any) -> str:
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
        ).to_str()

    # -- steps --------------------------------------------------------------------------------
    def step_relax(self) -> None:
        s = self.input_structure
        k = subdivisions(s, self.cfg.relax_k_density_per_invA)
        wall = self.qe("relax", "pw.x", self.pw(s, "vc-relax", k))
        res = parse_pw_output(self.scratch / "relax.out")
        if not res.converged or res.structure is None:
            raise _Reject("not_converged", f"vc-relax did not converge ({res.errors or 'no final coordinates'})")
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
            raise _Reject("not_converged", f"dense scf did not converge ({res.errors})")
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
        _write_table(
            self.dir / "edos.dat.gz",
            f"E-E_F (meV), total eDOS (states/eV/cell), site-projected eDOS x {pd.site.shape[0]}; E_F = {ef} eV",
            [pd.energy_meV, pd.total, *pd.site],
        )
        for p in self.scratch.glob("pdos.pdos_*"):
            p.unlink()
        self.mark("projwfc", wall, dos_ef_per_eV=pd.dos_ef_per_eV)

    def step_scf(self) -> None:
        wall = self.qe("scf", "pw.x", self.pw(self.relaxed, "scf", self.grids.k_scf))
        res = parse_pw_output(self.scratch / "scf.out")
        if not res.converged:
            raise _Reject("not_converged", f"scf did not converge ({res.errors})")
        self.mark("scf", wall, fermi_energy_eV=res.fermi_energy_eV, energy_Ry=res.total_energy_Ry)

    def ph_by_q(
        self,
        step: str,
        make_input: Callable[[int | None], str],
        *,
        cwd: Path,
        fildyn: str,
        stop_below_meV: float | None = None,
    ) -> tuple[float, PhononResult, dict[str, Any]]:
        """Run the ph.x ``ldisp`` calculation of ``step``; returns (wall s, frequencies, status extras:
        ``n_q_irr`` and, when split, ``split_q``, ``q_wall_s``, ``stopped_at_q``).

        With ``QEConfig.ph_split_q`` each irreducible q point is its own ph.x call
        (``make_input(i)``: ``start_q = last_q = i``) in the same ``outdir``.  The first call writes
        ``<fildyn>0``, the list of irreducible points; each finished point is recorded in
        ``<cwd>/<step>.progress.json``, so a killed run resumes at its first unfinished point.
        ``out/_ph0`` (the previous point's nscf and dvscf, or a killed call's half-written files) is
        removed before each call: every point starts clean, as in one ph.x call.  The per-point logs
        are archived together (head/tail of each) as ``<step>.out.gz``; ``<step>.in`` is the first
        point's input (the others differ only in ``start_q``/``last_q``).

        ``stop_below_meV``: stop after the first point other than Γ with a frequency below it (the
        material fails the imaginary-mode filter whatever the other points give); the extras then
        hold ``stopped_at_q`` and the frequencies cover the points computed.
        Without ``ph_split_q``, one call (``make_input(None)``) and no early stop.
        """
        if not self.cfg.ph_split_q:
            wall = self.qe(step, "ph.x", make_input(None), cwd=cwd)
            ph = parse_ph_output(cwd / f"{step}.out")
            return wall, ph, {"n_q_irr": int(len(ph.q_cart_2pi_alat))}
        progress_path = cwd / f"{step}.progress.json"
        progress: dict[str, Any] = json.loads(progress_path.read_text()) if progress_path.exists() else {}
        q_wall: dict[str, float] = progress.setdefault("q_wall_s", {})
        n_q = progress.get("n_q")
        parts: list[PhononResult] = []
        extra: dict[str, Any] = {"split_q": True}
        order = [1]  # ph.x's first point (Γ) writes <fildyn>0, the list of the others
        done_q: list[int] = []
        while order:
            iq = order.pop(0)
            name = f"{step}.q{iq}"
            if str(iq) not in q_wall:
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
                progress_path.write_text(json.dumps(progress))
            parts.append(parse_ph_output(cwd / f"{name}.out"))
            done_q.append(iq)
            if stop_below_meV is not None and parts[-1].min_freq_meV() < stop_below_meV:
                extra["stopped_at_q"] = iq
                break
            if iq == 1:
                order = self._q_order(parse_dyn0(cwd / f"{fildyn}0")[1])
        done = len(parts)
        ph = PhononResult(
            cwd / f"{step}.q*.out",
            np.concatenate([p.q_cart_2pi_alat for p in parts]),
            np.concatenate([p.freq_THz for p in parts]),
            np.concatenate([p.freq_cm1 for p in parts]),
            all(p.job_done for p in parts),
            sum(p.wall_time_s or 0.0 for p in parts),
        )
        shutil.copyfile(cwd / f"{step}.q1.in", self.dir / f"{step}.in")
        _compact_logs([cwd / f"{step}.q{i}.out" for i in done_q], self.dir / f"{step}.out.gz")
        walls = [q_wall[str(i)] for i in done_q]
        if done_q != list(range(1, done + 1)):
            extra["q_order"] = done_q
        return float(sum(walls)), ph, {"n_q_irr": int(n_q), **extra, "q_wall_s": walls}

    def _q_order(self, q_2pi_alat: np.ndarray) -> list[int]:
        """The order of ph.x's irreducible points 2..n after Γ: ph.x's own (``QEConfig.ph_q_order="qe"``)
        or the longest q first (``"boundary_first"``: zone-boundary points, where unstable modes usually
        sit, come before the points near Γ, so that ``ph_stop_at_imaginary`` stops a doomed run early)."""
        rest = list(range(2, len(q_2pi_alat) + 1))
        if self.cfg.ph_q_order == "boundary_first":
            norms = np.linalg.norm(np.asarray(q_2pi_alat, dtype=float), axis=1)
            rest.sort(key=lambda i: -round(float(norms[i - 1]), 6))
        return rest

    def _run_ph_q(self, name: str, text: str, cwd: Path, *, label: str) -> float:
        if self.progress:
            self.progress(f"{self.mid}: {label}")
        return run_qe("ph.x", text, cwd, name, omp_threads=self.cfg.omp_threads, timeout_s=self.cfg.step_timeout_s)

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
        wall, ph, extra = self.ph_by_q("ph_elph", make_input, cwd=self.scratch, fildyn="elph.dyn", stop_below_meV=stop)
        (self.dir / "ph_freqs.json").write_text(
            json.dumps({"q_cart_2pi_alat": ph.q_cart_2pi_alat.tolist(), "freq_meV": np.round(ph.freq_meV, 4).tolist()})
        )
        self.mark("ph_elph", wall, min_freq_meV=ph.min_freq_meV(), **extra)

    def step_q2r(self, coarse: bool = False) -> None:
        name = "q2r_coarse" if coarse else "q2r"
        cwd = self.scratch / "coarse" if coarse else self.scratch
        text = q2r_input(fildyn=("coarse.dyn" if coarse else "elph.dyn"), flfrc="fc", la2F=not coarse).to_str()
        wall = self.qe(name, "q2r.x", text, cwd=cwd)
        self.mark(name, wall)

    def step_matdyn(self, coarse: bool = False) -> None:
        name = "matdyn_coarse" if coarse else "matdyn"
        cwd = self.scratch / "coarse" if coarse else self.scratch
        nk = _matdyn_mesh(self.relaxed, self.cfg.matdyn_nq)
        text = matdyn_input(
            self.relaxed, flfrc="fc", nk=nk, fldos="phdos.dos", flfrq="matdyn.freq", la2F=not coarse,
            delta_meV=self.cfg.phdos_delta_meV,
        ).to_str()
        wall = self.qe(name, "matdyn.x", text, cwd=cwd)
        _, freq_cm1 = parse_matdyn_freq(cwd / "matdyn.freq")
        min_freq = float(freq_cm1.min() * CMM1_IN_MEV)
        if coarse:
            method = "tetrahedra"
            if not _dos_file_finite(cwd / "phdos.dos"):
                # matdyn 6.7's tetrahedron DOS turns NaN when whole tetrahedra are degenerate,
                # which the short-ranged 2x2x2 force constants of one-atom cubic cells produce.
                wall += self._gaussian_coarse_dos(cwd, nk)
                method = f"gaussian (sigma {COARSE_DOS_SIGMA_MEV} meV; tetrahedra gave NaN)"
            _gzip_copy(cwd / "phdos.dos", self.dir / "phdos_coarse.dos.gz")
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
        if not (_dos_file_finite(cwd / "phdos.dos") and all(np.all(np.isfinite(c)) for c in cols)):
            # Same matdyn 6.7 tetrahedron failure as for the coarse mesh (seen on B2 BaCd and L1_2
            # Al3Sc at 16^3): integrate both spectra with Gaussians over the full mesh instead.
            g_wall, cols = self._gaussian_fine(cwd, nk, omega)
            wall += g_wall
            method = f"gaussian (sigma {FINE_DOS_SIGMA_MEV} meV; tetrahedra gave NaN)"
            extra = {"dos_method": method, "a2f_method": method}
        _gzip_copy(cwd / "phdos.dos", self.dir / "phdos_fine.dos.gz")
        shutil.copyfile(cwd / "lambda", self.dir / "lambda")
        sig = [round(self.cfg.elph_smearing_step_Ry * i, 6) for i in range(1, self.cfg.n_elph_smearings + 1)]
        _write_table(
            self.dir / "a2f.dat.gz",
            "omega (meV), alpha2F total (dimensionless) for el-ph broadenings (Ry): " + " ".join(map(str, sig)),
            [omega, *cols],
        )
        self.mark(name, wall, nk=list(nk), min_freq_meV=min_freq, **extra)

    def _matdyn_full_mesh(self, step: str, cwd: Path, nk, *, la2F: bool) -> tuple[float, Path]:
        """Rerun matdyn.x in ``cwd/gauss`` with ``dos=.false.`` on the explicit (unreduced) ``nk`` mesh.

        Writes frequencies (``matdyn.freq``) and eigenvectors (``matdyn.eig``) at every mesh point,
        and with ``la2F`` the linewidths ``elph.gamma.N`` (GHz) of each broadening from the el-ph
        force constants in ``cwd/elph_dir``.  Returns (wall seconds, the directory).
        """
        gdir = cwd / "gauss"
        gdir.mkdir(exist_ok=True)
        shutil.copyfile(cwd / "fc", gdir / "fc")
        if la2F:
            shutil.copytree(cwd / "elph_dir", gdir / "elph_dir", dirs_exist_ok=True)
        grid = np.stack(np.meshgrid(*[np.arange(n) / n for n in nk], indexing="ij"), axis=-1).reshape(-1, 3)
        params = {"asr": "crystal", "flfrc": "fc", "flfrq": "matdyn.freq", "flvec": "matdyn.modes",
                  "fleig": "matdyn.eig", "dos": False, "la2F": la2F, "q_in_cryst_coord": True,
                  **_amass(self.relaxed)}
        text = NamelistInput(Namelist("input", params)).to_str().rstrip("\n") + "\n"
        text += f"{len(grid)}\n" + "".join(f"{a:.10f} {b:.10f} {c:.10f}\n" for a, b, c in grid)
        return self.qe(step, "matdyn.x", text, cwd=gdir), gdir

    def _gaussian_dos_file(self, cwd: Path, gdir: Path, sigma_meV: float) -> None:
        """Overwrite ``cwd/phdos.dos`` (matdyn's format and energy grid) with the Gaussian site-projected DOS."""
        freq_cm1, weights = parse_matdyn_eig(gdir / "matdyn.eig", n_sites=len(self.relaxed))
        omega_cm1 = np.loadtxt(cwd / "phdos.dos", comments="#", usecols=0)
        site = gaussian_site_dos(omega_cm1, freq_cm1, weights, sigma_meV / CMM1_IN_MEV)
        rows = np.column_stack([omega_cm1, site.sum(axis=0), site.T])
        np.savetxt(cwd / "phdos.dos", rows, fmt="%.10E", header="Frequency[cm^-1] DOS PDOS (Gaussian, betenet)")

    def _gaussian_coarse_dos(self, cwd: Path, nk) -> float:
        """Site-projected phonon DOS by Gaussian broadening over the full ``nk`` mesh.

        matdyn.x is rerun with ``dos=.false.`` on the explicit (unreduced) mesh in crystal
        coordinates, writing eigenvectors (``fleig``); every mode of every q point contributes
        ``|e_s|^2 g(E - w)`` to site ``s``.  The result is written over ``phdos.dos`` in matdyn's
        own format (cm^-1, states/cm^-1, total then one column per atom), on the same energy grid.
        """
        wall, gdir = self._matdyn_full_mesh("matdyn_coarse_gauss", cwd, nk, la2F=False)
        self._gaussian_dos_file(cwd, gdir, COARSE_DOS_SIGMA_MEV)
        return wall

    def _gaussian_fine(self, cwd: Path, nk, omega_meV: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Fine PhDOS and α²F of every broadening by Gaussian broadening over the full ``nk`` mesh.

        ``phdos.dos`` is overwritten as in :meth:`_gaussian_coarse_dos`; α²F of broadening N comes
        from matdyn's own linewidths (``elph.gamma.N``) and N(E_F) (``elph_dir/a2Fmatdyn.6N``) through
        :func:`gaussian_a2f`, on the energy grid ``omega_meV`` of matdyn's ``a2F.dosN`` files.
        Returns (wall seconds, one α²F column per broadening).
        """
        wall, gdir = self._matdyn_full_mesh("matdyn_gauss", cwd, nk, la2F=True)
        self._gaussian_dos_file(cwd, gdir, FINE_DOS_SIGMA_MEV)
        _, freq_cm1 = parse_matdyn_freq(gdir / "matdyn.freq")
        cols = []
        for i in range(1, self.cfg.n_elph_smearings + 1):
            _, gamma_GHz = parse_matdyn_freq(gdir / f"elph.gamma.{i}")
            if gamma_GHz.shape != freq_cm1.shape:
                raise QEParseError(f"{gdir / f'elph.gamma.{i}'}: {gamma_GHz.shape} linewidths for {freq_cm1.shape} frequencies")
            cols.append(gaussian_a2f(omega_meV, freq_cm1 * CMM1_IN_MEV, gamma_GHz * GHZ_IN_MEV,
                                     parse_a2fmatdyn_header(gdir / "elph_dir" / f"a2Fmatdyn.{60 + i}")[2], FINE_DOS_SIGMA_MEV))
        return wall, cols

    def step_ph_coarse(self) -> None:
        cdir = self.scratch / "coarse"
        resuming = (cdir / "ph_coarse.progress.json").exists()  # some q points of the split run are done
        if cdir.exists() and not resuming:
            shutil.rmtree(cdir)
        if not resuming:
            t0 = time.perf_counter()
            n = coarse_dyn_subset(self.scratch, "elph.dyn", cdir, "coarse.dyn", self.cfg.coarse_q_grid)
            if n:
                # the coarse q mesh divides the el-ph mesh: its dynamical matrices are already computed
                self.mark("ph_coarse", time.perf_counter() - t0, reused_from=f"{n} of the el-ph dynamical-matrix files (q subset)")
                return
            (cdir / "out").mkdir(parents=True)  # (coarse_dyn_subset wrote nothing)
            shutil.copytree(self.scratch / "out" / f"{PREFIX}.save", cdir / "out" / f"{PREFIX}.save")

        def make_input(only_q: int | None) -> str:
            return ph_input(
                self.relaxed, prefix=PREFIX, outdir="./out", q=self.cfg.coarse_q_grid, fildyn="coarse.dyn", elph=False,
                tr2_ph=self.cfg.tr2_ph, only_q=only_q,
            ).to_str()

        wall, _, extra = self.ph_by_q("ph_coarse", make_input, cwd=cdir, fildyn="coarse.dyn")
        self.mark("ph_coarse", wall, **extra)

    # -- driver -------------------------------------------------------------------------------
    def run(self) -> None:
        reuse_coarse = tuple(self.cfg.coarse_q_grid) == tuple(self.grids.q) if (self.dir / "grids.json").exists() else False
        for step in STEPS:
            if self.status.done(step):
                continue
            if step == "relax":
                self.step_relax()
                reuse_coarse = tuple(self.cfg.coarse_q_grid) == tuple(self.grids.q)
            elif step == "scf_dense":
                self.step_scf_dense()
            elif step == "nscf_edos":
                self.step_nscf_edos()
            elif step == "projwfc":
                self.step_projwfc()
                q = self._quality(stage="edos")
                if not q.kept:
                    raise _Reject(q.reason or "band_gap", q.detail)
            elif step == "scf":
                self.step_scf()
            elif step == "ph_elph":
                self.step_ph_elph()
                at = self.status.steps["ph_elph"].get("stopped_at_q")  # type: ignore[index]
                if at is not None:  # the ph.x points alone fail the imaginary-mode filter
                    q = self._quality(stage="phonons")
                    n = self.status.steps["ph_elph"]["n_q_irr"]  # type: ignore[index]
                    raise _Reject(q.reason or "imaginary_modes", f"{q.detail} at ph.x q point {at} of {n}; "
                                  "ph.x stopped there (QEConfig.ph_stop_at_imaginary)")
            elif step == "q2r":
                self.step_q2r()
            elif step == "matdyn":
                self.step_matdyn()
                q = self._quality(stage="phonons")
                if not q.kept:
                    raise _Reject(q.reason or "rejected", q.detail)
            elif step in ("ph_coarse", "q2r_coarse", "matdyn_coarse") and reuse_coarse:
                if step == "matdyn_coarse":
                    shutil.copyfile(self.dir / "phdos_fine.dos.gz", self.dir / "phdos_coarse.dos.gz")
                self.mark(step, 0.0, reused_from="q mesh equals the coarse 2x2x2 mesh")
            elif step == "ph_coarse":
                self.step_ph_coarse()
            elif step == "q2r_coarse":
                self.step_q2r(coarse=True)
            elif step == "matdyn_coarse":
                self.step_matdyn(coarse=True)
            elif step == "record":
                t0 = time.perf_counter()
                rec = build_record(self.mid, self.cfg, runs_dir=self.dir.parent, status=self.status, pseudos=self.pseudos_orig)
                from ..records import save_record

                save_record(rec, self.records_dir)
                self.mark("record", time.perf_counter() - t0)

    def _quality(self, stage: str) -> QualityReport:
        q = quality_report(self.dir, self.cfg, stage=stage)
        self.status.quality = {**(self.status.quality or {}), **q.checks}
        self.save()
        return q


class _Reject(Exception):
    def __init__(self, reason: str, detail: str | None = None):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def _backup(path: Path, *, copy: bool = False) -> Path | None:
    """Move (``copy=True``: copy a file) ``path`` to ``<name>.bak-<time>``; ``None`` if it does not exist.
    An existing backup of the same name is never overwritten."""
    if not path.exists():
        return None
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    dest = path.with_name(f"{path.name}.bak-{stamp}")
    if dest.exists():
        raise FileExistsError(f"{dest} exists; refusing to overwrite it")
    if copy:
        shutil.copyfile(path, dest)
    else:
        path.rename(dest)
    return dest


def library_for(cfg: QEConfig):
    """The pseudopotential library of an accuracy level (``QEConfig.pseudo_set``): the project's ld1.x
    set (``data/pseudo``) or the pw.x-validated PseudoDojo set (``data/pseudo/pseudodojo``)."""
    from .pseudo import PseudoLibrary

    return PseudoLibrary.pseudodojo() if cfg.pseudo_set == "pseudodojo" else PseudoLibrary.default()


def material_lock_path(material_id: str, runs_dir: Path | None = None) -> Path:
    """Lock file of one material's run (hidden, beside its directory; removed when the run ends)."""
    return Path(runs_dir or QE_RUNS_DIR) / f".{material_id}.lock"


def run_material(material_id: str, structure: Structure, cfg: QEConfig, *, runs_dir: Path | None = None,
                 **kw: Any) -> MaterialStatus:
    """:func:`_run_material_unlocked` under the material's lock: a second run of the same material
    (another ``qe run``, another worker) raises :class:`betenet.locks.LockBusyError` at once instead
    of running QE into the same directories.  A crashed run's lock is released by the kernel."""
    from ..locks import exclusive

    with exclusive(material_lock_path(material_id, runs_dir), f"the QE run of material {material_id!r}"):
        return _run_material_unlocked(material_id, structure, cfg, runs_dir=runs_dir, **kw)


def _run_material_unlocked(
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
    check_settings(cfg)
    check_structure(structure, max_atoms=cfg.max_atoms, name=f"material {material_id!r}")
    if library is None:
        library = library_for(cfg)
    status = load_status(material_id, runs_dir)
    if status.final and not force and not (retry_failed and status.state == "failed"):
        return status
    if force:
        backups = [_backup(material_dir(material_id, runs_dir)), _backup(records_dir / f"{material_id}.json")]
        if any(backups) and progress:
            progress(f"{material_id}: previous results moved to {[str(b) for b in backups if b]}")
    elif status.state == "failed":  # retry: start again from the persistent steps
        status.state, status.reason, status.detail = "pending", None, None
        status.save(material_dir(material_id, runs_dir))
    try:
        run = _Run(material_id, structure, cfg, library, runs_dir, records_dir, prototype, progress)
    except QEInputError:
        raise
    except Exception as exc:  # a library's own error type (e.g. PseudoError) for a missing element
        raise QEInputError(f"material {material_id!r}: {exc}") from exc
    run.prepare()
    try:
        run.run()
        run.status.state = "kept"
        run.status.reason = None
    except _Reject as rej:
        run.status.state, run.status.reason, run.status.detail = "rejected", rej.reason, rej.detail
    except QEError as err:
        run.status.state, run.status.reason = "failed", f"{err.executable} {err.reason}"
        run.status.detail = str(err)[-3000:]
    except (QEParseError, QEInputError) as err:
        run.status.state, run.status.reason, run.status.detail = "failed", type(err).__name__, str(err)[-3000:]
    finally:
        if run.status.state == "running":  # interrupted (KeyboardInterrupt, unexpected error): resumable
            run.save()
    run.status.finished_at = _now()
    run.save()
    # a failed step can be retried from its scratch; a NaN rejection (since the Gaussian fallback of
    # step_matdyn, only if that too gives NaN) keeps fc, elph_dir and the matdyn files for diagnosis
    if not cfg.keep_scratch and run.status.state != "failed" and run.status.reason != "nan":
        shutil.rmtree(run.scratch, ignore_errors=True)
    return run.status


def reject_after_review(
    material_id: str,
    reason: str,
    detail: str,
    *,
    runs_dir: Path | None = None,
    records_dir: Path | None = None,
) -> MaterialStatus:
    """Reject a material that the filters kept but a later review found wrong (e.g. its
    pseudopotential failed validation).  Nothing is deleted: the record moves into the material's
    audit directory as ``record.rejected.json``, ``status.json`` becomes ``rejected`` with ``reason``,
    ``detail`` and ``reviewed_at``; the funnel counts it under ``reason``.
    """
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    records_dir = Path(records_dir or RECORDS_DIR)
    if not reason or not detail:
        raise ValueError("reject_after_review needs a reason and a detail (what the review found)")
    status = load_status(material_id, runs_dir)
    if status.state != "kept":
        raise ValueError(f"{material_dir(material_id, runs_dir) / 'status.json'}: state is {status.state!r}, expected 'kept'")
    directory = material_dir(material_id, runs_dir)
    rec = records_dir / f"{material_id}.json"
    if rec.exists():
        dest = directory / "record.rejected.json"
        if dest.exists():
            raise FileExistsError(f"{dest} exists; refusing to overwrite it")
        rec.rename(dest)
    status.state, status.reason, status.detail = "rejected", reason, detail
    status.quality = {**(status.quality or {}), "reviewed_at": _now()}
    status.save(directory)
    return status


def refilter(material_id: str, cfg: QEConfig, *, runs_dir: Path | None = None) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
    """Re-apply the current phonon filters to a finished material whose ph.x check used an older rule.

    The lowest ph.x frequency is recomputed from ``ph_freqs.json`` (:func:`min_freq_off_gamma`); when
    it changed, ``status.json`` is first copied to ``status.json.bak-<time>``, the ph_elph step keeps
    the old value as ``min_freq_meV_previous_rule``, and the phonon filters run again on the stored
    outputs.  A material rejected for imaginary modes that now passes becomes ``pending``: the next
    ``betenet qe run`` resumes it after the relaxation (the scratch files are gone) and writes its
    record.  A rejected material that now fails another filter keeps ``rejected`` with the new reason;
    a kept material that would now fail is reported, not changed (use :func:`reject_after_review`).
    Returns ``((state, reason) before, (state, reason) after)``.
    """
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    d = material_dir(material_id, runs_dir)
    status = load_status(material_id, runs_dir)
    before = (status.state, status.reason)
    freqs = d / "ph_freqs.json"
    if status.state not in ("kept", "rejected") or not status.done("matdyn") or not freqs.exists():
        return before, before
    ph = json.loads(freqs.read_text())
    new_min = min_freq_off_gamma(ph["q_cart_2pi_alat"], ph["freq_meV"])
    step = status.steps["ph_elph"]  # type: ignore[index]
    old_min = step.get("min_freq_meV")
    if old_min is not None and abs(float(old_min) - new_min) < 1e-3:  # ph_freqs.json keeps 4 decimals
        return before, before
    _backup(d / "status.json", copy=True)
    step["min_freq_meV"], step["min_freq_meV_previous_rule"] = new_min, old_min
    status.save(d)  # quality_report reads the steps from status.json
    q = quality_report(d, cfg, stage="phonons")
    status.quality = {**(status.quality or {}), **q.checks, "refiltered_at": _now()}
    if status.state == "rejected" and status.reason == "imaginary_modes":
        if q.kept:
            status.state, status.reason, status.finished_at = "pending", None, None
            status.detail = f"re-filtered {_now()}: was rejected (imaginary_modes: {status.detail}); resumes after the relaxation"
        else:
            status.reason, status.detail = q.reason, q.detail
    elif status.state == "kept" and not q.kept:
        status.quality["refilter_would_reject"] = f"{q.reason}: {q.detail}"
    status.save(d)
    return before, (status.state, status.reason)


# --------------------------------------------------------------------------------------------
# Record assembly (from data/qe/<id>/ only)
# --------------------------------------------------------------------------------------------


def _a2f_selected(run_dir: Path, cfg: QEConfig) -> tuple[np.ndarray, np.ndarray, BroadeningChoice]:
    """ω (meV), α²F of the broadening ``cfg`` selects (:func:`betenet.qe.broadening.select_broadening`) and the choice."""
    header, data = _read_table(run_dir / "a2f.dat.gz")
    if cfg.elph_sigma_selection == "index":
        idx = cfg.elph_smearing_index
        choice = None
    else:
        choice = choose_for_run(run_dir, cfg)
        idx = choice.index
    if not 1 <= idx <= data.shape[1] - 1:
        raise QEParseError(f"{run_dir / 'a2f.dat.gz'}: broadening index {idx} but {data.shape[1] - 1} broadenings stored")
    sigmas = [float(x) for x in header.split(":")[-1].split()]
    return data[:, 0], data[:, idx], choice or BroadeningChoice(idx, sigmas[idx - 1], "index", 0.0)


def _cutoffs_below_library(scf_in: Path, structure: Structure, cfg: QEConfig, lib: Any = None) -> bool:
    """Whether the run's ``ecutwfc``/``ecutrho`` (its ``scf.in``) are below what the level's library (``lib``,
    default :func:`library_for`) now gives for these elements (the rule a new run applies:
    :func:`~betenet.qe.inputs.cutoffs_Ry`)."""
    if not scf_in.exists():
        return False
    run = PWInput.from_str(scf_in.read_text(), origin=str(scf_in)).system
    try:
        specs = pseudo_specs(library_for(cfg) if lib is None else lib, sorted({sp.symbol for sp in structure.composition.elements}))
    except QEInputError:  # an element the library no longer offers: nothing to compare against
        return False
    want_wfc, want_rho = cutoffs_Ry(specs, cfg.ecutwfc_Ry, cfg.ecutrho_Ry)
    return float(run.get("ecutwfc", 0.0)) < want_wfc - 1e-9 or float(run.get("ecutrho", 0.0)) < want_rho - 1e-9


def _provisional_pseudos(structure: Structure, cfg: QEConfig, lib: Any = None) -> list[str]:
    """Elements of ``structure`` whose pseudopotential in the level's library (``lib``, default
    :func:`library_for`) is not (yet) ``validated``."""
    lib = library_for(cfg) if lib is None else lib
    els = sorted({sp.symbol for sp in structure.composition.elements})
    return [el for el in els if getattr(lib[el], "status", "validated") != "validated"] if all(el in lib for el in els) else []


def _upstream_provenance(material_id: str, structure: Structure | None = None) -> dict[str, Any]:
    """For a candidate taken from the paper's own structures (``upNNNN-...``), or one whose ``structure`` is
    one of them up to scale (:func:`~betenet.qe.upstream_candidates.matching_upstream_row`): the upstream row
    and the side of the paper's train/test split it is on; empty otherwise."""
    from .upstream_candidates import matching_upstream_row, upstream_index_of

    row = upstream_index_of(material_id)
    if row is None and structure is not None:
        try:
            row = matching_upstream_row(structure)
        except FileNotFoundError:  # no vendored structures (a trimmed checkout): nothing to match against
            row = None
    if row is None:
        return {}
    from ..upstream_split import paper_split_indices

    train, test = paper_split_indices()
    return {"upstream_index": row, "upstream_split": "train" if row in train else "test" if row in test else None}


def build_record(
    material_id: str,
    cfg: QEConfig,
    *,
    runs_dir: Path | None = None,
    status: MaterialStatus | None = None,
    pseudos: Mapping[str, PseudoSpec] | None = None,
):
    """Assemble the :class:`~betenet.records.MaterialRecord` of a finished run from ``data/qe/<id>/``.

    The moments are those of the *unclipped* α²F (equal to QE's mode sum; the learning target is clipped
    after smoothing, :func:`betenet.spectra.smooth_and_bin`); the moments at every broadening, the label
    uncertainty and the flags come from :func:`betenet.qe.labels.record_labels`.
    """
    from .. import physics
    from ..records import FLAGS, MaterialRecord
    from .labels import record_labels

    d = material_dir(material_id, runs_dir)
    status = status or load_status(material_id, runs_dir)
    structure = Structure.from_dict(json.loads((d / "relaxed.json").read_text()))
    omega, a2f_raw, choice = _a2f_selected(d, cfg)
    sigma = choice.sigma_Ry
    keep = omega > 0
    omega, a2f_raw = omega[keep], a2f_raw[keep]
    neg = float(np.trapezoid(np.clip(-a2f_raw, 0, None), omega))
    pos = float(np.trapezoid(np.clip(a2f_raw, 0, None), omega))
    fine = parse_phdos(d / "phdos_fine.dos.gz")
    coarse = parse_phdos(d / "phdos_coarse.dos.gz")
    check_elph_tables(omega, fine, coarse, len(structure), d)  # a truncated table must not pass silently
    _, edos = _read_table(d / "edos.dat.gz")
    m = physics.moments(omega, a2f_raw)
    tc = physics.allen_dynes_tc_K(m.lambda_, m.omega_log_K, m.omega_2_K)
    labels = record_labels(d, material_id, sigma, prototype=status.prototype)
    extra = {"broadening_unconverged"} if choice.method == "plateau-fallback" else set()  # λ(σ) never flat
    if cfg.pseudo_set != "project":
        lib = library_for(cfg)  # loaded once: it checks every UPF's digest
        if _cutoffs_below_library(d / "scf.in", structure, cfg, lib):
            extra.add("cutoff_below_library")
        if _provisional_pseudos(structure, cfg, lib):
            extra.add("pseudopotential_provisional")
    if extra:
        labels["flags"] = [f for f in FLAGS if f in {*labels["flags"], *extra}]
    lam_rows = parse_lambda_file(d / "lambda")
    row = min(lam_rows, key=lambda r: abs(r.broadening_Ry - sigma))
    grids = json.loads((d / "grids.json").read_text())
    ps_info = {}
    for el, spec in (pseudos or {}).items():
        ps_info[el] = {"file": spec.filename, "md5": spec.md5 or _md5(spec.path)}
    steps = status.steps or {}
    prov = {
        "code": QE_VERSION,
        "workflow": "betenet.qe.workflow",
        "accuracy": cfg.accuracy,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "grids": grids,
        "elph_smearing_Ry": sigma,
        "elph_broadening": choice.as_dict(),
        "pseudopotentials": ps_info,
        "timings_s": {k: v.get("wall_s") for k, v in steps.items()},
        "wall_s_total": round(sum(float(v.get("wall_s", 0.0)) for v in steps.values()), 1),
        "host": platform.node(),
        "blas": sorted({str(v["blas"]) for v in steps.values() if "blas" in v}) or None,
        "date": _now(),
        "prototype": status.prototype,
        "lambda_qe": row.lambda_,
        "omega_log_K_qe": row.omega_log_K,
        "a2f_negative_weight_fraction": neg / pos if pos > 0 else None,
        "a2f_min_raw": float(a2f_raw.min()),
        "a2f_all_broadenings": f"{material_id}/a2f.dat.gz in the QE runs directory (data/qe)",
        "quality": status.quality,
        "fermi_energy_eV": steps.get("nscf_edos", {}).get("fermi_energy_eV"),
        **_upstream_provenance(material_id, structure),
    }
    return MaterialRecord(
        material_id=material_id,
        structure=structure,
        a2f_omega_meV=omega,
        a2f=a2f_raw,
        phdos_omega_meV=fine.omega_meV,
        phdos_total=fine.total,
        phdos_site=fine.site,
        phdos_coarse_omega_meV=coarse.omega_meV,
        phdos_coarse_total=coarse.total,
        phdos_coarse_site=coarse.site,
        edos_energy_meV=edos[:, 0],
        edos_total=edos[:, 1],
        edos_site=edos[:, 2:].T,
        edos_ef_per_eV=float(np.interp(0.0, edos[:, 0], edos[:, 1])),
        lambda_=float(m.lambda_),
        omega_log_K=float(m.omega_log_K),
        omega_2_K=float(m.omega_2_K),
        tc_ad_K=float(tc),
        source="betenet-qe",
        provenance=prov,
        **labels,
    )


IMAGINARY_THRESHOLD_MEV = IMAGINARY_MODE_THRESHOLD_MEV


#: Gaussian width (meV) of the fallback coarse phonon DOS (the 2 meV target bins and the 10 meV
#: Savitzky-Golay window are much wider).
COARSE_DOS_SIGMA_MEV = 1.0
#: Gaussian width (meV) of the fine-mesh PhDOS and α²F when matdyn's tetrahedra give NaN.  On our fcc Al
#: and bcc Nb runs (16^3 mesh) it reproduces the tetrahedron λ to 0.3 % and ω_log to 0.5 % for every
#: broadening (tests/test_qe_real.py).
FINE_DOS_SIGMA_MEV = 0.5
#: matdyn's ``eps_w2`` (Ry): modes at or below this frequency get zero linewidth in ``a2Fdos``.
MATDYN_EPS_W2_RY = 1e-7


def _read_dyn_basis(path: Path) -> np.ndarray:
    """Direct lattice vectors (rows, units of alat) from the header of a ph.x dynamical-matrix file."""
    lines = path.read_text().splitlines()
    try:
        head = lines[2].split()
        ibrav = int(head[2])
        if ibrav != 0:
            raise QEParseError(f"{path}: ibrav = {ibrav}; only ibrav = 0 (CELL_PARAMETERS) files are supported here")
        if "basis vectors" not in lines[3].lower():
            raise QEParseError(f"{path}: expected 'Basis vectors' on line 4, got {lines[3]!r}")
        return np.array([[float(x) for x in lines[4 + i].split()[:3]] for i in range(3)])
    except (IndexError, ValueError) as exc:
        raise QEParseError(f"{path}: malformed dynamical-matrix header ({exc})") from None


def coarse_dyn_subset(src_dir: Path, fildyn: str, dest_dir: Path, dest_fildyn: str, coarse: tuple[int, int, int]) -> int:
    """Reuse the dynamical matrices of a ph.x ``ldisp`` run for a coarser q mesh that divides it.

    When every subdivision of the el-ph q mesh (``<fildyn>0``) is a multiple of ``coarse``, the
    coarse mesh's points are a subset of the fine mesh's, and because symmetry maps mesh points onto
    mesh points, each coarse star is one of the fine mesh's irreducible stars: its ``<fildyn>N`` file
    (which holds the whole star) is exactly what ph.x would write for the coarse mesh.  Those files are
    copied to ``dest_dir/<dest_fildyn>1..M`` with a matching ``<dest_fildyn>0``, ready for q2r.x.
    Returns M, or 0 when the meshes are not commensurate (nothing is written then).
    """
    src_dir, dest_dir = Path(src_dir), Path(dest_dir)
    dyn0 = src_dir / f"{fildyn}0"
    fine, qs = parse_dyn0(dyn0)
    rows = dyn0.read_text().split("\n")
    coarse = tuple(int(c) for c in coarse)
    if len(fine) != 3 or any(f % c for f, c in zip(fine, coarse)) or fine == coarse:
        return 0
    basis = _read_dyn_basis(src_dir / f"{fildyn}1")
    frac = qs @ basis.T  # q (2pi/alat, cartesian) . a_i (alat) = crystal coordinate along b_i
    on = np.all(np.abs(frac * np.array(coarse) - np.round(frac * np.array(coarse))) < 1e-5, axis=1)
    picked = [i + 1 for i in np.flatnonzero(on)]
    if not picked:
        raise QEParseError(f"{dyn0}: no q point of the {coarse} mesh among the {fine} mesh's irreducible points")
    dest_dir.mkdir(parents=True, exist_ok=True)
    for j, i in enumerate(picked, start=1):
        shutil.copyfile(src_dir / f"{fildyn}{i}", dest_dir / f"{dest_fildyn}{j}")
    lines = [" ".join(f"{c:4d}" for c in coarse), f"{len(picked):4d}"]
    lines += [rows[1 + i] for i in picked]
    (dest_dir / f"{dest_fildyn}0").write_text("\n".join(lines) + "\n")
    return len(picked)


def _dos_file_finite(path: Path) -> bool:
    """False if a matdyn DOS file holds NaN/inf (or cannot be read as numbers)."""
    try:
        data = np.loadtxt(path, comments="#")
    except ValueError:
        return False
    return bool(data.size) and bool(np.all(np.isfinite(data)))


def parse_matdyn_eig(path: Path, n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """matdyn ``fleig`` file -> (frequencies in cm^-1, shape (nq*3N,), site weights |e_s|^2, shape (nq*3N, N)).

    Raises QEParseError naming the file when the mode/eigenvector blocks are inconsistent.
    """
    import re

    freq_re = re.compile(r"freq\s*\(\s*\d+\s*\)\s*=\s*(\S+)\s*\[THz\]\s*=\s*(\S+)\s*\[cm-1\]")
    freqs: list[float] = []
    weights: list[list[float]] = []
    current: list[float] | None = None
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            m = freq_re.search(line)
            if m:
                if current is not None and len(current) != n_sites:
                    raise QEParseError(f"{path}:{lineno}: expected {n_sites} eigenvector lines per mode, got {len(current)}")
                freqs.append(float(m.group(2)))
                current = []
                weights.append(current)
                continue
            s = line.strip()
            if s.startswith("(") and current is not None:
                vals = s.strip("()").split()
                if len(vals) != 6:
                    raise QEParseError(f"{path}:{lineno}: expected 6 numbers in an eigenvector line, got {len(vals)}")
                v = np.array([float(x) for x in vals])
                current.append(float(np.sum(v * v)))
    if not freqs or any(len(w) != n_sites for w in weights):
        raise QEParseError(f"{path}: no complete modes with {n_sites} eigenvector lines each")
    return np.array(freqs), np.array(weights)


def gaussian_site_dos(omega, freqs, weights, sigma):
    """Site-projected DOS ``g_s(E) = (1/n_q) sum_{q,nu} w_{q nu s} G_sigma(E - w_{q nu})`` (units of 1/[omega]).

    ``weights`` rows are renormalised to 1 so that ``sum_s ∫ g_s = 3N`` exactly (before truncation
    of the energy range).
    """
    omega = np.asarray(omega, float)
    freqs = np.asarray(freqs, float)
    w = np.asarray(weights, float)
    w = w / w.sum(axis=1, keepdims=True)
    n_q = len(freqs) / (3 * w.shape[1])
    return _gaussian_sum(omega, freqs, w, sigma) / n_q


def _gaussian_sum(omega: np.ndarray, centres: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """``out[k] = Σ_i weights[i, k] G_σ(omega − centres[i])`` with normalised Gaussians, shape (n_k, n_omega);
    the centres are taken 4096 at a time to bound the memory of the (centres × omega) kernel."""
    out = np.zeros((weights.shape[1], omega.size))
    for lo in range(0, len(centres), 4096):
        d = (omega[None, :] - centres[lo:lo + 4096, None]) / sigma
        out += weights[lo:lo + 4096].T @ (np.exp(-0.5 * d * d) / (sigma * np.sqrt(2 * np.pi)))
    return out


def gaussian_a2f(omega_meV, freq_meV, gamma_meV, dos_ef_per_Ry: float, sigma_meV: float) -> np.ndarray:
    """Eliashberg function on ``omega_meV`` from mode linewidths, with matdyn's ``a2Fdos`` definitions.

    ``α²F(ω) = 1/(2π N(E_F)) · (1/n_q) Σ_{qν} (γ_{qν}/ω_{qν}) δ_σ(ω − ω_{qν})``, with ``freq_meV`` and
    ``gamma_meV`` of shape (n_q, n_modes) over a full uniform mesh (matdyn's ``elph.gamma.N`` converted
    to meV), ``dos_ef_per_Ry`` the N(E_F) matdyn reads from ``elph_dir/a2Fmatdyn.6N`` (states/Ry/cell)
    and δ a normalised Gaussian of width ``sigma_meV``.  As in matdyn, modes at or below
    ``MATDYN_EPS_W2_RY`` (acoustic modes at Γ, unstable modes) carry no weight.  Then
    ``2∫α²F/ω dω`` equals matdyn's mode sum ``(1/(π N(E_F) n_q)) Σ γ/ω²`` up to the Gaussian tails.
    """
    omega = np.asarray(omega_meV, float)
    w = np.asarray(freq_meV, float)
    g = np.asarray(gamma_meV, float)
    if w.shape != g.shape or w.ndim != 2:
        raise ValueError(f"frequencies {w.shape} and linewidths {g.shape} must both be (n_q, n_modes)")
    if not dos_ef_per_Ry > 0:
        raise ValueError(f"N(E_F) must be positive, got {dos_ef_per_Ry}")
    n_q = w.shape[0]
    w, g = w.ravel(), g.ravel()
    ok = w > MATDYN_EPS_W2_RY * RY_IN_MEV
    out = _gaussian_sum(omega, w[ok], (g[ok] / w[ok])[:, None], sigma_meV)[0]
    # δ in 1/meV -> 1/Ry to match N(E_F) in states/Ry
    return out / n_q * RY_IN_MEV / dos_ef_per_Ry / (2 * np.pi)
