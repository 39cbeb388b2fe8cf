"""The notebooks' declared outputs (betenet.outputs.MANIFEST): notebooks, README and a run agree with it."""

from __future__ import annotations

import re

import nbformat
import pytest

from betenet import outputs, paths, pipeline


def _code(notebook) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_every_notebook_has_a_manifest_entry_and_no_entry_is_orphaned():
    assert [e.notebook for e in outputs.MANIFEST] == [p.stem for p in pipeline.discover_notebooks()]
    with pytest.raises(KeyError, match="'07-new' has no entry"):
        outputs.declared("07-new.ipynb")


@pytest.mark.parametrize("notebook", pipeline.discover_notebooks(), ids=lambda p: p.stem)
def test_every_file_a_notebook_names_is_declared_by_it(notebook):
    """Each ``FIGURES / "…"`` and ``TABLES / "…"`` in the notebook's code (f-string fields as ``*``)."""
    entry = outputs.declared(notebook.name)
    named = re.findall(r'(FIGURES|TABLES)\s*/\s*f?"([^"]+)"', _code(notebook))
    assert named, f"{notebook.name} names no output file"
    for kind, name in named:
        pattern = re.sub(r"\{[^}]*\}", "*", name)
        pool = entry.figures if kind == "FIGURES" else entry.tables
        assert pattern in pool, f"{notebook.name} writes {kind.lower()}/{name}, not declared in betenet.outputs.MANIFEST"


def test_readme_table_is_the_generated_one():
    readme = (paths.REPO_ROOT / "README.md").read_text()
    assert readme.count(outputs.README_BEGIN) == 1 and readme.count(outputs.README_END) == 1
    body = readme.split(outputs.README_BEGIN)[1].split(outputs.README_END)[0].strip()
    assert body == outputs.markdown_table(), "README table is stale: run python -c 'import betenet.outputs as o; o.update_readme()'"


def test_update_readme_rewrites_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{outputs.README_BEGIN}\n| old |\n{outputs.README_END}\n\nafter\n")
    assert outputs.update_readme(readme) is True
    text = readme.read_text()
    assert text.startswith("# title\n\n") and text.endswith(f"{outputs.README_END}\n\nafter\n")
    assert "| `06-error-analysis-screening` | Fig. 4l, Fig. 5 |" in text and "| old |" not in text
    assert outputs.update_readme(readme) is False
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match=r"README\.md: expected the markers"):
        outputs.update_readme(readme)


def test_check_outputs_names_missing_and_undeclared_files(tmp_path):
    art = tmp_path / "smoke"
    for e in outputs.MANIFEST:
        for pat in e.patterns():
            f = art / pat.replace("*", "5")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("x")
    assert outputs.check_outputs(art) == {"missing": [], "undeclared": []}
    (art / "figures" / "04-loss-landscapes.png").unlink()
    (art / "tables" / "07-new.csv").write_text("x")
    assert outputs.check_outputs(art) == {"missing": ["04-loss-landscape: figures/04-loss-landscapes.png"],
                                          "undeclared": ["tables/07-new.csv"]}
    # attributed to the notebook that wrote it: 02 writing notebook 01's table is undeclared
    written = {"02-linear-baseline": ("tables/table1_base.csv", "tables/01-funnel.csv")}
    assert outputs.check_outputs(art, written)["undeclared"] == ["02-linear-baseline: tables/01-funnel.csv"]
