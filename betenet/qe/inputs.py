"""Quantum ESPRESSO input files rendered from a pymatgen ``Structure`` (and parsed back).

Two classes render and parse symmetrically (``to_str`` / ``from_str``), in the spirit of
pymatgen's ``PWInput``, raising :class:`QEInputError` (naming the namelist/card/line) on bad input:

* :class:`PWInput` — pw.x (namelists CONTROL/SYSTEM/ELECTRONS/IONS/CELL, cards ATOMIC_SPECIES,
  CELL_PARAMETERS angstrom, ATOMIC_POSITIONS crystal, K_POINTS automatic);
* :class:`NamelistInput` — the one-namelist post-processing codes (ph.x with its title line,
  q2r.x, matdyn.x, projwfc.x, dos.x).

The ``*_input`` builders encode the workflow of Methods IV.1: vc-relax, scf on the dense k mesh
with ``la2F=.true.``, scf on the coarse mesh, ph.x with ``electron_phonon='interpolated'`` on the
q mesh, q2r.x/matdyn.x with ``la2F=.true.`` (fine PhDOS + α²F), the coarse-PhDOS ph.x/q2r.x/matdyn.x
chain on a 2x2x2 q mesh, and a tetrahedron nscf + projwfc.x for the site-projected eDOS.
Units: cutoffs and smearings in Ry, cells in Å, matdyn ``DeltaE`` in cm⁻¹, projwfc energies in eV.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from ..constants import CMM1_IN_MEV

__all__ = [
    "QEInputError",
    "PseudoSpec",
    "Namelist",
    "NamelistInput",
    "PWInput",
    "PW_NAMELISTS",
    "PREFIX",
    "FormattedReal",
    "format_value",
    "parse_value",
    "check_structure",
    "pseudo_specs",
    "cutoffs_Ry",
    "pw_input",
    "ph_input",
    "q2r_input",
    "matdyn_input",
    "matdyn_full_mesh_input",
    "projwfc_input",
]

PW_NAMELISTS = ("control", "system", "electrons", "ions", "cell")
#: ``prefix`` of every pw.x/ph.x run of the workflow and the studies (the files in a scratch directory).
PREFIX = "bn"


class QEInputError(ValueError):
    """A Quantum ESPRESSO input (object or text) is malformed; the message names the namelist/card/field."""


# --------------------------------------------------------------------------------------------
# Fortran namelist values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormattedReal:
    """A namelist real written with a fixed Python format (``format(value, fmt)``: ``".3e"`` gives
    ``1.100e-06``) instead of :func:`format_value`'s full precision, where an input's text must stay
    as the workflow has always written it (the nscf retry's ``conv_thr``).  Parsed back as a float."""

    value: float
    fmt: str

    def __float__(self) -> float:
        return float(self.value)


def format_value(value: Any) -> str:
    """Fortran literal for a namelist value (bool -> ``.true.``, str -> quoted, float -> full precision,
    :class:`FormattedReal` -> its own format)."""
    if isinstance(value, FormattedReal):
        if not math.isfinite(value.value):
            raise QEInputError(f"namelist value {value.value!r} is not finite")
        return format(float(value.value), value.fmt)
    if isinstance(value, (bool, np.bool_)):
        return ".true." if value else ".false."
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            raise QEInputError(f"namelist value {v!r} is not finite")
        text = repr(v)
        return text.replace("e", "d") if "e" in text else text
    if isinstance(value, (str, Path)):
        s = str(value)
        if "'" in s:
            raise QEInputError(f"namelist string {s!r} contains a single quote")
        return f"'{s}'"
    raise QEInputError(f"cannot write namelist value of type {type(value).__name__}: {value!r}")


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")


def parse_value(text: str, *, where: str = "") -> Any:
    """Inverse of :func:`format_value`."""
    t = text.strip()
    low = t.lower()
    if low in (".true.", ".t.", "t", "true"):
        return True
    if low in (".false.", ".f.", "f", "false"):
        return False
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    if _NUMBER.match(t):
        return float(re.sub("[dD]", "e", t))
    raise QEInputError(f"{where}cannot parse namelist value {text!r}")


def _split_assignments(body: str, where: str) -> list[tuple[str, str]]:
    """Split a namelist body into (key, raw value) pairs; respects quotes; ``!`` starts a comment."""
    tokens: list[str] = []
    buf = ""
    quote: str | None = None
    for line in body.splitlines():
        i = 0
        while i < len(line):
            c = line[i]
            if quote:
                buf += c
                if c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
                buf += c
            elif c == "!":
                break
            elif c == ",":
                tokens.append(buf)
                buf = ""
            else:
                buf += c
            i += 1
        if quote:
            raise QEInputError(f"{where}unterminated string in line {line!r}")
        tokens.append(buf)
        buf = ""
    pairs: list[tuple[str, str]] = []
    for tok in tokens:
        if not tok.strip():
            continue
        if "=" not in tok:
            raise QEInputError(f"{where}expected 'key = value', got {tok.strip()!r}")
        key, _, val = tok.partition("=")
        key = key.strip().lower().replace(" ", "")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*(\(\d+(,\d+)*\))?", key):
            raise QEInputError(f"{where}invalid namelist key {key!r}")
        pairs.append((key, val.strip()))
    return pairs


@dataclass
class Namelist:
    """One Fortran namelist ``&name ... /`` with ordered parameters (keys lower case)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.name.lower()
        lowered = {str(k).lower(): v for k, v in self.params.items()}
        if len(lowered) != len(self.params):
            raise QEInputError(f"&{self.name}: keys differ only by case: {sorted(self.params)}")
        self.params = lowered

    def to_str(self) -> str:
        lines = [f"&{self.name.upper()}"]
        for key, value in self.params.items():
            lines.append(f"  {key} = {format_value(value)}")
        lines.append("/")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse_all(cls, text: str, *, origin: str = "<string>") -> tuple[list["Namelist"], str]:
        """All namelists at the start of ``text`` and the rest (cards), in order."""
        out: list[Namelist] = []
        rest = text
        while True:
            stripped = rest.lstrip()
            if not stripped.startswith("&"):
                return out, rest
            m = re.match(r"&(\w+)", stripped)
            if not m:
                raise QEInputError(f"{origin}: malformed namelist header near {stripped[:30]!r}")
            name = m.group(1).lower()
            end = _namelist_end(stripped, m.end())
            if end < 0:
                raise QEInputError(f"{origin}: namelist &{name} is not closed with '/'")
            body = stripped[m.end() : end]
            where = f"{origin}: &{name}: "
            params: dict[str, Any] = {}
            for key, raw in _split_assignments(body, where):
                if key in params:
                    raise QEInputError(f"{where}duplicate key {key!r}")
                params[key] = parse_value(raw, where=where + f"{key}: ")
            out.append(cls(name, params))
            rest = stripped[end + 1 :]


def _namelist_end(text: str, start: int) -> int:
    quote: str | None = None
    comment = False
    for i in range(start, len(text)):
        c = text[i]
        if comment:
            if c == "\n":
                comment = False
            continue
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "!":
            comment = True
        elif c == "/":
            return i
    return -1


@dataclass
class NamelistInput:
    """Input of a one-namelist QE program (ph.x has a title line before the namelist)."""

    namelist: Namelist
    title: str | None = None
    #: Extra lines after the namelist (e.g. matdyn q-point list); usually empty.
    trailer: str = ""

    def to_str(self) -> str:
        head = f"{self.title}\n" if self.title is not None else ""
        return head + self.namelist.to_str() + self.trailer

    @classmethod
    def from_str(cls, text: str, *, origin: str = "<string>", has_title: bool = False) -> "NamelistInput":
        title = None
        body = text
        if has_title:
            title, _, body = text.partition("\n")
            title = title.rstrip("\n")
        namelists, rest = Namelist.parse_all(body, origin=origin)
        if len(namelists) != 1:
            raise QEInputError(f"{origin}: expected exactly one namelist, found {len(namelists)}")
        return cls(namelists[0], title=title, trailer=rest.lstrip("\n"))

    @property
    def params(self) -> dict[str, Any]:
        return self.namelist.params

    def write(self, path: Path) -> Path:
        Path(path).write_text(self.to_str())
        return Path(path)


# --------------------------------------------------------------------------------------------
# pw.x
# --------------------------------------------------------------------------------------------


@dataclass
class PWInput:
    """A pw.x input: namelists + species (symbol, mass amu, UPF file) + cell (Å) + fractional positions + MP grid."""

    control: dict[str, Any]
    system: dict[str, Any]
    electrons: dict[str, Any]
    species: list[tuple[str, float, str]]
    lattice_A: np.ndarray
    positions: list[tuple[str, np.ndarray]]
    kpoints: tuple[int, int, int]
    kshift: tuple[int, int, int] = (0, 0, 0)
    ions: dict[str, Any] | None = None
    cell: dict[str, Any] | None = None
    #: an explicit k-point list instead of the mesh: rows (k1, k2, k3, weight), crystal coordinates of the
    #: reciprocal cell (written as ``K_POINTS crystal``; ``kpoints`` then only names the mesh it came from)
    klist: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.lattice_A = np.asarray(self.lattice_A, dtype=float)
        if self.lattice_A.shape != (3, 3) or not np.all(np.isfinite(self.lattice_A)):
            raise QEInputError(f"CELL_PARAMETERS: expected a finite 3x3 matrix, got shape {self.lattice_A.shape}")
        if abs(np.linalg.det(self.lattice_A)) < 1e-6:
            raise QEInputError("CELL_PARAMETERS: cell is singular (zero volume)")
        symbols = {s for s, _, _ in self.species}
        for i, (sym, _) in enumerate(self.positions):
            if sym not in symbols:
                raise QEInputError(f"ATOMIC_POSITIONS: atom {i + 1} has species {sym!r} missing from ATOMIC_SPECIES")
        if len(self.kpoints) != 3 or any(int(k) < 1 for k in self.kpoints):
            raise QEInputError(f"K_POINTS: expected three positive subdivisions, got {self.kpoints}")
        if self.klist is not None:
            self.klist = np.asarray(self.klist, dtype=float)
            if self.klist.ndim != 2 or self.klist.shape[1] != 4 or not len(self.klist) or np.any(self.klist[:, 3] <= 0):
                raise QEInputError(f"K_POINTS crystal: expected rows (k1, k2, k3, weight > 0), got shape {self.klist.shape}")

    @property
    def structure(self) -> Structure:
        return Structure(
            Lattice(self.lattice_A), [s for s, _ in self.positions], [p for _, p in self.positions], coords_are_cartesian=False
        )

    def to_str(self) -> str:
        system = dict(self.system)
        system["ibrav"] = 0
        system["nat"] = len(self.positions)
        system["ntyp"] = len(self.species)
        parts = [Namelist("control", self.control).to_str(), Namelist("system", system).to_str()]
        parts.append(Namelist("electrons", self.electrons).to_str())
        calc = str(self.control.get("calculation", "scf"))
        if self.ions is not None or calc in ("relax", "vc-relax", "md", "vc-md"):
            parts.append(Namelist("ions", self.ions or {}).to_str())
        if self.cell is not None or calc in ("vc-relax", "vc-md"):
            parts.append(Namelist("cell", self.cell or {}).to_str())
        lines = ["ATOMIC_SPECIES"]
        lines += [f"  {s} {m:.6f} {f}" for s, m, f in self.species]
        lines.append("CELL_PARAMETERS angstrom")
        lines += ["  " + " ".join(f"{x: .12f}" for x in row) for row in self.lattice_A]
        lines.append("ATOMIC_POSITIONS crystal")
        lines += [f"  {s} " + " ".join(f"{x: .12f}" for x in p) for s, p in self.positions]
        if self.klist is not None:
            lines.append("K_POINTS crystal")
            lines.append(f"  {len(self.klist)}")
            lines += ["  " + " ".join(f"{x: .12f}" for x in row[:3]) + f" {row[3]:.12g}" for row in self.klist]
        else:
            lines.append("K_POINTS automatic")
            lines.append("  " + " ".join(str(int(k)) for k in (*self.kpoints, *self.kshift)))
        return "".join(parts) + "\n".join(lines) + "\n"

    @classmethod
    def from_str(cls, text: str, *, origin: str = "<string>") -> "PWInput":
        namelists, rest = Namelist.parse_all(text, origin=origin)
        nl = {n.name: dict(n.params) for n in namelists}
        for required in ("control", "system", "electrons"):
            if required not in nl:
                raise QEInputError(f"{origin}: missing namelist &{required.upper()}")
        system = nl["system"]
        for key in ("ibrav", "nat", "ntyp"):
            if key not in system:
                raise QEInputError(f"{origin}: &SYSTEM: missing {key!r}")
        if system["ibrav"] != 0:
            raise QEInputError(f"{origin}: &SYSTEM: ibrav={system['ibrav']} not supported (betenet writes ibrav=0)")
        nat, ntyp = int(system.pop("nat")), int(system.pop("ntyp"))
        system.pop("ibrav")
        cards = _cards(rest, origin)
        for required in ("ATOMIC_SPECIES", "CELL_PARAMETERS", "ATOMIC_POSITIONS", "K_POINTS"):
            if required not in cards:
                raise QEInputError(f"{origin}: missing card {required}")
        species = []
        for lineno, line in cards["ATOMIC_SPECIES"][1]:
            f = line.split()
            if len(f) != 3:
                raise QEInputError(f"{origin}:{lineno}: ATOMIC_SPECIES: expected 'symbol mass file', got {line.strip()!r}")
            species.append((f[0], _float(f[1], origin, lineno), f[2]))
        if len(species) != ntyp:
            raise QEInputError(f"{origin}: ATOMIC_SPECIES has {len(species)} entries, &SYSTEM ntyp={ntyp}")
        opt, rows = cards["CELL_PARAMETERS"]
        if opt.lower().strip("{}() ") not in ("angstrom",):
            raise QEInputError(f"{origin}: CELL_PARAMETERS {opt!r}: only 'angstrom' supported")
        if len(rows) != 3:
            raise QEInputError(f"{origin}: CELL_PARAMETERS: expected 3 rows, got {len(rows)}")
        lattice = np.array([[_float(x, origin, n) for x in line.split()] for n, line in rows])
        opt, rows = cards["ATOMIC_POSITIONS"]
        if opt.lower().strip("{}() ") != "crystal":
            raise QEInputError(f"{origin}: ATOMIC_POSITIONS {opt!r}: only 'crystal' supported")
        positions = []
        for n, line in rows:
            f = line.split()
            if len(f) < 4:
                raise QEInputError(f"{origin}:{n}: ATOMIC_POSITIONS: expected 'symbol x y z', got {line.strip()!r}")
            positions.append((f[0], np.array([_float(x, origin, n) for x in f[1:4]])))
        if len(positions) != nat:
            raise QEInputError(f"{origin}: ATOMIC_POSITIONS has {len(positions)} atoms, &SYSTEM nat={nat}")
        opt, rows = cards["K_POINTS"]
        if opt.lower().strip("{}() ") != "automatic" or len(rows) != 1:
            raise QEInputError(f"{origin}: K_POINTS: only 'automatic' with one line supported")
        n, line = rows[0]
        f = line.split()
        if len(f) != 6:
            raise QEInputError(f"{origin}:{n}: K_POINTS automatic: expected 6 integers, got {line.strip()!r}")
        try:
            grid = [int(x) for x in f]
        except ValueError:
            raise QEInputError(f"{origin}:{n}: K_POINTS automatic: expected 6 integers, got {line.strip()!r}") from None
        return cls(
            control=nl["control"],
            system=system,
            electrons=nl["electrons"],
            ions=nl.get("ions"),
            cell=nl.get("cell"),
            species=species,
            lattice_A=lattice,
            positions=positions,
            kpoints=tuple(grid[:3]),  # type: ignore[arg-type]
            kshift=tuple(grid[3:]),  # type: ignore[arg-type]
        )

    def write(self, path: Path) -> Path:
        Path(path).write_text(self.to_str())
        return Path(path)


_CARD_NAMES = ("ATOMIC_SPECIES", "CELL_PARAMETERS", "ATOMIC_POSITIONS", "K_POINTS")


def _float(text: str, origin: str, lineno: int) -> float:
    try:
        return float(text.replace("d", "e").replace("D", "e"))
    except ValueError:
        raise QEInputError(f"{origin}:{lineno}: expected a number, got {text!r}") from None


def _cards(text: str, origin: str) -> dict[str, tuple[str, list[tuple[int, str]]]]:
    cards: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    current: str | None = None
    offset = 0
    for lineno, line in enumerate(text.splitlines(), start=1 + offset):
        s = line.strip()
        if not s or s.startswith(("!", "#")):
            continue
        head = s.split()[0].upper()
        if head in _CARD_NAMES:
            current = head
            cards[current] = (s[len(head) :].strip(), [])
        elif current is None:
            raise QEInputError(f"{origin}: text outside any card: {s!r}")
        else:
            cards[current][1].append((lineno, line))
    return cards


# --------------------------------------------------------------------------------------------
# Pseudopotentials and structures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PseudoSpec:
    """What an input needs of one element's pseudopotential."""

    element: str
    path: Path
    ecutwfc_Ry: float | None = None
    ecutrho_Ry: float | None = None
    md5: str | None = None

    @property
    def filename(self) -> str:
        return self.path.name


def _first_attr(obj: Any, names: Sequence[str]) -> Any:
    for n in names:
        if isinstance(obj, Mapping) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return None


def pseudo_specs(library: Any, elements: Iterable[str]) -> dict[str, PseudoSpec]:
    """``element -> PseudoSpec`` from a pseudopotential library.

    ``library`` is a :class:`betenet.qe.pseudo.PseudoLibrary` (``require(elements)``), a mapping
    ``element -> PseudoSpec | path``, or a directory holding ``<El>*.UPF`` files.  A missing element
    raises :class:`QEInputError` naming it and where it was looked for.
    """
    elements = sorted(set(elements))
    if isinstance(library, (str, Path)):
        d = Path(library)
        out = {}
        for el in elements:
            hits = sorted(p for p in d.glob(f"{el}[._-]*") if p.suffix.lower() == ".upf") if d.is_dir() else []
            if not hits:
                raise QEInputError(f"no pseudopotential for element {el!r} in {d} (expected {el}.*.UPF)")
            out[el] = PseudoSpec(el, hits[0].resolve())
        return out
    if hasattr(library, "require"):
        try:
            entries = library.require(elements)
        except Exception as exc:  # the library's own error type (PseudoError) names missing/failed elements
            raise QEInputError(f"pseudopotential library: {exc}") from exc
        if not isinstance(entries, Mapping):
            entries = {el: e for el, e in zip(elements, entries)}
    elif isinstance(library, Mapping):
        missing = [el for el in elements if el not in library]
        if missing:
            raise QEInputError(f"no pseudopotential for element(s) {missing}; available: {sorted(library)}")
        entries = {el: library[el] for el in elements}
    else:
        raise QEInputError(f"unsupported pseudopotential library {type(library).__name__}")
    out = {}
    for el in elements:
        e = entries[el]
        if isinstance(e, PseudoSpec):
            out[el] = e
            continue
        if isinstance(e, (str, Path)):
            out[el] = PseudoSpec(el, Path(e).resolve())
            continue
        path = _first_attr(e, ("path", "upf_path", "upf", "file"))
        if path is None:
            raise QEInputError(f"pseudopotential entry for {el!r} has no path ({e!r})")
        out[el] = PseudoSpec(
            el,
            Path(path).resolve(),
            ecutwfc_Ry=_first_attr(e, ("ecutwfc_Ry", "ecutwfc", "ecutwfc_ry", "recommended_ecutwfc_Ry")),
            ecutrho_Ry=_first_attr(e, ("ecutrho_Ry", "ecutrho", "ecutrho_ry", "recommended_ecutrho_Ry")),
            md5=_first_attr(e, ("md5",)),
        )
    for el, spec in out.items():
        if not spec.path.is_file():
            raise QEInputError(f"pseudopotential file for {el!r} not found: {spec.path}")
    return out


def check_structure(structure: Any, *, max_atoms: int | None = None, name: str = "structure") -> Structure:
    """Raise :class:`QEInputError` for anything pw.x cannot run: not a Structure, disordered, empty,
    zero volume, overlapping atoms, too many atoms, unknown elements."""
    if not isinstance(structure, Structure):
        raise QEInputError(f"{name}: expected a pymatgen Structure, got {type(structure).__name__}")
    if len(structure) == 0:
        raise QEInputError(f"{name}: structure has no sites")
    if not structure.is_ordered:
        raise QEInputError(f"{name}: structure is disordered (partial occupancies); QE needs an ordered cell")
    if not (structure.volume > 1e-3 and math.isfinite(structure.volume)):
        raise QEInputError(f"{name}: cell volume {structure.volume!r} Å^3 is not positive")
    if not np.all(np.isfinite(structure.frac_coords)):
        raise QEInputError(f"{name}: non-finite atomic coordinates")
    for sp in structure.composition.elements:
        if not isinstance(sp, Element):
            raise QEInputError(f"{name}: species {sp!r} is not a plain element")
    if max_atoms is not None and len(structure) > max_atoms:
        raise QEInputError(f"{name}: {len(structure)} atoms exceeds max_atoms={max_atoms}")
    if len(structure) > 1:
        d = structure.distance_matrix + np.eye(len(structure)) * 1e9
        dmin = float(d.min())
        if dmin < 0.5:
            i, j = np.unravel_index(int(np.argmin(d)), d.shape)
            raise QEInputError(f"{name}: atoms {i} and {j} are {dmin:.3f} Å apart (overlapping)")
    return structure


def cutoffs_Ry(pseudos: Mapping[str, PseudoSpec], ecutwfc_Ry: float | None, ecutrho_Ry: float | None) -> tuple[float, float]:
    """Plane-wave cutoffs: explicit values win; otherwise the largest recommendation of the library
    (ecutrho defaults to 4 x ecutwfc, norm-conserving)."""
    if ecutwfc_Ry is None:
        recs = [p.ecutwfc_Ry for p in pseudos.values() if p.ecutwfc_Ry]
        if not recs:
            raise QEInputError(
                f"ecutwfc_Ry not set and no recommended cutoff in the pseudopotentials of {sorted(pseudos)}"
            )
        ecutwfc_Ry = float(max(recs))
    if ecutrho_Ry is None:
        recs = [p.ecutrho_Ry for p in pseudos.values() if p.ecutrho_Ry]
        ecutrho_Ry = float(max(max(recs), 4 * ecutwfc_Ry)) if recs else 4.0 * ecutwfc_Ry
    if ecutrho_Ry < 4 * ecutwfc_Ry - 1e-9:
        raise QEInputError(f"ecutrho_Ry={ecutrho_Ry} < 4 x ecutwfc_Ry={ecutwfc_Ry}")
    return float(ecutwfc_Ry), float(ecutrho_Ry)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def _species(structure: Structure, pseudos: Mapping[str, PseudoSpec]) -> list[tuple[str, float, str]]:
    out = []
    for el in sorted({sp.symbol for sp in structure.composition.elements}):
        if el not in pseudos:
            raise QEInputError(f"no pseudopotential for element {el!r} (have {sorted(pseudos)})")
        out.append((el, float(Element(el).atomic_mass), pseudos[el].filename))
    return out


def _pseudo_dir(pseudos: Mapping[str, PseudoSpec]) -> str:
    dirs = {str(p.path.parent) for p in pseudos.values()}
    if len(dirs) != 1:
        raise QEInputError(f"pseudopotentials must share one directory for pw.x, got {sorted(dirs)}")
    return dirs.pop() + "/"


def pw_input(
    structure: Structure,
    pseudos: Mapping[str, PseudoSpec],
    *,
    calculation: str,
    kpoints: Sequence[int],
    ecutwfc_Ry: float,
    ecutrho_Ry: float,
    outdir: str | Path,
    prefix: str = "pwscf",
    degauss_Ry: float = 0.02,
    smearing: str = "mp",
    occupations: str = "smearing",
    la2F: bool = False,
    conv_thr: float = 1e-10,
    mixing_beta: float = 0.4,
    input_dft: str | None = None,
    press_conv_thr_kbar: float = 0.5,
    forc_conv_thr: float = 1e-4,
    etot_conv_thr: float = 1e-5,
    nstep: int = 60,
    nbnd: int | None = None,
) -> PWInput:
    """pw.x input for ``calculation`` in ``{'scf', 'nscf', 'vc-relax'}`` (Methfessel-Paxton smearing by default)."""
    if calculation not in ("scf", "nscf", "vc-relax", "relax"):
        raise QEInputError(f"calculation {calculation!r} not supported")
    check_structure(structure)
    control: dict[str, Any] = {
        "calculation": calculation,
        "prefix": prefix,
        "outdir": str(outdir),
        "pseudo_dir": _pseudo_dir(pseudos),
        "verbosity": "low",
    }
    if calculation in ("vc-relax", "relax"):
        control.update(tprnfor=True, tstress=True, nstep=nstep, etot_conv_thr=etot_conv_thr, forc_conv_thr=forc_conv_thr)
    system: dict[str, Any] = {"ecutwfc": float(ecutwfc_Ry), "ecutrho": float(ecutrho_Ry), "occupations": occupations}
    if occupations == "smearing":
        system.update(smearing=smearing, degauss=float(degauss_Ry))
    if input_dft:
        system["input_dft"] = input_dft
    if la2F:
        system["la2F"] = True
    if nbnd:
        system["nbnd"] = int(nbnd)
    electrons: dict[str, Any] = {"conv_thr": float(conv_thr) * len(structure), "mixing_beta": float(mixing_beta)}
    ions = cell = None
    if calculation in ("vc-relax", "relax"):
        ions = {"ion_dynamics": "bfgs"}
        if calculation == "vc-relax":
            cell = {"cell_dynamics": "bfgs", "press_conv_thr": float(press_conv_thr_kbar)}
    return PWInput(
        control=control,
        system=system,
        electrons=electrons,
        ions=ions,
        cell=cell,
        species=_species(structure, pseudos),
        lattice_A=structure.lattice.matrix,
        positions=[(site.specie.symbol, np.array(site.frac_coords)) for site in structure],
        kpoints=tuple(int(k) for k in kpoints),  # type: ignore[arg-type]
    )


def _amass(structure: Structure) -> dict[str, float]:
    """``amass(i)`` in the ATOMIC_SPECIES order of :func:`pw_input` (sorted symbols)."""
    els = sorted({sp.symbol for sp in structure.composition.elements})
    return {f"amass({i + 1})": float(Element(el).atomic_mass) for i, el in enumerate(els)}


def ph_input(
    structure: Structure,
    *,
    prefix: str,
    outdir: str | Path,
    q: Sequence[int] | None,
    fildyn: str,
    elph: bool,
    el_ph_sigma_Ry: float = 0.005,
    el_ph_nsigma: int = 10,
    tr2_ph: float = 1e-14,
    fildvscf: str = "dvscf",
    only_q: int | None = None,
    xq: Sequence[float] | None = None,
) -> NamelistInput:
    """ph.x on a uniform q mesh (``ldisp``); with ``elph`` the interpolated el-ph scheme
    (``electron_phonon='interpolated'``, broadenings ``el_ph_sigma * (1..el_ph_nsigma)`` Ry).

    ``only_q = i`` computes the i-th irreducible q point of the mesh only (``start_q = last_q = i``,
    1-based, ph.x's own order, listed in ``<fildyn>0``).  ``xq`` (with ``q=None``, phonons only): one
    q point instead of a mesh, Cartesian in 2π/alat (ph.x's ``ldisp = .false.`` form, the point on the
    line after the namelist).
    """
    if (q is None) == (xq is None):
        raise QEInputError("ph.x input: give either a q mesh (q) or one q point (xq), not both or neither")
    if xq is not None and (elph or only_q is not None):
        raise QEInputError("ph.x input: a single q point (xq) is for phonons only (no elph, no only_q)")
    params: dict[str, Any] = {
        "prefix": prefix,
        "outdir": str(outdir),
        "fildyn": fildyn,
        "tr2_ph": float(tr2_ph),
        "ldisp": q is not None,
        "trans": True,
        **({"nq1": int(q[0]), "nq2": int(q[1]), "nq3": int(q[2])} if q is not None else {}),
        **_amass(structure),
    }
    if xq is not None:
        point = [float(x) for x in xq]
        if len(point) != 3 or not all(math.isfinite(x) for x in point):
            raise QEInputError(f"ph.x input: xq must be three finite numbers (2π/alat), got {xq!r}")
        title = "betenet phonons at one q point"
        return NamelistInput(Namelist("inputph", params), title=title, trailer=" ".join(f"{x:.10f}" for x in point) + "\n")
    if only_q is not None:
        if int(only_q) < 1:
            raise QEInputError(f"ph.x only_q: expected an irreducible q index >= 1, got {only_q!r}")
        params.update(start_q=int(only_q), last_q=int(only_q))
    if elph:
        params.update(
            electron_phonon="interpolated",
            el_ph_sigma=float(el_ph_sigma_Ry),
            el_ph_nsigma=int(el_ph_nsigma),
            fildvscf=fildvscf,
        )
    title = "betenet el-ph" if elph else "betenet phonons"
    return NamelistInput(Namelist("inputph", params), title=title)


def q2r_input(*, fildyn: str, flfrc: str, la2F: bool, zasr: str = "crystal") -> NamelistInput:
    return NamelistInput(Namelist("input", {"fildyn": fildyn, "flfrc": flfrc, "zasr": zasr, "la2F": bool(la2F)}))


def matdyn_input(
    structure: Structure,
    *,
    flfrc: str,
    nk: Sequence[int],
    fldos: str,
    flfrq: str,
    la2F: bool,
    delta_meV: float = 0.1,
    asr: str = "crystal",
) -> NamelistInput:
    """matdyn.x phonon DOS (and α²F with ``la2F``) on an ``nk`` mesh; energy step ``delta_meV``
    (written as ``DeltaE`` in cm⁻¹)."""
    params: dict[str, Any] = {
        "asr": asr,
        "flfrc": flfrc,
        "flfrq": flfrq,
        "flvec": "matdyn.modes",
        "fldos": fldos,
        "dos": True,
        "la2F": bool(la2F),
        "nk1": int(nk[0]),
        "nk2": int(nk[1]),
        "nk3": int(nk[2]),
        "deltaE": float(delta_meV / CMM1_IN_MEV),
        **_amass(structure),
    }
    return NamelistInput(Namelist("input", params))


def matdyn_full_mesh_input(structure: Structure, *, nk: Sequence[int], la2F: bool, flfrc: str = "fc",
                           asr: str = "crystal") -> NamelistInput:
    """matdyn.x with ``dos=.false.`` on the explicit (unreduced) ``nk`` mesh in crystal coordinates:
    frequencies (``matdyn.freq``) and eigenvectors (``matdyn.eig``) at every mesh point, and with ``la2F``
    the linewidths ``elph.gamma.N`` of every broadening (the Gaussian fallback of
    :mod:`betenet.qe.phonon_dos`)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) / n for n in nk], indexing="ij"), axis=-1).reshape(-1, 3)
    params = {"asr": asr, "flfrc": flfrc, "flfrq": "matdyn.freq", "flvec": "matdyn.modes",
              "fleig": "matdyn.eig", "dos": False, "la2F": la2F, "q_in_cryst_coord": True,
              **_amass(structure)}
    trailer = f"{len(grid)}\n" + "".join(f"{a:.10f} {b:.10f} {c:.10f}\n" for a, b, c in grid)
    return NamelistInput(Namelist("input", params), trailer=trailer)


def projwfc_input(
    *, prefix: str, outdir: str | Path, filpdos: str, emin_eV: float, emax_eV: float, delta_eV: float = 0.02
) -> NamelistInput:
    """projwfc.x: site/orbital-projected DOS between ``emin_eV`` and ``emax_eV`` (absolute energies)."""
    params = {
        "prefix": prefix,
        "outdir": str(outdir),
        "filpdos": filpdos,
        "Emin": float(emin_eV),
        "Emax": float(emax_eV),
        "DeltaE": float(delta_eV),
    }
    return NamelistInput(Namelist("projwfc", {k.lower(): v for k, v in params.items()}))
