"""ph.x's dynamical-matrix files (``fildyn0``, ``fildynN``): the q mesh, the lattice, the modes at one q.

=====================  =============================================================================
reader                 gives
=====================  =============================================================================
:func:`parse_dyn0`     ``fildyn0``: the q mesh and the irreducible q (2π/alat), in ph.x's order
:func:`parse_dyn_basis` ``fildynN`` header: the direct lattice (units of alat; ibrav = 0 files)
:func:`parse_dyn_modes` ``fildynN``: frequencies (THz -> meV) and displacement patterns at the file's first q
:func:`dyn_phonons`    ``fildynN``: the frequencies at its first q as a :class:`~betenet.qe.parsers.PhononResult`
=====================  =============================================================================

Errors are :class:`betenet.qe.parsers.QEParseError` naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..constants import CMM1_IN_MEV, THZ_IN_MEV
from .parsers import PhononResult, QEParseError, read_text

__all__ = ["dyn_phonons", "parse_dyn0", "parse_dyn_basis", "parse_dyn_modes"]


def parse_dyn0(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """ph.x's ``<fildyn>0``: ``((nq1, nq2, nq3), q)`` with the irreducible q points (n_q, 3) in 2π/alat,
    in the order ph.x computes them (``start_q``/``last_q`` count in this order)."""
    path = Path(path)
    rows = read_text(path).splitlines()
    try:
        mesh = tuple(int(x) for x in rows[0].split()[:3])
        n_q = int(rows[1].split()[0])
        qs = np.array([[float(x) for x in rows[2 + i].split()[:3]] for i in range(n_q)], dtype=float)
    except (IndexError, ValueError) as exc:
        raise QEParseError(f"{path}: expected 'nq1 nq2 nq3', the number of q points and their coordinates ({exc})") from None
    if len(mesh) != 3 or n_q < 1 or qs.shape != (n_q, 3):
        raise QEParseError(f"{path}: expected 'nq1 nq2 nq3', the number of q points and their coordinates")
    return mesh, qs  # type: ignore[return-value]


def parse_dyn_basis(path: Path) -> np.ndarray:
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


_FREQ = re.compile(r"^\s*freq\s*\(\s*(\d+)\s*\)\s*=\s*([-+\d.Ee]+)\s*\[THz\]")


def parse_dyn_modes(path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The modes ph.x wrote after "Diagonalizing the dynamical matrix" (the file's first q):
    ``(q (3,) in 2π/alat, freq_meV (3 nat,), modes (3 nat, nat, 3) complex)``.  ph.x writes each mode as a
    Cartesian displacement pattern (``dyndia``: the eigenvector of the dynamical matrix divided by sqrt(M),
    normalised), one line ``( re im re im re im )`` per atom; negative frequencies are imaginary."""
    path = Path(path)
    lines = read_text(path).splitlines()
    try:
        i0 = next(i for i, ln in enumerate(lines) if "Diagonalizing the dynamical matrix" in ln)
    except StopIteration:
        raise QEParseError(f"{path}: no 'Diagonalizing the dynamical matrix' section (not a finished ph.x dynamical-matrix file)") from None
    q, freqs, modes, cur = None, [], [], None
    for lineno, ln in enumerate(lines[i0 + 1:], start=i0 + 2):
        if q is None and ln.strip().startswith("q = ("):
            q = np.array([float(x) for x in ln.split("(")[1].split(")")[0].split()])
            continue
        m = _FREQ.match(ln)
        if m:
            if q is None:
                raise QEParseError(f"{path}:{lineno}: a mode before the 'q = ( ... )' line")
            freqs.append(float(m.group(2)) * THZ_IN_MEV)
            cur = []
            modes.append(cur)
            continue
        if ln.strip().startswith("(") and cur is not None:
            try:
                v = [float(x) for x in ln.strip().strip("()").split()]
            except ValueError:
                raise QEParseError(f"{path}:{lineno}: expected '( re im re im re im )', got {ln.strip()!r}") from None
            if len(v) != 6:
                raise QEParseError(f"{path}:{lineno}: expected 6 numbers per atom, got {len(v)}")
            cur.append([complex(v[0], v[1]), complex(v[2], v[3]), complex(v[4], v[5])])
        elif ln.strip().startswith("Diagonalizing") or ln.strip().startswith("Dynamical"):
            break  # a second q's section
    nat = len(modes[0]) if modes else 0
    if not modes or len(modes) != 3 * nat or any(len(m) != nat for m in modes):
        raise QEParseError(f"{path}: expected 3 x nat modes of nat atoms each after 'Diagonalizing the dynamical "
                           f"matrix', got {len(modes)} modes of {sorted({len(m) for m in modes})} atoms")
    return q, np.array(freqs), np.array(modes, dtype=complex)


def dyn_phonons(path: Path | str) -> PhononResult:
    """The frequencies of a dynamical-matrix file's first q (:func:`parse_dyn_modes`) in the form ph.x's log
    gives them (:func:`~betenet.qe.parsers.parse_ph_output`): one q row, no wall time.  For a q point whose
    dynamical matrix was taken from another ph.x run rather than computed."""
    q, freq_meV, _ = parse_dyn_modes(path)
    return PhononResult(Path(path), q.reshape(1, 3), (freq_meV / THZ_IN_MEV).reshape(1, -1),
                        (freq_meV / CMM1_IN_MEV).reshape(1, -1), True)
