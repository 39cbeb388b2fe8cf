"""The data source setting (ours / upstream): records, split, bootstrap resamples, artifacts, results page."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from betenet import datasource, ensemble, paths, pipeline
from betenet import upstream_split as us
from betenet.config import get_profile

from upstream_standin import TEST_ROWS, TRAIN_ROWS, write_standin


@pytest.fixture
def upstream_env(tmp_path, monkeypatch):
    root = tmp_path / "upstream"
    write_standin(root, rows=TRAIN_ROWS[:6] + TEST_ROWS[:3])
    monkeypatch.setenv("BETENET_UPSTREAM_DIR", str(root))
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.delenv(paths.DATA_SOURCE_ENV, raising=False)
    yield root
    os.environ.pop(paths.DATA_SOURCE_ENV, None)


def test_profile_carries_the_data_source():
    assert get_profile("smoke").data.source == "ours"
    assert get_profile("paper", data={"source": "upstream"}).data.source == "upstream"
    with pytest.raises(ValueError, match="DataConfig.source must be 'ours' or 'upstream', got 'theirs'"):
        get_profile("smoke", data={"source": "theirs"})


def test_upstream_load_converts_once_and_uses_the_papers_split(upstream_env, tmp_path):
    cfg = get_profile("smoke", data={"source": "upstream"})
    records, split = datasource.load(cfg)
    assert os.environ[paths.DATA_SOURCE_ENV] == "upstream"
    assert paths.artifacts_dir("smoke", create=False) == (tmp_path / "artifacts" / "upstream" / "smoke").resolve()
    assert split.name == "paper"
    assert split.train_ids == tuple(sorted(us.material_id(i) for i in TRAIN_ROWS[:6]))
    assert split.test_ids == tuple(sorted(us.material_id(i) for i in TEST_ROWS[:3]))
    assert {r.source for r in records} == {"upstream-bete-net"} and len(records) == 9
    assert "6 of 651 training and 3 of 173 test rows" in datasource.describe(cfg, split)
    # a second load does not convert again (the records' files are untouched)
    mtimes = {p: p.stat().st_mtime_ns for p in (upstream_env / "records").glob("*.json")}
    datasource.load(cfg)
    assert {p: p.stat().st_mtime_ns for p in (upstream_env / "records").glob("*.json")} == mtimes
    # back to ours: artifacts where they always were
    datasource.activate(get_profile("smoke"))
    assert paths.DATA_SOURCE_ENV not in os.environ
    assert paths.artifacts_dir("smoke", create=False) == (tmp_path / "artifacts" / "smoke").resolve()


def test_upstream_without_database_json_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("BETENET_UPSTREAM_DIR", str(tmp_path / "empty"))
    with pytest.raises(datasource.DataSourceError, match=r"needs the authors' database.json at .*empty/database.json"):
        datasource.load(get_profile("smoke", data={"source": "upstream"}))
    os.environ.pop(paths.DATA_SOURCE_ENV, None)
    with pytest.raises(datasource.DataSourceError, match="database.json"):
        pipeline.run_notebooks("smoke", data="upstream", output_dir=tmp_path / "out")


def test_ensembles_use_the_papers_resamples_and_a_distinct_fingerprint(upstream_env):
    ours, theirs = get_profile("smoke"), get_profile("smoke", data={"source": "upstream"})
    records, split = datasource.load(theirs)
    assert datasource.bootstraps(ours, split.train_ids, 2) is None
    boots = datasource.bootstraps(theirs, split.train_ids, 2)
    draws, valid = us.paper_bootstrap_indices(1)
    assert boots[1].sample_ids == tuple(us.material_id(i) for i in draws if i in TRAIN_ROWS[:6])
    assert boots[1].oob_ids == tuple(us.material_id(i) for i in valid if i in TRAIN_ROWS[:6])
    train = [r for r in records if r.material_id in split.train_ids]
    fp_ours, recipe_ours = ensemble.recipe_fingerprint(ours, "CSO", train)
    fp_theirs, recipe_theirs = ensemble.recipe_fingerprint(theirs, "CSO", train)
    assert "bootstrap" not in recipe_ours and recipe_theirs["bootstrap"].startswith("paper")
    assert fp_ours != fp_theirs  # members of one recipe are never reused for the other


def test_results_page_for_upstream_shows_the_difference(tmp_path, monkeypatch):
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv(paths.DATA_SOURCE_ENV, "upstream")
    tables = paths.artifacts_dir("smoke", "tables")
    monkeypatch.delenv(paths.DATA_SOURCE_ENV)
    pd.DataFrame([{"model": "CPD", "metric": "MAE", "lambda": 0.20, "omega_log_K": 40.0, "omega_2_K": 29.0}]
                 ).to_csv(tables / "table1_ensembles.csv", index=False)
    page = pipeline.write_results_page("smoke", book_dir=tmp_path / "book", data="upstream").read_text()
    assert "| CPD | MAE | 0.20 | 0.18 | 0.02 | 40 | 32 | 8 | 29 | 30 | -1 |" in page
    assert "artifacts/upstream/smoke/tables/" in page and "not* reproduced" not in page
    ours_page = pipeline.write_results_page("smoke", book_dir=tmp_path / "book2").read_text()
    assert "No Table 1 CSVs found" in ours_page  # ours and theirs never read each other's tables


def test_scalar_check_confirms_the_standin_units_and_is_empty_for_ours(upstream_env):
    records, _ = datasource.load(get_profile("smoke", data={"source": "upstream"}))
    check = datasource.scalar_check(records)
    assert list(check["property"]) == ["lambda", "omega_log", "omega_2"] and (check["n"] == 9).all()
    assert check["max_abs_rel_diff"].max() < 1e-6
    from betenet.records import load_records

    ours = load_records(paths.RECORDS_DIR)[:3]
    assert datasource.scalar_check(ours).empty


def test_downloaded_database_json_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("BETENET_UPSTREAM_DIR", str(tmp_path))
    assert datasource.database_json() == tmp_path / "database.json"
    (tmp_path / "download").mkdir()
    (tmp_path / "download" / "database.json").write_text("{}")
    assert datasource.database_json() == tmp_path / "download" / "database.json"
    (tmp_path / "database.json").write_text("{}")
    assert datasource.database_json() == tmp_path / "database.json"


def test_label_levels_choose_our_records(tmp_path, monkeypatch):
    """DataConfig.labels: one level's directory, or validated labels overriding screening ones ('mixed')."""
    import json
    import shutil

    from betenet import paths
    from betenet.config import get_profile
    from betenet.records import load_record

    screening, validated = tmp_path / "records", tmp_path / "records-validated"
    screening.mkdir()
    for mid in ("Al1-fcc", "Cu1-fcc"):
        shutil.copy(paths.RECORDS_DIR / f"{mid}.json", screening)
    monkeypatch.setattr(paths, "RECORDS_DIR", screening)
    with pytest.raises(datasource.DataSourceError, match="records-validated: no validated-level records"):
        datasource.load_our_records(get_profile("smoke", data={"labels": "validated"}))
    validated.mkdir()
    rec = json.loads((screening / "Al1-fcc.json").read_text())
    rec["provenance"]["accuracy"] = "validated"
    (validated / "Al1-fcc.json").write_text(json.dumps(rec))
    load_record(validated / "Al1-fcc.json")  # still a valid record
    mixed = datasource.load_our_records(get_profile("smoke", data={"labels": "mixed"}))
    assert [r.material_id for r in mixed] == ["Al1-fcc", "Cu1-fcc"]
    assert datasource.label_counts(mixed) == {"screening": 1, "validated": 1}
    only = datasource.load_our_records(get_profile("smoke", data={"labels": "validated"}))
    assert datasource.label_counts(only) == {"validated": 1}
    assert datasource.records_dir(get_profile("smoke", data={"labels": "validated"})) == validated
    with pytest.raises(ValueError, match="DataConfig.labels"):
        get_profile("smoke", data={"labels": "best"})
