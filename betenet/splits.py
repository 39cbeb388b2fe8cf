"""Element-balanced train/test split (Methods IV.2), saved as index files every notebook shares.

The paper partitions its 818 materials 80/20 "such that elements had comparable representation in
both training and testing data".  We do this with *iterative stratification* over element-presence
labels (Sechidis, Tsoumakas & Vlahavas 2011, "On the stratification of multi-label data"): each
material carries one binary label per element it contains; the rarest label is distributed first,
each of its materials going to the fold that most lacks that element (ties: the fold that lacks
more materials overall, then a seeded random choice).  Deterministic given ``seed`` and the set of
(material id, elements); independent of the order of ``records``.

On disk (``data/splits/``, committed with the dataset)::

    <name>-train.txt   material ids, one per line, sorted
    <name>-test.txt    material ids, one per line, sorted
    <name>.json        {"schema": "betenet.split", "seed", "test_fraction", "method", "n_train", "n_test",
                        "data_hash", "ids_hash", "element_counts": {El: [n_train, n_test]}, "history": [...]}

``data_hash`` is the SHA-256 of the sorted (material id, elements) pairs the split covers;
``ids_hash`` that of the two id lists (detects hand-edited or half-written files).

Growing datasets
----------------
The QE dataset grows while people work, and a split must never change silently under a trained
model.  :func:`load_or_make_split` therefore

* reuses the saved split when the records are exactly the ones it covers;
* when records were **added** (``on_new="extend"``, the default): keeps every existing assignment
  and assigns only the new materials, by continuing the same stratification from the current
  per-element counts (seeded by ``seed`` and the revision number, so deterministic).  The files are
  rewritten with the old assignments verified unchanged, the revision is appended to ``history``,
  and a :class:`SplitExtendedWarning` says how many materials were added;
* ``on_new="error"`` raises :class:`StaleSplitError` instead (for a frozen, published split);
* when saved materials are **missing** from the records, or a material's elements changed, or the
  files disagree with their JSON, raises :class:`StaleSplitError` (a test material silently leaving
  the test set would make results incomparable).  Use a new ``name`` or delete the files on purpose.

Downstream caches (ensembles, baseline tables) should key on ``data_hash`` of the split they used.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .jsonio import utc_now
from .paths import SPLITS_DIR, artifacts_dir

__all__ = [
    "Split",
    "StaleSplitError",
    "SplitExtendedWarning",
    "SPLIT_SCHEMA",
    "element_sets",
    "data_hash",
    "iterative_stratification",
    "make_split",
    "extend_split",
    "save_split",
    "load_split",
    "load_or_make_split",
    "split_for_run",
    "element_counts",
]

SPLIT_SCHEMA = "betenet.split"
_METHOD = "iterative stratification over element-presence labels (Sechidis et al. 2011)"


class StaleSplitError(RuntimeError):
    """A saved split does not match the current records (materials missing/changed or new ones with ``on_new='error'``)."""


class SplitExtendedWarning(UserWarning):
    """A saved split was extended with newly added materials (existing assignments kept)."""


@dataclass(frozen=True)
class Split:
    """A train/test partition of material ids (both sorted) plus how it was made."""

    name: str
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    seed: int
    test_fraction: float
    data_hash: str
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def ids(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.train_ids, self.test_ids

    def assignment(self) -> dict[str, str]:
        """material id -> ``"train"`` / ``"test"``."""
        out = {m: "train" for m in self.train_ids}
        out.update({m: "test" for m in self.test_ids})
        return out


# ----------------------------------------------------------------------------- labels and hashes


def element_sets(records: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    """material id -> sorted element symbols, for records (``MaterialRecord``) or ``(id, elements)`` pairs.

    Raises ``ValueError`` for duplicate material ids.
    """
    out: dict[str, tuple[str, ...]] = {}
    for rec in records:
        if isinstance(rec, tuple) and len(rec) == 2:
            mid, els = rec
        else:
            mid, els = rec.material_id, rec.elements
        mid = str(mid)
        if mid in out:
            raise ValueError(f"duplicate material id {mid!r} in records")
        out[mid] = tuple(sorted(str(e) for e in els))
    return out


def data_hash(elements: dict[str, Sequence[str]]) -> str:
    """SHA-256 of the sorted (material id, elements) pairs: what a split depends on."""
    payload = json.dumps(sorted((m, sorted(e)) for m, e in elements.items()), separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _ids_hash(train: Sequence[str], test: Sequence[str]) -> str:
    payload = json.dumps([sorted(train), sorted(test)], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _label_matrix(ids: Sequence[str], elements: dict[str, Sequence[str]]) -> tuple[np.ndarray, list[str]]:
    symbols = sorted({e for m in ids for e in elements[m]})
    col = {e: j for j, e in enumerate(symbols)}
    labels = np.zeros((len(ids), len(symbols)), dtype=bool)
    for i, m in enumerate(ids):
        for e in elements[m]:
            labels[i, col[e]] = True
    return labels, symbols


# ----------------------------------------------------------------------------- the algorithm


def iterative_stratification(
    labels: np.ndarray,
    fractions: Sequence[float],
    rng: np.random.Generator,
    assigned: np.ndarray | None = None,
) -> np.ndarray:
    """Assign examples to folds so every label is spread over the folds in proportion ``fractions``.

    Parameters
    ----------
    labels: bool array ``(n_examples, n_labels)``.
    fractions: desired fold proportions (summing to 1), e.g. ``(0.8, 0.2)``.
    rng: source of the tie-breaking randomness (the only randomness).
    assigned: optional int array ``(n_examples,)`` of fixed fold indices, ``-1`` for examples still to
        assign.  Fixed examples count towards the desired totals, so a split can be extended.

    Returns the fold index of every example (fixed ones unchanged).
    """
    labels = np.asarray(labels, dtype=bool)
    n, k = labels.shape
    r = np.asarray(fractions, dtype=float)
    if r.ndim != 1 or r.size < 2 or np.any(r < 0) or not np.isclose(r.sum(), 1.0):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {list(r)}")
    fold = np.full(n, -1, dtype=int) if assigned is None else np.array(assigned, dtype=int)
    if fold.shape != (n,):
        raise ValueError(f"assigned has shape {fold.shape}, expected ({n},)")
    n_folds = r.size
    lab = labels.astype(float)
    desired_fold = r * n - np.array([(fold == j).sum() for j in range(n_folds)], dtype=float)
    desired_label = np.outer(r, lab.sum(axis=0)) - np.array([lab[fold == j].sum(axis=0) for j in range(n_folds)])

    def pick(primary: np.ndarray, secondary: np.ndarray) -> int:
        cands = np.flatnonzero(primary == primary.max())
        if cands.size > 1:
            sec = secondary[cands]
            cands = cands[sec == sec.max()]
        return int(cands[0] if cands.size == 1 else rng.choice(cands))

    def put(i: int, j: int) -> None:
        fold[i] = j
        desired_label[j] -= lab[i]
        desired_fold[j] -= 1

    while True:
        todo = fold < 0
        if not todo.any():
            break
        remaining = lab[todo].sum(axis=0)
        if not remaining.any():  # examples without labels: fill folds by size
            for i in rng.permutation(np.flatnonzero(todo)):
                put(int(i), pick(desired_fold, np.zeros(n_folds)))
            break
        masked = np.where(remaining > 0, remaining, np.inf)
        rarest = np.flatnonzero(masked == masked.min())
        label = int(rarest[0] if rarest.size == 1 else rng.choice(rarest))
        for i in rng.permutation(np.flatnonzero(todo & labels[:, label])):
            want = desired_label[:, label]
            # when no fold wants a whole example of this label any more (e.g. an element present in a
            # single material: 0.8 vs 0.2), Sechidis' rule would always pick the largest fold, and a
            # dataset of elemental solids would end up with an empty test set; then the fold sizes decide
            put(int(i), pick(want, desired_fold) if want.max() >= 1.0 else pick(desired_fold, want))
    return fold


def _n_test_bounds_fix(fold: np.ndarray, fixed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """With >= 2 examples, make sure neither fold is empty (moving a freely assigned example)."""
    if fold.size < 2:
        return fold
    for empty in (0, 1):
        if not (fold == empty).any():
            movable = np.flatnonzero((fold == 1 - empty) & ~fixed)
            if movable.size:
                fold[int(rng.choice(movable))] = empty
    return fold


def paper_sides(records: Iterable[Any]) -> dict[str, int]:
    """Materials whose record says they are one of the paper's structures (``provenance.upstream_split``,
    :func:`betenet.qe.record.build_record`): id -> 0 (the paper's train side) or 1 (its test side).
    Such a material keeps the paper's side in our split, so that our labels and the paper's can be compared
    on the same test materials."""
    sides = {}
    for r in records:
        side = (getattr(r, "provenance", None) or {}).get("upstream_split")
        if side in ("train", "test"):
            sides[r.material_id] = 0 if side == "train" else 1
    return sides


def make_split(
    records: Iterable[Any], test_fraction: float = 0.2, seed: int = 0, *, name: str = "default"
) -> Split:
    """Element-balanced split of ``records`` (``MaterialRecord`` s or ``(id, elements)`` pairs).

    Deterministic in (set of ids and their elements, ``test_fraction``, ``seed``).  Materials that are
    among the paper's structures (:func:`paper_sides`) are placed on the paper's side first.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    records = list(records)
    elements = element_sets(records)
    if len(elements) < 2:
        raise ValueError(f"need at least 2 materials to split, got {len(elements)}")
    ids = sorted(elements)
    labels, _ = _label_matrix(ids, elements)
    rng = np.random.default_rng([int(seed), 0])
    sides = paper_sides(records)
    if sides:
        assigned = np.array([sides.get(m, -1) for m in ids])
        fold = iterative_stratification(labels, (1.0 - test_fraction, test_fraction), rng, assigned=assigned)
        fold = _n_test_bounds_fix(fold, assigned >= 0, rng)
    else:
        fold = iterative_stratification(labels, (1.0 - test_fraction, test_fraction), rng)
        fold = _n_test_bounds_fix(fold, np.zeros(len(ids), dtype=bool), rng)
    train = tuple(m for m, f in zip(ids, fold) if f == 0)
    test = tuple(m for m, f in zip(ids, fold) if f == 1)
    dh = data_hash(elements)
    hist = ({"revision": 0, "data_hash": dh, "n_train": len(train), "n_test": len(test), "n_added": len(ids), "created": utc_now()},)
    return Split(name, train, test, int(seed), float(test_fraction), dh, hist)


def extend_split(split: Split, records: Iterable[Any]) -> Split:
    """Keep every assignment of ``split`` and assign the materials of ``records`` it does not cover.

    The new materials are placed by continuing the stratification from the current per-element
    counts (seeded by the split's seed and its revision number).  ``records`` must contain every
    material of ``split`` (else :class:`StaleSplitError`).
    """
    records = list(records)
    elements = element_sets(records)
    old = set(split.train_ids) | set(split.test_ids)
    missing = sorted(old - set(elements))
    if missing:
        raise StaleSplitError(
            f"split {split.name!r}: {len(missing)} material(s) of the saved split are not in the records "
            f"(e.g. {missing[:10]}); a split cannot lose materials silently"
        )
    new = sorted(set(elements) - old)
    if not new:
        return split
    ids = sorted(elements)
    labels, _ = _label_matrix(ids, elements)
    where = split.assignment()
    sides = paper_sides(records)  # a new material that is one of the paper's structures: the paper's side
    assigned = np.array([{"train": 0, "test": 1}[where[m]] if m in where else sides.get(m, -1) for m in ids])
    kept = np.array([m in where for m in ids])
    revision = len(split.history)
    rng = np.random.default_rng([split.seed, revision])
    fold = iterative_stratification(labels, (1.0 - split.test_fraction, split.test_fraction), rng, assigned=assigned)
    fold = _n_test_bounds_fix(fold, assigned >= 0, rng)
    if not np.array_equal(fold[kept], assigned[kept]):  # pragma: no cover - invariant
        raise AssertionError("extend_split changed an existing assignment")
    train = tuple(m for m, f in zip(ids, fold) if f == 0)
    test = tuple(m for m, f in zip(ids, fold) if f == 1)
    dh = data_hash(elements)
    entry = {"revision": revision, "data_hash": dh, "n_train": len(train), "n_test": len(test), "n_added": len(new), "created": utc_now()}
    return Split(split.name, train, test, split.seed, split.test_fraction, dh, split.history + (entry,))


# ----------------------------------------------------------------------------- files


def _paths(name: str, directory: Path) -> tuple[Path, Path, Path]:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid split name {name!r}")
    d = Path(directory)
    return d / f"{name}-train.txt", d / f"{name}-test.txt", d / f"{name}.json"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def save_split(split: Split, records: Iterable[Any] | None = None, directory: Path = SPLITS_DIR) -> Path:
    """Write ``<name>-train.txt``, ``<name>-test.txt`` and ``<name>.json``; returns the JSON path.

    ``records`` (optional) adds per-element train/test counts to the JSON.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    p_train, p_test, p_json = _paths(split.name, directory)
    meta: dict[str, Any] = {
        "schema": SPLIT_SCHEMA,
        "schema_version": 1,
        "name": split.name,
        "method": _METHOD,
        "seed": split.seed,
        "test_fraction": split.test_fraction,
        "n_train": len(split.train_ids),
        "n_test": len(split.test_ids),
        "data_hash": split.data_hash,
        "ids_hash": _ids_hash(split.train_ids, split.test_ids),
        "history": list(split.history),
    }
    if records is not None:
        counts = element_counts(records, split.train_ids, split.test_ids)
        meta["element_counts"] = {str(r.element): [int(r.n_train), int(r.n_test)] for r in counts.itertuples()}
    _write_atomic(p_train, "".join(f"{m}\n" for m in split.train_ids))
    _write_atomic(p_test, "".join(f"{m}\n" for m in split.test_ids))
    _write_atomic(p_json, json.dumps(meta, indent=1) + "\n")
    return p_json


def _read_ids(path: Path) -> tuple[str, ...]:
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(set(ids)) != len(ids):
        raise StaleSplitError(f"{path}: duplicate material ids")
    return tuple(sorted(ids))


def load_split(name: str = "default", directory: Path = SPLITS_DIR) -> Split | None:
    """Read a saved split (``None`` if it does not exist); :class:`StaleSplitError` if its files disagree."""
    p_train, p_test, p_json = _paths(name, Path(directory))
    present = [p.exists() for p in (p_train, p_test, p_json)]
    if not any(present):
        return None
    if not all(present):
        raise StaleSplitError(
            f"split {name!r} in {directory} is incomplete: expected {p_train.name}, {p_test.name} and {p_json.name}"
        )
    try:
        meta = json.loads(p_json.read_text())
    except json.JSONDecodeError as exc:
        raise StaleSplitError(f"{p_json}: not valid JSON ({exc})") from exc
    if meta.get("schema") != SPLIT_SCHEMA:
        raise StaleSplitError(f"{p_json}: field 'schema' is {meta.get('schema')!r}, expected {SPLIT_SCHEMA!r}")
    train, test = _read_ids(p_train), _read_ids(p_test)
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise StaleSplitError(f"split {name!r}: materials in both train and test: {overlap[:10]}")
    if meta.get("ids_hash") != _ids_hash(train, test):
        raise StaleSplitError(
            f"split {name!r}: {p_train.name}/{p_test.name} do not match 'ids_hash' in {p_json.name} "
            "(edited by hand or partially written); delete the three files to make a new split"
        )
    return Split(
        name=name,
        train_ids=train,
        test_ids=test,
        seed=int(meta["seed"]),
        test_fraction=float(meta["test_fraction"]),
        data_hash=str(meta["data_hash"]),
        history=tuple(meta.get("history", ())),
    )


def load_or_make_split(
    records: Sequence[Any],
    name: str = "default",
    *,
    seed: int | None = None,
    test_fraction: float | None = None,
    on_new: Literal["extend", "error"] = "extend",
    directory: Path = SPLITS_DIR,
    return_split: bool = False,
) -> tuple[list[str], list[str]] | Split:
    """The split ``name`` for ``records``: reused, extended with new materials, or made and saved.

    Returns ``(train_ids, test_ids)`` (sorted lists), or the :class:`Split` with ``return_split=True``.
    ``seed``/``test_fraction`` default to the saved values (new split: 0 and 0.2); passing values that
    differ from a saved split raises ``ValueError`` (choose another ``name``).  See the module
    docstring for the policy on added/removed materials.
    """
    if on_new not in ("extend", "error"):
        raise ValueError(f"on_new must be 'extend' or 'error', got {on_new!r}")
    records = list(records)
    elements = element_sets(records)
    split = load_split(name, directory)
    if split is None:
        split = make_split(records, 0.2 if test_fraction is None else test_fraction, 0 if seed is None else seed, name=name)
        save_split(split, records, directory)
    else:
        for label, asked, saved in (("seed", seed, split.seed), ("test_fraction", test_fraction, split.test_fraction)):
            if asked is not None and asked != saved:
                raise ValueError(f"split {name!r} was saved with {label}={saved}, asked for {asked}; use another name")
        covered = set(split.train_ids) | set(split.test_ids)
        missing = sorted(covered - set(elements))
        if missing:
            raise StaleSplitError(
                f"split {name!r}: {len(missing)} material(s) of the saved split are not in the records "
                f"(e.g. {missing[:10]}); use another split name or delete {name}-*.txt/{name}.json on purpose"
            )
        if data_hash({m: elements[m] for m in covered}) != split.data_hash:
            raise StaleSplitError(
                f"split {name!r}: the elements of saved materials changed since the split was made "
                "(data_hash of the covered materials differs from the saved one); use another split name"
            )
        new = sorted(set(elements) - covered)
        if new:
            if on_new == "error":
                raise StaleSplitError(
                    f"split {name!r}: {len(new)} material(s) were added since it was saved (e.g. {new[:10]}) "
                    "and on_new='error'"
                )
            split = extend_split(split, records)
            save_split(split, records, directory)
            warnings.warn(
                f"split {name!r} extended with {len(new)} new material(s) (existing assignments kept): "
                f"now {len(split.train_ids)} train / {len(split.test_ids)} test",
                SplitExtendedWarning,
                stacklevel=2,
            )
    if return_split:
        return split
    return list(split.train_ids), list(split.test_ids)


def split_for_run(
    records: Sequence[Any],
    profile_name: str,
    *,
    split_dir: Path | str | None = None,
    name: str = "default",
    committed_dir: Path | None = None,
) -> tuple[Split, Path]:
    """The split a command-line run (``betenet train``, ``betenet ensemble run``) uses, and where it lives.

    A run never writes under ``data/`` unless told to:

    * ``split_dir`` given: :func:`load_or_make_split` there (made, extended and saved there: asked for);
    * otherwise the committed split (``data/splits``, ``committed_dir``) when it covers exactly these
      records — read only, nothing is written;
    * records that contain every committed material and more (e.g. ``--records DIR`` with new
      materials): the committed assignments extended with the new materials, in
      ``artifacts/<profile>/splits/`` (the committed files are copied there first);
    * any other set of records: a fresh element-balanced split ``records-<data hash>`` in
      ``artifacts/<profile>/splits/`` (deterministic for that set of materials).
    """

    records = list(records)
    if split_dir is not None:
        return load_or_make_split(records, name, directory=Path(split_dir), return_split=True), Path(split_dir)
    committed_dir = Path(SPLITS_DIR if committed_dir is None else committed_dir)
    saved = load_split(name, committed_dir)
    ids = set(element_sets(records))
    covered = set(saved.train_ids) | set(saved.test_ids) if saved is not None else set()
    if saved is not None and covered == ids:
        return load_or_make_split(records, name, on_new="error", directory=committed_dir, return_split=True), committed_dir
    derived = artifacts_dir(profile_name, "splits")
    if saved is not None and covered <= ids:
        if load_split(name, derived) is None:
            for src, dest in zip(_paths(name, committed_dir), _paths(name, derived)):
                _write_atomic(dest, src.read_text())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SplitExtendedWarning)
                return load_or_make_split(records, name, directory=derived, return_split=True), derived
        except StaleSplitError:  # an older extension in artifacts/ covers materials these records lack
            pass
    fresh = f"records-{data_hash(element_sets(records))[:12]}"
    return load_or_make_split(records, fresh, directory=derived, return_split=True), derived


# ----------------------------------------------------------------------------- reporting


def element_counts(records: Iterable[Any], train_ids: Iterable[str], test_ids: Iterable[str]):
    """Per-element table (pandas DataFrame, ordered by atomic number): ``element, Z, n_train, n_test,
    n_total, test_share`` (share of the element's materials that are in the test set)."""
    import pandas as pd
    from pymatgen.core import Element

    elements = element_sets(records)
    train, test = set(train_ids), set(test_ids)
    unknown = sorted((train | test) - set(elements))
    if unknown:
        raise KeyError(f"split ids not in records: {unknown[:10]}")
    rows: dict[str, list[int]] = {}
    for m, els in elements.items():
        j = 0 if m in train else 1 if m in test else None
        if j is None:
            continue
        for e in els:
            rows.setdefault(e, [0, 0])[j] += 1
    df = pd.DataFrame(
        [(e, Element(e).Z, c[0], c[1]) for e, c in rows.items()], columns=["element", "Z", "n_train", "n_test"]
    )
    df["n_total"] = df["n_train"] + df["n_test"]
    df["test_share"] = df["n_test"] / df["n_total"]
    return df.sort_values("Z").reset_index(drop=True)
