"""The paper's 806 structures as a Quantum ESPRESSO candidate source (issue 16, part 4).

Our own prototype candidates (fcc Cd, B2 RhZr, ...) are decorations, many off the convex hull; the paper
computed Materials Project structures within 50 meV/atom of the hull.  :func:`upstream_candidates` turns the
vendored ``data/upstream/structures/<row>.cif`` into candidates for :mod:`betenet.qe.dataset`, each
carrying its upstream row (``upstream_index``), its place in the paper's split (``train``/``test``) and,
where known, its Materials Project id, so that our α²F of a material can be set beside the paper's.

Order (cheapest usable first): candidates whose every element has a usable pseudopotential in the given
library (:class:`betenet.qe.pseudo.PseudoLibrary`: ``elements``, ``in``, ``[element]``) come first, and among them those
whose every pseudopotential is ``validated`` before those with a ``provisional`` one (its record would be
flagged ``pseudopotential_provisional``; ``provisional_elements``); within each group, when a
``cost`` estimate is given (``betenet qe run`` / ``qe plan`` give the estimated CPU seconds of the el-ph ph.x
run at the level's meshes and cutoffs, :func:`betenet.qe.phcost.ph_cost_estimate`), the cheapest first;
then (and for the candidates with a missing element) fewer atoms, more symmetry operations (fewer
irreducible k and q points for pw.x and ph.x), smaller volume per atom, the row index.  The position is
reported as ``cost_rank``, the estimate as ``est_cost``.

Materials Project ids: the CIFs' data blocks are all ``data_image0`` (written by ASE), so the CIFs do not
carry them.  They are in ``database.json``'s ``comp_name`` (``Y1In1Pd1Au1_mp_1215995``), which this
project does not have; pass ``comp_names`` (row -> comp_name, e.g. from
:func:`betenet.upstream.read_database_json`) to fill ``mp_id``, else it is ``None``.

Candidate ids are ``up<row:04d>-<reduced formula>`` (``up0259-AuY``): distinct from ``upstream-0259``, the
id of the authors' own record converted from ``database.json``, so our calculation and theirs of one
structure never share a record id; :func:`upstream_index_of` maps back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..upstream_split import VENDORED_COMMIT, paper_split_indices, row_index, upstream_dir
from .prototypes import same_crystal
from .pseudo import PseudoLibrary, provisional_elements

__all__ = [
    "UpstreamCandidate",
    "UpstreamCandidateList",
    "candidate_id",
    "upstream_index_of",
    "standard_orientation",
    "explain_unknown_upstream_id",
    "matching_upstream_row",
    "mp_id_from_comp_name",
    "upstream_candidates",
    "as_dataset_candidates",
    "candidate_table",
    "compare_with_published",
]

_ID_RE = re.compile(r"^up(\d{4,})-")
_MP_RE = re.compile(r"_mp_(\d+)$")
PROTOTYPE = "upstream"


@dataclass(frozen=True)
class UpstreamCandidate:
    """One of the paper's structures as a QE candidate."""

    material_id: str
    upstream_index: int
    formula: str  #: reduced formula
    n_atoms: int
    volume_per_atom_A3: float
    n_symmetry_ops: int
    spacegroup: str
    elements: tuple[str, ...]
    missing_elements: tuple[str, ...]  #: elements without a usable pseudopotential in the library
    split: str | None  #: "train" / "test" in the paper's split, None if in neither
    mp_id: str | None  #: "mp-1215995" from comp_name when given, else None (the CIFs do not carry it)
    cif: Path
    cost_rank: int = -1  #: position in the cost order among all candidates (0 = cheapest usable)
    est_cost: float | None = None  #: the ``cost`` estimate :func:`upstream_candidates` ordered it by, if any
    #: usable elements whose library entry is not ``validated`` (a library without statuses: none)
    provisional_elements: tuple[str, ...] = ()

    @property
    def covered(self) -> bool:
        """Every element has a usable pseudopotential."""
        return not self.missing_elements

    @property
    def validated(self) -> bool:
        """Every element has a usable pseudopotential, and every one is ``validated``."""
        return self.covered and not self.provisional_elements

    def structure(self):
        """The structure of the CIF (read as :mod:`betenet.upstream` reads it: ASE, then pymatgen) in
        :func:`standard_orientation`, the cell QE's symmetry search sees whole."""
        return standard_orientation(_read_cif(self.cif))

    def provenance(self) -> dict[str, Any]:
        """What a record computed from this candidate should carry about its origin."""
        return {"upstream_index": self.upstream_index, "mp_id": self.mp_id, "paper_split": self.split,
                "structure_source": f"henniggroup/BETE-NET@{VENDORED_COMMIT[:7]} structures/{self.upstream_index}.cif"}


def standard_orientation(structure):
    """The primitive standard cell of ``structure`` (pymatgen's Setyawan–Curtarolo setting, symprec 1e-3): the
    same crystal with its symmetry axes along x, y, z.  pw.x with ``ibrav=0`` only tries rotations about the
    Cartesian axes, so the Materials Project's rotated primitive fcc cell of rocksalt NbC (row 732) showed it 12
    of its 48 operations: 13 irreducible q points of a 4³ mesh instead of 8, and about four times the k points
    in every ph.x step.  Unchanged when spglib finds no cell or the standard one would have more atoms."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        std = SpacegroupAnalyzer(structure, symprec=1e-3).get_primitive_standard_structure()
    except Exception:  # spglib gives up on a few odd cells: run them as they are
        return structure
    return std if len(std) <= len(structure) else structure


def candidate_id(index: int, formula: str) -> str:
    """``up0259-AuY``: our candidate id of upstream row ``index``."""
    return f"up{int(index):04d}-{formula}"


def upstream_index_of(material_id: str) -> int | None:
    """Upstream row of a candidate id ``upNNNN-...``; ``None`` for other ids."""
    m = _ID_RE.match(str(material_id))
    return int(m.group(1)) if m else None


@lru_cache(maxsize=1)
def _rows_by_formula(structures_dir: str) -> dict[str, tuple[int, ...]]:
    """Reduced formula -> upstream rows with that formula (all vendored CIFs read once per process)."""
    rows: dict[str, list[int]] = {}
    for cif in Path(structures_dir).glob("*.cif"):
        if cif.stem.isdigit():
            rows.setdefault(_read_cif(cif).composition.reduced_formula, []).append(int(cif.stem))
    return {k: tuple(sorted(v)) for k, v in rows.items()}


def matching_upstream_row(structure, structures_dir: Path | str | None = None) -> int | None:
    """The upstream row whose structure is ``structure`` up to a uniform scale (pymatgen ``StructureMatcher``
    with default tolerances, volumes free: our relaxed cell against the paper's), or ``None``.  So that a
    prototype candidate (``Nb1-bcc``) that is one of the paper's materials says so in its record."""
    sdir = Path(structures_dir) if structures_dir is not None else upstream_dir() / "structures"
    rows = _rows_by_formula(str(sdir)).get(structure.composition.reduced_formula, ())
    for row in rows:
        if same_crystal(structure, _read_cif(sdir / f"{row}.cif")):
            return row
    return None


def mp_id_from_comp_name(comp_name: str | None) -> str | None:
    """``"Y1In1Pd1Au1_mp_1215995"`` -> ``"mp-1215995"``; ``None`` when there is no ``_mp_<n>`` suffix."""
    if not comp_name:
        return None
    m = _MP_RE.search(str(comp_name))
    return f"mp-{m.group(1)}" if m else None


def _read_cif(path: Path):
    from ase.io import read as ase_read
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(ase_read(path))


def explain_unknown_upstream_id(material_id: str, library: Any, *, max_atoms: int | None = None,
                                structures_dir: Path | str | None = None) -> str:
    """Why ``material_id`` is not among :func:`upstream_candidates` (``only_covered``) for ``library``: not an
    ``upNNNN-Formula`` id, no such row, the row has another formula, an element without a usable
    pseudopotential, or a cell above ``max_atoms``."""
    row = upstream_index_of(material_id)
    if row is None:
        return (f"material id {material_id!r} is not one of the paper's structures (ids upNNNN-Formula, e.g. "
                "up0256-AlPd); a prototype decoration needs that candidate source (`--candidates prototypes`)")
    sdir = Path(structures_dir) if structures_dir is not None else upstream_dir() / "structures"
    cif = sdir / f"{row}.cif"
    if not cif.exists():
        return f"{material_id}: no row {row} among the paper's structures ({sdir})"
    s = _read_cif(cif)
    want = candidate_id(row, s.composition.reduced_formula)
    if want != material_id:
        return f"{material_id}: row {row} of the paper's structures is {s.composition.reduced_formula}, id {want!r}"
    missing = [e for e in sorted({sp.symbol for sp in s.composition.elements}) if e not in library]
    if missing:
        return (f"{material_id}: no usable pseudopotential for {', '.join(missing)} in this level's library "
                "(absent, or failed validation: data/pseudo/*/README.md)")
    if max_atoms is not None and len(s) > max_atoms:
        return f"{material_id}: {len(s)} atoms in the cell, above this level's max_atoms = {max_atoms}"
    return f"{material_id}: not among the upstream candidates of this level"


def upstream_candidates(
    library: Any = None,
    *,
    structures_dir: Path | str | None = None,
    comp_names: Mapping[int | str, str] | None = None,
    max_atoms: int | None = None,
    only_covered: bool = False,
    cost: Callable[[Any], float] | None = None,
) -> list[UpstreamCandidate]:
    """The paper's structures as candidates, cheapest usable first (see the module docstring).

    ``library``: anything with ``elements``, ``in`` and ``[element]`` (a :class:`~betenet.qe.pseudo.PseudoLibrary`, e.g.
    ``PseudoLibrary.pseudodojo()`` for the validated level); ``None`` = the project's default set.
    ``max_atoms`` drops larger cells; ``only_covered`` drops candidates with a missing element.
    ``cost``: structure (:meth:`UpstreamCandidate.structure`) -> an estimate of what computing it costs
    (e.g. the CPU seconds of its el-ph ph.x run, :func:`betenet.qe.phcost.ph_cost_estimate`), evaluated for the
    covered candidates only; they are then ordered by it (``est_cost``; NaN counts as most expensive), the
    proxy order deciding ties.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    if library is None:
        library = PseudoLibrary.default()
    sdir = Path(structures_dir) if structures_dir is not None else upstream_dir() / "structures"
    cifs = sorted(sdir.glob("*.cif"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
    if not cifs:
        raise FileNotFoundError(f"{sdir}: no <row>.cif structures (vendored in data/upstream/structures)")
    train, test = (set(x) for x in paper_split_indices())
    names = {str(k): v for k, v in (comp_names or {}).items()}
    out = []
    for cif in cifs:
        if not cif.stem.isdigit():
            raise ValueError(f"{cif}: expected <row index>.cif")
        row = int(cif.stem)
        s = _read_cif(cif)
        if max_atoms is not None and len(s) > max_atoms:
            continue
        els = tuple(sorted({sp.symbol for sp in s.composition.elements}))
        missing = tuple(e for e in els if e not in library)
        provisional = tuple(provisional_elements(library, els))
        if only_covered and missing:
            continue
        try:
            sga = SpacegroupAnalyzer(s, symprec=1e-3)
            n_ops, sg = len(sga.get_symmetry_operations()), sga.get_space_group_symbol()
        except Exception:  # spglib gives up on a few odd cells: count only the identity
            n_ops, sg = 1, "?"
        formula = s.composition.reduced_formula
        out.append(UpstreamCandidate(
            material_id=candidate_id(row, formula), upstream_index=row, formula=formula, n_atoms=len(s),
            volume_per_atom_A3=round(s.volume / len(s), 3), n_symmetry_ops=n_ops, spacegroup=sg, elements=els,
            missing_elements=missing, provisional_elements=provisional,
            split="train" if row in train else "test" if row in test else None,
            mp_id=mp_id_from_comp_name(names.get(str(row))), cif=cif,
        ))
    if cost is not None:
        out = [replace(c, est_cost=float(cost(c.structure()))) if c.covered else c for c in out]

    def key(c: UpstreamCandidate):
        est = c.est_cost if c.est_cost is not None and math.isfinite(c.est_cost) else math.inf
        return (not c.covered, bool(c.provisional_elements), est if cost is not None else 0.0, c.n_atoms,
                -c.n_symmetry_ops, c.volume_per_atom_A3, c.upstream_index)

    out.sort(key=key)
    return [_with_rank(c, i) for i, c in enumerate(out)]


def _with_rank(c: UpstreamCandidate, rank: int) -> UpstreamCandidate:
    return replace(c, cost_rank=rank)


def as_dataset_candidates(candidates: Iterable[UpstreamCandidate]) -> list[tuple[str, Any, str]]:
    """``(material_id, structure, "upstream")`` tuples, the candidate format of :mod:`betenet.qe.dataset`
    (structures read now; pass a slice of the cheapest ones)."""
    return [(c.material_id, c.structure(), PROTOTYPE) for c in candidates]


class UpstreamCandidateList(Sequence):
    """``(material_id, structure, "upstream")`` tuples of :mod:`betenet.qe.dataset` over upstream candidates,
    reading a structure only when it is accessed; :attr:`ids` and :attr:`candidates` cost nothing."""

    def __init__(self, candidates: Iterable[UpstreamCandidate]):
        self.candidates = list(candidates)

    @property
    def ids(self) -> list[str]:
        return [c.material_id for c in self.candidates]

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return UpstreamCandidateList(self.candidates[i])
        c = self.candidates[i]
        return (c.material_id, c.structure(), PROTOTYPE)


def candidate_table(candidates: Sequence[UpstreamCandidate]):
    """A DataFrame of the candidates (one row each, in order; ``cif`` as a string)."""
    import pandas as pd

    rows = []
    for c in candidates:
        d = asdict(c)
        d["cif"] = str(c.cif)
        d["elements"] = " ".join(c.elements)
        d["missing_elements"] = " ".join(c.missing_elements)
        d["provisional_elements"] = " ".join(c.provisional_elements)
        d["covered"] = c.covered
        d["validated"] = c.validated
        rows.append(d)
    return pd.DataFrame(rows)


def compare_with_published(ours: Sequence[Any], published: Sequence[Any]):
    """Our records of the paper's structures beside the authors' records of the same rows.

    ``ours``: records whose ``provenance["upstream_index"]`` (or id ``upNNNN-...``) names an upstream row;
    ``published``: records converted from ``database.json`` (ids ``upstream-NNNN``).  One row per shared
    material: ``material_id, upstream_index, formula, paper_split`` and ``<prop>_ours``, ``<prop>_paper``,
    ``<prop>_diff`` (ours − paper) for λ, ω_log (K), ω₂ (K) and Allen–Dynes T_c (K).  Empty when none is shared.
    """
    import pandas as pd

    theirs = {row_index(r.material_id): r for r in published if row_index(r.material_id) is not None}
    train, test = (set(x) for x in paper_split_indices())
    props = (("lambda", "lambda_"), ("omega_log_K", "omega_log_K"), ("omega_2_K", "omega_2_K"), ("tc_ad_K", "tc_ad_K"))
    rows = []
    for rec in ours:
        idx = (rec.provenance or {}).get("upstream_index")
        idx = upstream_index_of(rec.material_id) if idx is None else int(idx)
        if idx is None or idx not in theirs:
            continue
        row = {"material_id": rec.material_id, "upstream_index": idx, "formula": rec.formula,
               "paper_split": "train" if idx in train else "test" if idx in test else None}
        for name, attr in props:
            a, b = getattr(rec, attr), getattr(theirs[idx], attr)
            row[f"{name}_ours"], row[f"{name}_paper"] = a, b
            row[f"{name}_diff"] = None if a is None or b is None else a - b
        rows.append(row)
    cols = ["material_id", "upstream_index", "formula", "paper_split"] + [
        f"{n}_{w}" for n, _ in props for w in ("ours", "paper", "diff")]
    return pd.DataFrame(rows, columns=cols)
