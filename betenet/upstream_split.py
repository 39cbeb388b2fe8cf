"""The paper's own train/test split and bootstrap resamples, read from the vendored index files.

The BETE-NET authors published, beside ``database.json``, the row indices of their train/test split and
of the 201 bootstrap resamples their ensembles were trained on (vendored unchanged in ``data/upstream/``,
see its README for source, commit and licence)::

    indices/idx_train_full.txt      651 row indices (the paper's training set)
    indices/idx_test_full.txt       173 row indices (the paper's test set)
    indices/idx_train_V2_<k>.txt    651 draws with replacement from the training rows (member k's training data)
    indices/idx_valid_V2_<k>.txt    the training rows never drawn (member k's out-of-bag validation set)

Rows are written as floats (``2.590000000000000000e+02``).  Row ``i`` of ``database.json`` is the record
``upstream-<i:04d>`` (:func:`material_id`, as :mod:`betenet.upstream` names converted records).

:func:`paper_split` turns the index files into a :class:`betenet.splits.Split` over the records at hand and
:func:`paper_bootstraps` into :class:`betenet.bootstrap.Bootstrap` resamples (member ``k`` =
``idx_train_V2_k`` / ``idx_valid_V2_k``); rows without a record (no CIF upstream, or refused by the
converter) are left out and counted, never silently replaced.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from betenet import splits
from betenet.bootstrap import Bootstrap, member_seed
from betenet.paths import DATA_DIR

__all__ = [
    "VENDORED_COMMIT",
    "N_BOOTSTRAPS",
    "UpstreamIndexError",
    "upstream_dir",
    "indices_dir",
    "material_id",
    "row_index",
    "read_index_file",
    "paper_split_indices",
    "paper_bootstrap_indices",
    "n_paper_bootstraps",
    "PaperSplitInfo",
    "paper_split",
    "paper_split_info",
    "paper_bootstraps",
    "vendored_sha256",
]

#: Commit of ``henniggroup/BETE-NET`` the files of ``data/upstream/`` were copied from.
VENDORED_COMMIT = "56bc783908a60e8a15e31b60018e6f3c3e48f593"
#: Bootstrap resamples published (k = 0 … 200).
N_BOOTSTRAPS = 201
_ID_RE = re.compile(r"^upstream-(\d+)$")


class UpstreamIndexError(ValueError):
    """An index file is missing or not what the paper's split/bootstrap files look like."""


def upstream_dir() -> Path:
    """``data/upstream`` (or ``$BETENET_UPSTREAM_DIR``): vendored structures/indices, ``database.json``, records."""
    env = os.environ.get("BETENET_UPSTREAM_DIR")
    if env:
        return Path(env).resolve()
    return DATA_DIR / "upstream"


def indices_dir(directory: Path | str | None = None) -> Path:
    """The index-file directory: ``directory`` or ``<upstream_dir()>/indices``."""
    return Path(directory) if directory is not None else upstream_dir() / "indices"


def material_id(index: int | str) -> str:
    """Record id of upstream row ``index``: ``upstream-0259`` (as :mod:`betenet.upstream` writes them)."""
    return f"upstream-{int(index):04d}"


def row_index(mid: str) -> int | None:
    """Upstream row of a record id ``upstream-NNNN``; ``None`` for any other id."""
    m = _ID_RE.match(str(mid))
    return int(m.group(1)) if m else None


def read_index_file(path: Path | str) -> tuple[int, ...]:
    """Row indices of one index file (one number per line, integers written as floats), in file order."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UpstreamIndexError(f"{path}: index file not found (vendored in data/upstream/indices)") from None
    out: list[int] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        try:
            value = float(s)
        except ValueError:
            raise UpstreamIndexError(f"{path}:{lineno}: {s!r} is not a number (expected a row index)") from None
        if not value.is_integer() or value < 0:
            raise UpstreamIndexError(f"{path}:{lineno}: {s!r} is not a non-negative integer row index")
        out.append(int(value))
    if not out:
        raise UpstreamIndexError(f"{path}: no row indices")
    return tuple(out)


def paper_split_indices(directory: Path | str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The paper's ``(train rows, test rows)``, each sorted; raises if they overlap or repeat."""
    d = indices_dir(directory)
    train, test = read_index_file(d / "idx_train_full.txt"), read_index_file(d / "idx_test_full.txt")
    for name, rows in (("idx_train_full.txt", train), ("idx_test_full.txt", test)):
        if len(set(rows)) != len(rows):
            raise UpstreamIndexError(f"{d / name}: {len(rows) - len(set(rows))} repeated row indices")
    both = sorted(set(train) & set(test))
    if both:
        raise UpstreamIndexError(f"{d}: {len(both)} rows are in both the train and the test file, e.g. {both[:5]}")
    return tuple(sorted(train)), tuple(sorted(test))


def n_paper_bootstraps(directory: Path | str | None = None) -> int:
    """How many consecutive resamples ``k = 0, 1, …`` have both their train and valid file."""
    d = indices_dir(directory)
    k = 0
    while (d / f"idx_train_V2_{k}.txt").exists() and (d / f"idx_valid_V2_{k}.txt").exists():
        k += 1
    return k


def paper_bootstrap_indices(k: int, directory: Path | str | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Resample ``k``: ``(training draws in file order with repeats, out-of-bag rows sorted)``.

    Checked: both within the paper's training rows, no out-of-bag row among the draws.
    """
    d = indices_dir(directory)
    draws = read_index_file(d / f"idx_train_V2_{int(k)}.txt")
    valid = read_index_file(d / f"idx_valid_V2_{int(k)}.txt")
    train, _ = paper_split_indices(d)
    outside = sorted((set(draws) | set(valid)) - set(train))
    if outside:
        raise UpstreamIndexError(f"{d}: resample {k} uses rows outside idx_train_full.txt, e.g. {outside[:5]}")
    both = sorted(set(draws) & set(valid))
    if both:
        raise UpstreamIndexError(f"{d}: resample {k}: {len(both)} rows are both drawn and out of bag, e.g. {both[:5]}")
    return draws, tuple(sorted(valid))


@dataclass(frozen=True)
class PaperSplitInfo:
    """How the paper's split maps onto the records at hand."""

    n_train_paper: int
    n_test_paper: int
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    missing_train: tuple[str, ...]  #: paper train rows without a record
    missing_test: tuple[str, ...]
    outside: tuple[str, ...]  #: records that are in neither paper file

    def describe(self) -> str:
        return (
            f"paper split: {len(self.train_ids)} of {self.n_train_paper} training and {len(self.test_ids)} of "
            f"{self.n_test_paper} test rows have a record ({len(self.missing_train)} + {len(self.missing_test)} "
            f"without one; {len(self.outside)} records in neither set)"
        )


def paper_split_info(record_ids: Iterable[str], directory: Path | str | None = None) -> PaperSplitInfo:
    """Match the paper's split with ``record_ids`` (``upstream-NNNN`` ids)."""
    ids = {str(m) for m in record_ids}
    train_rows, test_rows = paper_split_indices(directory)
    train = [material_id(i) for i in train_rows]
    test = [material_id(i) for i in test_rows]
    return PaperSplitInfo(
        n_train_paper=len(train), n_test_paper=len(test),
        train_ids=tuple(sorted(m for m in train if m in ids)), test_ids=tuple(sorted(m for m in test if m in ids)),
        missing_train=tuple(m for m in train if m not in ids), missing_test=tuple(m for m in test if m not in ids),
        outside=tuple(sorted(ids - set(train) - set(test))),
    )


def paper_split(records: Sequence[Any], directory: Path | str | None = None):
    """The paper's train/test split over ``records`` as a :class:`betenet.splits.Split` named ``"paper"``.

    Paper rows without a record are left out; the counts are in ``split.history[0]`` (``missing_train``,
    ``missing_test``, ``outside``).  Records in neither paper set are not assigned (they are reported).
    """
    elements = splits.element_sets(records)
    info = paper_split_info(elements, directory)
    if not info.train_ids or not info.test_ids:
        raise UpstreamIndexError(
            f"none of the records is in the paper's {'training' if not info.train_ids else 'test'} set "
            f"({len(elements)} records; ids must be upstream-NNNN, converted from the authors' database.json)"
        )
    covered = {m: elements[m] for m in (*info.train_ids, *info.test_ids)}
    n_all = info.n_train_paper + info.n_test_paper
    return splits.Split(
        name="paper", train_ids=info.train_ids, test_ids=info.test_ids, seed=-1,
        test_fraction=info.n_test_paper / n_all, data_hash=splits.data_hash(covered),
        history=({"method": "the paper's published split (data/upstream/indices/idx_{train,test}_full.txt)",
                  "n_train_paper": info.n_train_paper, "n_test_paper": info.n_test_paper,
                  "missing_train": list(info.missing_train), "missing_test": list(info.missing_test),
                  "outside": list(info.outside)},),
    )


def paper_bootstraps(train_ids: Iterable[str], n_members: int, ensemble_seed: int,
                     directory: Path | str | None = None) -> list:
    """Members ``0 … n_members-1`` as :class:`betenet.bootstrap.Bootstrap`: member ``k`` trains on the draws
    of ``idx_train_V2_k`` and is validated on ``idx_valid_V2_k``, both restricted to ``train_ids`` (draws of
    rows without a record are dropped, so a member may have fewer than ``len(train_ids)`` draws).

    ``seed`` of each member (weight initialisation) is :func:`betenet.bootstrap.member_seed` of
    ``(ensemble_seed, k)``, as for the project's own resamples.
    """
    ids = sorted({str(m) for m in train_ids})
    have = set(ids)
    n_avail = n_paper_bootstraps(directory)
    if n_members > n_avail:
        raise UpstreamIndexError(
            f"{indices_dir(directory)}: {n_members} ensemble members asked for, the paper published {n_avail} "
            "bootstrap resamples (EnsembleConfig.n_members must be <= that with the paper's resamples)"
        )
    out = []
    for k in range(int(n_members)):
        draws, valid = paper_bootstrap_indices(k, directory)
        sample = tuple(material_id(i) for i in draws if material_id(i) in have)
        oob = tuple(m for m in (material_id(i) for i in valid) if m in have)
        if not sample or not oob:
            raise UpstreamIndexError(
                f"paper resample {k}: {len(sample)} draws and {len(oob)} out-of-bag rows among the "
                f"{len(ids)} training records: cannot train and validate a member"
            )
        out.append(Bootstrap(index=k, seed=member_seed(ensemble_seed, k), sample_ids=sample, oob_ids=oob,
                             n_train=len(ids)))
    return out


def vendored_sha256(directory: Path | str | None = None) -> str:
    """SHA-256 over the sorted (relative path, file SHA-256) pairs of ``structures/``, ``indices/`` and ``LICENSE``."""
    root = Path(directory) if directory is not None else upstream_dir()
    h = hashlib.sha256()
    files = sorted([*root.glob("structures/*.cif"), *root.glob("indices/*.txt"), root / "LICENSE"])
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(hashlib.sha256(f.read_bytes()).hexdigest().encode())
    return h.hexdigest()
