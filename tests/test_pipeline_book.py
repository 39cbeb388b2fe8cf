"""The committed book (issue 18 point 4): the default profile's executed chapters are committed, small, from
one run, and the book says at build time which data they were executed on and whether the data have moved
on since.  Non-default runs never write over them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from betenet import paths, pipeline
from betenet.cli import notebooks as cli_notebooks

CHAPTERS = paths.CHAPTERS_DIR
#: Size budget of the committed chapters (executed notebooks with their PNG figures, results page, run record).
CHAPTERS_BUDGET_BYTES = 4 * 1024 * 1024


def _committed_chapters() -> list:
    return sorted(CHAPTERS.glob("[0-9][0-9]-*.ipynb"))


def _chapter(path, run: dict | None, *, png: bytes | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if run is not None:
        nb.metadata["betenet"] = run
    data = {"text/plain": "<Figure>"}
    if png is not None:
        import base64

        data |= {"image/png": base64.b64encode(png).decode(), "image/svg+xml": "<svg>" + "x" * 5000 + "</svg>"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"),
                nbformat.v4.new_code_cell("1 + 1", outputs=[nbformat.v4.new_output("display_data", data)])]
    nbformat.write(nb, path)


def _one_run(chapters, names=("01-a", "02-b"), profile="default"):
    """A synthetic complete run: run.json, two executed notebooks and the results page, all of one run id."""
    chapters.mkdir(parents=True, exist_ok=True)
    identity = pipeline.run_identity(profile, "ours", None)
    runs = [pipeline.NotebookRun(n, chapters / f"{n}.ipynb", chapters / f"{n}.ipynb", 1.0, True) for n in names]
    for n in names:
        _chapter(chapters / f"{n}.ipynb", identity)
    pipeline._write_run_record(chapters, identity, None, runs, complete=True)
    return identity


@pytest.mark.skipif(not _committed_chapters(), reason="no committed chapters yet (the lead commits a default run's)")
def test_committed_chapters_come_from_one_complete_default_run():
    assert pipeline.check_one_run(CHAPTERS, profile="default") == []
    assert [p.stem for p in _committed_chapters()] == [p.stem for p in pipeline.discover_notebooks()]
    run = pipeline.read_run_identity(CHAPTERS / pipeline.RUN_RECORD)
    assert run["data_source"] == "ours" and run["data_snapshot"]["n_records"] > 0


def test_committed_chapters_fit_the_size_budget():
    assert pipeline.chapters_size_bytes(CHAPTERS) < CHAPTERS_BUDGET_BYTES if CHAPTERS.is_dir() else True
    for nb_path in _committed_chapters():
        nb = json.loads(nb_path.read_text())
        assert "widgets" not in nb["metadata"], f"{nb_path.name} keeps widget state"
        mimes = {m for c in nb["cells"] for o in c.get("outputs", []) for m in o.get("data", {})}
        assert not {m for m in mimes if "widget" in m or m in ("image/svg+xml", "application/pdf")}, nb_path.name


def test_the_one_run_check_fails_on_chapters_of_two_runs(tmp_path):
    chapters = tmp_path / "chapters"
    identity = _one_run(chapters)
    assert pipeline.check_one_run(chapters) == [f"{pipeline.RESULTS_PAGE}: missing"]
    (chapters / pipeline.RESULTS_PAGE).write_text(
        "---\nbetenet: " + json.dumps({k: identity[k] for k in ("run_id", "profile", "data_source")}) + "\n---\n# R\n")
    assert pipeline.check_one_run(chapters) == []
    assert pipeline.check_one_run(chapters, profile="default") == []
    assert pipeline.check_one_run(chapters, profile="smoke") == [
        f"run.json: run {identity['run_id']} is of profile 'default', not 'smoke'"]
    # one chapter from another run (e.g. a partial re-run), one with no identity, one the run never wrote
    other = pipeline.run_identity("default", "ours", None)
    assert other["run_id"] != identity["run_id"]
    _chapter(chapters / "02-b.ipynb", other)
    problems = pipeline.check_one_run(chapters)
    assert problems == [f"02-b.ipynb: from run {other['run_id']}, not {identity['run_id']}"]
    _chapter(chapters / "02-b.ipynb", None)
    _chapter(chapters / "03-c.ipynb", identity)
    assert pipeline.check_one_run(chapters) == ["03-c.ipynb: not written by run " + identity["run_id"],
                                                f"02-b.ipynb: from run None, not {identity['run_id']}"]
    (chapters / pipeline.RUN_RECORD).unlink()
    assert pipeline.check_one_run(chapters) == [f"{chapters / pipeline.RUN_RECORD}: no run record"]


def test_an_unfinished_run_is_not_one_run(tmp_path):
    chapters = tmp_path / "chapters"
    identity = _one_run(chapters)
    record = json.loads((chapters / pipeline.RUN_RECORD).read_text())
    (chapters / pipeline.RUN_RECORD).write_text(json.dumps({**record, "complete": False}))
    assert f"run.json: run {identity['run_id']} did not finish" in pipeline.check_one_run(chapters)


def test_tidy_drops_duplicate_figure_formats_recompresses_and_stamps_the_run(tmp_path):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(buf, format="PNG", compress_level=0)
    path = tmp_path / "01-a.ipynb"
    _chapter(path, None, png=buf.getvalue())
    size = path.stat().st_size
    identity = pipeline.run_identity("default", "ours", None)
    counts = pipeline.tidy_executed_notebook(path, run=identity)
    assert counts["dropped_mime"] == 1 and counts["png_bytes_saved"] > 0 and path.stat().st_size < size / 4
    nb = nbformat.read(path, as_version=4)
    assert set(nb.cells[1].outputs[0].data) == {"text/plain", "image/png"}
    assert pipeline.read_run_identity(path) == identity


def test_non_default_runs_write_a_book_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.delenv("BETENET_DATA_SOURCE", raising=False)
    assert pipeline.book_dir_for("default", "ours", prepare=False) == paths.BOOK_DIR
    smoke = pipeline.book_dir_for("smoke", "ours")
    assert smoke == tmp_path / "artifacts" / "smoke" / "book" and (smoke / "_toc.yml").is_file()
    assert (smoke / "_ext" / "betenet_book.py").is_file() and not (smoke / "chapters").exists()
    assert pipeline.book_dir_for("default", "upstream", prepare=False) == tmp_path / "artifacts" / "upstream" / "default" / "book"
    assert pipeline.book_dir_for("default", "ours", only=["05"], prepare=False) == tmp_path / "artifacts" / "default" / "book"
    assert pipeline.book_dir_for("smoke", "ours") == smoke  # refreshing an existing copy works


def test_chapters_are_not_ignored_by_git():
    probe = "book/chapters/01-generate-dataset-qe.ipynb"
    ignored = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "check-ignore", "-q", "--no-index", probe])
    assert ignored.returncode == 1, f"{probe} is git-ignored: the default run's chapters must be committable"


def test_notebooks_command_lives_in_the_cli_package(capsys, tmp_path, monkeypatch):
    assert not hasattr(pipeline, "cli_main")
    assert cli_notebooks.cli_main(["list"]) == 0
    assert capsys.readouterr().out.split() == [p.name for p in pipeline.discover_notebooks()]
    with pytest.raises(SystemExit):
        cli_notebooks.cli_main(["run", "--data", "elsewhere"])
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    assert cli_notebooks.cli_main(["check", "--profile", "smoke"]) == 1  # a fresh scratch book has no run record
    assert "no run record" in capsys.readouterr().out


def test_the_book_extension_renders_the_snapshot_at_build_time(tmp_path, monkeypatch):
    """A minimal book with the real _config.yml and extension, built by jupyter-book: the intro's admonition
    says the data have moved on when a record was added after the run."""
    monkeypatch.setenv("BETENET_ARTIFACTS", str(tmp_path / "artifacts"))
    book = pipeline.copy_book_sources(tmp_path / "book")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/01-a\n  - file: chapters/results\n")
    (book / "intro.md").write_text("# Intro\n\n```{data-snapshot}\n```\n")
    records = tmp_path / "records"
    records.mkdir()
    (records / "Al1-fcc.json").write_text("{}")
    snap = pipeline.data_snapshot([records])
    snap["digest_at_end"] = snap["digest"]
    chapters = book / "chapters"
    chapters.mkdir()
    identity = pipeline.run_identity("default", "ours", snap)
    _chapter(chapters / "01-a.ipynb", identity)
    run = pipeline.NotebookRun("01-a", chapters / "01-a.ipynb", chapters / "01-a.ipynb", 1.0, True)
    pipeline._write_run_record(chapters, identity, snap, [run], complete=True)
    pipeline.write_results_page("default", book_dir=book)
    assert pipeline.check_one_run(chapters, profile="default") == []
    (records / "Nb1-bcc.json").write_text("{}")  # the data move on after the run
    proc = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(book)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not re.findall(r"WARNING|ERROR", proc.stdout + proc.stderr), proc.stdout[-3000:] + proc.stderr[-2000:]
    for page in ("intro.html", "chapters/results.html"):
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (book / "_build" / "html" / page).read_text()))
        assert "The data have moved on since these chapters were executed" in text, page
        assert "they now hold 2 records" in text and identity["run_id"] in text, page


def test_the_snapshot_covers_every_record_directory_a_run_reads():
    """Chapter 00 reads the validated records whatever labels the run trains on, so the snapshot holds them."""
    from betenet import datasource
    from betenet.config import get_profile

    validated = Path(datasource.level_records_dir("validated")).resolve()
    screening = Path(datasource.level_records_dir("screening")).resolve()
    dirs = {Path(d).resolve() for d in pipeline._records_dirs(get_profile("default"))}
    assert dirs == {screening, validated}
    only_validated = get_profile("default", data={"labels": "validated"})
    assert [Path(d).resolve() for d in pipeline._records_dirs(only_validated)] == [validated]
