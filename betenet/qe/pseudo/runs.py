"""The pw.x and ph.x runs of the pseudopotential checks, on one core through :func:`betenet.qe.runner.run_qe`:
the scf input of a reference solid (:func:`scf_input`, a :class:`~betenet.qe.inputs.PWInput` from
:func:`~betenet.qe.inputs.pw_input`), :func:`run_pw` (energy, pressure, alat, times, parsed by
:func:`~betenet.qe.parsers.parse_pw_output`) and :func:`run_ph` (frequencies at one q point)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pymatgen.core import Structure

from ...constants import CMM1_IN_MEV
from ..inputs import Namelist, NamelistInput, PseudoSpec, PWInput, pw_input
from ..kgrid import subdivisions
from ..parsers import QEParseError, parse_ph_output, parse_pw_output
from ..runner import QEError, output_tail, run_qe
from .errors import PseudoError

__all__ = ["kpoint_grid", "scf_input", "run_pw", "run_ph", "sum_rule_corrected"]

#: Lines of output quoted when a run fails.
_TAIL_LINES = 12


def kpoint_grid(structure: Structure, kspacing_invA: float) -> tuple[int, int, int]:
    """Monkhorst-Pack subdivisions ``ceil(|b_i| / kspacing_invA)`` (|b| with the 2π, at least 1): the
    density ``2π / kspacing_invA`` of :func:`betenet.qe.kgrid.subdivisions`."""
    return subdivisions(structure, 2 * math.pi / kspacing_invA)


def _as_written(x: float, decimals: int) -> float:
    return float(f"{x:.{decimals}f}")


def scf_input(structure: Structure, pseudo_dir: Path | str, files: dict[str, str], ecutwfc_Ry: float, ecutrho_Ry: float,
              *, kspacing_invA: float, degauss_Ry: float, keep: bool = False,
              kpoints: tuple[int, int, int] | None = None) -> PWInput:
    """pw.x scf of ``structure`` with stress, Methfessel-Paxton smearing, ``conv_thr`` 1e-9 Ry per cell,
    prefix ``v`` and scratch ``./tmp``; ``files``: element -> UPF name in ``pseudo_dir``.  ``keep`` writes
    the wavefunctions (``disk_io='low'``) for a ph.x run after it; else nothing (``disk_io='none'``).
    ``kpoints``: this Monkhorst-Pack mesh instead of the one ``kspacing_invA`` gives for ``structure`` (an E(V)
    scan keeps one mesh for all volumes: a mesh that changes with the volume puts steps of a few meV into E(V)).

    Masses (4 decimals) and cell/positions (10 decimals) carry the precision these checks have always
    written, so a recorded check reruns on the same numbers."""
    pseudos = {el: PseudoSpec(el, Path(pseudo_dir) / name) for el, name in files.items()}
    inp = pw_input(structure, pseudos, calculation="scf",
                   kpoints=tuple(kpoints) if kpoints is not None else kpoint_grid(structure, kspacing_invA),
                   ecutwfc_Ry=ecutwfc_Ry, ecutrho_Ry=ecutrho_Ry, outdir="./tmp", prefix="v",
                   degauss_Ry=degauss_Ry, smearing="mp", mixing_beta=0.4)
    inp.control.update(tstress=True, tprnfor=False, disk_io="low" if keep else "none")
    inp.electrons["conv_thr"] = 1e-9  # per cell, not per atom as in the dataset's runs
    inp.species = [(el, _as_written(mass, 4), name) for el, mass, name in inp.species]
    inp.lattice_A = np.array([[_as_written(x, 10) for x in row] for row in inp.lattice_A])
    inp.positions = [(el, np.array([_as_written(x, 10) for x in p])) for el, p in inp.positions]
    return inp


def _run(executable: str, text: str, workdir: Path, name: str, timeout_s: float) -> Path:
    """Run ``executable -in <name>.in`` in ``workdir``; :class:`PseudoError` with the tail of its output
    when it is missing, fails or runs past ``timeout_s``."""
    try:
        run_qe(executable, text, workdir, name, timeout_s=timeout_s, check_done=False, stdin=False)
    except QEError as exc:
        if exc.reason == "not found":
            raise PseudoError(f"{executable} not found on PATH (install quantum-espresso)") from None
        if exc.returncode is None:
            raise PseudoError(f"{executable} in {workdir} ran past {timeout_s:.0f} s") from None
        raise _failed(executable, workdir, workdir / f"{name}.out") from None
    return workdir / f"{name}.out"


def _failed(executable: str, workdir: Path, out: Path) -> PseudoError:
    return PseudoError(f"{executable} failed in {workdir}; tail of output:\n{output_tail(out, _TAIL_LINES)}")


def run_pw(inp: PWInput | str, workdir: Path, timeout_s: float, *, keep: bool = False) -> dict[str, float]:
    """One pw.x scf on one core in ``workdir``: energy (Ry), pressure (kbar), CPU and wall time (s), alat (bohr).
    The scratch directory ``./tmp`` is removed afterwards unless ``keep``."""
    workdir = Path(workdir)
    out = _run("pw.x", inp.to_str() if isinstance(inp, PWInput) else inp, workdir, "pw", timeout_s)
    try:
        res = parse_pw_output(out, require_done=False)
    except QEParseError:
        raise _failed("pw.x", workdir, out) from None
    if res.total_energy_Ry is None or res.pressure_kbar is None or res.alat_bohr is None:
        raise _failed("pw.x", workdir, out)
    if not keep:
        shutil.rmtree(workdir / "tmp", ignore_errors=True)
    nan = float("nan")
    return {"energy_Ry": res.total_energy_Ry, "pressure_kbar": res.pressure_kbar,
            "cpu_s": nan if res.cpu_time_s is None else res.cpu_time_s,
            "wall_s": nan if res.wall_time_s is None else res.wall_time_s, "alat_bohr": res.alat_bohr}


def run_ph(q_cart_2pi_alat: Iterable[float], workdir: Path, timeout_s: float) -> dict[str, Any]:
    """ph.x at one q (cartesian, 2π/alat) after :func:`run_pw` with ``keep=True``: frequencies (meV), times (s)."""
    workdir = Path(workdir)
    q = " ".join(f"{x:.10f}" for x in q_cart_2pi_alat)
    inp = NamelistInput(Namelist("inputph", {"prefix": "v", "outdir": "./tmp", "tr2_ph": 1.0e-16, "fildyn": "dyn"}),
                        title="phonon", trailer=f"{q}\n")
    out = _run("ph.x", inp.to_str(), workdir, "ph", timeout_s)
    try:
        res = parse_ph_output(out, require_done=False)
    except QEParseError:
        raise _failed("ph.x", workdir, out) from None
    shutil.rmtree(workdir / "tmp", ignore_errors=True)
    nan = float("nan")
    return {"freqs_meV": [float(f) * CMM1_IN_MEV for f in res.freq_cm1.ravel()],
            "cpu_s": nan if res.cpu_time_s is None else res.cpu_time_s,
            "wall_s": nan if res.wall_time_s is None else res.wall_time_s}


def sum_rule_corrected(freqs_meV: Iterable[float], gamma_meV: Iterable[float]) -> list[float]:
    """Frequencies (meV; negative = imaginary) of a one-atom cell at q with the acoustic sum rule imposed, as
    matdyn's ``asr`` does for the labels: in a Bravais lattice the sum-rule violation is one on-site term, the
    dynamical matrix at Γ (cubic: ω²_Γ times the identity), so ω²(q) − ω²_Γ with ω²_Γ the mean of the three Γ
    modes' signed squares.  bcc V, PseudoDojo 85/340 Ry, at H: ph.x 25.63 meV, Γ −4.40 meV, corrected 26.00,
    the frozen phonon 25.99."""
    g = [math.copysign(w * w, w) for w in gamma_meV]
    w2_gamma = sum(g) / len(g)
    return [math.copysign(math.sqrt(abs(v)), v) for v in (math.copysign(w * w, w) - w2_gamma for w in freqs_meV)]
