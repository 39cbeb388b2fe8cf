"""Declared outputs of the notebooks: which notebook writes which figure and table.

:data:`MANIFEST` is the one place that says what each chapter produces under
``artifacts/<profile>/figures`` and ``artifacts/<profile>/tables``.  It drives

* the README's "Which notebook produces what" table (:func:`markdown_table`, kept in step by
  :func:`update_readme` and checked by ``tests/test_outputs.py``);
* the smoke run's check that every declared output is produced and nothing undeclared is written
  (:func:`check_outputs`, fed with the files each notebook wrote as recorded by
  :func:`betenet.pipeline.run_notebooks`).

Names are file names; ``*`` stands for a part that depends on the run (e.g. the T_c threshold of a
screening figure) and must match at least one file.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from . import paths

__all__ = [
    "NotebookOutputs",
    "MANIFEST",
    "declared",
    "markdown_table",
    "update_readme",
    "check_outputs",
    "README_BEGIN",
    "README_END",
]


@dataclass(frozen=True)
class NotebookOutputs:
    """What one notebook writes (file names under ``figures/`` and ``tables/``)."""

    notebook: str  #: notebook stem, e.g. ``01-generate-dataset-qe``
    paper: str  #: the part of the paper it reproduces
    figures: tuple[str, ...]
    tables: tuple[str, ...]
    other: str = ""  #: other outputs, in words (directories of checkpoints, predictions)

    def patterns(self) -> tuple[str, ...]:
        """Declared outputs as paths relative to ``artifacts/<profile>``."""
        return tuple(f"figures/{f}" for f in self.figures) + tuple(f"tables/{t}" for t in self.tables)


MANIFEST: tuple[NotebookOutputs, ...] = (
    NotebookOutputs(
        "00-dft-validation", "— (not in the paper: our labels against published DFT and experiment)",
        ("00-dft-validation-parity.png", "00-ours-vs-paper.png", "00-ph-ecutrho-drift.png", "00-pseudopotential-lattice.png",
         "00-ph-cost.png"),
        ("00-reference-set.csv", "00-dft-validation.csv", "00-validation-checks.csv", "00-ours-vs-paper.csv",
         "00-pseudopotential-phonon-check.csv", "00-pseudopotential-eos.csv", "00-pbe-crosscheck.csv", "00-ph-cost.csv"),
    ),
    NotebookOutputs(
        "01-generate-dataset-qe", "Methods IV.1 funnel, Fig. 2",
        ("01-a2f-gallery.png", "01-fig2-correlations.png", "01-timings.png"),
        ("01-funnel.csv", "01-timings.csv", "01-cpu-times.csv", "01-materials.csv", "01-moments.csv",
         "01-commensurate-grids.csv", "01-lattice-check.csv", "01-cutoff-check.csv", "01-qe-settings.csv"),
    ),
    NotebookOutputs(
        "02-linear-baseline", 'Table 1 "Base", Fig. 2',
        ("02-split-element-counts.png", "02-fig2-feature-correlations.png", "02-parity-base.png",
         "02-smoothing-floor.png"),
        ("table1_base.csv", "split_element_counts.csv", "baseline_coefficients.csv", "baseline_one_metric.csv",
         "smoothing_floor.csv"),
    ),
    NotebookOutputs(
        "03-double-descent-training", "Fig. 3a–g",
        ("03-fig3a-double-descent.png", "03-fig3bd-a2f-regimes.png", "03-fig3eg-parity-regimes.png"),
        ("table1_regimes.csv", "03-history-main.csv", "03-double-descent-sweep.csv"),
        "checkpoints in `train/`",
    ),
    NotebookOutputs(
        "04-loss-landscape", "Fig. 3 insets",
        ("04-loss-landscapes.png",),
        ("04-landscape-summary.csv",),
        "grids in `landscapes/`",
    ),
    NotebookOutputs(
        "05-bootstrap-ensembles", "Table 1 CSO/CPD/FPD, Fig. 4a–k",
        ("05-oob-validation.png", "05-fig4a-i-parity.png", "05-fig4j-k-best-worst.png"),
        ("table1_ensembles.csv", "ensemble_members.csv", "ensemble_spread_calibration.csv",
         "ensemble_normalised_error.csv"),
        "members in `ensembles/`, test predictions in `predictions/`",
    ),
    NotebookOutputs(
        "06-error-analysis-screening", "Fig. 4l, Fig. 5",
        ("06-normalised-error-distribution.png", "06-fig4l-per-element-error.png", "06-per-element-error-bars.png",
         "06-fig5-screening-*K.png"),
        ("per_material_error.csv", "per_element_error.csv", "screening_summary.csv", "screening_summary.json"),
        "reads `predictions/` only",
    ),
)


def declared(notebook: str) -> NotebookOutputs:
    """The manifest entry of ``notebook`` (stem or file name); ``KeyError`` naming the known ones."""
    stem = Path(notebook).stem
    for entry in MANIFEST:
        if entry.notebook == stem:
            return entry
    raise KeyError(f"notebook {stem!r} has no entry in betenet.outputs.MANIFEST (known: {[e.notebook for e in MANIFEST]})")


def _short(name: str) -> str:
    return name[:-4] if name.endswith((".png", ".csv")) else name


def markdown_table() -> str:
    """The README's "which notebook produces what" table, generated from :data:`MANIFEST`."""
    lines = [
        "| notebook | paper | figures (`artifacts/<profile>/figures/`, `.png`) | tables (`artifacts/<profile>/tables/`, `.csv`) |",
        "|---|---|---|---|",
    ]
    for e in MANIFEST:
        figs = ", ".join(f"`{_short(f)}`" for f in e.figures)
        tabs = ", ".join(f"`{_short(t)}`" for t in e.tables) + (f" ({e.other})" if e.other else "")
        lines.append(f"| `{e.notebook}` | {e.paper} | {figs} | {tabs} |")
    lines.append("| (generated) `book/chapters/results.md` | Table 1 side by side | — | reads every `table1_*.csv` |")
    return "\n".join(lines)


README_BEGIN = "<!-- generated by betenet.outputs.update_readme(): edit betenet/outputs.py, not this table -->"
README_END = "<!-- end of generated table -->"


def update_readme(path: Path = paths.REPO_ROOT / "README.md") -> bool:
    """Rewrite the table between :data:`README_BEGIN` and :data:`README_END` in ``path``; ``True`` if it changed.

    ``ValueError`` naming the file when the markers are not there exactly once each.
    """
    path = Path(path)
    text = path.read_text()
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise ValueError(f"{path}: expected the markers {README_BEGIN!r} and {README_END!r} exactly once each")
    i = text.index(README_BEGIN) + len(README_BEGIN)
    j = text.index(README_END)
    new = text[:i] + "\n" + markdown_table() + "\n" + text[j:]
    if new != text:
        path.write_text(new)
    return new != text


def check_outputs(artifacts: Path, written: dict[str, tuple[str, ...]] | None = None) -> dict[str, list[str]]:
    """Compare a run's files under ``artifacts`` (``artifacts/<profile>``) with :data:`MANIFEST`.

    Returns ``{"missing": [...], "undeclared": [...]}``: declared outputs (``notebook: pattern``) that
    match no file, and files under ``figures/`` or ``tables/`` that no declaration covers.  With
    ``written`` (``{notebook: files it wrote}``, as :class:`betenet.pipeline.NotebookRun.outputs`),
    a file counts as declared only by the notebook that wrote it.
    """
    artifacts = Path(artifacts)
    files = sorted(
        p.relative_to(artifacts).as_posix()
        for sub in ("figures", "tables") if (artifacts / sub).is_dir()
        for p in (artifacts / sub).rglob("*") if p.is_file()
    )
    missing = [f"{e.notebook}: {pat}" for e in MANIFEST for pat in e.patterns()
               if not any(fnmatch.fnmatchcase(f, pat) for f in files)]
    if written is None:
        every = [pat for e in MANIFEST for pat in e.patterns()]
        undeclared = [f for f in files if not any(fnmatch.fnmatchcase(f, pat) for pat in every)]
    else:
        undeclared = []
        for notebook, outs in written.items():
            pats = declared(notebook).patterns()
            undeclared += [f"{notebook}: {f}" for f in outs if not any(fnmatch.fnmatchcase(f, p) for p in pats)]
    return {"missing": missing, "undeclared": undeclared}
