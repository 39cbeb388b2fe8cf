"""The el-ph broadening choice of the ``validated`` level (betenet.qe.broadening) and the level's settings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from betenet.config import QE_VALIDATED, QEConfig, qe_level
from betenet.qe.broadening import choose_for_run, select_broadening, select_plateau
from betenet.qe.kgrid import grids_for_config
from betenet.qe.pseudo import PseudoLibrary

SIGMAS = [0.005 * i for i in range(1, 11)]


def test_plateau_is_the_smallest_sigma_from_which_lambda_is_flat():
    # noisy at small σ (finite mesh), flat from σ_4 = 0.02 Ry on (within 5 % over the next two)
    lam = [0.9, 0.61, 0.50, 0.44, 0.43, 0.425, 0.42, 0.41, 0.40, 0.39]
    c = select_plateau(SIGMAS, lam, rel_tol=0.05, window=2)
    assert (c.index, c.method) == (4, "plateau")
    assert c.sigma_Ry == pytest.approx(0.02)
    assert c.spread == pytest.approx((0.44 - 0.425) / 0.44)
    # a tighter tolerance moves the choice to a larger σ
    assert select_plateau(SIGMAS, lam, rel_tol=0.03, window=2).index == 5


def test_no_plateau_falls_back_and_says_so():
    lam = [1.0 * 0.8**i for i in range(10)]  # λ drifts by 20 % per step: never flat
    c = select_plateau(SIGMAS, lam, rel_tol=0.05, window=2, fallback_index=4)
    assert (c.index, c.method) == (4, "plateau-fallback")
    assert c.spread == pytest.approx(1 - 0.8**2)


def test_nan_lambda_never_counts_as_flat():
    lam = [np.nan, np.nan, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert select_plateau(SIGMAS, lam).index == 3


@pytest.mark.parametrize("bad", [
    dict(sigmas_Ry=[0.01, 0.01, 0.02], lambdas=[1, 1, 1]),
    dict(sigmas_Ry=[0.01, 0.02], lambdas=[1, 1, 1]),
    dict(sigmas_Ry=[0.01, 0.02, 0.03], lambdas=[1, 1, 1], fallback_index=9),
])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError, match="select_plateau"):
        select_plateau(**bad)


def test_index_selection_is_the_screening_rule():
    lam = [0.9, 0.61, 0.50, 0.44, 0.43, 0.425, 0.42, 0.41, 0.40, 0.39]
    c = select_broadening(SIGMAS, lam, QEConfig())
    assert (c.index, c.method) == (QEConfig().elph_smearing_index, "index")
    c = select_broadening(SIGMAS, lam, dataclasses.replace(QEConfig(), elph_sigma_selection="plateau"))
    assert (c.index, c.method) == (4, "plateau")


def test_choose_for_run_reads_the_lambda_file(tmp_path):
    """The validated level's 2 % rule on a lambda file: flat from σ_5 (0.025 Ry) within 2 %, not from σ_4."""
    lam = [0.9, 0.61, 0.50, 0.45, 0.435, 0.432, 0.43, 0.425, 0.42, 0.41]
    lines = [f" Broadening {s:8.4f} lambda {x:12.4f} dos(Ef) {2.0:8.4f} omega_ln [K] {300.0:12.4f}" for s, x in zip(SIGMAS, lam)]
    (tmp_path / "lambda").write_text("\n".join(lines) + "\n")
    c = choose_for_run(tmp_path, QE_VALIDATED)
    assert (c.index, c.method) == (5, "plateau") and c.spread == pytest.approx(0.005 / 0.435)


def test_validated_level_meshes_on_reference_metals():
    """The level's densities give 12^3 scf meshes for ph.x on fcc Al and bcc Nb (converged in
    data/studies/2026-11-25-scf-k-convergence), a 24^3 dense mesh and 4^3 q, never a coarser scf divisor."""
    from pymatgen.core import Lattice, Structure

    assert qe_level("validated") is QE_VALIDATED and QE_VALIDATED.scf_k_min_ratio == 1.0
    al = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.04), ["Al"], [[0, 0, 0]]).get_primitive_structure()
    nb = Structure.from_spacegroup("Im-3m", Lattice.cubic(3.30), ["Nb"], [[0, 0, 0]]).get_primitive_structure()
    for s in (al, nb):
        g = grids_for_config(s, QE_VALIDATED)
        assert (g.k_scf, g.k, g.q) == ((12, 12, 12), (24, 24, 24), (4, 4, 4))
    with pytest.raises(ValueError, match="unknown QE accuracy level"):
        qe_level("fast")


def test_boundary_first_q_order_puts_the_longest_points_first():
    """ph.x's irreducible points of fcc 4x4x4 (2π/alat): Γ stays first (it writes the list); the
    validated level then takes X and the other zone-boundary points before the short ones."""
    from betenet.qe.qpoints import q_order

    qs = np.array([[0, 0, 0], [-0.25, 0.25, -0.25], [0.5, -0.5, 0.5], [0, 0.5, 0], [0.75, -0.25, 0.75],
                   [0.5, 0, 0.5], [0, -1, 0], [-0.5, -1, 0]])
    assert q_order(qs, QE_VALIDATED.ph_q_order) == [8, 5, 7, 3, 6, 4, 2]
    assert q_order(qs, QEConfig().ph_q_order) == [2, 3, 4, 5, 6, 7, 8]
    with pytest.raises(ValueError, match="'longest'"):
        q_order(qs, "longest")


def test_build_record_records_the_plateau_choice_on_the_real_al_run():
    """The screening Al run rebuilt with plateau selection: the record's σ is the plateau's, its provenance
    says how it was chosen, and the labels equal QE's mode sum at that σ."""
    from betenet.paths import QE_RUNS_DIR
    from betenet.qe.parsers import parse_lambda_file
    from betenet.qe.record import build_record

    run = QE_RUNS_DIR / "Al1-fcc"
    if not (run / "lambda").exists():
        pytest.skip("needs data/qe/Al1-fcc")
    cfg = dataclasses.replace(QEConfig(), elph_sigma_selection="plateau")
    rows = parse_lambda_file(run / "lambda")
    want = select_plateau([r.broadening_Ry for r in rows], [r.lambda_ for r in rows], fallback_index=cfg.elph_smearing_index)
    rec = build_record("Al1-fcc", cfg, runs_dir=QE_RUNS_DIR)
    assert rec.provenance["elph_broadening"] == want.as_dict()
    assert rec.provenance["elph_smearing_Ry"] == pytest.approx(want.sigma_Ry)
    assert rec.provenance["lambda_qe"] == rows[want.index - 1].lambda_
    assert ("broadening_unconverged" in rec.flags) == (want.method == "plateau-fallback")


def test_rebuild_keeps_sigma_and_reports_the_plateau_rule(tmp_path):
    """Rebuilding a record whose σ is the plateau's (validated level) says so; a record whose σ is not
    the plateau's keeps its σ and reports the fixed index it was rebuilt at."""
    import json
    import shutil

    from betenet.paths import QE_RUNS_DIR, RECORDS_DIR
    from betenet.qe.record import rebuild_record
    from betenet.qe.parsers import parse_lambda_file

    if not (QE_RUNS_DIR / "Al1-fcc" / "lambda").exists():
        pytest.skip("needs data/qe/Al1-fcc")
    runs, recs = tmp_path / "qe", tmp_path / "rec"
    shutil.copytree(QE_RUNS_DIR / "Al1-fcc", runs / "Al1-fcc")
    recs.mkdir()
    cfg = dataclasses.replace(QEConfig(), elph_sigma_selection="plateau")
    rows = parse_lambda_file(runs / "Al1-fcc" / "lambda")
    plateau = select_plateau([r.broadening_Ry for r in rows], [r.lambda_ for r in rows], fallback_index=cfg.elph_smearing_index)
    for sigma, method in ((plateau.sigma_Ry, "plateau"), (rows[-1].broadening_Ry, "index")):
        old = json.loads((RECORDS_DIR / "Al1-fcc.json").read_text())
        old["provenance"]["elph_smearing_Ry"] = sigma
        old["provenance"].pop("elph_broadening", None)
        (recs / "Al1-fcc.json").write_text(json.dumps(old))
        rec = rebuild_record("Al1-fcc", cfg, runs_dir=runs, records_dir=recs)
        assert rec.provenance["elph_smearing_Ry"] == pytest.approx(sigma)
        assert rec.provenance["elph_broadening"]["method"] == method


def test_rebuild_keeps_the_no_plateau_flag():
    """fcc Cu at the validated level has no 2 % plateau (σ is the fallback): a rebuild, which pins that σ by
    index, must still flag broadening_unconverged."""
    from betenet.paths import DATA_DIR
    from betenet.qe.record import rebuild_record

    runs, recs = DATA_DIR / "qe-validated", DATA_DIR / "records-validated"
    rec = rebuild_record("Cu1-fcc", QE_VALIDATED, runs_dir=runs, records_dir=recs)  # not written
    assert rec.provenance["elph_broadening"]["method"] == "plateau-fallback"
    assert rec.provenance["elph_smearing_Ry"] == pytest.approx(0.02)
    assert "broadening_unconverged" in rec.flags


def test_build_record_takes_a_given_broadening_and_names_a_wrong_one():
    """build_record with ``broadening=`` uses that σ (λ equal to QE's at it) and flags a fallback choice
    itself; a σ that is not the table's at that index is an error naming the table."""
    from betenet.paths import DATA_DIR
    from betenet.qe.broadening import BroadeningChoice
    from betenet.qe.parsers import QEParseError, parse_lambda_file
    from betenet.qe.record import build_record

    runs = DATA_DIR / "qe-validated"
    rows = parse_lambda_file(runs / "Pd1-fcc" / "lambda")
    last = BroadeningChoice(len(rows), rows[-1].broadening_Ry, "plateau-fallback", 0.1)
    rec = build_record("Pd1-fcc", QE_VALIDATED, runs_dir=runs, broadening=last)
    assert rec.provenance["elph_smearing_Ry"] == pytest.approx(rows[-1].broadening_Ry)
    assert rec.lambda_ == pytest.approx(rows[-1].lambda_, rel=0.03)
    assert "broadening_unconverged" in rec.flags
    wrong = BroadeningChoice(1, rows[-1].broadening_Ry, "index", 0.0)
    with pytest.raises(QEParseError, match="a2f.dat.gz"):
        build_record("Pd1-fcc", QE_VALIDATED, runs_dir=runs, broadening=wrong)


def test_a_run_below_the_librarys_current_cutoffs_is_flagged(tmp_path, monkeypatch):
    """The validated Al run used 40/160 Ry: a library that now asks for more (ecutwfc or ecutrho) makes its
    record say cutoff_below_library; the same or lower cutoffs do not."""
    import json
    from pymatgen.core import Structure

    from betenet.paths import DATA_DIR
    from betenet.qe import record
    from betenet.qe.inputs import PseudoSpec

    scf = DATA_DIR / "qe-validated" / "Al1-fcc" / "scf.in"
    if not scf.exists():
        pytest.skip("needs data/qe-validated/Al1-fcc")
    s = Structure.from_dict(json.loads((scf.parent / "relaxed.json").read_text()))
    upf = tmp_path / "Al.UPF"
    upf.write_text("<UPF/>")
    for (wfc, rho), below in (((40.0, 160.0), False), ((35.0, 140.0), False), ((40.0, 320.0), True), ((45.0, 180.0), True)):
        monkeypatch.setattr(PseudoLibrary, "for_level", classmethod(lambda cls, cfg, w=wfc, r=rho: {"Al": PseudoSpec("Al", upf, w, r)}))
        assert record.cutoffs_below_library(scf, s, QE_VALIDATED) is below, (wfc, rho)
    # a run at 40/320 Ry (a finer density grid than the library's 40/160 Ry) is not flagged
    finer = tmp_path / "scf.in"
    finer.write_text(scf.read_text().replace("ecutrho = 160.0", "ecutrho = 320.0"))
    monkeypatch.setattr(PseudoLibrary, "for_level", classmethod(lambda cls, cfg: {"Al": PseudoSpec("Al", upf, 40.0, 160.0)}))
    assert record.library_cutoff_flags(finer, s, QE_VALIDATED) == set()
    monkeypatch.setattr(PseudoLibrary, "for_level", classmethod(lambda cls, cfg: {"Al": PseudoSpec("Al", upf, 45.0, 180.0)}))
    assert record.library_cutoff_flags(scf, s, QE_VALIDATED) == {"cutoff_below_library"}


def test_a_provisional_pseudopotential_is_named(monkeypatch):
    """Elements whose library entry is not 'validated' (cutoff scan only) are listed for the record's flag."""
    from types import SimpleNamespace

    from pymatgen.core import Lattice, Structure

    from betenet.qe import record

    lib = {"Nb": SimpleNamespace(status="validated"), "C": SimpleNamespace(status="provisional")}
    monkeypatch.setattr(PseudoLibrary, "for_level", classmethod(lambda cls, cfg: lib))
    nbc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.47), ["Nb", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nb = Structure.from_spacegroup("Im-3m", Lattice.cubic(3.3), ["Nb"], [[0, 0, 0]])
    assert record.provisional_pseudos(nbc, QE_VALIDATED) == ["C"]
    assert record.provisional_pseudos(nb, QE_VALIDATED) == []
    assert record.failed_pseudos(nbc, QE_VALIDATED) == []
    # an element that failed a check after the run is not in the library any more: named, never silently clean
    del lib["C"]
    assert record.provisional_pseudos(nbc, QE_VALIDATED) == []
    assert record.failed_pseudos(nbc, QE_VALIDATED) == ["C"]


def test_lambda_sigma_table_on_the_committed_al_run(tmp_path):
    from betenet.paths import DATA_DIR
    from betenet.qe.broadening import lambda_sigma_table

    al = DATA_DIR / "qe-validated" / "Al1-fcc"
    (tmp_path / "unfinished").mkdir()  # a run without a lambda file is left out
    text = lambda_sigma_table({"level": al, "unfinished": tmp_path / "unfinished"}, QE_VALIDATED,
                              tolerances=(0.05, 0.02))
    lines = text.splitlines()
    assert lines[0] == "| σ (Ry) | λ, level |"
    assert "| 0.030 | 0.3871 |" in lines  # QE's own λ at σ = 0.030 Ry in the committed run
    assert "- plateau tolerance 5 %, level: σ = 0.025 Ry (plateau), λ = 0.3976, flatness 3.9 %" in lines
    assert "- plateau tolerance 2 %, level: σ = 0.030 Ry (plateau), λ = 0.3871, flatness 1.9 %" in lines
    assert lambda_sigma_table({}, QE_VALIDATED).endswith("(no finished run yet)")
    # runs on different σ lists cannot share a table
    other = tmp_path / "other"
    other.mkdir()
    (other / "lambda").write_text((al / "lambda").read_text().replace("Broadening   0.0050", "Broadening   0.0060"))
    with pytest.raises(ValueError, match="broadenings"):
        lambda_sigma_table({"level": al, "other": other}, QE_VALIDATED)
