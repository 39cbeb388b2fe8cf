"""DATA=upstream end to end, without the real file: a synthetic stand-in database.json (tests/upstream_standin.py)
-> conversion -> the paper's split and bootstrap resamples -> notebooks 02-06 at smoke size -> results page.

Notebook 01 (the QE dataset stage) does not read the data source; with DATA=upstream only its artifacts move,
and it is smoke-run by tests/test_pipeline.py.
"""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from betenet import outputs, pipeline
from betenet import upstream as up
from betenet import upstream_split as us
from betenet.records import load_records

from upstream_standin import LABEL, ROW_WITHOUT_CIF, TEST_ROWS, TRAIN_ROWS, write_standin


@pytest.mark.notebooks
def test_data_upstream_runs_the_notebooks_the_papers_way(tmp_path, monkeypatch):
    up_dir = tmp_path / "upstream"
    db = write_standin(up_dir)
    assert LABEL in db.read_text()
    monkeypatch.setenv("BETENET_UPSTREAM_DIR", str(up_dir))
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.delenv("BETENET_DATA_SOURCE", raising=False)
    book = pipeline.copy_book_sources(tmp_path / "book")

    runs = pipeline.run_notebooks("smoke", data="upstream", output_dir=book / "chapters",
                                  only=["02", "03", "04", "05", "06"], progress=False)
    assert [r.name[:2] for r in runs] == ["02", "03", "04", "05", "06"] and all(r.ok for r in runs)
    for run in runs:
        nb = nbformat.read(run.output, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{run.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"

    # each notebook's files were found where the published data's artifacts go, and all are declared
    assert all(r.outputs for r in runs)
    art = tmp_path / "artifacts" / "upstream" / "smoke"
    assert not outputs.check_outputs(art, {r.name: r.outputs for r in runs})["undeclared"]

    # conversion: every stand-in row with a structure, the row without one refused and reported
    recs = load_records(up_dir / "records")
    assert sorted(us.row_index(r.material_id) for r in recs) == sorted(TRAIN_ROWS + TEST_ROWS)
    summary = json.loads(up.conversion_summary_path(up_dir / "records").read_text())
    assert len(summary["invalid"]) == 1 and f"row {ROW_WITHOUT_CIF}:" in summary["invalid"][0]

    # artifacts of the published data apart from ours
    art = tmp_path / "artifacts" / "upstream" / "smoke"
    assert not (tmp_path / "artifacts" / "smoke").exists()
    base = pd.read_csv(art / "tables" / "table1_base.csv")
    assert f"split 'paper' {len(TRAIN_ROWS)} train / {len(TEST_ROWS)} test" in base["data"].iloc[0]
    assert {"CSO", "CPD", "FPD"} <= set(pd.read_csv(art / "tables" / "table1_ensembles.csv")["model"])

    # the ensembles trained on the paper's resamples: member k = idx_train_V2_k / idx_valid_V2_k
    train_ids = [us.material_id(i) for i in TRAIN_ROWS]
    paper = us.paper_bootstraps(train_ids, 2, ensemble_seed=1234)
    for variant in ("CSO", "CPD", "FPD"):
        edir = art / "ensembles" / variant
        assert json.loads((edir / "ensemble.json").read_text())["fingerprint"]
        for k in (0, 1):
            boot = json.loads((edir / f"member-{k:03d}" / "bootstrap.json").read_text())
            assert boot["sample_ids"] == list(paper[k].sample_ids) and boot["oob_ids"] == list(paper[k].oob_ids)
    draws, _ = us.paper_bootstrap_indices(0)
    assert list(paper[0].sample_ids) == [us.material_id(i) for i in draws if i in TRAIN_ROWS]

    assert [n["name"][:2] for n in json.loads((art / "pipeline.json").read_text())["notebooks"]] == ["02", "03", "04", "05", "06"]
    nb02 = nbformat.read(book / "chapters" / "02-linear-baseline.ipynb", as_version=4)
    shown = "".join(str(o.get("data", {}).get("text/plain", "")) for c in nb02.cells for o in c.get("outputs", []))
    assert "median_abs_rel_diff" in shown and "omega_log" in shown  # the unit check, on the stand-in's rows

    page = pipeline.write_results_page("smoke", book_dir=book, data="upstream").read_text()
    assert "the paper's own train/test split" in page and "λ Δ" in page and "| CPD | MAE |" in page
