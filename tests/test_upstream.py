"""Upstream BETE-NET database.json reader, conversion, CLI and the checksum-verified download.

Every upstream-like file here is written by the test itself into ``tmp_path`` (real pymatgen structures,
synthetic spectra); no upstream data are used or committed.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from betenet import cli
from betenet import upstream as up
from betenet.cli.data import cli_main as data_cli
from betenet.physics import moments
from betenet.records import load_records

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@functools.lru_cache(maxsize=None)
def _structures() -> dict[str, Structure]:
    al = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.05), ["Al"], [[0, 0, 0]]).get_primitive_structure()
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()
    mgb2 = Structure(Lattice.hexagonal(3.086, 3.524), ["Mg", "B", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]])
    # Upstream indices have gaps: 0, 2, 5.
    return {"0": al, "2": nacl, "5": mgb2}


def gaussian(w, centre, width):
    return np.exp(-0.5 * ((w - centre) / width) ** 2)


def make_row(idx: str, structure: Structure) -> dict:
    n = len(structure)
    w = 0.2500020894 + 0.1 * np.arange(1000)
    centre = {"0": 25.0, "2": 15.0, "5": 60.0}[idx]
    a2f = 0.4 * gaussian(w, centre, 4.0) * (1 - np.exp(-((w / 5.0) ** 2)))
    ph_w = -6.0e-8 + 0.1 * np.arange(1001)
    site = np.stack([gaussian(ph_w, centre + 3 * i, 5.0) * (1 + i) for i in range(n)])
    cw = 0.1 * np.arange(900)
    csite = np.stack([gaussian(cw, centre + 2 * i, 6.0) for i in range(n)])
    ew = -59.9 + np.arange(120.0)
    esite = np.stack([np.full(ew.size, 0.01 * (i + 1)) for i in range(n)])
    return {
        "comp": structure.composition.reduced_formula,
        "comp_name": structure.composition.reduced_formula,
        "Freq_meV": w.tolist(),
        "a2F": a2f.tolist(),
        "PhFreq_meV": ph_w.tolist(),
        "Tot_PhDOS": site.sum(0).tolist(),
        "Site_Proj_PhDOS": site.tolist(),
        "Tot_PhDOS_dense": site.sum(0).tolist(),
        "Site_Proj_PhDOS_dense": site.tolist(),
        "Ph_2x2x2_interpolated_Freq_meV": cw.tolist(),
        "Ph_2x2x2_interpolated_Site_Proj_DOS": csite.tolist(),
        "Tot_eDOS_eng_meV": ew.tolist(),
        "Site_proj_eDOS": esite.tolist(),
        "lambda": 0.123,
        "w_log": 2.0,
        "w_sq": 6.25,
    }


def write_upstream(root, orient: str = "columns", rows: dict | None = None) -> "Path":  # noqa: F821
    """Write database.json (pandas-like ``orient``) + structures/<index>.cif under ``root``; return the JSON path."""
    structures = _structures()
    rows = rows if rows is not None else {idx: make_row(idx, s) for idx, s in structures.items()}
    (root / "structures").mkdir(parents=True, exist_ok=True)
    for idx, s in structures.items():
        CifWriter(s).write_file(root / "structures" / f"{idx}.cif")
    if orient == "columns":
        data = {col: {idx: row.get(col) for idx, row in rows.items()} for col in next(iter(rows.values()))}
    elif orient == "records":
        data = [{"index": int(idx), **row} for idx, row in rows.items()]
    elif orient == "index":
        data = rows
    elif orient == "split":
        cols = list(next(iter(rows.values())))
        data = {"columns": cols, "index": [int(i) for i in rows], "data": [[r[c] for c in cols] for r in rows.values()]}
    else:  # pragma: no cover
        raise ValueError(orient)
    path = root / "database.json"
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------------------------------ reading


def test_reads_the_column_layout(tmp_path):
    db = write_upstream(tmp_path)
    table = up.read_database_json(db)
    assert table.orient == "columns" and table.indices == ["0", "2", "5"]
    recs = up.read_upstream(db)
    assert [r.material_id for r in recs] == ["upstream-0000", "upstream-0002", "upstream-0005"]
    assert [r.formula for r in recs] == ["Al", "NaCl", "MgB2"]
    mgb2 = recs[2]
    assert mgb2.source == "upstream-bete-net"
    assert [site.specie.symbol for site in mgb2.structure] == ["Mg", "B", "B"]  # CIF site order kept
    row = make_row("5", _structures()["5"])
    np.testing.assert_array_equal(mgb2.a2f, row["a2F"])
    np.testing.assert_array_equal(mgb2.a2f_omega_meV, row["Freq_meV"])
    assert mgb2.phdos_site.shape == (3, 1001)
    np.testing.assert_array_equal(mgb2.phdos_site, row["Site_Proj_PhDOS_dense"])
    np.testing.assert_allclose(mgb2.phdos_coarse_total, np.sum(row["Ph_2x2x2_interpolated_Site_Proj_DOS"], axis=0))
    assert mgb2.phdos_coarse_site.shape == (3, 900)
    np.testing.assert_allclose(mgb2.edos_total, 0.06)  # Σ of site eDOS 0.01 + 0.02 + 0.03
    assert mgb2.edos_ef_per_eV == pytest.approx(0.06) and mgb2.provenance["upstream"]["edos_at_ef"] == pytest.approx(0.06)
    assert "not stated" in mgb2.provenance["upstream"]["edos_ef_unit"]


def test_moments_are_recomputed_and_upstream_scalars_kept(tmp_path):
    recs = up.read_upstream(write_upstream(tmp_path))
    for rec in recs:
        m = moments(rec.a2f_omega_meV, rec.a2f)
        assert rec.lambda_ == pytest.approx(m.lambda_) and rec.omega_log_K == pytest.approx(m.omega_log_K)
        assert rec.lambda_ != pytest.approx(0.123)  # ours, not the upstream column
        assert rec.provenance["upstream"]["lambda"] == 0.123 and rec.provenance["upstream"]["w_sq"] == 6.25
        assert rec.tc_ad_K >= 0.0


@pytest.mark.parametrize("orient", ["records", "index", "split"])
def test_other_pandas_orients_give_the_same_records(tmp_path, orient):
    ref = up.read_upstream(write_upstream(tmp_path / "columns"))
    other_db = write_upstream(tmp_path / orient, orient=orient)
    assert up.read_database_json(other_db).orient == orient
    other = up.read_upstream(other_db)
    assert [r.material_id for r in other] == [r.material_id for r in ref]
    for a, b in zip(ref, other):
        assert a.structure == b.structure
        np.testing.assert_array_equal(a.a2f, b.a2f)
        np.testing.assert_array_equal(a.phdos_coarse_site, b.phdos_coarse_site)


def test_missing_column_error_names_file_and_column(tmp_path):
    rows = {idx: make_row(idx, s) for idx, s in _structures().items()}
    for row in rows.values():
        del row["Site_Proj_PhDOS_dense"]
        del row["a2F"]
    db = write_upstream(tmp_path, rows=rows)
    with pytest.raises(up.UpstreamError) as err:
        up.read_database_json(db)
    msg = str(err.value)
    assert str(db) in msg and "'a2F'" in msg and "'Site_Proj_PhDOS_dense'" in msg


def test_unreadable_layouts(tmp_path):
    bad = tmp_path / "database.json"
    bad.write_text(json.dumps({"foo": {"0": 1}}))
    with pytest.raises(up.UpstreamError, match="unrecognised layout"):
        up.read_database_json(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(up.UpstreamError, match="entry 0 is int"):
        up.read_database_json(bad)
    bad.write_text("{oops")
    with pytest.raises(up.UpstreamError, match="not valid JSON"):
        up.read_database_json(bad)
    bad.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
    with pytest.raises(up.UpstreamError, match="Git LFS pointer"):
        up.read_database_json(bad)
    with pytest.raises(up.UpstreamError, match="file not found"):
        up.read_database_json(tmp_path / "nope.json")


def test_row_errors_name_file_row_and_column(tmp_path):
    rows = {idx: make_row(idx, s) for idx, s in _structures().items()}
    rows["2"]["Freq_meV"] = None  # null array (pandas writes NaN as null)
    rows["5"]["Ph_2x2x2_interpolated_Site_Proj_DOS"] = rows["5"]["Ph_2x2x2_interpolated_Site_Proj_DOS"][:2]
    db = write_upstream(tmp_path, rows=rows)
    with pytest.raises(up.UpstreamError, match=r"database\.json: row 2: column 'Freq_meV' is missing or null"):
        up.read_upstream(db)
    errors: list[str] = []
    recs = up.read_upstream(db, skip_invalid=True, errors=errors)
    assert [r.material_id for r in recs] == ["upstream-0000"]
    assert len(errors) == 2 and "row 5: column 'Ph_2x2x2_interpolated_Site_Proj_DOS' has 2 site rows" in errors[1]
    (tmp_path / "structures" / "0.cif").unlink()
    with pytest.raises(up.UpstreamError, match=r"row 0: structure file .*0\.cif not found"):
        up.read_upstream(db, indices=[0])


def test_record_validation_errors_are_reported_per_row(tmp_path):
    rows = {idx: make_row(idx, s) for idx, s in _structures().items()}
    rows["0"]["a2F"] = [-1.0] * len(rows["0"]["a2F"])  # negative α²F
    db = write_upstream(tmp_path, rows=rows)
    with pytest.raises(up.UpstreamError, match=r"row 0: material 'upstream-0000': field 'a2f'"):
        up.read_upstream(db, indices=["0"])


# ------------------------------------------------------------------------------------ convert + CLI


def test_convert_and_validate_cli(tmp_path, capsys):
    db = write_upstream(tmp_path / "up")
    out = tmp_path / "records"
    assert data_cli(["convert-upstream", str(db), "--out", str(out)]) == 0
    assert "3 written, 0 already present" in capsys.readouterr().out
    loaded = load_records(out)
    assert [r.formula for r in loaded] == ["Al", "NaCl", "MgB2"]
    before = (out / "upstream-0002.json").read_text()
    # Second run keeps what is there (nothing silently overwritten).
    assert data_cli(["convert-upstream", str(db), "--out", str(out)]) == 0
    assert "0 written, 3 already present (kept)" in capsys.readouterr().out
    assert (out / "upstream-0002.json").read_text() == before

    assert cli.main(["data", "validate", str(out)]) == 0
    report = capsys.readouterr().out
    assert report.count("OK   ") == 3 and "3 valid, 0 failed" in report

    data = json.loads(before)
    data["a2f_omega_meV"][3] = data["a2f_omega_meV"][2]
    (out / "upstream-0002.json").write_text(json.dumps(data))
    assert data_cli(["validate", str(out), str(tmp_path / "missing.json")]) == 1
    report = capsys.readouterr().out
    assert "FAIL" in report and "upstream-0002.json" in report and "'a2f_omega_meV'" in report
    assert "missing.json: no such file" in report and "2 valid, 2 failed" in report


def test_convert_cli_reports_bad_input(tmp_path, capsys):
    rows = {idx: make_row(idx, s) for idx, s in _structures().items()}
    rows["2"]["a2F"] = None
    db = write_upstream(tmp_path / "up", rows=rows)
    assert data_cli(["convert-upstream", str(db), "--out", str(tmp_path / "r")]) == 1
    assert "row 2: column 'a2F'" in capsys.readouterr().err
    assert data_cli(["convert-upstream", str(db), "--out", str(tmp_path / "r2"), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert "2 written" in captured.out and "invalid:" in captured.err


# ------------------------------------------------------------------------------------------ download


@pytest.fixture
def mirror(tmp_path):
    """A local copy of the upstream file layout at COMMIT, served through file:// URLs."""
    root = tmp_path / "mirror"
    write_upstream(root / up.UPSTREAM_REPO / COMMIT)
    return root


def _checksums(mirror_root, path):
    base = mirror_root / up.UPSTREAM_REPO / COMMIT
    files = {"database.json": up.sha256_file(base / "database.json")}
    for cif in sorted((base / "structures").glob("*.cif")):
        files[f"structures/{cif.name}"] = up.sha256_file(cif)
    path.write_text(json.dumps({"commit": COMMIT, "files": files}))
    return files


def test_urls():
    assert up.raw_url("database.json") == (
        f"https://raw.githubusercontent.com/henniggroup/BETE-NET/{up.PINNED_COMMIT}/database.json"
    )
    assert up.raw_url("structures/5.cif", COMMIT, base_url="file:///m/") == f"file:///m/henniggroup/BETE-NET/{COMMIT}/structures/5.cif"
    with pytest.raises(up.DownloadError, match="hexadecimal"):
        up.raw_url("database.json", "main")


def test_refuses_unverified_download_before_any_network_access(tmp_path):
    def no_network(*args):
        raise AssertionError("must not fetch")

    with pytest.raises(up.DownloadError, match="--allow-unverified"):
        up.download_upstream(tmp_path / "dest", COMMIT, fetch=no_network)
    assert not (tmp_path / "dest").exists()
    assert data_cli(["download", "--dest", str(tmp_path / "dest"), "--commit", COMMIT]) == 1


def test_unverified_download_records_checksums(tmp_path, mirror, capsys):
    dest = up.download_upstream(
        tmp_path / "dest", COMMIT, allow_unverified=True, base_url=mirror.as_uri(), progress=False
    )
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    assert manifest["commit"] == COMMIT and manifest["complete"] and manifest["verified"] is False
    expected = _checksums(mirror, tmp_path / "sums.json")
    assert manifest["files"] == expected
    assert (dest / ".gitignore").read_text().strip().endswith("*")
    assert "Unverified download" in capsys.readouterr().err
    assert [r.formula for r in up.read_upstream(dest / "database.json")] == ["Al", "NaCl", "MgB2"]


def test_verified_download_resumes_and_rejects_bad_checksums(tmp_path, mirror):
    sums = tmp_path / "sums.json"
    expected = _checksums(mirror, sums)
    calls: list[str] = []

    def counting_fetch(url, target, sha):
        calls.append(url)
        return up._fetch(url, target, sha)

    dest = tmp_path / "dest"
    up.download_upstream(dest, COMMIT, checksums=sums, base_url=mirror.as_uri(), progress=False, fetch=counting_fetch)
    assert len(calls) == 4
    assert json.loads((dest / "MANIFEST.json").read_text())["verified"] is True

    # Resume: nothing is fetched again; a corrupted file is fetched again and verified.
    calls.clear()
    (dest / "structures" / "2.cif").write_text("corrupted")
    up.download_upstream(dest, COMMIT, checksums=sums, base_url=mirror.as_uri(), progress=False, fetch=counting_fetch)
    assert len(calls) == 1 and calls[0].endswith("structures/2.cif")
    assert up.sha256_file(dest / "structures" / "2.cif") == expected["structures/2.cif"]

    # A wrong checksum: error, and the file is not left behind.
    bad = dict(expected, **{"structures/5.cif": "0" * 64})
    sums.write_text(json.dumps({"commit": COMMIT, "files": bad}))
    dest2 = tmp_path / "dest2"
    with pytest.raises(up.DownloadError, match="checksum mismatch"):
        up.download_upstream(dest2, COMMIT, checksums=sums, base_url=mirror.as_uri(), progress=False)
    assert not (dest2 / "structures" / "5.cif").exists() and not list(dest2.rglob("*.part"))
    assert json.loads((dest2 / "MANIFEST.json").read_text())["complete"] is False


def test_download_cli_with_conversion(tmp_path, mirror, capsys):
    sums = tmp_path / "sums.json"
    _checksums(mirror, sums)
    dest, out = tmp_path / "dest", tmp_path / "records"
    argv = ["download", "--dest", str(dest), "--commit", COMMIT, "--checksums", str(sums), "--base-url", mirror.as_uri()]
    assert data_cli([*argv, "--convert", str(out)]) == 0
    assert "3 written" in capsys.readouterr().out
    assert len(load_records(out)) == 3


def test_download_detects_lfs_pointer(tmp_path, mirror):
    (mirror / up.UPSTREAM_REPO / COMMIT / "database.json").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(up.DownloadError, match="Git LFS pointer"):
        up.download_upstream(tmp_path / "d", COMMIT, allow_unverified=True, base_url=mirror.as_uri(), progress=False)
    with pytest.raises(up.DownloadError, match="cannot download"):
        up.download_upstream(tmp_path / "e", "ab" * 20, allow_unverified=True, base_url=mirror.as_uri(), progress=False)


# ------------------------------------------------------------------------ units of the scalar columns

#: The first five rows of the authors' database.json as printed in their executed notebook
#: (row, comp, comp_name, lambda, w_log, w_sq); /work/shared/upstream-bete-net/README.md.
PRINTED_ROWS = [
    (0, "Cs", "Cs_mp_1", 0.200493, 2.004419, 6.257714),
    (1, "AuInPdY", "Y1In1Pd1Au1_mp_1215995", 2.387674, 2.187430, 24.628668),
    (2, "Pd2SnY", "Y1Sn1Pd2_mp_5538", 2.142195, 3.377658, 33.592206),
    (3, "Hg3Tl", "Tl1Hg3_mp_11474", 0.875469, 3.744005, 21.080808),
    (4, "AuLiSb", "Li1Sb1Au1_mp_12564", 1.159056, 3.959086, 121.864371),
]


def test_units_of_the_printed_rows():
    """w_log in meV and w_sq = <ω²> in meV²: the only reading under which all five rows are physical.

    ω_log <= ω₂ always (Jensen, same weight 2α²F/ω), and for phonon spectra ω₂/ω_log stays within ~1-3.
    """
    ratios = []
    for _row, _comp, _name, lam, w_log, w_sq in PRINTED_ROWS:
        lam_k, wlog_K, w2_K = up.upstream_moments_K(lam, w_log, w_sq)
        assert lam_k == lam
        assert wlog_K == pytest.approx(w_log * 11.6045, rel=1e-4)
        assert w2_K == pytest.approx(np.sqrt(w_sq) * 11.6045, rel=1e-4)
        assert 10.0 < wlog_K < 1000.0 and wlog_K <= w2_K <= 3.0 * wlog_K
        ratios.append(w_sq / w_log)
    assert up.upstream_moments_K(0.2, 2.0, 6.25)[1] == pytest.approx(23.209, abs=1e-3)  # Cs: ω_log ≈ 23 K
    # the other reading (w_sq = ω₂ in meV) would put ω₂/ω_log at 3-31: not a phonon spectrum
    assert max(ratios) > 10.0 and min(ratios) > 3.0
    assert up.UPSTREAM_UNITS == {"lambda": "1", "w_log": "meV", "w_sq": "meV^2"}


def _row_with_consistent_scalars(idx: str, s: Structure, *, w_sq_as_omega2: bool = False) -> dict:
    row = make_row(idx, s)
    m = moments(np.asarray(row["Freq_meV"]), np.asarray(row["a2F"]))
    k_per_mev = 11.604518
    row["lambda"], row["w_log"] = m.lambda_, m.omega_log_K / k_per_mev
    row["w_sq"] = m.omega_2_K / k_per_mev if w_sq_as_omega2 else (m.omega_2_K / k_per_mev) ** 2
    return row


def test_scalar_comparison_confirms_units_and_catches_a_mixup(tmp_path):
    rows = {idx: _row_with_consistent_scalars(idx, s) for idx, s in _structures().items()}
    rows["5"] = _row_with_consistent_scalars("5", _structures()["5"], w_sq_as_omega2=True)
    recs = up.read_upstream(write_upstream(tmp_path, rows=rows))
    cmp = up.scalar_comparison(recs).set_index("material_id")
    good = cmp.loc[["upstream-0000", "upstream-0002"]]
    assert np.abs(good[["rel_diff_lambda", "rel_diff_omega_log", "rel_diff_omega_2"]].to_numpy()).max() < 1e-4
    bad = cmp.loc["upstream-0005"]
    assert abs(bad["rel_diff_lambda"]) < 1e-4 and abs(bad["rel_diff_omega_2"]) > 0.5
    assert recs[0].provenance["upstream"]["units"]["w_sq"] == "meV^2"
    assert recs[0].provenance["upstream"]["omega_log_K"] == pytest.approx(recs[0].omega_log_K, rel=1e-4)


# ------------------------------------------------------------- refused rows, atomic writes, own directory


@pytest.mark.parametrize(
    "column, change, message",
    [
        ("Freq_meV", lambda v: v[::-1], r"row 2: column 'Freq_meV' is not strictly increasing at point 0"),
        ("a2F", lambda v: v[:-5], r"row 2: column 'a2F' has 995 points per row, its grid 'Freq_meV' has 1000"),
        ("PhFreq_meV", lambda v: v[:3] + [v[1]] + v[4:], r"row 2: column 'PhFreq_meV' is not strictly increasing at point 2"),
        ("Ph_2x2x2_interpolated_Freq_meV", lambda v: v[:-1],
         r"row 2: column 'Ph_2x2x2_interpolated_Site_Proj_DOS' has 900 points per row, its grid .* has 899"),
        ("Tot_eDOS_eng_meV", lambda v: v[:10], r"row 2: column 'Site_proj_eDOS' has 120 points per row"),
    ],
)
def test_bad_grids_are_refused_with_a_message(tmp_path, capsys, column, change, message):
    rows = {idx: make_row(idx, s) for idx, s in _structures().items()}
    rows["2"][column] = change(rows["2"][column])
    db = write_upstream(tmp_path / "up", rows=rows)
    with pytest.raises(up.UpstreamError, match=message):
        up.read_upstream(db, indices=["2"])
    out = tmp_path / "records"
    assert data_cli(["convert-upstream", str(db), "--out", str(out), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert "2 written" in captured.out and "1 invalid rows" in captured.out
    assert "invalid:" in captured.err and "row 2" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["upstream-0000.json", "upstream-0005.json"]  # no partial files
    summary = json.loads(up.conversion_summary_path(out).read_text())
    assert summary["n_rows"] == 3 and summary["written"] == 2 and len(summary["invalid"]) == 1
    assert summary["source_sha256"] == up.sha256_file(db)


def test_convert_defaults_to_its_own_directory_and_the_vendored_structures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BETENET_UPSTREAM_DIR", str(tmp_path / "upstream"))
    db = write_upstream(tmp_path / "src")
    vendored = tmp_path / "upstream" / "structures"
    (tmp_path / "src" / "structures").rename(vendored.parent.mkdir(parents=True) or vendored)
    assert data_cli(["convert-upstream", str(db)]) == 0
    assert "3 written" in capsys.readouterr().out
    assert [r.material_id for r in load_records(tmp_path / "upstream" / "records")] == [
        "upstream-0000", "upstream-0002", "upstream-0005"]
    assert up.default_records_dir() == tmp_path / "upstream" / "records"
    assert (tmp_path / "upstream" / "records.conversion.json").exists()
