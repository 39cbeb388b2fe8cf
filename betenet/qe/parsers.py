"""Parsers for the Quantum ESPRESSO outputs the workflow uses, with explicit units.

=====================  =============================================================================
file                   parser / units
=====================  =============================================================================
pw.x stdout            :func:`parse_pw_output` — energies Ry/eV, relaxed cell Å, fractional positions
ph.x stdout            :func:`parse_ph_output` — frequencies per q (THz and cm⁻¹; ``min_freq_meV``)
matdyn ``flfrq``       :func:`parse_matdyn_freq` — frequencies (cm⁻¹) on the interpolation mesh
matdyn ``fleig``       :func:`parse_matdyn_eig` — frequencies (cm⁻¹) and site weights |e_s|² of every mode
ph.x ``fildynN``       :mod:`betenet.qe.dyn` — q mesh, irreducible q, lattice, modes at q
matdyn ``fldos``       :func:`parse_phdos` — ω cm⁻¹ -> meV; DOS states/cm⁻¹ -> states/meV/cell (total + per site)
``a2F.dosN``           :func:`parse_a2f_dos` — ω Ry -> meV; α²F dimensionless (total + per mode); QE's λ
``lambda``             :func:`parse_lambda_file` — λ, N(E_F) (states/spin/Ry/cell), ω_ln (K) per broadening
``a2Fmatdyn.6N``       :func:`parse_a2fmatdyn_header` — broadening (Ry), E_F (Ry), N(E_F) (states/spin/Ry/cell)
matdyn ``elph.gamma.N`` :func:`parse_matdyn_freq` (same plotband format) — linewidths (GHz) on the mesh
projwfc ``*.pdos_*``   :func:`parse_projwfc` — energies eV -> meV relative to E_F; states/eV/cell (total + per site)
=====================  =============================================================================

Every parser raises :class:`QEParseError` naming the file and the line number of the problem (a
corrupt or cut ``.gz`` included).  :func:`check_elph_tables` makes a truncated table impossible to
miss: each PhDOS must integrate to 3N and α²F must span the fine PhDOS's frequency grid.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from pymatgen.core import Lattice, Structure

from ..constants import BOHR_IN_ANGSTROM, CMM1_IN_MEV, RY_IN_MEV, THZ_IN_MEV

__all__ = [
    "QEParseError",
    "PWResult",
    "PhononResult",
    "PhononDOS",
    "A2FResult",
    "LambdaRow",
    "ProjectedDOS",
    "parse_pw_output",
    "parse_pw_forces",
    "a2f_sigmas",
    "parse_ph_output",
    "gamma_mask",
    "min_freq_off_gamma",
    "parse_matdyn_freq",
    "parse_matdyn_eig",
    "parse_phdos",
    "parse_a2f_dos",
    "parse_lambda_file",
    "parse_a2fmatdyn_header",
    "parse_projwfc",
    "read_text",
    "read_table",
    "read_header",
    "qe_clock",
    "PHDOS_NORM_RTOL",
    "check_phdos_normalised",
    "check_same_grid",
    "check_elph_tables",
]


class QEParseError(ValueError):
    """A QE output is missing, truncated or malformed; the message names file and line."""


def _read(path: Path, first_line: bool) -> str:
    """The text of ``path`` (gunzipped for ``*.gz``), or only its first line; :class:`QEParseError` naming the
    file if it is missing or a corrupt/cut gzip stream (the one place both errors are raised)."""
    path = Path(path)
    if not path.is_file():
        raise QEParseError(f"{path}: file not found")
    if path.suffix != ".gz":  # a plain file's OSError (permissions, ...) is not a gzip error: raised as it is
        with path.open(errors="replace") as fh:
            return fh.readline() if first_line else fh.read()
    try:
        with gzip.open(path, "rt", errors="replace") as fh:
            return fh.readline() if first_line else fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut stream gives EOFError
        raise QEParseError(f"{path}: corrupt or truncated gzip file ({type(exc).__name__}: {exc})") from None


def read_text(path: Path) -> str:
    """Text of ``path`` (transparently gunzipped for ``*.gz``); :class:`QEParseError` if missing."""
    return _read(path, first_line=False)


def read_header(path: Path) -> str:
    """The ``# header`` line of a workflow table (``read_table``'s header, without ``#``; ``""`` if the first
    line is not one), read without the rows; :class:`QEParseError` naming the file if missing or corrupt."""
    first = _read(path, first_line=True)
    return first.lstrip("#").strip() if first.startswith("#") else ""


def a2f_sigmas(header: str) -> list[float]:
    """The broadenings (Ry) an α²F table's header lists after its last ``:`` (``a2f.dat.gz`` of the workflow)."""
    return [float(x) for x in header.split(":")[-1].split()]


def read_table(path: Path) -> tuple[str, np.ndarray]:
    """A numeric table written by the workflow (``# header`` line, then rows; gzipped for ``*.gz``):
    ``(header without '#', 2-D array)``; :class:`QEParseError` naming the file if it is missing,
    corrupt, cut or has a malformed row."""
    text = read_text(path)
    lines = text.splitlines()
    header = lines[0].lstrip("#").strip() if lines and lines[0].startswith("#") else ""
    try:
        data = np.loadtxt(io.StringIO(text), ndmin=2)
    except ValueError as exc:
        raise QEParseError(f"{path}: malformed table ({exc})") from None
    if data.size == 0:
        raise QEParseError(f"{path}: no data rows")
    return header, data


def _floats(tokens: list[str], path: Path, lineno: int) -> list[float]:
    try:
        return [float(t.replace("D", "E").replace("d", "e")) for t in tokens]
    except ValueError:
        raise QEParseError(f"{path}:{lineno}: expected numbers, got {' '.join(tokens)!r}") from None


# --------------------------------------------------------------------------------------------
# pw.x
# --------------------------------------------------------------------------------------------


@dataclass
class PWResult:
    """Summary of one pw.x run.  ``converged``: scf converged (and, for relaxations, the relaxation
    ended with converged forces/stress); ``structure``: final relaxed structure (vc-relax/relax) or None."""

    path: Path
    job_done: bool
    converged: bool
    total_energy_Ry: float | None
    fermi_energy_eV: float | None
    homo_eV: float | None
    lumo_eV: float | None
    structure: Structure | None
    n_relax_steps: int | None
    wall_time_s: float | None
    errors: list[str] = field(default_factory=list)
    #: last printed pressure (kbar, ``tstress``), lattice parameter alat (bohr) and CPU time (s)
    pressure_kbar: float | None = None
    alat_bohr: float | None = None
    cpu_time_s: float | None = None
    #: valence electrons, Kohn-Sham states (bands) and wavefunction cutoff (Ry) of the run's header
    n_electrons: float | None = None
    n_bands: int | None = None
    ecutwfc_Ry: float | None = None

    @property
    def band_gap_eV(self) -> float | None:
        if self.homo_eV is None or self.lumo_eV is None:
            return None
        return max(0.0, self.lumo_eV - self.homo_eV)


_WALL = re.compile(r"PWSCF\s*:.*?CPU\s+(.*?)WALL")
_CPU = {prog: re.compile(rf"{prog}\s*:\s*(.+?)CPU") for prog in ("PWSCF", "PHONON")}


def _last_float(pattern: str, text: str) -> float | None:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def _last_time(prog: str, text: str) -> float | None:
    found = _CPU[prog].findall(text)
    return _qe_time_to_s(found[-1]) if found else None


def _qe_time_to_s(text: str) -> float | None:
    """QE wall time ``'1h 2m'``, ``'3m12.40s'``, ``'12.34s'`` -> seconds."""
    text = text.strip()
    total = 0.0
    found = False
    for value, unit in re.findall(r"([\d.]+)\s*([hms])", text):
        total += float(value) * {"h": 3600, "m": 60, "s": 1}[unit]
        found = True
    return total if found else None


_PROGRAM_START = re.compile(r"^\s*Program \S+ v\.\S+ starts", re.MULTILINE)
_CLOCK = re.compile(r"^\s*[A-Z0-9_]+\s*:\s*(.+?)CPU\s+(.+?)WALL\s*$", re.MULTILINE)


def qe_clock(text: str) -> tuple[float, float] | None:
    """(CPU s, WALL s) of a QE log from its final clock line (``PHONON : 1h48m CPU 2h 7m WALL``), None
    if it has none.  A text holding several runs (a step run as one QE call per q point), each starting
    with QE's ``Program ... starts`` banner, gives the sum of their final clock lines."""
    cpu = wall = 0.0
    found = False
    for run in _PROGRAM_START.split(text):
        hits = _CLOCK.findall(run)
        if hits:
            found = True
            cpu += _qe_time_to_s(hits[-1][0]) or 0.0
            wall += _qe_time_to_s(hits[-1][1]) or 0.0
    return (cpu, wall) if found else None


_FORCE_RE = re.compile(r"^\s*atom\s+(\d+)\s+type\s+\d+\s+force\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s*$")


def parse_pw_forces(path: Path) -> np.ndarray:
    """The last "Forces acting on atoms" block of a pw.x log (``tprnfor``): an ``(n_atoms, 3)`` array in
    Ry/bohr.  :class:`QEParseError` naming the file when there is none."""
    path = Path(path)
    blocks: list[dict[int, list[float]]] = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if "Forces acting on atoms" in line:
            blocks.append({})
        elif blocks and (m := _FORCE_RE.match(line)) and int(m.group(1)) not in blocks[-1]:
            blocks[-1][int(m.group(1))] = _floats(list(m.groups()[1:]), path, lineno)
    if not blocks or not blocks[-1]:
        raise QEParseError(f"{path}: no 'Forces acting on atoms' block (was tprnfor set, did pw.x finish?)")
    last = blocks[-1]
    return np.array([last[i] for i in sorted(last)], dtype=float)


def parse_pw_output(path: Path, *, require_done: bool = True) -> PWResult:
    """Parse a pw.x log.  Raises :class:`QEParseError` for a missing/truncated file
    (``require_done``: no ``JOB DONE``) with the QE error message if there is one."""
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    errors = _qe_errors(lines)
    job_done = "JOB DONE" in text
    if require_done and not job_done:
        detail = f": {errors[0]}" if errors else " (truncated or killed?)"
        raise QEParseError(f"{path}:{len(lines)}: pw.x output has no 'JOB DONE'{detail}")
    energy = fermi = homo = lumo = None
    scf_failed = False
    relax_ok: bool | None = None
    n_relax = None
    for i, line in enumerate(lines, start=1):
        if line.startswith("!") and "total energy" in line:
            energy = _floats([line.split("=")[1].split()[0]], path, i)[0]
        elif "the Fermi energy is" in line:
            fermi = _floats([line.split("is")[1].split()[0]], path, i)[0]
        elif "highest occupied, lowest unoccupied level" in line:
            homo, lumo = _floats(line.split(":")[1].split()[:2], path, i)
        elif "highest occupied level" in line:
            homo = _floats([line.split(":")[1].split()[0]], path, i)[0]
        elif "convergence NOT achieved" in line:
            scf_failed = True
        elif "bfgs converged" in line:
            relax_ok = True
            m = re.search(r"(\d+)\s+bfgs steps", line)
            n_relax = int(m.group(1)) if m else None
        elif "The maximum number of steps has been reached" in line or "bfgs failed" in line.lower():
            relax_ok = False
    calc = _calculation(text)
    structure = None
    if calc in ("vc-relax", "relax"):
        if relax_ok is None and job_done:
            relax_ok = False
        structure = _final_structure(lines, path) if "Begin final coordinates" in text else None
        if relax_ok and structure is None:
            raise QEParseError(f"{path}: relaxation converged but no 'Begin final coordinates' block")
    converged = job_done and not scf_failed and energy is not None and (relax_ok is not False)
    wall = None
    for m in _WALL.finditer(text):
        wall = _qe_time_to_s(m.group(1))
    return PWResult(path, job_done, converged, energy, fermi, homo, lumo, structure, n_relax, wall, errors,
                    pressure_kbar=_last_float(r"P=\s*([-\d.]+)", text),
                    alat_bohr=_last_float(r"lattice parameter \(alat\)\s*=\s*([\d.]+)", text),
                    cpu_time_s=_last_time("PWSCF", text),
                    n_electrons=_last_float(r"number of electrons\s*=\s*([\d.]+)", text),
                    n_bands=_int_or_none(_last_float(r"number of Kohn-Sham states=\s*(\d+)", text)),
                    ecutwfc_Ry=_last_float(r"kinetic-energy cutoff\s*=\s*([\d.]+)\s*Ry", text))


def _int_or_none(x: float | None) -> int | None:
    return None if x is None else int(x)


def _calculation(text: str) -> str:
    if "Begin final coordinates" in text or "BFGS Geometry Optimization" in text:
        return "vc-relax" if "new unit-cell volume" in text or "CELL_PARAMETERS" in text else "relax"
    if "Band Structure Calculation" in text:
        return "nscf"
    return "scf"


def _qe_errors(lines: list[str]) -> list[str]:
    out = []
    for i, line in enumerate(lines):
        if line.strip().startswith("%%%%%%") and i + 2 < len(lines):
            msg = " ".join(s.strip() for s in lines[i + 1 : i + 3] if not s.strip().startswith("%%%%")).strip()
            if msg and msg not in out:
                out.append(msg)
    return out


def _final_structure(lines: list[str], path: Path) -> Structure:
    start = next(i for i, l in enumerate(lines) if "Begin final coordinates" in l)
    end = next((i for i in range(start, len(lines)) if "End final coordinates" in lines[i]), None)
    if end is None:
        raise QEParseError(f"{path}:{start + 1}: 'Begin final coordinates' without 'End final coordinates'")
    block = lines[start:end]
    cell = None
    species: list[str] = []
    coords: list[list[float]] = []
    i = 0
    while i < len(block):
        l = block[i].strip()
        lineno = start + i + 1
        if l.startswith("CELL_PARAMETERS"):
            unit = l.split("(")[-1].rstrip(")").strip() if "(" in l else "alat"
            rows = [_floats(block[i + j].split(), path, lineno + j) for j in (1, 2, 3)]
            cell = np.array(rows)
            if unit.startswith("alat"):
                m = re.search(r"alat\s*=\s*([\d.]+)", l)
                if not m:
                    raise QEParseError(f"{path}:{lineno}: CELL_PARAMETERS in alat without the alat value")
                cell = cell * float(m.group(1)) * BOHR_IN_ANGSTROM
            elif unit == "bohr":
                cell = cell * BOHR_IN_ANGSTROM
            elif unit != "angstrom":
                raise QEParseError(f"{path}:{lineno}: unsupported CELL_PARAMETERS unit {unit!r}")
            i += 4
            continue
        if l.startswith("ATOMIC_POSITIONS"):
            if "crystal" not in l:
                raise QEParseError(f"{path}:{lineno}: final ATOMIC_POSITIONS not in crystal units ({l!r})")
            j = i + 1
            while j < len(block) and block[j].strip() and not block[j].strip().startswith("End"):
                f = block[j].split()
                species.append(f[0])
                coords.append(_floats(f[1:4], path, start + j + 1))
                j += 1
            i = j
            continue
        i += 1
    if cell is None or not species:
        raise QEParseError(f"{path}:{start + 1}: final coordinates block lacks CELL_PARAMETERS or ATOMIC_POSITIONS")
    return Structure(Lattice(cell), species, coords)


# --------------------------------------------------------------------------------------------
# ph.x
# --------------------------------------------------------------------------------------------


@dataclass
class PhononResult:
    """Frequencies at each q of the ph.x mesh.  ``q_cart_2pi_alat``: (n_q, 3); ``freq_THz``/``freq_cm1``:
    (n_q, n_modes).  Negative values are imaginary modes (QE convention)."""

    path: Path
    q_cart_2pi_alat: np.ndarray
    freq_THz: np.ndarray
    freq_cm1: np.ndarray
    job_done: bool
    wall_time_s: float | None = None
    cpu_time_s: float | None = None

    @property
    def freq_meV(self) -> np.ndarray:
        return self.freq_THz * THZ_IN_MEV

    def min_freq_meV(self, *, skip_gamma: bool = True) -> float:
        """Lowest frequency (meV) at the ph.x q points; Γ skipped (see :func:`min_freq_off_gamma`)."""
        return min_freq_off_gamma(self.q_cart_2pi_alat, self.freq_meV, skip_gamma=skip_gamma)


def gamma_mask(q_cart: Any) -> np.ndarray:
    """Boolean mask of the Γ rows of ph.x q points (Cartesian, any units)."""
    return np.all(np.isclose(np.asarray(q_cart, dtype=float).reshape(-1, 3), 0.0, atol=1e-8), axis=1)


def min_freq_off_gamma(q_cart: Any, freq_meV: Any, *, skip_gamma: bool = True) -> float:
    """Lowest phonon frequency (meV) over the q points, Γ excluded by default.

    ph.x does not impose the acoustic sum rule, so its Γ frequencies carry an ASR violation of a few
    meV (up to ~11 meV at the screening level's cutoffs) that can exceed a low optical mode: picking
    "the three acoustic modes" from frequencies alone is unreliable (hcp Zn: -6.6, -6.6, -5.0, +4.7,
    +4.7 meV, where the smallest |ω| are not the acoustic ones).  Γ is therefore left to the matdyn
    check, whose mesh contains Γ and whose force constants reproduce ph.x's Γ matrix with the ASR
    imposed (``asr='crystal'``).
    """
    q = np.asarray(q_cart, dtype=float).reshape(-1, 3)
    f = np.array(freq_meV, dtype=float, ndmin=2)
    if len(q) != len(f):
        raise ValueError(f"{len(q)} q points but {len(f)} rows of frequencies")
    if skip_gamma:
        f = f[~gamma_mask(q)]
    finite = f[np.isfinite(f)]
    return float(finite.min()) if finite.size else 0.0


_FREQ = re.compile(r"freq\s*\(\s*(\d+)\)\s*=\s*(-?[\d.]+)\s*\[THz\]\s*=\s*(-?[\d.]+)\s*\[cm-1\]")


def parse_ph_output(path: Path, *, require_done: bool = True) -> PhononResult:
    """Parse ph.x stdout: the frequencies printed after each 'Diagonalizing the dynamical matrix'."""
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    done = "JOB DONE" in text
    if require_done and not done:
        errs = _qe_errors(lines)
        detail = f": {errs[0]}" if errs else " (truncated or killed?)"
        raise QEParseError(f"{path}:{len(lines)}: ph.x output has no 'JOB DONE'{detail}")
    qs: list[list[float]] = []
    thz: list[list[float]] = []
    cm1: list[list[float]] = []
    i = 0
    while i < len(lines):
        if "Diagonalizing the dynamical matrix" in lines[i]:
            j = i + 1
            while j < len(lines) and "q = (" not in lines[j]:
                j += 1
            if j >= len(lines):
                raise QEParseError(f"{path}:{i + 1}: dynamical matrix block without 'q = ('")
            inside = lines[j].split("(")[1].split(")")[0].split()
            qs.append(_floats(inside, path, j + 1))
            ft, fc = [], []
            k = j + 1
            while k < len(lines) and k - j < 20 and not _FREQ.search(lines[k]):
                k += 1
            while k < len(lines) and (m := _FREQ.search(lines[k])):
                ft.append(float(m.group(2)))
                fc.append(float(m.group(3)))
                k += 1
            if not ft:
                raise QEParseError(f"{path}:{j + 1}: no 'freq (...) = ... [THz]' lines after q point")
            thz.append(ft)
            cm1.append(fc)
            i = k
        else:
            i += 1
    if not qs:
        raise QEParseError(f"{path}: no phonon frequencies found (no 'Diagonalizing the dynamical matrix')")
    nmodes = {len(f) for f in thz}
    if len(nmodes) != 1:
        raise QEParseError(f"{path}: inconsistent number of modes per q point {sorted(nmodes)}")
    wall = None
    for m in re.finditer(r"PHONON\s*:.*?CPU\s+(.*?)WALL", text):
        wall = _qe_time_to_s(m.group(1))
    return PhononResult(path, np.array(qs), np.array(thz), np.array(cm1), done, wall, _last_time("PHONON", text))


def parse_matdyn_freq(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """matdyn ``flfrq`` file -> ``(q (n_q, 3) in 2π/alat, freq_cm1 (n_q, n_modes))``."""
    path = Path(path)
    lines = read_text(path).splitlines()
    if not lines:
        raise QEParseError(f"{path}:1: empty file")
    m = re.search(r"nbnd\s*=\s*(\d+)\s*,\s*nks\s*=\s*(\d+)", lines[0])
    if not m:
        raise QEParseError(f"{path}:1: expected '&plot nbnd=..., nks=... /' header, got {lines[0].strip()!r}")
    nbnd, nks = int(m.group(1)), int(m.group(2))
    tokens: list[tuple[str, int]] = [(t, n) for n, l in enumerate(lines[1:], start=2) for t in l.split()]
    need = nks * (3 + nbnd)
    if len(tokens) < need:
        raise QEParseError(f"{path}:{len(lines)}: expected {nks} q points x (3 + {nbnd}) numbers, file ends early")
    vals = np.array(_floats([t for t, _ in tokens[:need]], path, tokens[0][1])).reshape(nks, 3 + nbnd)
    return vals[:, :3], vals[:, 3:]


# --------------------------------------------------------------------------------------------
# Phonon DOS, α²F, lambda
# --------------------------------------------------------------------------------------------


def parse_matdyn_eig(path: Path, n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """matdyn ``fleig`` file -> (frequencies in cm^-1, shape (nq*3N,), site weights |e_s|^2, shape (nq*3N, N)).

    Raises QEParseError naming the file when the mode/eigenvector blocks are inconsistent.
    """
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


@dataclass
class PhononDOS:
    """Phonon DOS from matdyn (``fldos``): ``omega_meV`` (n,), ``total`` (n,) states/meV/cell,
    ``site`` (n_sites, n) states/meV per atom (columns PDOS of matdyn, in the order of the input)."""

    omega_meV: np.ndarray
    total: np.ndarray
    site: np.ndarray | None

    def integral(self) -> float:
        """∫ DOS dω (= 3 N_atoms for a normalised DOS)."""
        return float(np.trapezoid(self.total, self.omega_meV))


def _numeric_rows(path: Path, text: str, *, comment: str = "#") -> Iterator[tuple[int, list[float]]]:
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith(comment):
            continue
        yield n, _floats(s.split(), path, n)


def parse_phdos(path: Path) -> PhononDOS:
    """matdyn DOS file (``# Frequency[cm^-1] DOS PDOS``) -> meV and states/meV."""
    path = Path(path)
    rows = list(_numeric_rows(path, read_text(path)))
    if len(rows) < 2:
        raise QEParseError(f"{path}: fewer than two data rows in phonon DOS file")
    ncol = len(rows[0][1])
    for n, r in rows:
        if len(r) != ncol:
            raise QEParseError(f"{path}:{n}: expected {ncol} columns, got {len(r)}")
    data = np.array([r for _, r in rows])
    if not np.all(np.isfinite(data)):
        n = rows[int(np.argwhere(~np.isfinite(data))[0, 0])][0]
        raise QEParseError(f"{path}:{n}: NaN/inf in phonon DOS")
    omega = data[:, 0] * CMM1_IN_MEV
    total = data[:, 1] / CMM1_IN_MEV
    site = data[:, 2:].T / CMM1_IN_MEV if ncol > 2 else None
    return PhononDOS(omega, total, site)


#: ∫PhDOS dω must equal 3 N_atoms to this relative tolerance.  Measured on the 64 kept materials of
#: data/qe (matdyn's tetrahedron DOS and the Gaussian fallback, fine and coarse meshes): 0.9605
#: (coarse bcc Sr) to 1.0149 (coarse fcc Na).  A file cut at a row boundary loses far more.
PHDOS_NORM_RTOL = 0.06


def check_phdos_normalised(dos: PhononDOS, n_atoms: int, path: Path | str, *, rtol: float = PHDOS_NORM_RTOL) -> float:
    """Raise :class:`QEParseError` unless ∫PhDOS dω = 3·``n_atoms`` within ``rtol``; returns the ratio."""
    expected = 3 * int(n_atoms)
    ratio = dos.integral() / expected if expected > 0 else float("nan")
    if not (abs(ratio - 1.0) <= rtol):
        raise QEParseError(
            f"{path}: ∫PhDOS dω = {dos.integral():.4g}, expected 3N = {expected} for {n_atoms} atom(s) within "
            f"{rtol:.0%} (ratio {ratio:.3f}): truncated file or not the total DOS of this cell")
    return ratio


def check_same_grid(omega_meV: Any, reference_omega_meV: Any, path: Path | str, reference: Path | str) -> None:
    """Raise :class:`QEParseError` unless ``omega_meV`` (ω > 0 part) spans the same frequency grid as
    ``reference_omega_meV``: the same step, the same number of rows (±1) and the same upper end (±1.5 steps).

    matdyn writes α²F (``a2F.dosN``) and the PhDOS (``fldos``) of one run on one grid, so a shorter
    α²F than PhDOS means a truncated file — whose λ would otherwise be silently wrong."""
    w = np.asarray(omega_meV, dtype=float)
    r = np.asarray(reference_omega_meV, dtype=float)
    w, r = w[w > 0], r[r > 0]
    if r.size < 2 or w.size < 2:
        raise QEParseError(f"{path}: {w.size} positive-frequency rows; expected the {r.size} of {reference}")
    step = float(np.median(np.diff(r)))
    w_step = float(np.median(np.diff(w)))
    if not np.isclose(w_step, step, rtol=1e-3):
        raise QEParseError(f"{path}: frequency step {w_step:.5g} meV, expected {step:.5g} meV (the grid of {reference})")
    if abs(w.size - r.size) > 1 or abs(w[-1] - r[-1]) > 1.5 * step:
        raise QEParseError(
            f"{path}: {w.size} rows up to {w[-1]:.2f} meV, expected {r.size} rows up to {r[-1]:.2f} meV "
            f"(the frequency grid of {reference}): truncated file?")


def check_elph_tables(a2f_omega_meV: Any, fine: PhononDOS, coarse: PhononDOS | None, n_atoms: int, directory: Path | str,
                      *, names: tuple[str, str, str] = ("a2f.dat.gz", "phdos_fine.dos.gz", "phdos_coarse.dos.gz")) -> None:
    """The truncation checks of one finished run: both PhDOS normalised to 3N, α²F on the fine PhDOS grid."""
    d = Path(directory)
    check_phdos_normalised(fine, n_atoms, d / names[1])
    if coarse is not None:
        check_phdos_normalised(coarse, n_atoms, d / names[2])
    check_same_grid(a2f_omega_meV, fine.omega_meV, d / names[0], d / names[1])


@dataclass
class A2FResult:
    """One ``a2F.dosN`` file: ``omega_meV`` (n,), ``a2f`` (n,) total α²F (dimensionless),
    ``a2f_modes`` (n_modes, n), and ``lambda_qe`` (QE's λ = 2∫α²F/ω dω for this broadening)."""

    omega_meV: np.ndarray
    a2f: np.ndarray
    a2f_modes: np.ndarray
    lambda_qe: float | None
    has_nan: bool = False


def parse_a2f_dos(path: Path, *, allow_nan: bool = False) -> A2FResult:
    """matdyn ``a2F.dosN``: header says 'frequencies in Rydberg'; columns ω, α²F_total, α²F(mode)...

    Values may wrap over several lines (older QE); parsing is by token stream.  NaN values raise
    :class:`QEParseError` unless ``allow_nan`` (then ``has_nan`` is set, for the quality filter)."""
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    header = " ".join(l for l in lines[:6] if l.strip().startswith("#")).lower()
    if "rydberg" not in header:
        raise QEParseError(f"{path}:1: expected a header stating 'frequencies in Rydberg' (matdyn a2F.dos file)")
    lam = None
    tokens: list[tuple[str, int]] = []
    for n, l in enumerate(lines, start=1):
        s = l.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("lambda"):
            m = re.search(r"lambda\s*=\s*(\S+)", s)
            if m:
                lam = _floats([m.group(1)], path, n)[0]
            continue
        tokens.extend((t, n) for t in s.split())
    if not tokens:
        raise QEParseError(f"{path}: no data rows")
    data_rows = [l.split() for l in lines if l.strip() and not l.strip().startswith(("#", "lambda"))]
    ncol = len(data_rows[0])
    if ncol == 2 and len(data_rows) > 1 and len(data_rows[1]) != 2:
        # QE <= 6.0 wraps each row: 'ω  α²F_total' then the per-mode values on the next line
        ncol = 2 + len(data_rows[1])
    if ncol < 3:
        raise QEParseError(f"{path}: cannot determine the number of columns (first row {data_rows[0]})")
    if len(tokens) % ncol:
        raise QEParseError(f"{path}:{tokens[-1][1]}: {len(tokens)} numbers is not a multiple of {ncol} columns")
    vals = np.array(_floats([t for t, _ in tokens], path, tokens[0][1])).reshape(-1, ncol)
    has_nan = not np.all(np.isfinite(vals))
    if has_nan and not allow_nan:
        bad = int(np.argwhere(~np.isfinite(vals))[0, 0])
        raise QEParseError(f"{path}:{tokens[bad * ncol][1]}: NaN/inf in α²F")
    omega = vals[:, 0] * RY_IN_MEV
    if not np.all(np.diff(omega) > 0):
        bad = int(np.argmax(np.diff(omega) <= 0))
        raise QEParseError(f"{path}:{tokens[(bad + 1) * ncol][1]}: frequencies not increasing")
    return A2FResult(omega, vals[:, 1], vals[:, 2:].T, lam, has_nan)


@dataclass(frozen=True)
class LambdaRow:
    """One line of matdyn's ``lambda`` file."""

    broadening_Ry: float
    lambda_: float
    dos_ef_states_per_spin_Ry: float
    omega_log_K: float | None


def parse_lambda_file(path: Path) -> list[LambdaRow]:
    """matdyn ``lambda`` file: 'Broadening s lambda l dos(Ef) d [omega_ln [K] w]' per broadening."""
    path = Path(path)
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if "Broadening" not in line:
            continue
        m = re.search(r"Broadening\s+(\S+)\s+lambda\s+(\S+)\s+dos\(Ef\)\s+(\S+)(?:\s+omega_ln \[K\]\s+(\S+))?", line)
        if not m:
            raise QEParseError(f"{path}:{n}: cannot parse lambda line {line.strip()!r}")
        vals = _floats([g for g in m.groups() if g is not None], path, n)
        rows.append(LambdaRow(vals[0], vals[1], vals[2], vals[3] if len(vals) > 3 else None))
    if not rows:
        raise QEParseError(f"{path}: no 'Broadening ... lambda ...' lines")
    return rows


def parse_a2fmatdyn_header(path: Path) -> tuple[float, float, float]:
    """First line of a q2r.x ``elph_dir/a2Fmatdyn.6N`` file -> (broadening Ry, E_F Ry, N(E_F) states/spin/Ry/cell).

    These are the numbers matdyn's ``a2Fdos`` divides by; the rest of the file is the linewidth
    force constants, read by matdyn itself.
    """
    path = Path(path)
    lines = read_text(path).splitlines()
    vals = lines[0].split() if lines else []
    if len(vals) != 3:
        raise QEParseError(f"{path}:1: expected 'broadening E_F N(E_F)' (3 numbers), got {(lines[0] if lines else '').strip()!r}")
    deg, ef, dos = _floats(vals, path, 1)
    if not dos > 0:
        raise QEParseError(f"{path}:1: N(E_F) = {dos}; expected a positive density of states")
    return deg, ef, dos


# --------------------------------------------------------------------------------------------
# projwfc.x
# --------------------------------------------------------------------------------------------


@dataclass
class ProjectedDOS:
    """Electronic DOS from projwfc: ``energy_meV`` relative to E_F; ``total`` (states/eV/cell, both spins),
    ``site`` (n_sites, n) summed over each atom's orbitals; ``dos_ef_per_eV`` total DOS at E_F."""

    energy_meV: np.ndarray
    total: np.ndarray
    site: np.ndarray
    fermi_energy_eV: float

    @property
    def dos_ef_per_eV(self) -> float:
        return float(np.interp(0.0, self.energy_meV, self.total))


_ATM = re.compile(r"\.pdos_atm#(\d+)\((\w+)\)_wfc#(\d+)\((\w+)\)(\.gz)?$")


def parse_projwfc(directory: Path, filpdos: str, fermi_energy_eV: float, n_sites: int | None = None) -> ProjectedDOS:
    """Read ``<filpdos>.pdos_tot`` and ``<filpdos>.pdos_atm#i(El)_wfc#j(l)`` from ``directory``."""
    directory = Path(directory)
    tot_path = directory / f"{filpdos}.pdos_tot"
    if not tot_path.exists() and tot_path.with_name(tot_path.name + ".gz").exists():
        tot_path = tot_path.with_name(tot_path.name + ".gz")
    rows = list(_numeric_rows(tot_path, read_text(tot_path)))
    if len(rows) < 2:
        raise QEParseError(f"{tot_path}: fewer than two data rows")
    tot = np.array([r[:2] for _, r in rows])
    energy = tot[:, 0]
    per_atom: dict[int, np.ndarray] = {}
    for p in sorted(directory.glob(f"{filpdos}.pdos_atm#*")):
        m = _ATM.search(p.name)
        if not m:
            continue
        atom = int(m.group(1))
        data = list(_numeric_rows(p, read_text(p)))
        arr = np.array([r[:2] for _, r in data])
        if arr.shape[0] != energy.size or not np.allclose(arr[:, 0], energy, atol=1e-3):
            raise QEParseError(f"{p}: energy grid differs from {tot_path.name}")
        per_atom[atom] = per_atom.get(atom, 0.0) + arr[:, 1]
    if not per_atom:
        raise QEParseError(f"{directory}: no '{filpdos}.pdos_atm#*' files")
    n = n_sites if n_sites is not None else max(per_atom)
    missing = [i for i in range(1, n + 1) if i not in per_atom]
    if missing:
        raise QEParseError(f"{directory}: no projected DOS for atom(s) {missing} ({filpdos}.pdos_atm#i)")
    site = np.array([per_atom[i] for i in range(1, n + 1)])
    if not (np.all(np.isfinite(tot)) and np.all(np.isfinite(site))):
        raise QEParseError(f"{tot_path}: NaN/inf in projected DOS")
    return ProjectedDOS((energy - fermi_energy_eV) * 1e3, tot[:, 1], site, float(fermi_energy_eV))
