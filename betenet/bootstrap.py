"""Bootstrap resamples of the training split: which materials member ``k`` trains on (a pure function
of the ensemble seed, ``k`` and the sorted training ids) and which are out of bag."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["expected_oob_fraction", "member_seed", "Bootstrap", "bootstrap_sample", "bootstrap_samples"]


def expected_oob_fraction(n: int) -> float:
    """Expected out-of-bag fraction ``(1 - 1/n)^n`` of a size-``n`` bootstrap (-> 1/e ≈ 0.368)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return float((1.0 - 1.0 / n) ** n)


def member_seed(ensemble_seed: int, index: int) -> int:
    """Seed of member ``index`` (weights initialisation, training shuffles): a 31-bit integer derived
    from ``(ensemble_seed, index)`` by NumPy's ``SeedSequence`` (independent streams per member)."""
    if index < 0:
        raise ValueError(f"member index must be >= 0, got {index}")
    return int(np.random.SeedSequence([int(ensemble_seed), int(index), 0xB00]).generate_state(1)[0] >> 1)


@dataclass(frozen=True)
class Bootstrap:
    """One bootstrap resample of the training split.

    ``sample_ids``: the ``n`` draws with replacement (draw order, repeats kept) -> training set;
    ``oob_ids``: the training materials never drawn (sorted) -> validation set.
    """

    index: int
    seed: int
    sample_ids: tuple[str, ...]
    oob_ids: tuple[str, ...]
    n_train: int
    redraws: int = 0

    @property
    def unique_ids(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.sample_ids)))

    @property
    def oob_fraction(self) -> float:
        return len(self.oob_ids) / self.n_train

    @property
    def unique_fraction(self) -> float:
        return len(set(self.sample_ids)) / self.n_train

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.index,
            "seed": self.seed,
            "n_train": self.n_train,
            "n_sample": len(self.sample_ids),
            "n_unique": len(set(self.sample_ids)),
            "n_oob": len(self.oob_ids),
            "oob_fraction": self.oob_fraction,
            "unique_fraction": self.unique_fraction,
            "redraws": self.redraws,
            "sample_ids": list(self.sample_ids),
            "oob_ids": list(self.oob_ids),
        }


def bootstrap_sample(train_ids: Iterable[str], index: int, seed: int) -> Bootstrap:
    """Bootstrap resample number ``index`` of ``train_ids`` for ensemble seed ``seed``.

    Draws ``n = len(train_ids)`` ids with replacement (uniformly) from the *sorted* ids with the NumPy
    generator seeded by ``(seed, index)``.  The rare draw that leaves no OOB material (probability
    ``n!/n^n``: 1/2 for n = 2, 4e-4 for n = 10) cannot be validated; it is redrawn from the next
    stream ``(seed, index, r)`` and ``redraws`` counts how often.  Needs at least 2 distinct ids.
    """
    given = [str(m) for m in train_ids]  # materialised once (generators allowed)
    ids = sorted(set(given))
    if len(ids) != len(given):
        raise ValueError(f"train_ids contains duplicates ({len(given) - len(ids)} repeated ids)")
    n = len(ids)
    if n < 2:
        raise ValueError(f"a bootstrap needs at least 2 training materials, got {n}")
    for redraw in range(1000):
        key = [int(seed), int(index)] + ([redraw] if redraw else [])
        rng = np.random.default_rng(key)
        draw = rng.integers(0, n, size=n)
        drawn = np.zeros(n, dtype=bool)
        drawn[draw] = True
        if not drawn.all():
            sample = tuple(ids[i] for i in draw)
            oob = tuple(ids[i] for i in np.flatnonzero(~drawn))
            return Bootstrap(int(index), member_seed(seed, index), sample, oob, n, redraw)
    raise AssertionError("no bootstrap with an out-of-bag material in 1000 draws")  # pragma: no cover


def bootstrap_samples(train_ids: Iterable[str], n_members: int, seed: int) -> list[Bootstrap]:
    """The first ``n_members`` bootstrap resamples (members ``0 .. n_members-1``)."""
    ids = list(train_ids)
    return [bootstrap_sample(ids, k, seed) for k in range(int(n_members))]
