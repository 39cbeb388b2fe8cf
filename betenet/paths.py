"""Absolute paths of the repository, so code runs from any working directory.

``BETENET_ARTIFACTS`` overrides where generated outputs (models, figures, tables) go;
``BETENET_DATA`` overrides the data directory (e.g. a user's copy of the upstream database).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "REPO_ROOT",
    "DATA_DIR",
    "RECORDS_DIR",
    "QE_RUNS_DIR",
    "PSEUDO_DIR",
    "SPLITS_DIR",
    "NOTEBOOKS_DIR",
    "BOOK_DIR",
    "CHAPTERS_DIR",
    "artifacts_dir",
    "DATA_SOURCE_ENV",
]

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
DATA_DIR: Path = Path(os.environ.get("BETENET_DATA", REPO_ROOT / "data")).resolve()
#: Parsed, validated material records (one JSON file per material), computed by this project.
RECORDS_DIR: Path = DATA_DIR / "records"
#: Per-material QE working directories (inputs, compact logs, status.json).
QE_RUNS_DIR: Path = DATA_DIR / "qe"
#: Project-generated pseudopotentials and the ld1.x inputs that made them.
PSEUDO_DIR: Path = DATA_DIR / "pseudo"
#: Train/test split index files shared by every notebook.
SPLITS_DIR: Path = DATA_DIR / "splits"
NOTEBOOKS_DIR: Path = REPO_ROOT / "notebooks"
BOOK_DIR: Path = REPO_ROOT / "book"
#: Papermill writes executed notebooks here; the book renders them with execution off.
CHAPTERS_DIR: Path = BOOK_DIR / "chapters"


#: Environment variable naming the data source of this process (``betenet.datasource.activate``):
#: ``upstream`` puts every artifact under ``artifacts/upstream/<profile>/``, apart from our data's.
DATA_SOURCE_ENV = "BETENET_DATA_SOURCE"


def artifacts_dir(profile: str, *parts: str, create: bool = True) -> Path:
    """Directory for generated outputs of ``profile`` (``artifacts/<profile>/<parts...>``; with the
    published data, ``$BETENET_DATA_SOURCE=upstream``: ``artifacts/upstream/<profile>/<parts...>``)."""
    root = Path(os.environ.get("BETENET_ARTIFACTS", REPO_ROOT / "artifacts")).resolve()
    if os.environ.get(DATA_SOURCE_ENV, "ours") == "upstream":
        root = root / "upstream"
    path = root.joinpath(profile, *parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
