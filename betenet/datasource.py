"""Which materials the notebooks use: this project's QE records or the authors' published data.

The choice is the profile's :class:`betenet.config.DataConfig` (``source``), set by the papermill
parameter ``data`` of every notebook (``make book DATA=upstream``)::

    cfg = get_profile(profile, data={"source": data})
    datasource.activate(cfg)            # artifacts of an upstream run: artifacts/upstream/<profile>/
    records, split = datasource.load(cfg)

``"ours"``    ``data/records`` (source ``betenet-qe``) and the element-balanced split of :mod:`betenet.splits`.
``"upstream"`` ``data/upstream/records``, converted once from ``data/upstream/database.json`` (rows the
              converter refuses are reported, not fatal), with **the paper's** split
              (:func:`betenet.upstream_split.paper_split`); ensembles then train member k on the paper's
              resample k (:func:`bootstraps`, used by :func:`betenet.ensemble.run_ensembles`).

The two never mix: different record directories, and with ``upstream`` every artifact (tables, figures,
checkpoints, ensembles) lives under ``artifacts/upstream/<profile>/`` (:func:`activate`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from . import paths, splits, upstream
from .records import load_records
from .upstream_split import paper_bootstraps, paper_split, upstream_dir

__all__ = [
    "SOURCES",
    "DataSourceError",
    "source_of",
    "activate",
    "records_dir",
    "database_json",
    "ensure_upstream_records",
    "load",
    "bootstraps",
    "describe",
    "scalar_check",
    "level_records_dir",
    "labels_of",
    "load_our_records",
    "label_counts",
]

SOURCES = ("ours", "upstream")


class DataSourceError(FileNotFoundError):
    """The data of the chosen source are not there (e.g. no ``database.json`` for ``DATA=upstream``)."""


def source_of(profile: Any) -> str:
    """``"ours"`` or ``"upstream"``: the profile's ``data.source`` (a profile name means ``"ours"``)."""
    data = getattr(profile, "data", None)
    source = getattr(data, "source", "ours")
    if source not in SOURCES:
        raise ValueError(f"data source must be one of {SOURCES}, got {source!r}")
    return source


def activate(profile: Any) -> str:
    """Route this process's artifacts (and those of the workers it starts) by the profile's data source:
    ``artifacts/upstream/<profile>/`` for the published data, ``artifacts/<profile>/`` for ours.

    Sets ``$BETENET_DATA_SOURCE`` (:data:`betenet.paths.DATA_SOURCE_ENV`); returns the source.
    """
    source = source_of(profile)
    if source == "ours":
        os.environ.pop(paths.DATA_SOURCE_ENV, None)
    else:
        os.environ[paths.DATA_SOURCE_ENV] = source
    return source


def level_records_dir(level: str) -> Path:
    """``data/records`` for the ``screening`` level, ``data/records-<level>`` for any other
    (the directories :func:`betenet.qe.dataset.dataset_dirs` writes)."""
    return paths.RECORDS_DIR if level == "screening" else paths.RECORDS_DIR.parent / f"records-{level}"


def labels_of(profile: Any) -> str:
    """The profile's label level for our data (``data.labels``; ``"screening"`` for a profile name)."""
    return getattr(getattr(profile, "data", None), "labels", "screening")


def load_our_records(profile: Any) -> list:
    """Our QE records at the profile's label level: one level's directory, or for ``"mixed"`` the validated
    record of each material that has one and the screening record of the others."""
    level = labels_of(profile)
    if level != "mixed":
        d = level_records_dir(level)
        if not d.is_dir() or not any(d.glob("*.json")):
            raise DataSourceError(f"{d}: no {level}-level records (DataConfig.labels={level!r}); "
                                  "compute some with `betenet qe run --accuracy validated`, or choose labels='mixed'")
        return load_records(d)
    by_id = {r.material_id: r for r in load_records(level_records_dir("screening"))}
    vdir = level_records_dir("validated")
    if vdir.is_dir():
        by_id.update({r.material_id: r for r in load_records(vdir)})
    return [by_id[k] for k in sorted(by_id)]


def label_counts(records: Sequence[Any]) -> dict[str, int]:
    """How many records of each accuracy level (``provenance.accuracy``; ``"published"`` for upstream rows)."""
    counts: dict[str, int] = {}
    for r in records:
        level = (r.provenance or {}).get("accuracy") or ("published" if r.source == "upstream-bete-net" else "unknown")
        counts[level] = counts.get(level, 0) + 1
    return dict(sorted(counts.items()))


def records_dir(profile: Any) -> Path:
    """Where the records of the profile's data source are: ``data/records`` (or the label level's
    directory; the screening one for ``"mixed"``) or ``data/upstream/records``."""
    if source_of(profile) == "ours":
        level = labels_of(profile)
        return level_records_dir("screening" if level == "mixed" else level)
    return upstream.default_records_dir()


def database_json() -> Path:
    """``data/upstream/database.json`` (or under ``$BETENET_UPSTREAM_DIR``): where a user puts the authors' file;
    when only ``betenet data download`` fetched it, ``data/upstream/download/database.json``."""
    put, downloaded = upstream_dir() / "database.json", upstream_dir() / "download" / "database.json"
    return downloaded if not put.exists() and downloaded.exists() else put


def ensure_upstream_records(db_json: Path | str | None = None, out_dir: Path | str | None = None, *,
                            progress: bool = False) -> Path:
    """Convert ``database.json`` into ``data/upstream/records`` unless that was done from this very file.

    Skipped when the conversion summary (:func:`betenet.upstream.conversion_summary_path`) names a source of
    the same size (the 85 MB file is not re-hashed on every notebook); rows already converted are kept
    either way.  Invalid rows are left out and listed in the summary.  Without ``database.json`` and
    without converted records, raises :class:`DataSourceError` saying what to do.
    """
    db = Path(db_json) if db_json is not None else database_json()
    out = Path(out_dir) if out_dir is not None else upstream.default_records_dir()
    summary_path = upstream.conversion_summary_path(out)
    has_records = out.is_dir() and any(out.glob("upstream-*.json"))
    if not db.exists():
        if has_records:
            return out
        raise DataSourceError(
            f"DATA=upstream needs the authors' database.json at {db} (or records already converted into {out}); "
            f"get it from https://github.com/{upstream.UPSTREAM_REPO} (`betenet data download --allow-unverified` "
            f"puts it into {db.parent / 'download'}, which is looked in too), or run with DATA=ours"
        )
    if has_records and summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError:
            summary = {}
        if summary.get("source_bytes") == db.stat().st_size and summary.get("n_records") == len(list(out.glob("upstream-*.json"))):
            return out
    report = upstream.convert_upstream(db, out, skip_invalid=True, progress=progress)
    print(f"[betenet] {db} -> {out}: {report.summary()}", flush=True)
    return out


def load(profile: Any, *, directory: Path | str | None = None):
    """``(records, split)`` of the profile's data source (see the module docstring).

    ``ours``: every record of ``data/records`` and the saved (or extended) element-balanced split.
    ``upstream``: the converted published records and the paper's split over them.
    """
    source = activate(profile)
    if source == "ours":
        records = load_records(Path(directory)) if directory is not None else load_our_records(profile)
        # the validated labels cover other materials than the screening ones: their own saved split
        name = "validated" if labels_of(profile) == "validated" and directory is None else "default"
        return records, splits.load_or_make_split(records, name, return_split=True)
    rdir = Path(directory) if directory is not None else ensure_upstream_records()
    records = [r for r in load_records(rdir) if r.source == "upstream-bete-net"]
    if not records:
        raise DataSourceError(f"{rdir}: no records converted from the authors' database.json")
    return records, paper_split(records)


def bootstraps(profile: Any, train_ids: Sequence[str], n_members: int) -> list | None:
    """The bootstrap resamples the ensembles train on: the paper's (member k = ``idx_train_V2_k`` /
    ``idx_valid_V2_k``) for the published data, ``None`` (the seeded resamples of
    :func:`betenet.bootstrap.bootstrap_samples`) for ours."""
    if source_of(profile) == "ours":
        return None
    return paper_bootstraps(train_ids, n_members, profile.ensemble.seed)


def describe(profile: Any, split: Any) -> str:
    """One line on where the data and the split come from (for notebooks and the results page)."""
    if source_of(profile) == "ours":
        vdir = level_records_dir("validated")
        n_valid = len(list(vdir.glob("*.json"))) if vdir.is_dir() else 0
        return (f"this project's QE records ({labels_of(profile)} labels; {n_valid} validated-level records exist), "
                f"element-balanced split ({len(split.train_ids)} train / {len(split.test_ids)} test)")
    info = (split.history or [{}])[0]
    return (
        f"the authors' published database.json, the paper's split: {len(split.train_ids)} of "
        f"{info.get('n_train_paper', '?')} training and {len(split.test_ids)} of {info.get('n_test_paper', '?')} "
        f"test rows ({len(info.get('missing_train', []))} + {len(info.get('missing_test', []))} rows without a record)"
    )


def scalar_check(records: Sequence[Any]):
    """Summary of :func:`betenet.upstream.scalar_comparison` over the records converted from the published
    data: per property, how many rows, the median and the largest |relative difference| between the moment
    recomputed from the α²F and the published scalar in :data:`betenet.upstream.UPSTREAM_UNITS`.  Near zero
    confirms the units; an empty table for records of ours (no published scalars)."""
    import pandas as pd

    published = [r for r in records if r.source == "upstream-bete-net"]
    cmp = upstream.scalar_comparison(published)
    rows = []
    for prop, col in (("lambda", "rel_diff_lambda"), ("omega_log", "rel_diff_omega_log"), ("omega_2", "rel_diff_omega_2")):
        d = cmp[col].abs().dropna() if len(cmp) else pd.Series(dtype=float)
        if len(d):
            rows.append({"property": prop, "n": len(d), "median_abs_rel_diff": float(d.median()),
                         "max_abs_rel_diff": float(d.max()), "worst": cmp.loc[d.idxmax(), "material_id"]})
    return pd.DataFrame(rows, columns=["property", "n", "median_abs_rel_diff", "max_abs_rel_diff", "worst"])
