"""The vendored paper split and bootstrap index files (data/upstream/) and their reader."""

from __future__ import annotations

import pytest

from betenet import upstream_split as us
from betenet.bootstrap import Bootstrap

#: SHA-256 of the vendored files (structures/*.cif, indices/*.txt, LICENSE) as copied unchanged from
#: henniggroup/BETE-NET at us.VENDORED_COMMIT: any edit of a vendored file fails this test.
VENDORED_SHA256 = "9515932e7e1d6ed76ac36d38ae253beab881380d9372d8e4c20738be534eb9cd"


def test_vendored_files_are_unchanged_and_complete():
    root = us.upstream_dir()
    assert len(list((root / "structures").glob("*.cif"))) == 806
    assert len(list((root / "indices").glob("idx_*.txt"))) == 2 + 2 * 201
    assert "Apache License" in (root / "LICENSE").read_text()[:200]
    assert us.VENDORED_COMMIT in (root / "README.md").read_text()
    assert us.vendored_sha256() == VENDORED_SHA256


def test_paper_split_sizes_and_disjointness():
    train, test = us.paper_split_indices()
    assert (len(train), len(test)) == (651, 173)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(range(824))  # every row of the database, once
    assert train[:3] == (1, 2, 3) and test[:3] == (0, 4, 12)


@pytest.mark.parametrize("k", [0, 1, 57, 200])
def test_member_k_files(k):
    train, _ = us.paper_split_indices()
    draws, valid = us.paper_bootstrap_indices(k)
    assert len(draws) == 651  # a bootstrap of the training rows: as many draws as rows, with repeats
    assert len(set(draws)) < 651
    assert set(draws) | set(valid) == set(train)  # out of bag = every training row never drawn
    assert not set(draws) & set(valid)
    assert 0.3 < len(valid) / 651 < 0.45  # ≈ (1 - 1/n)^n = 0.368


def test_member_0_first_draws_and_count():
    draws, valid = us.paper_bootstrap_indices(0)
    assert draws[:5] == (699, 93, 337, 349, 537) and valid[:5] == (2, 3, 7, 8, 11)
    assert (len(set(draws)), len(valid)) == (408, 243)
    assert us.n_paper_bootstraps() == 201


def test_paper_split_on_records_leaves_out_missing_rows():
    ids = [us.material_id(i) for i in range(0, 824, 3)] + ["bn-0001-Al"]
    split = us.paper_split([(m, ("Al",)) for m in ids])
    assert split.name == "paper"
    info = split.history[0]
    assert len(split.train_ids) + len(info["missing_train"]) == 651
    assert len(split.test_ids) + len(info["missing_test"]) == 173
    assert info["outside"] == ["bn-0001-Al"]
    assert "upstream-0000" in split.test_ids and "upstream-0003" in split.train_ids
    assert split.test_fraction == pytest.approx(173 / 824)


def test_paper_split_refuses_records_of_another_source():
    with pytest.raises(us.UpstreamIndexError, match="upstream-NNNN"):
        us.paper_split([("bn-0001-Al", ("Al",)), ("bn-0002-Cu", ("Cu",))])


def test_paper_bootstraps_are_the_published_resamples():
    train, _ = us.paper_split_indices()
    ids = [us.material_id(i) for i in train]
    boots = us.paper_bootstraps(ids, 3, ensemble_seed=1234)
    assert [b.index for b in boots] == [0, 1, 2] and all(isinstance(b, Bootstrap) for b in boots)
    draws, valid = us.paper_bootstrap_indices(1)
    assert boots[1].sample_ids == tuple(us.material_id(i) for i in draws)
    assert boots[1].oob_ids == tuple(us.material_id(i) for i in valid)
    assert boots[0].seed != boots[1].seed
    # rows without a record are dropped from draws and OOB alike
    some = ids[::2]
    sub = us.paper_bootstraps(some, 1, ensemble_seed=1234)[0]
    assert set(sub.sample_ids) <= set(some) and set(sub.oob_ids) <= set(some)
    assert len(sub.sample_ids) < 651 and sub.n_train == len(some)


def test_too_many_members_and_bad_files_are_named(tmp_path):
    with pytest.raises(us.UpstreamIndexError, match="published 201 bootstrap resamples"):
        us.paper_bootstraps([us.material_id(1), us.material_id(2)], 202, ensemble_seed=0)
    (tmp_path / "idx_train_full.txt").write_text("1.0\n2.5\n")
    (tmp_path / "idx_test_full.txt").write_text("0.0\n")
    with pytest.raises(us.UpstreamIndexError, match=r"idx_train_full\.txt:2: '2\.5' is not a non-negative integer"):
        us.paper_split_indices(tmp_path)
    (tmp_path / "idx_train_full.txt").write_text("1.0\n0.0\n")
    with pytest.raises(us.UpstreamIndexError, match="1 rows are in both"):
        us.paper_split_indices(tmp_path)
    with pytest.raises(us.UpstreamIndexError, match="idx_train_V2_0.txt: index file not found"):
        us.paper_bootstrap_indices(0, tmp_path)


def test_material_ids_round_trip():
    assert us.material_id(259) == "upstream-0259" and us.row_index("upstream-0259") == 259
    assert us.row_index("bn-0001-Al") is None
