"""The paper's structures as QE candidates: order, pseudopotential coverage, upstream row, split, MP id."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from betenet import upstream_split as us
from betenet.qe import upstream_candidates as uc
from betenet.qe.pseudo import PseudoLibrary

# rows: 15 Ba (1 atom, bcc), 0 Cs (1 atom; no Cs in the project set), 7 AgSe (2 atoms), 1 AuInPdY (4 atoms), 596 HRh
ROWS = (15, 0, 7, 1, 596)


@pytest.fixture(scope="module")
def structures(tmp_path_factory):
    d = tmp_path_factory.mktemp("structures")
    for row in ROWS:
        shutil.copy(us.upstream_dir() / "structures" / f"{row}.cif", d / f"{row}.cif")
    return d


def test_order_coverage_and_origin(structures):
    lib = PseudoLibrary.default()
    assert "Cs" not in lib and "Se" not in lib and {"Ba", "Au", "In", "Pd", "Y", "H", "Rh"} <= set(lib.elements)
    cands = uc.upstream_candidates(lib, structures_dir=structures)
    assert [c.upstream_index for c in cands] == [15, 596, 1, 0, 7]  # covered by atoms, then the uncovered
    assert [c.cost_rank for c in cands] == [0, 1, 2, 3, 4]
    ba, cs, agse = cands[0], cands[3], cands[4]
    assert (ba.material_id, ba.formula, ba.n_atoms, ba.n_symmetry_ops, ba.split) == ("up0015-Ba", "Ba", 1, 48, "train")
    assert ba.covered and not cs.covered and cs.missing_elements == ("Cs",) and agse.missing_elements == ("Se",)
    assert cs.split == "test" and cands[2].n_atoms == 4
    assert all(c.mp_id is None for c in cands)  # the CIFs do not carry it (data_image0)
    assert uc.upstream_index_of(ba.material_id) == 15 and uc.upstream_index_of("upstream-0015") is None
    assert ba.provenance()["upstream_index"] == 15 and "structures/15.cif" in ba.provenance()["structure_source"]


def test_a_cost_estimate_orders_the_covered_candidates(structures):
    """With ``cost`` the covered candidates come cheapest first by it (evaluated for them only), the
    uncovered ones after in the proxy order; a NaN estimate counts as the most expensive."""
    lib = PseudoLibrary.default()
    seen = []

    def by_volume(structure):  # larger cells "cheaper": the reverse of the proxy order's tie-break
        seen.append(structure.composition.reduced_formula)
        return -structure.volume

    cands = uc.upstream_candidates(lib, structures_dir=structures, cost=by_volume)
    assert [c.upstream_index for c in cands] == [1, 15, 596, 0, 7]  # YInPdAu (4 atoms), bcc Ba, HRh
    assert len(seen) == 3 and all(c.est_cost is None for c in cands[3:])
    assert cands[0].est_cost < cands[1].est_cost < cands[2].est_cost
    nan_first = uc.upstream_candidates(lib, structures_dir=structures,
                                       cost=lambda s: float("nan") if len(s) == 1 else 1.0)
    assert [c.upstream_index for c in nan_first][:3] == [596, 1, 15]


def test_filters_mp_ids_and_dataset_format(structures):
    names = {1: "Y1In1Pd1Au1_mp_1215995", "0": "Cs_mp_1"}
    cands = uc.upstream_candidates(PseudoLibrary.default(), structures_dir=structures, comp_names=names,
                                   max_atoms=2, only_covered=True)
    assert [c.upstream_index for c in cands] == [15, 596]
    allc = {c.upstream_index: c for c in uc.upstream_candidates(PseudoLibrary.default(), structures_dir=structures,
                                                                 comp_names=names)}
    assert allc[1].mp_id == "mp-1215995" and allc[0].mp_id == "mp-1" and allc[7].mp_id is None
    mid, structure, proto = uc.as_dataset_candidates(cands[:1])[0]
    assert (mid, len(structure), proto) == ("up0015-Ba", 1, "upstream")
    table = uc.candidate_table(cands)
    assert list(table["material_id"]) == ["up0015-Ba", "up0596-HRh"] and table["covered"].all()
    assert uc.mp_id_from_comp_name("Cs") is None


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no <row>.cif structures"):
        uc.upstream_candidates(PseudoLibrary.default(), structures_dir=tmp_path)


def test_compare_with_published_pairs_our_record_with_the_authors_row(tmp_path):
    import dataclasses

    from betenet import upstream as up
    from upstream_standin import write_standin

    db = write_standin(tmp_path / "up", rows=(10, 0))
    published = up.read_upstream(db, skip_invalid=True)
    assert [r.material_id for r in published] == ["upstream-0000", "upstream-0010"]
    theirs = published[1]
    ours = dataclasses.replace(theirs, material_id="up0010-NaBi", source="betenet-qe", lambda_=theirs.lambda_ + 0.1,
                               provenance={"upstream_index": 10})
    unrelated = dataclasses.replace(theirs, material_id="Al1-fcc", source="betenet-qe", provenance={})
    table = uc.compare_with_published([ours, unrelated], published)
    assert list(table["material_id"]) == ["up0010-NaBi"]
    row = table.iloc[0]
    assert (row["upstream_index"], row["paper_split"]) == (10, "train")
    assert row["lambda_diff"] == pytest.approx(0.1) and row["omega_log_K_diff"] == pytest.approx(0.0)
    assert uc.compare_with_published([unrelated], published).empty


def test_lazy_candidate_list_feeds_the_dataset_selection(structures, tmp_path):
    """The upstream candidates as qe.dataset consumes them (ids without reading structures, explicit ids
    in the user's order), and a record's upstream provenance from its id."""
    from betenet.qe.dataset import select_candidates
    from betenet.qe.record import upstream_provenance

    cands = uc.UpstreamCandidateList(uc.upstream_candidates(PseudoLibrary.default(), structures_dir=structures, only_covered=True))
    assert cands.ids == ["up0015-Ba", "up0596-HRh", "up0001-YInPdAu"]
    picked = select_candidates(cands, ids=["up0596-HRh", "up0015-Ba"], runs_dir=tmp_path)
    assert [mid for mid, _, _ in picked] == ["up0596-HRh", "up0015-Ba"]
    mid, s, proto = picked[0]
    assert proto == uc.PROTOTYPE and s.composition.reduced_formula == "HRh" and len(s) == 2
    train, test = us.paper_split_indices()
    assert 596 in test and 15 in train
    assert upstream_provenance("up0596-HRh") == {"upstream_index": 596, "upstream_split": "test"}
    assert upstream_provenance("up0015-Ba") == {"upstream_index": 15, "upstream_split": "train"}
    assert upstream_provenance("Ba1-bcc") == {}


def test_a_prototype_candidate_that_is_a_paper_structure_says_so(structures):
    """bcc Ba of another volume (a prototype candidate after relaxation) is the paper's row 15 up to scale;
    fcc Ba is not, and a formula without a paper row never matches."""
    from pymatgen.core import Lattice, Structure

    ba = Structure(Lattice.cubic(5.1), ["Ba", "Ba"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # bcc, conventional cell
    assert uc.matching_upstream_row(ba, structures) == 15
    fcc_ba = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.0), ["Ba"], [[0, 0, 0]])
    assert uc.matching_upstream_row(fcc_ba, structures) is None
    sr = Structure(Lattice.cubic(4.4), ["Sr", "Sr"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert uc.matching_upstream_row(sr, structures) is None


def _cartesian_cubic_ops(lattice) -> int:
    """How many of the 48 signed permutation matrices (the cubic rotations about x, y, z that pw.x tries
    with ibrav=0) map the lattice onto itself."""
    import itertools

    import numpy as np

    m = lattice.matrix  # rows are the lattice vectors
    n = 0
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            r = np.zeros((3, 3))
            for i, (j, sg) in enumerate(zip(perm, signs)):
                r[i, j] = sg
            coeff = np.linalg.solve(m.T, (m @ r.T).T)  # rotated vectors in the lattice basis
            n += bool(np.allclose(coeff, np.round(coeff), atol=1e-6))
    return n


def test_upstream_cells_are_turned_to_the_axes_qe_searches():
    """Row 732 (rocksalt NbC) comes in the Materials Project's rotated primitive cell: only 4 of the cubic
    rotations about x, y, z map it onto itself (pw.x, which also tries the hexagonal set, found 12
    operations); the standard orientation keeps all 48, with the same crystal and number of atoms."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from betenet.qe.upstream_candidates import _read_cif, standard_orientation, upstream_dir

    raw = _read_cif(upstream_dir() / "structures" / "732.cif")
    std = standard_orientation(raw)
    assert _cartesian_cubic_ops(raw.lattice) == 4 and _cartesian_cubic_ops(std.lattice) == 48
    assert len(std) == len(raw) == 2 and StructureMatcher().fit(raw, std)
    assert abs(std.volume - raw.volume) < 1e-6


def test_the_validated_level_takes_the_paper_structures_cheapest_first():
    """``qe run --accuracy validated --candidates upstream`` takes the structures whose every pseudopotential is
    validated first, then those with a provisional one (their records would be flagged), each group by the
    estimated CPU of its el-ph ph.x run (non-decreasing), every one with a finite estimate."""
    from betenet.config import QE_VALIDATED
    from betenet.qe import dataset

    cands = list(dataset.candidate_source("upstream", QE_VALIDATED).candidates)
    est = [c.est_cost for c in cands]
    assert len(est) >= 10 and all(e is not None and np.isfinite(e) for e in est)
    groups = [c.validated for c in cands]
    assert groups == sorted(groups, reverse=True) and any(groups) and not all(groups)
    lib = PseudoLibrary.pseudodojo()
    for flag in (True, False):
        part = [c for c in cands if c.validated is flag]
        assert [c.est_cost for c in part] == sorted(c.est_cost for c in part)
        assert all(bool(c.provisional_elements) is not flag for c in part)
        assert all(lib[e].status != "validated" for c in part for e in c.provisional_elements)
