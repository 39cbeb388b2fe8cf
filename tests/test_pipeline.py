"""The batch reproduction path: papermill over every notebook (smoke profile) and the book build."""

from __future__ import annotations

import json
import os
import re

import nbformat
import pandas as pd
import pytest

from betenet import outputs, paths, pipeline


def test_results_page_puts_ours_beside_the_papers(tmp_path, monkeypatch):
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    tables = paths.artifacts_dir("smoke", "tables")
    pd.DataFrame(
        [
            {"model": "Base", "metric": "MAE", "lambda": 0.123, "omega_log_K": 41.7, "omega_2_K": 55.2, "tc_mae_K": 1.5, "n_test": 12, "data": "betenet-qe screening, 60 records"},
            {"model": "Base", "metric": "R2", "lambda": -0.2, "omega_log_K": 0.5, "omega_2_K": 0.6, "tc_mae_K": 1.5, "n_test": 12, "data": "betenet-qe screening, 60 records"},
        ]
    ).to_csv(tables / "table1_base.csv", index=False)
    page = pipeline.write_results_page("smoke", book_dir=tmp_path / "book").read_text()
    assert "| Base | MAE | 0.12 | 0.22 | 42 | 35 | 55 | 35 |" in page
    # R² is dimensionless: two decimals in every column, ours and the paper's (not "1", "-0", "-1")
    assert "| Base | R2 | -0.20 | 0.05 | 0.50 | 0.76 | 0.60 | 0.82 |" in page
    assert "| Base | 1.50 | 2.84 | 12 |" in page
    assert "not* reproduced" in page and "betenet-qe screening, 60 records" in page


@pytest.mark.parametrize(
    "x, metric, prop, expected",
    [(0.4567, "R2", 1, "0.46"), (-0.004, "R2", 2, "0.00"), (-1.234, "R2", 0, "-1.23"), (41.6, "MAE", 1, "42"),
     (0.1234, "RMSE", 0, "0.12"), (float("nan"), "R2", 1, "–"), (None, "MAE", 0, "–"), (-0.3, "MAE", 2, "0")],
)
def test_metric_cells_have_the_metrics_decimals(x, metric, prop, expected):
    assert pipeline.format_metric(x, metric, prop) == expected


def test_tidy_hides_parameter_cells_and_drops_progress_bars(tmp_path):
    """A real papermill run of a notebook with tqdm bars (widget and stderr) and a real warning."""
    import papermill as pm

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3), leave=False): pass\nprint('after auto')"),
        nbformat.v4.new_code_cell("import warnings\nfrom tqdm.std import tqdm\nfor _ in tqdm(range(3), desc='members'): pass\n"
                                  "print('after std')\nwarnings.warn('a real warning')"),
        nbformat.v4.new_code_cell("import sys\nfrom tqdm.std import tqdm\nfor _ in tqdm(range(2)): pass\nsys.stderr.flush()\nprint(2)"),
    ]
    src, dst = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(dst), parameters={"profile": "default"}, progress_bar=False, kernel_name="python3")
    before = nbformat.read(dst, as_version=4)
    assert "widgets" in before.metadata  # tqdm.auto left widget state behind
    counts = pipeline.tidy_executed_notebook(dst)
    out = nbformat.read(dst, as_version=4)
    nbformat.validate(out)
    tags = [c.metadata.get("tags", []) for c in out.cells]
    assert tags[0] == ["parameters", "remove-cell"] and tags[1] == ["injected-parameters", "remove-cell"]
    assert 'profile = "default"' in out.cells[1].source  # hidden on the page, kept in the file
    assert counts["hidden_cells"] == 2 and counts["progress_outputs"] >= 4
    assert [o.get("text") for o in out.cells[4].outputs] == ["2\n"]  # bar and its closing newline both gone
    texts = ["".join(o.get("text", "")) for c in out.cells[2:] for o in c.outputs]
    assert "after auto\n" in texts and "after std\n" in texts
    assert any("UserWarning: a real warning" in t for t in texts)
    assert not any("it/s]" in t or "%|" in t for t in texts)
    assert not [o for c in out.cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert "widgets" not in out.metadata
    again = pipeline.tidy_executed_notebook(dst)  # idempotent
    assert again == {"hidden_cells": 0, "progress_outputs": 0, "dropped_mime": 0, "png_bytes_saved": 0}


def test_results_page_without_tables_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    page = pipeline.write_results_page("smoke", book_dir=tmp_path / "book").read_text()
    assert "No Table 1 CSVs found" in page
    assert "| CSO |" not in page


def test_malformed_table_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    bad = paths.artifacts_dir("smoke", "tables") / "table1_bad.csv"
    bad.write_bytes(b"\x00\x01\x02")
    with pytest.raises(ValueError, match=r"table1_bad\.csv: not a Table 1 CSV: missing column\(s\) \['model'"):
        pipeline.write_results_page("smoke", book_dir=tmp_path / "book")


def test_unknown_profile_is_rejected_before_running_anything(tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        pipeline.run_notebooks("laptop", output_dir=tmp_path)


@pytest.mark.notebooks
def test_smoke_pipeline_executes_every_notebook_and_builds_the_book(tmp_path, monkeypatch):
    """AmpSeeker-style smoke run: papermill over all notebooks, then ``jupyter-book build``.

    Runs in a temporary copy of the book with artifacts in tmp, so the repository is untouched.
    """
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    book = pipeline.copy_book_sources(tmp_path / "book")
    runs = pipeline.run_notebooks("smoke", output_dir=book / "chapters", progress=False)
    assert [r.name for r in runs] == [p.stem for p in pipeline.discover_notebooks()]
    assert all(r.ok for r in runs)
    summary = json.loads((tmp_path / "artifacts" / "smoke" / "pipeline.json").read_text())
    assert len(summary["notebooks"]) == len(runs)
    for run in runs:
        nb = nbformat.read(run.output, as_version=4)
        images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"{run.name}: executed notebook has no figure"
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{run.name}: {errors[0].get('ename')}"
    # every declared output (betenet.outputs.MANIFEST) is produced, by the notebook that declares it
    check = outputs.check_outputs(tmp_path / "artifacts" / "smoke", {r.name: r.outputs for r in runs})
    assert check == {"missing": [], "undeclared": []}, check
    assert [n["outputs"] for n in summary["notebooks"]] == [list(r.outputs) for r in runs]
    assert summary["data"]["directories"] and summary["data"]["n_records"] > 0  # the records this run read
    for run in runs:
        nb = nbformat.read(run.output, as_version=4)
        hidden = [c for c in nb.cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
        assert len(hidden) == 2 and all("remove-cell" in c.metadata["tags"] for c in hidden), run.name
    tables = {p.name for p in (tmp_path / "artifacts" / "smoke" / "tables").glob("table1_*.csv")}
    assert {"table1_base.csv", "table1_ensembles.csv"} <= tables
    pipeline.write_results_page("smoke", book_dir=book)
    assert pipeline.check_one_run(book / "chapters", profile="smoke") == []
    html = pipeline.build_book(book)
    for run in runs:
        page = html / "chapters" / f"{run.name}.html"
        assert page.exists(), f"missing chapter {page}"
        text = page.read_text()
        assert "<img" in text, f"{page.name} renders no figure"
        assert "tag_parameters" not in text and "tag_injected-parameters" not in text, f"{page.name} shows a parameter cell"
        assert "it/s]" not in text, f"{page.name} shows a progress bar"
    results = (html / "chapters" / "results.html").read_text()
    assert "CSO" in results and "Base" in results and "Data snapshot" in results
    intro = re.sub(r"<[^>]+>", "", (html / "intro.html").read_text())
    assert re.search(r"held\s+\d+ kept materials out of\s+\d+ submitted", intro), "intro's glued counts are missing"
    assert re.search(r"split of \d+ training and\s+\d+ test materials", intro)
    assert "Data snapshot: the book is up to date with the data" in intro  # the build-time check


def _saved_predictions(ids, n_members=2, mu_star=0.1):
    """A PredictionSet as notebook 05 saves it (arrays of the right shapes; values arbitrary but checked)."""
    import numpy as np

    from betenet import ensemble
    from betenet.constants import TARGET_GRID_MEV

    rng = np.random.default_rng(0)
    n_bins = len(TARGET_GRID_MEV)
    ref = pd.DataFrame({"lambda": rng.uniform(0.1, 1, len(ids)), "omega_log_K": rng.uniform(50, 400, len(ids)),
                        "omega_2_K": rng.uniform(60, 500, len(ids)), "tc_K": rng.uniform(0, 10, len(ids))},
                       index=pd.Index(ids, name="material_id"))
    ps = ensemble.PredictionSet("CSO", "smoke", "test", list(ids), np.asarray(TARGET_GRID_MEV, dtype=float),
                                np.arange(n_members), rng.uniform(0, 0.5, (n_members, len(ids), n_bins)).astype(np.float32),
                                rng.uniform(0, 0.5, (len(ids), n_bins)), ref, mu_star)
    return ensemble.save_predictions(ensemble.predictions_path("smoke", "CSO"), ps), ps


def test_notebook_06_reads_saved_predictions_and_never_trains(tmp_path, monkeypatch):
    import numpy as np

    from betenet import ensemble, screening

    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setattr(ensemble, "run_ensemble", lambda *a, **k: pytest.fail("notebook 06 trained an ensemble"))
    monkeypatch.setattr(ensemble, "load_ensemble", lambda *a, **k: pytest.fail("notebook 06 loaded an ensemble"))
    ids = ["Al1-fcc", "Nb1-bcc", "MgB2-AlB2"]
    # no predictions at all: a clear error naming the file and notebook 05
    with pytest.raises(screening.PredictionsNotReadyError, match=r"predictions/CSO\.npz: no saved CSO .*run notebook 05"):
        screening.ensemble_predictions("smoke", "CSO", [], [], ids)
    member = paths.artifacts_dir("smoke", "ensembles", "CSO", "member-000") / "member.json"
    member.write_text("{}")
    path, saved = _saved_predictions(ids)
    os.utime(member, (path.stat().st_mtime - 10, path.stat().st_mtime - 10))
    got = screening.ensemble_predictions("smoke", "CSO", [], [], list(reversed(ids)), mu_star=0.1)
    assert got.ids == ids
    np.testing.assert_allclose(got.pred_a2f, saved.pred_a2f)
    np.testing.assert_allclose(got.reference["omega_log_K"], saved.reference["omega_log_K"])
    # a test split that moved on, a member count that does not match, another mu*: each named, nothing retrained
    with pytest.raises(screening.PredictionsNotReadyError, match=r"cover 3 materials, the current test split 2 .*run notebook 05"):
        screening.ensemble_predictions("smoke", "CSO", [], [], ids[:2])
    with pytest.raises(screening.PredictionsNotReadyError, match=r"made with mu\* = 0\.1, not 0\.13"):
        screening.ensemble_predictions("smoke", "CSO", [], [], ids, mu_star=0.13)
    _saved_predictions(ids, n_members=1)
    with pytest.raises(screening.PredictionsNotReadyError, match="hold 1 members, the profile 2"):
        screening.ensemble_predictions("smoke", "CSO", [], [], ids)
    _saved_predictions(ids)
    os.utime(member, (path.stat().st_mtime + 10, path.stat().st_mtime + 10))  # a member finished after notebook 05 predicted
    with pytest.raises(screening.PredictionsNotReadyError, match="member-000 finished after they were written"):
        screening.ensemble_predictions("smoke", "CSO", [], [], ids)


def test_the_book_states_the_data_snapshot_and_whether_it_moved_on(tmp_path, monkeypatch):
    """The comparison is made when the book is built (betenet_book's ``data-snapshot`` directive calls
    ``snapshot_report``), from ``chapters/run.json``: a committed book that has gone stale says so."""
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    records = tmp_path / "records"
    records.mkdir()
    for name in ("Al1-fcc", "Nb1-bcc", "MgB2-AlB2"):
        (records / f"{name}.json").write_text(json.dumps({"material_id": name, "lambda": len(name)}))
    snap = pipeline.data_snapshot([records])
    assert snap["n_records"] == 3 and len(snap["digest"]) == 16
    assert pipeline.data_snapshot([records]) == snap  # deterministic
    snap["digest_at_end"] = snap["digest"]
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    kind, title, lines = pipeline.snapshot_report(chapters)  # no run record: said, never hidden
    assert kind == "warning" and "no run record" in title
    identity = pipeline.run_identity("default", "ours", snap)
    pipeline._write_run_record(chapters, identity, snap, [], complete=True)
    kind, title, lines = pipeline.snapshot_report(chapters)
    page = "\n".join(lines)
    assert kind == "note" and "up to date" in title
    assert f"read **3 records** from `{records}` (data digest `{snap['digest']}`)" in page
    assert identity["run_id"] in page and "profile `default`" in page
    assert "unchanged since: the book is up to date" in page and "while the notebooks ran" not in page
    # the results page defers to the directive (no comparison frozen at run time) and carries the run's id
    results = pipeline.write_results_page("smoke", book_dir=tmp_path / "book")
    assert "```{data-snapshot}" in results.read_text() and "unchanged since" not in results.read_text()
    assert pipeline.read_run_identity(results)["run_id"] == identity["run_id"]
    # the data move on: one record changed, one added -> shown, with the counts
    (records / "Nb1-bcc.json").write_text(json.dumps({"material_id": "Nb1-bcc", "lambda": 1.0}))
    (records / "Pd1-fcc.json").write_text("{}")
    kind, title, lines = pipeline.snapshot_report(chapters)
    page = "\n".join(lines)
    assert kind == "warning" and title == "The data have moved on since these chapters were executed"
    assert "moved on since this run**: they now hold 4 records" in page
    assert "1 added, 0 removed, 1 changed" in page and "Run `make book` again" in page
    # records that changed during the run, or a run that did not finish, are flagged
    snap["digest_at_end"] = "0" * 16
    assert any("while the notebooks ran" in line for line in pipeline.describe_data_snapshot(snap))
    (records / "Pd1-fcc.json").unlink()
    (records / "Nb1-bcc.json").write_text(json.dumps({"material_id": "Nb1-bcc", "lambda": 7}))
    pipeline._write_run_record(chapters, identity, snap, [], complete=True)
    assert pipeline.snapshot_report(chapters)[0] == "warning"
    snap["digest_at_end"] = snap["digest"]
    pipeline._write_run_record(chapters, identity, snap, [], complete=False)
    kind, _, lines = pipeline.snapshot_report(chapters)
    assert kind == "warning" and any("did not finish" in line for line in lines)
