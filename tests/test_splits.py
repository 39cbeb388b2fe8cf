"""Element-balanced splits: balance, determinism, growth with new records, stale detection."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from betenet.splits import (
    SplitExtendedWarning,
    StaleSplitError,
    element_counts,
    extend_split,
    iterative_stratification,
    load_or_make_split,
    load_split,
    make_split,
)
from betenet.plots.baseline import plot_element_counts

METALS = ["Al", "Nb", "V", "Ta", "Mo", "W", "Ti", "Zr", "Hf", "Sc", "Y", "Mg", "Cu", "Pd", "Pt", "Ru", "Os", "Ir"]
LIGHT = ["C", "N", "B", "O"]


def _pool(n: int, seed: int = 3) -> list[tuple[str, tuple[str, ...]]]:
    """``n`` (id, elements) pairs: unaries, binaries and ternaries with skewed element frequencies."""
    rng = np.random.default_rng(seed)
    p = np.linspace(2.0, 0.3, len(METALS))
    p /= p.sum()
    out = []
    for i in range(n):
        k = int(rng.choice([1, 2, 2, 3]))
        els = set(rng.choice(METALS, size=k, replace=False, p=p).tolist())
        if rng.random() < 0.25:
            els.add(str(rng.choice(LIGHT)))
        out.append((f"m{i:04d}", tuple(sorted(els))))
    return out


def _random_split_imbalance(pool, frac, rng):
    ids = [m for m, _ in pool]
    test = set(rng.choice(ids, size=round(frac * len(ids)), replace=False).tolist())
    return _imbalance(pool, [m for m in ids if m not in test], sorted(test), frac)


def _imbalance(pool, train, test, frac):
    """Sum over elements of |n_test - frac * n_total| (0 = perfectly proportional)."""
    counts = element_counts(pool, train, test)
    return float(np.abs(counts["n_test"] - frac * counts["n_total"]).sum())


def test_iterative_stratification_balances_every_label_better_than_random():
    pool = _pool(300)
    split = make_split(pool, 0.2, seed=0)
    assert len(split.test_ids) + len(split.train_ids) == 300
    assert abs(len(split.test_ids) - 60) <= 3
    counts = element_counts(pool, split.train_ids, split.test_ids)
    # every element with >= 5 materials has a test share within 0.1 of 20 %
    big = counts[counts["n_total"] >= 5]
    assert (np.abs(big["test_share"] - 0.2) < 0.1).all(), big
    # and the element imbalance is far below that of random 80/20 splits
    rng = np.random.default_rng(0)
    random_imb = [_random_split_imbalance(pool, 0.2, rng) for _ in range(20)]
    assert _imbalance(pool, split.train_ids, split.test_ids, 0.2) < 0.5 * min(random_imb)


def test_stratification_respects_fixed_assignments_and_fractions():
    labels = np.eye(4, dtype=bool).repeat(5, axis=0)  # 4 labels x 5 examples each
    rng = np.random.default_rng(1)
    fold = iterative_stratification(labels, (0.8, 0.2), rng)
    for j in range(4):
        assert (fold[labels[:, j]] == 1).sum() == 1  # exactly one of five per label to the 20 % fold
    fixed = np.full(20, -1)
    fixed[:5] = 0  # label 0 all forced into fold 0
    fold2 = iterative_stratification(labels, (0.8, 0.2), np.random.default_rng(1), assigned=fixed)
    assert (fold2[:5] == 0).all()
    with pytest.raises(ValueError, match="sum to 1"):
        iterative_stratification(labels, (0.8, 0.3), rng)


def test_split_is_deterministic_and_order_independent():
    pool = _pool(80)
    a = make_split(pool, 0.2, seed=7)
    b = make_split(list(reversed(pool)), 0.2, seed=7)
    assert a.train_ids == b.train_ids and a.test_ids == b.test_ids
    c = make_split(pool, 0.2, seed=8)
    assert c.test_ids != a.test_ids  # the seed matters (tie-breaking)
    assert not set(a.train_ids) & set(a.test_ids)


def test_tiny_dataset_has_nonempty_folds():
    pool = [("a", ("Al",)), ("b", ("Nb",)), ("c", ("Al", "Nb"))]
    s = make_split(pool, 0.2, seed=0)
    assert len(s.test_ids) >= 1 and len(s.train_ids) >= 1
    with pytest.raises(ValueError, match="at least 2"):
        make_split(pool[:1])
    with pytest.raises(ValueError, match="duplicate"):
        make_split(pool + [("a", ("V",))])


def test_elemental_solids_get_an_80_20_split():
    """Every element in one material only (a dataset of elemental solids): each label wants 0.8 vs 0.2
    of an example, so the fold sizes must decide, not the label (before: 13 train / 1 test for 14)."""
    els = ["Al", "Nb", "Cu", "W", "Ag", "Au", "Pd", "Pt", "Na", "Sr", "Ir", "Mg", "Ba", "Be", "Zn"]
    for n in (10, 14, 15):
        s = make_split([(f"{e}1", (e,)) for e in els[:n]], 0.2, seed=0)
        assert len(s.test_ids) == round(0.2 * n) and len(s.train_ids) == n - round(0.2 * n)


def test_load_or_make_reuses_then_extends_keeping_assignments(tmp_path):
    pool = _pool(120)
    first, rest = pool[:80], pool[80:]
    train0, test0 = load_or_make_split(first, "t", seed=5, directory=tmp_path)
    assert (tmp_path / "t-train.txt").read_text().split() == train0
    assert (tmp_path / "t-test.txt").read_text().split() == test0
    meta = json.loads((tmp_path / "t.json").read_text())
    assert meta["seed"] == 5 and meta["n_test"] == len(test0) and meta["test_fraction"] == 0.2
    assert set(meta["element_counts"]) == {e for _, els in first for e in els}
    # same records -> same files reused, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = load_or_make_split(list(reversed(first)), "t", directory=tmp_path)
    assert again == (train0, test0)
    # records added -> existing assignments kept, new ones assigned, warning, history grows
    with pytest.warns(SplitExtendedWarning, match="40 new"):
        train1, test1 = load_or_make_split(pool, "t", directory=tmp_path)
    assert set(train0) <= set(train1) and set(test0) <= set(test1)
    assert len(train1) + len(test1) == 120
    new_test = set(test1) - set(test0)
    assert 4 <= len(new_test) <= 12  # ~20 % of the 40 new materials
    assert len(load_split("t", tmp_path).history) == 2
    # extension is deterministic: redoing it from the first split gives the same result
    s0 = make_split(first, 0.2, seed=5, name="t")
    assert extend_split(s0, rest + first).test_ids == tuple(test1)
    # balance is still good after growth
    assert _imbalance(pool, train1, test1, 0.2) < 0.6 * np.mean(
        [_random_split_imbalance(pool, 0.2, np.random.default_rng(i)) for i in range(10)]
    )


def test_stale_splits_are_refused(tmp_path):
    pool = _pool(50)
    load_or_make_split(pool, "s", directory=tmp_path)
    # a material disappeared
    with pytest.raises(StaleSplitError, match="not in the records"):
        load_or_make_split(pool[1:], "s", directory=tmp_path)
    # elements of a saved material changed
    changed = [(pool[0][0], ("Pb",))] + pool[1:]
    with pytest.raises(StaleSplitError, match="elements of saved materials changed"):
        load_or_make_split(changed, "s", directory=tmp_path)
    # new records with on_new='error'
    with pytest.raises(StaleSplitError, match="added"):
        load_or_make_split(pool + [("zz", ("Al",))], "s", on_new="error", directory=tmp_path)
    # a different seed for an existing name
    with pytest.raises(ValueError, match="seed"):
        load_or_make_split(pool, "s", seed=99, directory=tmp_path)
    # hand-edited index file
    p = tmp_path / "s-test.txt"
    p.write_text(p.read_text() + "intruder\n")
    with pytest.raises(StaleSplitError, match="ids_hash"):
        load_or_make_split(pool, "s", directory=tmp_path)
    # incomplete set of files
    (tmp_path / "s.json").unlink()
    with pytest.raises(StaleSplitError, match="incomplete"):
        load_split("s", tmp_path)


def test_split_of_material_records(records, tmp_path):
    train, test = load_or_make_split(records, "r", directory=tmp_path)
    assert sorted(train + test) == sorted(r.material_id for r in records)
    counts = element_counts(records, train, test)
    assert list(counts["Z"]) == sorted(counts["Z"])
    assert (counts["n_total"] == counts["n_train"] + counts["n_test"]).all()
    fig = plot_element_counts(counts)
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.fixture(scope="module")
def records():
    from analysis_records import make_records

    return make_records(24)


def test_a_paper_structure_keeps_the_papers_side():
    """Records that are among the paper's structures (provenance.upstream_split) land on the paper's side of
    a new split and of an extension; the other materials are still balanced by element."""
    from types import SimpleNamespace

    from betenet.splits import extend_split, make_split, paper_sides

    def rec(mid, els, side=None):
        return SimpleNamespace(material_id=mid, elements=tuple(els), provenance={"upstream_split": side} if side else {})

    base = [rec(f"m{i}", [e1, e2]) for i, (e1, e2) in enumerate(
        [("Al", "Cu"), ("Al", "Nb"), ("Cu", "Nb"), ("Al", "Pd"), ("Pd", "Nb"), ("Cu", "Pd"), ("Al", "Zr"), ("Zr", "Nb"),
         ("Cu", "Zr"), ("Pd", "Zr")])]
    paper = [rec("p_train", ["Al"], "train"), rec("p_test", ["Nb"], "test"), rec("p_test2", ["Cu"], "test")]
    assert paper_sides(base + paper) == {"p_train": 0, "p_test": 1, "p_test2": 1}
    s = make_split(base + paper, 0.2, 0)
    assert "p_train" in s.train_ids and {"p_test", "p_test2"} <= set(s.test_ids)
    s0 = make_split(base, 0.2, 0)
    s1 = extend_split(s0, base + paper)
    assert set(s0.train_ids) <= set(s1.train_ids) and set(s0.test_ids) <= set(s1.test_ids)
    assert "p_train" in s1.train_ids and {"p_test", "p_test2"} <= set(s1.test_ids)
