"""The documentation is documentation: short, undated, linked correctly; the repository is citable."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from betenet import paths

ROOT = paths.REPO_ROOT
DOCS = ["README.md", "data/README.md", "book/intro.md", "book/reproducing.md"]
#: a clock time or a calendar date outside a path (study folders are named <date>-<name>)
DATED = re.compile(r"\b\d{1,2}:\d{2}\s*UTC\b|(?<![/\w-])20\d\d-\d\d-\d\d(?![\w-]*/)")


@pytest.mark.parametrize("doc", DOCS)
def test_docs_carry_no_timestamps(doc):
    text = (ROOT / doc).read_text()
    hits = [m.group(0) for m in DATED.finditer(text)]
    assert not hits, f"{doc} carries dates/times {hits[:5]}: dated findings go to CHANGELOG.md"


def test_dated_pattern_catches_what_it_should():
    assert DATED.search("snapshot of 2026-11-26 (11:31 UTC)") and DATED.search("measured 2026-11-25: 0.11 s")
    assert not DATED.search("[`studies/2026-11-25-scf-k-convergence`](studies/2026-11-25-scf-k-convergence/README.md)")


def test_readmes_are_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
    assert len((ROOT / "data" / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("doc", ["README.md", "data/README.md", "CHANGELOG.md"])
def test_relative_links_resolve(doc):
    base = (ROOT / doc).parent
    text = (ROOT / doc).read_text()
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+://|#|mailto:", t)]
    assert links, f"{doc} has no relative links to check"
    broken = [t for t in links if not (base / t.split("#")[0]).exists()]
    assert not broken, f"{doc}: links to missing files {broken}"


def test_notes_named_in_the_changelog_exist():
    text = (ROOT / "CHANGELOG.md").read_text()
    named = set(re.findall(r"data/qe/([\w.-]+)/NOTES\.md", text))
    assert named, "the changelog points to per-material notes"
    assert not [m for m in named if not (ROOT / "data" / "qe" / m / "NOTES.md").exists()]


def test_licence_and_citation_match_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "MIT"
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "betenet developers" in licence
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT" and cff["version"] == project["version"]
    paper = cff["preferred-citation"]
    assert [a["family-names"] for a in paper["authors"]][:2] == ["Gibson", "Hire"]
    assert {"type": "other", "value": "arXiv:2401.16611", "description": "arXiv preprint"} in paper["identifiers"]
    # the vendored data keep their own licence beside them
    assert "Apache License" in (ROOT / "data" / "upstream" / "LICENSE").read_text()


def test_readme_documents_the_path_variables():
    text = (ROOT / "README.md").read_text()
    for var in ("BETENET_DATA", "BETENET_ARTIFACTS"):
        assert re.search(rf"^\| `{var}` \|", text, re.M), f"README's environment table lacks {var}"


def test_the_intro_glues_its_numbers_and_states_the_snapshot():
    """No hand-typed results on the book's first page: counts are glued from the run's chapters, and the
    data snapshot (and whether the data moved on) is computed when the book is built."""
    text = (ROOT / "book" / "intro.md").read_text()
    assert "```{data-snapshot}" in text
    for key in ("01-generate-dataset-qe.ipynb::qe_kept", "02-linear-baseline.ipynb::n_train",
                "02-linear-baseline.ipynb::n_test"):
        assert f"{{glue:text}}`chapters/{key}" in text
    prose = re.sub(r"\{glue:text\}`[^`]*`|arXiv:\d+\.\d+|\{doc\}`[^`]*`", "", text)
    counts = re.findall(r"\b\d+ (?:kept|materials|records|training|test)\b", prose)
    assert not counts, f"hand-typed counts in book/intro.md: {counts}"
