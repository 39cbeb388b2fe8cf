"""Candidate structures (betenet.qe.prototypes) and lazy candidate selection (betenet.qe.dataset)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from betenet.qe import dataset, prototypes
from betenet.qe.prototypes import (
    CURATED_PRIORITY,
    PROTOTYPES,
    PrototypeError,
    build,
    candidate_ids,
    candidate_structures,
    element_radius_A,
    material_id,
    parse_material_id,
)

#: One real example per prototype (formula in role order) with its reduced formula.
EXAMPLES = {
    "fcc": ("Al1-fcc", "Al"),
    "bcc": ("Nb1-bcc", "Nb"),
    "hcp": ("Mg1-hcp", "Mg"),
    "B2": ("NbTi-B2", "NbTi"),
    "L12": ("Cu3Au-L12", "Cu3Au"),
    "L10": ("AuCu-L10", "AuCu"),
    "AlB2": ("MgB2-AlB2", "MgB2"),
    "C15": ("MgCu2-C15", "MgCu2"),
    "L21": ("Pd2ZrAl-L21", "ZrAlPd2"),
    "C1b": ("YPtBi-C1b", "YBiPt"),
    "B1": ("NbC-B1", "NbC"),
    "A15": ("Nb3Sn-A15", "Nb3Sn"),
}


def test_every_prototype_has_an_example():
    assert set(EXAMPLES) == set(PROTOTYPES)


@pytest.mark.parametrize("proto", list(PROTOTYPES))
def test_prototype_symmetry_size_and_stoichiometry(proto):
    mid, reduced = EXAMPLES[proto]
    els, p = parse_material_id(mid)
    assert p == proto
    s = build(els, proto)
    spec = PROTOTYPES[proto]
    assert SpacegroupAnalyzer(s, symprec=1e-3).get_space_group_number() == spec.space_group
    assert len(s) == spec.n_atoms_primitive <= 8
    assert s.composition.reduced_composition.almost_equals(Composition(reduced).reduced_composition)
    # role counts: element i appears counts[i] times per formula unit
    comp = s.composition.get_el_amt_dict()
    units = comp[els[0]] / spec.counts[0]
    for el, n in zip(els, spec.counts):
        assert comp[el] == pytest.approx(n * units)
    # conventional cell has the same composition and symmetry
    conv = build(els, proto, primitive=False)
    assert conv.composition.reduced_formula == s.composition.reduced_formula
    assert SpacegroupAnalyzer(conv, symprec=1e-3).get_space_group_number() == spec.space_group


@pytest.mark.parametrize("proto", list(PROTOTYPES))
def test_nearest_neighbour_distances_are_sensible(proto):
    """Radius-based lattice constants: the shortest bond is 0.9-1.6x the smallest sum of radii
    (vc-relax starts near the right volume, no overlapping atoms)."""
    els, _ = parse_material_id(EXAMPLES[proto][0])
    s = build(els, proto)
    d_min = min(min(n.nn_distance for n in s.get_neighbors(site, 6.0)) for site in s)
    r_sum = min(element_radius_A(a) + element_radius_A(b) for a in els for b in els)
    assert d_min > 1.5
    assert 0.9 <= d_min / r_sum <= 1.6, (proto, d_min, r_sum)
    assert 8.0 < s.volume / len(s) < 40.0


@pytest.mark.parametrize("mid", [m for m, _ in EXAMPLES.values()] + list(CURATED_PRIORITY[:40]))
def test_material_id_round_trip(mid):
    els, proto = parse_material_id(mid)
    assert material_id(els, proto) == mid


def test_symmetric_prototypes_sort_their_elements():
    assert material_id(["Ti", "Nb"], "B2") == "NbTi-B2"
    assert material_id(["Cu", "Au"], "L10") == "AuCu-L10"
    assert material_id(["Sn", "Nb"], "A15") == "Sn3Nb-A15"  # role order kept elsewhere
    assert material_id(["Nb"], "bcc") == "Nb1-bcc"


@pytest.mark.parametrize(
    "mid, match",
    [
        ("NbC", "expected '<formula>-<prototype>'"),
        ("NbC-XYZ", "unknown prototype 'XYZ'"),
        ("Nb3Sn2-A15", "does not match prototype A15"),
        ("NbC-A15", "does not match prototype A15"),
        ("nb-bcc", "cannot parse formula"),
    ],
)
def test_parse_material_id_errors(mid, match):
    with pytest.raises(PrototypeError, match=match):
        parse_material_id(mid)


def test_unknown_element_and_bad_arguments():
    with pytest.raises(PrototypeError, match="unknown element symbol 'Xx'"):
        build(["Xx"], "fcc")
    with pytest.raises(PrototypeError, match="unknown element symbol 'Qq'"):
        element_radius_A("Qq")
    with pytest.raises(PrototypeError, match="unknown prototype 'diamond'"):
        build(["Si"], "diamond")
    with pytest.raises(PrototypeError, match="takes 2 element"):
        build(["Nb"], "B1")
    with pytest.raises(PrototypeError, match="distinct elements"):
        build(["Nb", "Nb"], "B2")
    with pytest.raises(PrototypeError, match="unknown prototype"):
        candidate_ids(["Nb"], prototypes=["bcc", "nope"])


ELS = ["Nb", "Ti", "C", "N", "Sn", "Al", "Mg", "B", "Pd", "Zr"]


def test_candidate_ids_order_filters_and_limit():
    ids = candidate_ids(ELS)
    mids = [m for m, _, _ in ids]
    assert len(mids) == len(set(mids))
    curated = [m for m in CURATED_PRIORITY if set(parse_material_id(m)[0]) <= set(ELS)]
    assert mids[: len(curated)] == curated  # curated first, in priority order
    assert mids[0] == "Nb1-bcc" and "NbC-B1" in mids and "MgB2-AlB2" in mids and "Nb3Sn-A15" in mids
    for mid, els, proto in ids:
        assert set(els) <= set(ELS)
        assert material_id(els, proto) == mid
    # deterministic
    assert candidate_ids(list(reversed(ELS))) == ids
    # max_atoms drops the 6- and 8-atom prototypes
    small = candidate_ids(ELS, max_atoms=4)
    assert {p for _, _, p in small} <= {n for n, pr in PROTOTYPES.items() if pr.n_atoms_primitive <= 4}
    assert not any(p in ("A15", "C15") for _, _, p in small)
    # prototypes filter and limit keep the order
    b1 = candidate_ids(ELS, prototypes=["B1"])
    assert [m for m, _, _ in b1] == [m for m in mids if m.endswith("-B1")]
    assert candidate_ids(ELS, limit=3) == ids[:3]


def test_candidate_structures_matches_ids():
    cands = candidate_structures(ELS, limit=4)
    assert [m for m, _, _ in cands] == [m for m, _, _ in candidate_ids(ELS, limit=4)]
    for mid, s, proto in cands:
        assert len(s) == PROTOTYPES[proto].n_atoms_primitive


def test_candidate_list_is_lazy(monkeypatch):
    built = []
    real = prototypes.build

    def counting_build(els, proto, **kw):
        built.append(material_id(els, proto))
        return real(els, proto, **kw)

    monkeypatch.setattr(prototypes, "build", counting_build)
    cl = dataset.CandidateList(candidate_ids(ELS))
    assert len(cl) > 50 and cl.ids[0] == "Nb1-bcc" and built == []
    mid, s, proto = cl[0]
    assert (mid, proto, len(s)) == ("Nb1-bcc", "bcc", 1) and built == ["Nb1-bcc"]
    assert cl[0][1] is s and built == ["Nb1-bcc"]  # cached
    assert cl[-1][0] == cl.ids[-1]
    assert cl[1:3].ids == cl.ids[1:3]
    assert "Nb1-bcc" in repr(cl)


def test_select_candidates_builds_only_what_it_returns(monkeypatch, tmp_path):
    built = []
    real = prototypes.build
    monkeypatch.setattr(prototypes, "build", lambda els, proto, **kw: built.append(proto) or real(els, proto, **kw))
    cl = dataset.CandidateList(candidate_ids(ELS))
    # a finished material is kept (cheap no-op) and does not count against the limit
    (tmp_path / "NbC-B1").mkdir()
    (tmp_path / "NbC-B1" / "status.json").write_text(json.dumps({"material_id": "NbC-B1", "state": "kept"}))
    sel = dataset.select_candidates(cl, ids=["Nb3Sn-A15", "NbC-B1", "MgB2-AlB2"], limit=1, runs_dir=tmp_path)
    assert [m for m, _, _ in sel] == ["Nb3Sn-A15", "NbC-B1"]  # the ids' order, limit on unfinished
    assert len(built) == 2
    sel = dataset.select_candidates(cl, ids=["MgB2-AlB2", "NbC-B1", "MgB2-AlB2"], runs_dir=tmp_path)
    assert [m for m, _, _ in sel] == ["MgB2-AlB2", "NbC-B1"]  # duplicates once
    sel = dataset.select_candidates(cl, limit=2, runs_dir=tmp_path, include_finished=False)
    assert [m for m, _, _ in sel] == cl.ids[:2]
    with pytest.raises(KeyError, match="Xx1-fcc"):
        dataset.select_candidates(cl, ids=["Xx1-fcc", "Nb1-bcc"], runs_dir=tmp_path)
    # plain lists of built candidates still work
    plain = [cl[0], cl[1]]
    assert dataset.select_candidates(plain, ids=[cl.ids[1]], runs_dir=tmp_path) == [cl[1]]


def test_default_candidates_cover_the_pseudo_library():
    cl = dataset.default_candidates(8)
    assert isinstance(cl, dataset.CandidateList)
    # elements whose pseudopotential failed review (V, Li, Ca) have no candidates; Rh's review was withdrawn
    assert cl.ids[:4] == ["Nb1-bcc", "Pb1-fcc", "Al1-fcc", "Ta1-bcc"]
    assert not any(mid.startswith(("V1-", "V3", "Li1-", "Ca1-")) for mid in cl.ids)
    assert "Rh1-fcc" in cl.ids
    for mid in ("NbC-B1", "MgB2-AlB2", "Nb3Sn-A15", "NbTi-B2"):
        assert mid in cl.ids
    assert np.all([PROTOTYPES[p].n_atoms_primitive <= 8 for _, _, p in cl._entries])


def test_scf_mesh_estimate_flags_the_3x3x3_meshes_of_large_cubic_cells():
    from betenet.config import get_profile

    qe = get_profile("default").qe
    s = build(["Nb"], "bcc")
    nb = dataset.scf_mesh_estimate(s, qe)
    # bcc Nb (prototype a ~ 3.37 Å from the metallic radius): |b| = sqrt(2)/a -> target ceil(14 |b|) = 6
    a = s.lattice.a * 2 / 3**0.5  # primitive bcc vector length = a sqrt(3)/2
    assert nb["k_scf"] == (6, 6, 6) and nb["q"] == (4, 4, 4) and nb["n_q_irr"] == 8
    assert nb["scf_density_min_per_invA"] == pytest.approx(6 / (2**0.5 / a), abs=0.01)
    assert not nb["too_coarse"]
    k = dataset.scf_mesh_estimate(build(["K"], "bcc"), qe)
    # bcc K, a ~ 5.2 Å: target 4 subdivisions, the dense 9 (a multiple of q = 3) only offers 3
    assert k["k_scf"] == (3, 3, 3)
    assert k["scf_fraction"] == pytest.approx(0.79, abs=0.03)
    assert k["too_coarse"]
    # a big cell's 3x3x3 is dense enough: A15 Nb3Sn (a ~ 5.3 Å, 8 atoms)
    assert not dataset.scf_mesh_estimate(build(["Nb", "Sn"], "A15"), qe)["too_coarse"]
    import dataclasses

    assert not dataset.scf_mesh_estimate(build(["K"], "bcc"), dataclasses.replace(qe, candidate_min_scf_k_fraction=None))["too_coarse"]


def test_priority_selection_passes_over_too_coarse_candidates_but_explicit_ids_run(tmp_path):
    from betenet.config import get_profile

    qe = get_profile("default").qe
    cl = dataset.CandidateList([("Nb1-bcc", ("Nb",), "bcc"), ("K1-bcc", ("K",), "bcc"), ("Al1-fcc", ("Al",), "fcc")])
    assert [m for m, _, _ in dataset.select_candidates(cl, runs_dir=tmp_path, qe=qe)] == ["Nb1-bcc", "Al1-fcc"]
    assert [m for m, _, _ in dataset.select_candidates(cl, limit=1, runs_dir=tmp_path, qe=qe)] == ["Nb1-bcc"]
    assert [m for m, _, _ in dataset.select_candidates(cl, runs_dir=tmp_path)] == cl.ids  # no qe: no check
    assert [m for m, _, _ in dataset.select_candidates(cl, ids=["K1-bcc"], runs_dir=tmp_path, qe=qe)] == ["K1-bcc"]
    plan = dataset.plan_candidates(cl, qe, limit=1, runs_dir=tmp_path)
    assert list(plan["material_id"]) == ["Nb1-bcc"]
    plan = dataset.plan_candidates(cl, qe, limit=5, runs_dir=tmp_path)
    assert list(plan["action"]) == ["run", "skip: scf mesh too coarse", "run"]
    assert list(dataset.plan_candidates(cl, qe, ids=["K1-bcc"], runs_dir=tmp_path)["action"]) == ["run"]


def test_begun_runs_are_selected_before_new_ones(tmp_path):
    """A batch without ids resumes the materials it has begun (a non-final status.json, or a refinement waiting
    to run) before it starts new ones, whatever their place in the priority order; finished ones stay no-ops."""
    import json

    from betenet.config import get_profile

    qe = get_profile("default").qe
    cl = dataset.CandidateList([("Nb1-bcc", ("Nb",), "bcc"), ("Al1-fcc", ("Al",), "fcc"), ("Pb1-fcc", ("Pb",), "fcc"),
                                ("Ta1-bcc", ("Ta",), "bcc")])

    def status(mid, state):
        (tmp_path / mid).mkdir()
        (tmp_path / mid / "status.json").write_text(json.dumps({"material_id": mid, "state": state}))

    status("Nb1-bcc", "kept")
    status("Ta1-bcc", "running")  # interrupted: its archived q points are paid for
    (tmp_path / "Pb1-fcc").mkdir()
    (tmp_path / "Pb1-fcc" / "refinement.json").write_text(json.dumps({"overrides": {"q_density_per_invA": 12.0}, "reason": "test"}))
    assert [dataset.begun(m, tmp_path) for m in cl.ids] == [False, False, True, True]
    sel = dataset.select_candidates(cl, limit=1, runs_dir=tmp_path, include_finished=False)
    assert [m for m, _, _ in sel] == ["Pb1-fcc"]
    sel = dataset.select_candidates(cl, runs_dir=tmp_path)
    assert [m for m, _, _ in sel] == ["Pb1-fcc", "Ta1-bcc", "Nb1-bcc", "Al1-fcc"]  # the finished one a no-op
    plan = dataset.plan_candidates(cl, qe, limit=5, runs_dir=tmp_path)
    assert list(plan["material_id"]) == ["Pb1-fcc", "Ta1-bcc", "Al1-fcc"]
    assert list(plan["action"]) == ["resume", "resume", "run"]
    # the user's order wins over the rule
    assert [m for m, _, _ in dataset.select_candidates(cl, ids=["Al1-fcc", "Ta1-bcc"], runs_dir=tmp_path)] == ["Al1-fcc", "Ta1-bcc"]


def test_plan_estimates_the_ph_x_cost(tmp_path):
    """The plan's ph.x columns: the k points summed over the irreducible q points and a CPU estimate at the
    library's cutoffs (NaN for an element without a usable pseudopotential in the validated library)."""
    from betenet.config import QE_VALIDATED
    from betenet.qe.phcost import ph_kpoint_counts

    cl = dataset.CandidateList([("Al1-fcc", ("Al",), "fcc"), ("Ir1-fcc", ("Ir",), "fcc")])
    plan = dataset.plan_candidates(cl, QE_VALIDATED, limit=5, runs_dir=tmp_path).set_index("material_id")
    al = plan.loc["Al1-fcc"]
    assert al["ph_k_points"] == sum(p.n_k for p in ph_kpoint_counts(build(["Al"], "fcc"), al["k_scf"], al["q"]))
    assert 0.01 < al["est_ph_cpu_h"] < 1.0  # the measured Al validated ph.x run: 299 CPU-s
    # Ir failed validation (its energy and pressure do not converge below 140 Ry)
    assert plan.loc["Ir1-fcc", "ph_k_points"] > 0 and np.isnan(plan.loc["Ir1-fcc", "est_ph_cpu_h"])


def test_plan_shows_an_explicit_id_whose_crystal_another_run_has(tmp_path, capsys, monkeypatch):
    """Asked for by id, the prototype bcc V (V1-bcc) whose crystal a run of the paper's row has (up0503-V,
    rejected) is shown as skipped with that id, and `qe run --ids` refuses it (exit 2) before starting anything."""
    import json

    from betenet.cli.qe import cli_main
    from betenet.config import QE_VALIDATED

    v = build(["V"], "bcc")
    v.scale_lattice(v.volume * 0.97)  # our relaxed cell, not the prototype's
    (tmp_path / "up0503-V").mkdir()
    (tmp_path / "up0503-V" / "status.json").write_text(json.dumps({"material_id": "up0503-V", "state": "rejected"}))
    (tmp_path / "up0503-V" / "relaxed.json").write_text(json.dumps(v.as_dict()))
    cl = dataset.CandidateList([("V1-bcc", ("V",), "bcc"), ("Nb1-bcc", ("Nb",), "bcc")])
    walks = []
    real = dataset.started_runs
    monkeypatch.setattr(dataset, "started_runs", lambda *a, **k: walks.append(1) or real(*a, **k))
    plan = dataset.plan_candidates(cl, QE_VALIDATED, ids=["V1-bcc", "Nb1-bcc"], runs_dir=tmp_path)
    assert dict(zip(plan["material_id"], plan["action"])) == {"Nb1-bcc": "run", "V1-bcc": "skip: the crystal of up0503-V"}
    assert len(walks) == 1  # the runs directory is walked once, not again by select_candidates
    plan = dataset.plan_candidates(cl, QE_VALIDATED, ids=["V1-bcc"], runs_dir=tmp_path)  # not every candidate
    assert list(plan["material_id"]) == ["V1-bcc"]
    rc = cli_main(["run", "--accuracy", "validated", "--runs-dir", str(tmp_path), "--ids", "Nb1-bcc", "V1-bcc"])
    err = capsys.readouterr().err
    assert rc == 2 and "V1-bcc: the crystal of up0503-V (rejected" in err and "Nb1-bcc" not in err
    assert not (tmp_path / "Nb1-bcc").exists() and not (tmp_path / "V1-bcc").exists()


def test_same_crystal_is_one_crystal_up_to_scale_and_setting():
    from betenet.qe.prototypes import same_crystal

    nbc = build(["Nb", "C"], "B1")
    scaled = nbc.copy()
    scaled.scale_lattice(nbc.volume * 1.07)
    conventional = scaled.to_conventional()  # 8 atoms, another cell of the same crystal
    assert same_crystal(nbc, scaled) and same_crystal(conventional, nbc)
    assert not same_crystal(nbc, build(["Ta", "C"], "B1"))  # another formula
    assert not same_crystal(nbc, build(["Nb", "C"], "B2"))  # another structure
    assert same_crystal(build(["Nb"], "bcc"), build(["Nb"], "bcc")) and not same_crystal(build(["Nb"], "bcc"), build(["Nb"], "fcc"))


def test_plan_of_a_begun_run_counts_what_is_left(tmp_path):
    """`qe plan` on a begun run: ``ph_k_left`` is the k points of the el-ph q points not yet archived (here fcc
    Au's validated run with two of its eight points taken away) and ``est_left_cpu_h`` their share of the
    estimate; a new run has the whole of it left."""
    import shutil

    from betenet.config import QE_VALIDATED
    from betenet.paths import DATA_DIR
    from betenet.qe.phcost import logged_kpoint_counts

    src = DATA_DIR / "qe-validated" / "Au1-fcc"
    run = tmp_path / "Au1-fcc"
    shutil.copytree(src, run, ignore=shutil.ignore_patterns("q5.tar.gz", "q6.tar.gz"))
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "running", "finished_at": None}))
    cl = dataset.CandidateList([("Au1-fcc", ("Au",), "fcc"), ("Pt1-fcc", ("Pt",), "fcc")])
    plan = dataset.plan_candidates(cl, QE_VALIDATED, limit=5, runs_dir=tmp_path).set_index("material_id")
    counts = logged_kpoint_counts(src)
    au, pt = plan.loc["Au1-fcc"], plan.loc["Pt1-fcc"]
    assert au["action"] == "resume" and pt["action"] == "run"
    assert au["ph_k_points"] == sum(counts.values())
    assert au["ph_k_left"] == counts[5] + counts[6]
    assert au["est_left_cpu_h"] == pytest.approx(au["est_ph_cpu_h"] * au["ph_k_left"] / au["ph_k_points"], abs=0.01)
    assert pt["ph_k_left"] == pt["ph_k_points"] and pt["est_left_cpu_h"] == pt["est_ph_cpu_h"]
