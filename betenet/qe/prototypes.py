"""Candidate crystal structures for the project's QE el-ph dataset (pymatgen).

Prototypes (all <= 8 atoms in the primitive cell, as the paper's <= 8-atom selection):

============  =========================  ======  =====  ===========================================
prototype     Strukturbericht / example  sg      atoms  sites (conventional cell)
============  =========================  ======  =====  ===========================================
``fcc``       A1 Cu                      225     1      A 4a
``bcc``       A2 W                       229     1      A 2a
``hcp``       A3 Mg                      194     2      A 2c
``B2``        CsCl                       221     2      A (0,0,0), B (1/2,1/2,1/2)
``L12``       Cu3Au                      221     4      A 3c (face centres), B 1a (corner)
``L10``       CuAu                       123     2      A (0,0,0), B (1/2,1/2,1/2) of the bct cell
``AlB2``      C32 MgB2                   191     3      M 1a, X 2d
``C15``       MgCu2 (cubic Laves)        227     6      A 8a, B 16d
``L21``       Heusler Cu2MnAl            225     4      X 8c, Y 4a, Z 4b  (formula X2YZ)
``C1b``       half-Heusler MgAgAs        216     3      X 4a, Y 4c, Z 4b  (formula XYZ)
``B1``        rocksalt NaCl              225     2      M 4a, X 4b (carbides/nitrides)
``A15``       Cr3Si                      223     8      A 6c, B 2a  (formula A3B)
============  =========================  ======  =====  ===========================================

Lattice constants are estimated from pymatgen's metallic radii (atomic radii for non-metals)
through each prototype's nearest-neighbour geometry, so that vc-relax starts near a sensible
volume.  Structures are returned as primitive standard cells
(``SpacegroupAnalyzer.get_primitive_standard_structure``).

:func:`candidate_structures` gives a deterministic, documented candidate list with stable ids
(``Nb1-bcc``, ``Nb3Sn-A15``, ``MgB2-AlB2``, ``NbTi-B2``, ``NbC-B1`` ...): first a curated list of
known metals/superconductors in prototypes where they exist (likely metallic and dynamically
stable), then the remaining elemental ground states, then every other role-compatible
combination, sorted by prototype and formula.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .pseudo import PseudoLibrary

__all__ = [
    "Prototype",
    "PROTOTYPES",
    "GROUND_STATE",
    "CURATED_PRIORITY",
    "PrototypeError",
    "element_radius_A",
    "build",
    "material_id",
    "parse_material_id",
    "candidate_ids",
    "candidate_structures",
    "same_crystal",
    "id_formula",
]


class PrototypeError(ValueError):
    """A prototype/element combination is unknown or malformed."""


@functools.lru_cache(maxsize=None)
def element_radius_A(element: str) -> float:
    """Metallic (12-coordinate) radius in Å where pymatgen has one, else the atomic radius."""
    from pymatgen.core import Element

    try:
        e = Element(element)
    except ValueError:
        raise PrototypeError(f"unknown element symbol {element!r}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = e.metallic_radius if e.is_metal else None
        r = r or e.atomic_radius
    if r is None:
        raise PrototypeError(f"pymatgen has no radius for {element}")
    return float(r)


# --------------------------------------------------------------------------------------------
# Builders: conventional cells at a radius-based lattice constant
# --------------------------------------------------------------------------------------------


def _lat():
    from pymatgen.core import Lattice

    return Lattice


def _cubic(a: float, species: Sequence[str], coords: Sequence[Sequence[float]]):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(a), list(species), [list(c) for c in coords])


_FCC = [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)]


def _fcc_sub(origin: Sequence[float]) -> list[tuple[float, float, float]]:
    return [tuple((o + s) % 1.0 for o, s in zip(origin, f)) for f in _FCC]  # type: ignore[misc]


def _b_fcc(els: Sequence[str]):
    (a_el,) = els
    a = 2 * math.sqrt(2) * element_radius_A(a_el)
    return _cubic(a, [a_el] * 4, _FCC)


def _b_bcc(els: Sequence[str]):
    (a_el,) = els
    a = 4 * element_radius_A(a_el) / math.sqrt(3)
    return _cubic(a, [a_el] * 2, [(0, 0, 0), (0.5, 0.5, 0.5)])


def _b_hcp(els: Sequence[str]):
    from pymatgen.core import Lattice, Structure

    (a_el,) = els
    a = 2 * element_radius_A(a_el)
    return Structure(Lattice.hexagonal(a, math.sqrt(8 / 3) * a), [a_el] * 2, [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])


def _b_b2(els: Sequence[str]):
    a_el, b_el = els
    a = 2 * (element_radius_A(a_el) + element_radius_A(b_el)) / math.sqrt(3)
    return _cubic(a, [a_el, b_el], [(0, 0, 0), (0.5, 0.5, 0.5)])


def _b_l12(els: Sequence[str]):
    a_el, b_el = els  # A3B: A on face centres, B on corners
    d = 2 * (3 * element_radius_A(a_el) + element_radius_A(b_el)) / 4
    a = math.sqrt(2) * d
    return _cubic(a, [b_el, a_el, a_el, a_el], _FCC)


def _b_l10(els: Sequence[str]):
    from pymatgen.core import Lattice, Structure

    a_el, b_el = els  # CuAu: alternating (001) planes of the fcc cell, c/a = 1 to start
    a_fcc = math.sqrt(2) * (element_radius_A(a_el) + element_radius_A(b_el))
    at = a_fcc / math.sqrt(2)
    return Structure(Lattice.tetragonal(at, a_fcc), [a_el, b_el], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _b_alb2(els: Sequence[str]):
    from pymatgen.core import Lattice, Structure

    m, x = els
    rm, rx = element_radius_A(m), element_radius_A(x)
    a = (2 * math.sqrt(3) * rx + 2 * rm) / 2
    c = 2 * math.sqrt(max((rm + rx) ** 2 - a * a / 3, (0.5 * a) ** 2))
    return Structure(Lattice.hexagonal(a, c), [m, x, x], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]])


def _b_c15(els: Sequence[str]):
    a_el, b_el = els  # AB2: A on the diamond sites (8a), B on the pyrochlore sites (16d)
    ra, rb = element_radius_A(a_el), element_radius_A(b_el)
    a = 0.5 * (8 * ra / math.sqrt(3) + 4 * math.sqrt(2) * rb)
    a_sites = _fcc_sub((0, 0, 0)) + _fcc_sub((0.25, 0.25, 0.25))
    b_base = [(0.625, 0.625, 0.625), (0.625, 0.875, 0.875), (0.875, 0.625, 0.875), (0.875, 0.875, 0.625)]
    b_sites = [s for base in b_base for s in _fcc_sub(base)]
    return _cubic(a, [a_el] * 8 + [b_el] * 16, a_sites + b_sites)


def _b_l21(els: Sequence[str]):
    x, y, z = els  # X2YZ
    d = element_radius_A(x) + 0.5 * (element_radius_A(y) + element_radius_A(z))
    a = 4 * d / math.sqrt(3)
    coords = _fcc_sub((0.25, 0.25, 0.25)) + _fcc_sub((0.75, 0.75, 0.75)) + _fcc_sub((0, 0, 0)) + _fcc_sub((0.5, 0.5, 0.5))
    return _cubic(a, [x] * 8 + [y] * 4 + [z] * 4, coords)


def _b_c1b(els: Sequence[str]):
    x, y, z = els  # XYZ: X 4a, Y 4c (tetrahedral, between X and Z), Z 4b
    d = element_radius_A(y) + 0.5 * (element_radius_A(x) + element_radius_A(z))
    a = 4 * d / math.sqrt(3)
    coords = _fcc_sub((0, 0, 0)) + _fcc_sub((0.25, 0.25, 0.25)) + _fcc_sub((0.5, 0.5, 0.5))
    return _cubic(a, [x] * 4 + [y] * 4 + [z] * 4, coords)


def _b_b1(els: Sequence[str]):
    m, x = els
    a = 2 * (element_radius_A(m) + element_radius_A(x))
    return _cubic(a, [m] * 4 + [x] * 4, _FCC + _fcc_sub((0.5, 0.5, 0.5)))


def _b_a15(els: Sequence[str]):
    a_el, b_el = els  # A3B: A on 6c chains, B on 2a (bcc)
    ra, rb = element_radius_A(a_el), element_radius_A(b_el)
    a = 0.5 * (4 * ra + 4 * (ra + rb) / math.sqrt(5))
    a_sites = [(0.25, 0, 0.5), (0.75, 0, 0.5), (0.5, 0.25, 0), (0.5, 0.75, 0), (0, 0.5, 0.25), (0, 0.5, 0.75)]
    return _cubic(a, [a_el] * 6 + [b_el] * 2, a_sites + [(0, 0, 0), (0.5, 0.5, 0.5)])


@dataclass(frozen=True)
class Prototype:
    """A structure prototype: ``roles`` are the sublattices in formula order with their counts."""

    name: str
    strukturbericht: str
    example: str
    space_group: int
    n_atoms_primitive: int
    counts: tuple[int, ...]
    builder: Callable[[Sequence[str]], object]
    #: If True the formula is symmetric in its two elements (B2, L10): ids sort them alphabetically.
    symmetric: bool = False


PROTOTYPES: dict[str, Prototype] = {
    p.name: p
    for p in [
        Prototype("fcc", "A1", "Cu", 225, 1, (1,), _b_fcc),
        Prototype("bcc", "A2", "W", 229, 1, (1,), _b_bcc),
        Prototype("hcp", "A3", "Mg", 194, 2, (1,), _b_hcp),
        Prototype("B2", "B2", "CsCl", 221, 2, (1, 1), _b_b2, symmetric=True),
        Prototype("L12", "L1_2", "Cu3Au", 221, 4, (3, 1), _b_l12),
        Prototype("L10", "L1_0", "CuAu", 123, 2, (1, 1), _b_l10, symmetric=True),
        Prototype("AlB2", "C32", "MgB2", 191, 3, (1, 2), _b_alb2),
        Prototype("C15", "C15", "MgCu2", 227, 6, (1, 2), _b_c15),
        Prototype("L21", "L2_1", "Cu2MnAl", 225, 4, (2, 1, 1), _b_l21),
        Prototype("C1b", "C1_b", "MgAgAs", 216, 3, (1, 1, 1), _b_c1b),
        Prototype("B1", "B1", "NaCl", 225, 2, (1, 1), _b_b1),
        Prototype("A15", "A15", "Cr3Si", 223, 8, (3, 1), _b_a15),
    ]
}

#: Experimental ground-state structure of elemental metals among fcc/bcc/hcp (room temperature).
#: Elements whose ground state is none of these (Ga, In, Sn, Bi, Sb, As, B, C, N, O, H, P, Si, Ge,
#: Mn, Hg, ...) have no elemental candidate unless asked for explicitly.
GROUND_STATE: dict[str, str] = {
    **{el: "fcc" for el in ["Al", "Pb", "Cu", "Ag", "Au", "Pd", "Pt", "Rh", "Ir", "Ca", "Sr", "Ni"]},
    **{el: "bcc" for el in ["Nb", "V", "Ta", "Mo", "W", "Li", "Na", "K", "Ba", "Cr", "Fe", "Rb", "Cs"]},
    **{el: "hcp" for el in ["Mg", "Be", "Zn", "Cd", "Ti", "Zr", "Hf", "Sc", "Y", "Re", "Ru", "Os", "Tl", "Co", "Tc"]},
}

#: Curated priority: known metals and superconductors in prototypes where they exist
#: experimentally, in the order the dataset should compute them.
CURATED_PRIORITY: tuple[str, ...] = (
    "Nb1-bcc", "Pb1-fcc", "Al1-fcc", "V1-bcc", "Ta1-bcc", "Mo1-bcc", "NbC-B1", "NbN-B1", "MgB2-AlB2",
    "Nb3Sn-A15", "V3Si-A15", "NbTi-B2", "Tl1-hcp", "Zn1-hcp", "Cd1-hcp", "Re1-hcp", "Os1-hcp", "Ru1-hcp",
    "Ti1-hcp", "Zr1-hcp", "Hf1-hcp", "W1-bcc", "Ir1-fcc", "Cu1-fcc", "Ag1-fcc", "Au1-fcc", "Pd1-fcc",
    "Pt1-fcc", "Rh1-fcc", "Mg1-hcp", "Li1-bcc", "Na1-bcc", "K1-bcc", "Ca1-fcc", "Sr1-fcc", "Ba1-bcc",
    "Be1-hcp", "Sc1-hcp", "Y1-hcp",
    "TaC-B1", "TiN-B1", "ZrN-B1", "HfN-B1", "VN-B1", "TiC-B1", "ZrC-B1", "HfC-B1", "VC-B1", "NbB2-AlB2",
    "ZrB2-AlB2", "TiB2-AlB2", "HfB2-AlB2", "TaB2-AlB2", "ScB2-AlB2", "AlB2-AlB2",
    "Nb3Al-A15", "Nb3Ge-A15", "Nb3Ga-A15", "V3Ga-A15", "V3Ge-A15", "V3Sn-A15", "Ta3Sn-A15", "Nb3Au-A15",
    "Mo3Si-A15", "Nb3Pt-A15", "Nb3Ir-A15", "V3Pt-A15", "Mo3Ge-A15",
    "ZrV2-C15", "HfV2-C15", "CaIr2-C15", "SrIr2-C15", "CaRh2-C15", "SrRh2-C15", "ZrIr2-C15", "MgCu2-C15",
    "CaAl2-C15", "ZrW2-C15", "HfW2-C15", "ZrMo2-C15", "ScAl2-C15", "YAl2-C15", "CaPt2-C15", "CaPd2-C15",
    "Cu3Au-L12", "Al3Sc-L12", "Zr3Al-L12", "Pt3Sn-L12", "Pd3Sn-L12", "Au3Cu-L12", "Pd3Pb-L12", "Al3Li-L12",
    "Ir3Nb-L12", "AuCu-L10", "AlTi-L10", "PdZn-L10", "PtZn-L10",
    "CuZn-B2", "AgMg-B2", "AuMg-B2", "AlPd-B2", "AlRu-B2", "CuPd-B2", "AgCd-B2", "AuZn-B2", "AuCd-B2",
    "AgSc-B2", "CuY-B2", "AgY-B2", "CuSc-B2", "RuZr-B2", "NbRu-B2", "MoRe-B2",
    "Pd2YSn-L21", "Pd2ZrAl-L21", "Pd2HfAl-L21", "Pd2ZrIn-L21", "Pd2HfIn-L21", "Pd2ScSn-L21", "Pd2YPb-L21",
    "YPtBi-C1b", "ScPtBi-C1b", "YPdBi-C1b",
)

# Role filters for the exhaustive tail of the list (after the curated ids).
_RS_METALS = {"Sc", "Ti", "V", "Y", "Zr", "Nb", "Mo", "Hf", "Ta", "W"}
_RS_ANIONS = {"C", "N"}
_BORIDE_METALS = {"Mg", "Al", "Ca", "Sc", "Ti", "V", "Y", "Zr", "Nb", "Mo", "Hf", "Ta", "W", "Sr", "Ba"}
_A15_A = {"V", "Nb", "Ta", "Mo", "Ti", "Zr", "Cr"}
_A15_B = {"Al", "Ga", "In", "Si", "Ge", "Sn", "Pb", "As", "Sb", "Bi", "Au", "Pt", "Ir", "Os", "Rh", "Pd", "Ru", "Re"}
_HEUSLER_X = {"Cu", "Ag", "Au", "Pd", "Pt", "Rh", "Ir", "Ru", "Li"}
_HEUSLER_Y = {"Sc", "Ti", "V", "Y", "Zr", "Nb", "Hf", "Ta", "Mg", "Li", "Ca"}
_HEUSLER_Z = {"Al", "Ga", "In", "Tl", "Si", "Ge", "Sn", "Pb", "Sb", "Bi", "Zn", "Cd", "Mg"}
_NON_METALS = {"H", "B", "C", "N", "O", "P", "As", "Si", "Ge", "Sb", "F", "S", "Se", "Te", "Cl", "Br", "I"}


def _formula(els: Sequence[str], counts: Sequence[int]) -> str:
    return "".join(f"{e}{c if c > 1 else ''}" for e, c in zip(els, counts))


def material_id(elements: Sequence[str], prototype: str) -> str:
    """Stable id ``<formula>-<prototype>``; elements in the prototype's role order.

    Elemental: ``Nb1-bcc``; symmetric binaries (B2, L10) sort their elements alphabetically
    (``NbTi-B2``); others keep role order (``Nb3Sn-A15``, ``MgB2-AlB2``, ``Pd2YSn-L21``).
    """
    if prototype not in PROTOTYPES:
        raise PrototypeError(f"unknown prototype {prototype!r}; known: {', '.join(PROTOTYPES)}")
    p = PROTOTYPES[prototype]
    els = list(elements)
    if len(els) != len(p.counts):
        raise PrototypeError(f"prototype {prototype} takes {len(p.counts)} element(s), got {els}")
    if p.symmetric:
        els = sorted(els)
    if len(els) == 1:
        return f"{els[0]}1-{prototype}"
    return f"{_formula(els, p.counts)}-{prototype}"


def parse_material_id(mid: str) -> tuple[list[str], str]:
    """Inverse of :func:`material_id`: ``'Nb3Sn-A15'`` -> (['Nb', 'Sn'], 'A15')."""
    if "-" not in mid:
        raise PrototypeError(f"material id {mid!r}: expected '<formula>-<prototype>'")
    formula, proto = mid.rsplit("-", 1)
    if proto not in PROTOTYPES:
        raise PrototypeError(f"material id {mid!r}: unknown prototype {proto!r}; known: {', '.join(PROTOTYPES)}")
    parts = re.findall(r"([A-Z][a-z]?)(\d*)", formula)
    if not parts or "".join(e + n for e, n in parts) != formula:
        raise PrototypeError(f"material id {mid!r}: cannot parse formula {formula!r}")
    els = [e for e, _ in parts]
    counts = tuple(int(n) if n else 1 for _, n in parts)
    p = PROTOTYPES[proto]
    if len(els) == 1 and counts == (1,):
        counts = p.counts if len(p.counts) == 1 else counts
    if len(els) != len(p.counts) or (len(els) > 1 and counts != p.counts):
        raise PrototypeError(f"material id {mid!r}: formula does not match prototype {proto} (counts {p.counts})")
    return els, proto


def build(elements: Sequence[str], prototype: str, *, primitive: bool = True):
    """Structure of ``elements`` (role order) in ``prototype``; primitive standard cell by default."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    if prototype not in PROTOTYPES:
        raise PrototypeError(f"unknown prototype {prototype!r}; known: {', '.join(PROTOTYPES)}")
    p = PROTOTYPES[prototype]
    if len(elements) != len(p.counts):
        raise PrototypeError(f"prototype {prototype} takes {len(p.counts)} element(s), got {list(elements)}")
    if len(set(elements)) != len(elements):
        raise PrototypeError(f"prototype {prototype} needs distinct elements, got {list(elements)}")
    conv = p.builder(list(elements))
    if not primitive:
        return conv
    prim = SpacegroupAnalyzer(conv, symprec=1e-3).get_primitive_standard_structure()
    if len(prim) != p.n_atoms_primitive:  # pragma: no cover - guarded by tests
        raise PrototypeError(f"{material_id(elements, prototype)}: primitive cell has {len(prim)} atoms, expected {p.n_atoms_primitive}")
    return prim


def _combos(elements: set[str]) -> Iterable[tuple[tuple[str, ...], str]]:
    """Role-compatible element tuples per prototype for the exhaustive tail (deterministic order)."""
    els = sorted(elements)
    metals = [e for e in els if e not in _NON_METALS]
    for e in els:
        if e in GROUND_STATE:
            for proto in ("fcc", "bcc", "hcp"):
                yield (e,), proto
    for a, b in itertools.combinations(metals, 2):
        yield (a, b), "B2"
        yield (a, b), "L10"
    for a, b in itertools.permutations(metals, 2):
        yield (a, b), "L12"
        ra, rb = element_radius_A(a), element_radius_A(b)
        if 1.05 <= ra / rb <= 1.40:
            yield (a, b), "C15"
    for m in sorted(_BORIDE_METALS & elements):
        if "B" in elements:
            yield (m, "B"), "AlB2"
    for m in sorted(_RS_METALS & elements):
        for x in sorted(_RS_ANIONS & elements):
            yield (m, x), "B1"
    for a in sorted(_A15_A & elements):
        for b in sorted(_A15_B & elements):
            yield (a, b), "A15"
    for x in sorted(_HEUSLER_X & elements):
        for y in sorted(_HEUSLER_Y & elements):
            for z in sorted(_HEUSLER_Z & elements):
                if len({x, y, z}) == 3:
                    yield (x, y, z), "L21"
                    yield (y, x, z), "C1b"


def candidate_ids(
    elements: Iterable[str] | None = None,
    prototypes: Iterable[str] | None = None,
    max_atoms: int = 8,
    *,
    limit: int | None = None,
) -> list[tuple[str, tuple[str, ...], str]]:
    """Deterministic candidate list ``[(material_id, elements, prototype), ...]`` without structures.

    Cheap (no pymatgen structure is built: ~0.1 s for the whole library); :func:`build` turns one
    entry into a structure.  Arguments and order as :func:`candidate_structures`.
    """
    if elements is None:
        elements = PseudoLibrary.default().elements
    allowed = {str(e) for e in elements}
    protos = list(prototypes) if prototypes is not None else list(PROTOTYPES)
    unknown = [p for p in protos if p not in PROTOTYPES]
    if unknown:
        raise PrototypeError(f"unknown prototype(s) {unknown}; known: {', '.join(PROTOTYPES)}")
    proto_set = set(protos)
    out: list[tuple[str, tuple[str, ...], str]] = []
    seen: set[str] = set()

    def add(els: Sequence[str], proto: str) -> bool:
        mid = material_id(els, proto)
        if mid in seen or proto not in proto_set or not set(els) <= allowed:
            return False
        if PROTOTYPES[proto].n_atoms_primitive > max_atoms:
            return False
        seen.add(mid)
        out.append((mid, tuple(els), proto))
        return limit is not None and len(out) >= limit

    for mid in CURATED_PRIORITY:
        els, proto = parse_material_id(mid)
        if add(els, proto):
            return out
    for el in sorted(allowed):
        if el in GROUND_STATE and add((el,), GROUND_STATE[el]):
            return out
    # compounds by prototype and id, then the elemental non-ground-state structures last
    order = {name: i for i, name in enumerate(PROTOTYPES)}
    tail = sorted(_combos(allowed), key=lambda t: (len(t[0]) == 1, order[t[1]], material_id(*t)))
    for els, proto in tail:
        if add(els, proto):
            return out
    return out


def candidate_structures(
    elements: Iterable[str] | None = None,
    prototypes: Iterable[str] | None = None,
    max_atoms: int = 8,
    *,
    limit: int | None = None,
) -> list[tuple[str, object, str]]:
    """Deterministic candidate list ``[(material_id, Structure, prototype), ...]``.

    ``elements``: allowed elements (default: the usable elements of the project's pseudopotential
    library); ``prototypes``: allowed prototype names (default: all).  Order: the curated ids of
    :data:`CURATED_PRIORITY` that are allowed, then every other role-compatible combination by
    prototype (table order) and id.  Cells with more than ``max_atoms`` atoms are dropped.
    ``limit`` stops after that many candidates.  Building every structure of the full library
    takes minutes (symmetry analysis per cell): use :func:`candidate_ids` and :func:`build` to
    build only the candidates you need.
    """
    ids = candidate_ids(elements, prototypes, max_atoms, limit=limit)
    it = ids
    if len(ids) > 200:
        from tqdm.auto import tqdm

        it = tqdm(ids, desc="building candidate structures", unit="cell")
    return [(mid, build(els, proto), proto) for mid, els, proto in it]


def same_crystal(a, b) -> bool:
    """True when ``a`` and ``b`` are one crystal up to a uniform scale: same reduced formula, and pymatgen's
    ``StructureMatcher`` with its default tolerances, the volumes free and supercells tried.  The one
    recipe by which a relaxed cell is recognised as a paper's row or a reference material."""
    if a.composition.reduced_formula != b.composition.reduced_formula:
        return False
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return bool(StructureMatcher(scale=True, attempt_supercell=True).fit(a, b))


def id_formula(material_id: str) -> str | None:
    """The reduced formula a ``<formula>-<prototype>`` id names (``"Nb3Sn-A15"`` -> ``"Nb3Sn"``,
    ``"Nb1-bcc"`` -> ``"Nb"``), without building the structure; ``None`` when the id has no formula part."""
    from pymatgen.core import Composition

    head = material_id.rsplit("-", 1)[0] if "-" in material_id else ""
    try:
        return Composition(head).reduced_formula if head else None
    except (ValueError, KeyError):
        return None
