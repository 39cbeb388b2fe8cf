"""Per-material mesh refinement (:mod:`betenet.qe.refinement`): a material rerun with denser meshes than its
level's, its earlier run kept aside and still counted in the cost tables."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from pymatgen.core import Lattice, Structure

from betenet.config import QE_VALIDATED, QEConfig
from betenet.qe import refinement as R
from betenet.qe.parsers import QEParseError


def _finished_run(runs, records, mid="Nb1-bcc", state="rejected", relax_cpu="1m 0.00s"):
    d = runs / mid
    d.mkdir(parents=True)
    (d / "status.json").write_text(json.dumps({"material_id": mid, "state": state, "reason": "imaginary_modes",
                                               "steps": {"relax": {"done": True}}, "n_atoms": 1}))
    with gzip.open(d / "relax.out.gz", "wt") as fh:
        fh.write(f"     PWSCF        :   {relax_cpu} CPU   1m 5.00s WALL\n")
    records.mkdir(parents=True, exist_ok=True)
    (records / f"{mid}.json").write_text("{}")
    return d


def test_overrides_only_make_meshes_denser_and_name_what_is_wrong():
    assert R.check_overrides(QE_VALIDATED, {"q_density_per_invA": 12, "k_density_per_invA": "83"}) == {
        "q_density_per_invA": 12.0, "k_density_per_invA": 83.0}
    assert R.check_overrides(QE_VALIDATED, {"q_density_per_invA": 8.0}) == {"q_density_per_invA": 8.0}  # the level's own
    with pytest.raises(ValueError, match=r"q_density_per_invA = 6 is below the validated level's 8 per Å\^-1"):
        R.check_overrides(QE_VALIDATED, {"q_density_per_invA": 6})
    with pytest.raises(ValueError, match="'degauss_Ry' cannot be refined"):
        R.check_overrides(QE_VALIDATED, {"degauss_Ry": 0.01})
    with pytest.raises(ValueError, match="k_density_per_invA must be a number.*'dense'"):
        R.check_overrides(QE_VALIDATED, {"k_density_per_invA": "dense"})
    with pytest.raises(ValueError, match="no mesh to refine"):
        R.check_overrides(QE_VALIDATED, {})
    with pytest.raises(ValueError, match="below"):
        R.check_overrides(QE_VALIDATED, {"k_density_per_invA": float("nan")})
    # a level whose scf mesh is "half the dense one" (None): the floor is that half
    half = QEConfig(k_density_per_invA=30.0, scf_k_density_per_invA=None)
    assert R.check_overrides(half, {"scf_k_density_per_invA": 15.0}) == {"scf_k_density_per_invA": 15.0}
    with pytest.raises(ValueError, match="below the screening level's 15"):
        R.check_overrides(half, {"scf_k_density_per_invA": 14.0})


def test_refine_moves_the_run_aside_and_the_next_config_is_denser(tmp_path):
    runs, records = tmp_path / "qe-validated", tmp_path / "records-validated"
    d = _finished_run(runs, records)
    assert R.refined_config(QE_VALIDATED, d) is QE_VALIDATED  # no refinement: the level itself
    ref = R.refine_material("Nb1-bcc", QE_VALIDATED, {"q_density_per_invA": 12, "k_density_per_invA": 83},
                            "matdyn dips to -3.1 meV between stable q points", runs_dir=runs, records_dir=records)
    assert sorted(p.name for p in d.iterdir()) == ["refinement.json"]  # nothing of the old run in the new dir
    old = R.superseded_runs(runs)
    assert len(old) == 1 and (old[0] / "status.json").exists() and (old[0] / "relax.out.gz").exists()
    assert not (records / "Nb1-bcc.json").exists() and len(list(records.glob("Nb1-bcc.json.bak-*"))) == 1
    assert ref["supersedes"] == [{"run_dir": old[0].name, "state": "rejected",
                                  "record": next(records.glob("Nb1-bcc.json.bak-*")).name}]
    cfg = R.refined_config(QE_VALIDATED, d)
    assert (cfg.q_density_per_invA, cfg.k_density_per_invA) == (12.0, 83.0)
    assert cfg.scf_k_density_per_invA == QE_VALIDATED.scf_k_density_per_invA and cfg.accuracy == "validated"
    # a second refinement adds to the first (no run in between: nothing more to move aside)
    ref2 = R.refine_material("Nb1-bcc", QE_VALIDATED, {"scf_k_density_per_invA": 30}, "denser scf mesh too",
                             runs_dir=runs, records_dir=records)
    assert ref2["overrides"] == {"q_density_per_invA": 12.0, "k_density_per_invA": 83.0, "scf_k_density_per_invA": 30.0}
    assert len(ref2["supersedes"]) == 1
    with pytest.raises(ValueError, match="needs a reason"):
        R.refine_material("Nb1-bcc", QE_VALIDATED, {"q_density_per_invA": 12}, "  ", runs_dir=runs, records_dir=records)


def test_a_hand_edited_refinement_below_the_level_or_garbled_is_refused(tmp_path):
    d = tmp_path / "Nb1-bcc"
    d.mkdir()
    (d / "refinement.json").write_text(json.dumps({"overrides": {"q_density_per_invA": 4.0}}))
    with pytest.raises(ValueError, match=r"Nb1-bcc/refinement.json: q_density_per_invA = 4.0 is below"):
        R.refined_config(QE_VALIDATED, d)
    (d / "refinement.json").write_text(json.dumps({"q_density_per_invA": 12.0}))
    with pytest.raises(QEParseError, match="refinement.json: expected an object with 'overrides'"):
        R.refined_config(QE_VALIDATED, d)
    (d / "refinement.json").write_text("{")
    with pytest.raises(QEParseError, match="refinement.json"):
        R.load_refinement(d)


def test_superseded_runs_are_counted_in_the_cost(tmp_path):
    from betenet.qe import summary

    runs, records = tmp_path / "qe-validated", tmp_path / "records-validated"
    _finished_run(runs, records, "Al1-fcc", state="kept", relax_cpu="2m 0.00s")
    _finished_run(runs, records, "Nb1-bcc", state="rejected", relax_cpu="1m 0.00s")
    R.refine_material("Nb1-bcc", QE_VALIDATED, {"q_density_per_invA": 12}, "interpolation artefact",
                      runs_dir=runs, records_dir=records)
    from betenet.qe.dataset import finished_runs

    assert [mid for mid, _ in finished_runs(runs)] == ["Al1-fcc"]  # the moved-aside Nb run is no finished material
    o = summary.cpu_by_outcome(runs)
    assert o.loc["kept", "cpu_s"] == 120.0 and o.loc["superseded", "cpu_s"] == 60.0 and "rejected" not in o.index
    assert o.loc["all", "cpu_s"] == 180.0 and o.loc["all", "materials"] == 1  # a moved-aside run is no material
    assert o.attrs["cpu_per_kept_label_s"] == 180.0
    facts = summary.cost_facts(summary.cpu_by_material(runs), o, summary.ph_cost_check(runs))
    assert facts["lost_share_pct"] == pytest.approx(100 * 60 / 180, abs=0.1)


def test_the_run_and_a_forced_rerun_use_the_refined_meshes(tmp_path, monkeypatch):
    """run_material hands the workflow the refined settings; ``--force`` moves the refined run aside and keeps
    the refinement for the rerun (the workflow itself is stopped at its start: what reaches it is the test)."""
    from betenet.qe import workflow
    from betenet.qe.inputs import QEInputError

    seen = []

    class Stop(Exception):
        pass

    def capture(mid, structure, cfg, *a, **k):
        seen.append(cfg)
        raise Stop

    monkeypatch.setattr(workflow, "MaterialRun", capture)
    runs, records = tmp_path / "qe-validated", tmp_path / "records-validated"
    _finished_run(runs, records)
    R.refine_material("Nb1-bcc", QE_VALIDATED, {"q_density_per_invA": 12}, "interpolation artefact",
                      runs_dir=runs, records_dir=records)
    nb = Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    with pytest.raises(QEInputError):
        workflow.run_material("Nb1-bcc", nb, QE_VALIDATED, runs_dir=runs, records_dir=records)
    assert seen[-1].q_density_per_invA == 12.0 and seen[-1].k_density_per_invA == QE_VALIDATED.k_density_per_invA
    (runs / "Nb1-bcc" / "status.json").write_text(json.dumps({"material_id": "Nb1-bcc", "state": "kept", "steps": {}}))
    with pytest.raises(QEInputError):
        workflow.run_material("Nb1-bcc", nb, QE_VALIDATED, runs_dir=runs, records_dir=records, force=True)
    assert seen[-1].q_density_per_invA == 12.0
    ref = R.load_refinement(runs / "Nb1-bcc")
    assert [s["state"] for s in ref["supersedes"]] == ["rejected", "kept"] and len(R.superseded_runs(runs)) == 2
    assert ref["supersedes"][-1]["by"] == "qe run --force"


def test_a_refined_record_names_its_refinement_and_meshes(tmp_path):
    """build_record of a refined run: provenance["refinement"] and the refined densities in its settings
    (the committed validated fcc Al run, copied, with a refinement at the level's own q density)."""
    from betenet.paths import DATA_DIR
    from betenet.qe.record import build_record

    src = DATA_DIR / "qe-validated" / "Al1-fcc"
    if not src.exists():
        pytest.skip("needs data/qe-validated/Al1-fcc")
    runs = tmp_path / "qe-validated"
    shutil.copytree(src, runs / "Al1-fcc")
    plain = build_record("Al1-fcc", QE_VALIDATED, runs_dir=runs)
    assert "refinement" not in plain.provenance
    (runs / "Al1-fcc" / "refinement.json").write_text(json.dumps(
        {"overrides": {"k_density_per_invA": 60.0}, "reason": "test", "supersedes": [], "date": "2026-12-04T00:00:00+00:00"}))
    rec = build_record("Al1-fcc", QE_VALIDATED, runs_dir=runs)
    assert rec.provenance["refinement"]["overrides"] == {"k_density_per_invA": 60.0}
    assert rec.provenance["settings"]["k_density_per_invA"] == 60.0
    assert rec.lambda_ == pytest.approx(plain.lambda_)  # the same run: the record's numbers do not move


def test_cli_refine(tmp_path, capsys):
    from betenet.cli import main

    runs, records = tmp_path / "qe-validated", tmp_path / "records-validated"
    _finished_run(runs, records)
    args = ["qe", "refine", "Nb1-bcc", "--accuracy", "validated", "--runs-dir", str(runs), "--records-dir", str(records)]
    assert main([*args, "--q-density", "6", "--reason", "x"]) == 2
    assert "q_density_per_invA = 6.0 is below the validated level's 8" in capsys.readouterr().err
    from betenet.locks import exclusive
    from betenet.qe.status import material_lock_path

    with exclusive(material_lock_path("Nb1-bcc", runs), "a test's QE run"):  # a run of it is going on
        assert main([*args, "--q-density", "12", "--reason", "x"]) == 2
    assert "betenet qe refine: error:" in capsys.readouterr().err
    assert (runs / "Nb1-bcc" / "status.json").exists()  # a refused refinement moves nothing
    assert main([*args, "--q-density", "12", "--k-density", "83", "--reason", "interpolation artefact"]) == 0
    out = capsys.readouterr().out
    assert "refined at the validated level" in out and "betenet qe run --accuracy validated --ids Nb1-bcc" in out
    _finished_run(runs, records, "up0732-NbC")  # a paper row: the hint names its candidate source
    assert main(["qe", "refine", "up0732-NbC", *args[3:], "--q-density", "12", "--reason", "dip"]) == 0
    assert "betenet qe run --accuracy validated --candidates upstream --ids up0732-NbC" in capsys.readouterr().out
    assert R.load_refinement(runs / "Nb1-bcc")["overrides"] == {"k_density_per_invA": 83.0, "q_density_per_invA": 12.0}
    assert main(["qe", "status", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "Nb1-bcc (pending): {'k_density_per_invA': 83.0, 'q_density_per_invA': 12.0}; supersedes Nb1-bcc.bak-" in out
    assert "interpolation artefact" in out


def test_a_refined_crystal_is_not_started_again_under_another_id(tmp_path):
    """bcc Nb refined (a run directory holding only refinement.json; the superseded run has the relaxed cell):
    the paper's row 305, the same crystal, is not offered as a new candidate; without the refinement it is."""
    from betenet.paths import DATA_DIR
    from betenet.qe import dataset

    old = next((DATA_DIR / "qe-validated").glob("Nb1-bcc.bak-*"), None)
    if old is None or not (old / "relaxed.json").exists():
        pytest.skip("needs the superseded validated Nb run")
    runs, records = tmp_path / "qe-validated", tmp_path / "records-validated"
    d = _finished_run(runs, records)
    shutil.copy(old / "relaxed.json", d / "relaxed.json")
    assert dataset._run_under_another_id(["up0305-Nb"], runs) == {"up0305-Nb"}  # the finished (rejected) run
    R.refine_material("Nb1-bcc", QE_VALIDATED, {"q_density_per_invA": 12}, "interpolation artefact",
                      runs_dir=runs, records_dir=records)
    assert [mid for mid, _ in dataset.finished_runs(runs)] == []
    assert [mid for mid, st in dataset.started_runs(runs) if st is not None] == ["Nb1-bcc"]
    assert dataset._run_under_another_id(["up0305-Nb", "up0803-WC"], runs) == {"up0305-Nb"}
