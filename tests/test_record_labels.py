"""Record labels without clipping bias (issue 15, part 1): QE mode-sum check of every committed record,
unclipped moments, moments at every broadening, the label uncertainty, the flags, old schema, rebuild."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from betenet import physics
from betenet.config import QEConfig
from betenet.paths import QE_RUNS_DIR, RECORDS_DIR
from betenet.records import (
    FLAGS,
    LAMBDA_QE_RTOL,
    SCHEMA_VERSION,
    RecordError,
    check_qe_mode_sum,
    load_record,
    load_records,
    save_record,
    validate_record,
)
from betenet.qe.labels import (
    broadening_moments,
    label_uncertainty,
    record_flags,
    structure_flags,
)
from betenet.qe.record import build_record, rebuild_record

COMMITTED = sorted(RECORDS_DIR.glob("*.json"))


def test_every_committed_record_matches_qe_mode_sum():
    """λ of each committed QE record (recomputed from its stored α²F) is QE's own mode sum to 3 %."""
    assert len(COMMITTED) >= 60
    worst = 0.0
    for rec in load_records(COMMITTED):  # load_record runs validate_record -> check_qe_mode_sum
        assert rec.provenance.get("lambda_qe"), rec.material_id
        assert "clipped_moments" not in rec.flags, f"{rec.material_id}: schema-1 record; rebuild it from data/qe"
        lam = physics.lambda_from_a2f(rec.a2f_omega_meV, rec.a2f)
        dev = abs(lam / rec.provenance["lambda_qe"] - 1.0)
        assert dev <= LAMBDA_QE_RTOL, f"{rec.material_id}: λ {lam:.4f} vs QE {rec.provenance['lambda_qe']}"
        worst = max(worst, dev)
        mbb = rec.moments_by_broadening
        assert mbb["broadening_Ry"][mbb["selected_index"]] == rec.provenance["elph_smearing_Ry"]
        assert set(rec.flags) <= set(FLAGS)
        assert rec.lambda_uncertainty is not None and rec.lambda_uncertainty >= 0
    assert worst > 1e-4  # the check compares against a real, independent number


def test_committed_fcc_al_is_unbiased():
    """fcc Al: QE's mode sum is λ = 0.329; clipping α²F first gave 0.386 (+17 %)."""
    rec = load_record(RECORDS_DIR / "Al1-fcc.json")
    assert rec.provenance["lambda_qe"] == pytest.approx(0.329)
    assert rec.lambda_ == pytest.approx(0.329, rel=0.03)
    clipped = physics.lambda_from_a2f(rec.a2f_omega_meV, np.clip(rec.a2f, 0.0, None))
    assert clipped == pytest.approx(0.386, rel=0.01)
    assert rec.a2f.min() < 0  # the negative lobe is kept in the record


def _write_run(d: Path, omega: np.ndarray, a2f: np.ndarray, sigmas: list[float], lam_qe: list[float], wlog_qe: list[float]):
    d.mkdir(parents=True, exist_ok=True)
    header = "# omega (meV), alpha2F total (dimensionless) for el-ph broadenings (Ry): " + " ".join(f"{s:g}" for s in sigmas)
    with gzip.open(d / "a2f.dat.gz", "wt") as fh:
        fh.write(header + "\n")
        for i, w in enumerate(omega):
            fh.write(" ".join(f"{x:.9e}" for x in [w, *a2f[:, i]]) + "\n")
    lines = ["", "  Electron-phonon coupling constant, lambda ", ""]
    lines += [f" Broadening {s:8.4f} lambda {l:12.4f} dos(Ef) {2.0:7.4f} omega_ln [K] {w:11.4f}"
              for s, l, w in zip(sigmas, lam_qe, wlog_qe)]
    (d / "lambda").write_text("\n".join(lines) + "\n")


def test_moments_of_synthetic_a2f_with_negative_lobe_are_unclipped(tmp_path):
    """A positive peak at 20 meV plus a negative lobe at 3 meV: the stored moments are those of the
    unclipped α²F (λ = 2∫α²F/ω including the lobe), not of the clipped one."""
    w = np.arange(0.05, 40.0, 0.1)
    peak = 0.5 * np.exp(-0.5 * ((w - 20.0) / 2.0) ** 2)
    lobe = -0.02 * np.exp(-0.5 * ((w - 3.0) / 0.6) ** 2)
    sigmas = [0.01, 0.02, 0.03]
    a2f = np.stack([peak * 1.2 + lobe, peak + lobe, peak * 0.9 + lobe])
    exact = [float(2 * np.trapezoid(y / w, w)) for y in a2f]
    _write_run(tmp_path / "X1-fcc", w, a2f, sigmas, exact, [200.0, 210.0, 220.0])
    mbb = broadening_moments(tmp_path / "X1-fcc", 0.02)
    assert mbb["selected_index"] == 1
    np.testing.assert_allclose(mbb["lambda"], exact, rtol=1e-6)
    clipped = physics.lambda_from_a2f(w, np.clip(a2f[1], 0, None))
    lobe_lambda = float(2 * np.trapezoid(-lobe / w, w))  # the lobe's share of λ, weighted by 1/ω
    assert lobe_lambda > 0.05 * clipped
    assert clipped - mbb["lambda"][1] == pytest.approx(lobe_lambda, rel=1e-3)
    unc = label_uncertainty(mbb)
    assert unc["lambda_uncertainty"] == pytest.approx(0.5 * (exact[0] - exact[2]), rel=1e-6)
    with pytest.raises(ValueError, match="0.025 Ry is not among"):
        broadening_moments(tmp_path / "X1-fcc", 0.025)


def test_label_uncertainty_is_half_range_over_neighbours():
    mbb = {"broadening_Ry": [0.01, 0.02, 0.03, 0.04], "lambda": [1.0, 2.0, 4.0, 8.0], "omega_log_K": [10.0, 10.0, 12.0, None],
           "omega_2_K": [1.0, 1.0, 1.0, 1.0], "tc_ad_K": [0.0, 0.5, 1.0, 2.0], "selected_index": 1}
    u = label_uncertainty(mbb)
    assert u == {"lambda_uncertainty": 1.5, "omega_log_K_uncertainty": 1.0, "omega_2_K_uncertainty": 0.0, "tc_ad_K_uncertainty": 0.5}
    assert label_uncertainty({**mbb, "selected_index": 0})["lambda_uncertainty"] == 0.5  # one neighbour at the end
    assert label_uncertainty({**mbb, "selected_index": 3})["omega_log_K_uncertainty"] is None


def test_structure_flags():
    assert structure_flags("Ir1-hcp") == ["not_ground_state"]
    assert structure_flags("Cd1-fcc") == ["not_ground_state"]
    assert structure_flags("Ba1-bcc") == []  # bcc is barium's ground state
    assert structure_flags("Nb1-bcc") == []
    assert structure_flags("Ga1-fcc") == ["structure_unverified"]  # no fcc/bcc/hcp ground state listed
    assert structure_flags("RuZr-B2") == []  # curated: observed CsCl-type compound
    assert structure_flags("RhZr-B2") == ["structure_unverified"]


def test_soft_and_broadening_flags(tmp_path):
    d = tmp_path / "Nb1-bcc"
    w = np.arange(0.05, 40.0, 0.1)
    y = 0.5 * np.exp(-0.5 * ((w - 20.0) / 2.0) ** 2)
    _write_run(d, w, np.stack([y * 1.5, y, y * 0.7]), [0.01, 0.02, 0.03], [1.0, 1.0, 1.0], [300.0, 300.0, 300.0])
    (d / "ph_freqs.json").write_text(json.dumps({"q_cart_2pi_alat": [[0, 0, 0], [0.5, 0, 0]], "freq_meV": [[-3.0, 1.0], [4.2, 20.0]]}))
    mbb = broadening_moments(d, 0.02)
    flags = record_flags(d, "Nb1-bcc", mbb, label_uncertainty(mbb))
    assert flags == ["soft_modes", "broadening_sensitive", "omega_log_qe_mismatch"]  # vocabulary order
    (d / "ph_freqs.json").write_text(json.dumps({"q_cart_2pi_alat": [[0, 0, 0], [0.5, 0, 0]], "freq_meV": [[-3.0, 1.0], [6.0, 20.0]]}))
    assert "soft_modes" not in record_flags(d, "Nb1-bcc", mbb, label_uncertainty(mbb))  # Γ is not counted


def test_mode_sum_check_catches_truncated_and_edited_a2f():
    rec = load_record(RECORDS_DIR / "Al1-fcc.json")
    # A record built from a truncated a2f file: consistent moments, but not QE's mode sum.
    n = rec.a2f.size // 2
    m = physics.moments(rec.a2f_omega_meV[:n], rec.a2f[:n])
    cut = dataclasses.replace(rec, a2f_omega_meV=rec.a2f_omega_meV[:n], a2f=rec.a2f[:n], lambda_=float(m.lambda_),
                              omega_log_K=float(m.omega_log_K), moments_by_broadening=None)
    with pytest.raises(RecordError, match=r"Al1-fcc\.json: material 'Al1-fcc': field 'lambda_': .*QE's mode sum"):
        check_qe_mode_sum(cut, origin=str(RECORDS_DIR / "Al1-fcc.json"))
    # An α²F edited after the moments were taken.
    edited = dataclasses.replace(rec, a2f=rec.a2f * 1.1)
    with pytest.raises(RecordError, match=r"field 'lambda_': stored value .* not the moment of the stored a2f"):
        validate_record(edited)
    with pytest.raises(RecordError, match=r"field 'flags': unknown flag"):
        validate_record(dataclasses.replace(rec, flags=["wobbly"]))


def test_schema_1_records_are_read_and_flagged(tmp_path):
    data = json.loads((RECORDS_DIR / "Al1-fcc.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 2
    old = {k: v for k, v in data.items() if k not in ("moments_by_broadening", "flags") and not k.endswith("_uncertainty")}
    old["schema_version"] = 1
    old["a2f"] = np.clip(old["a2f"], 0.0, None).tolist()  # what schema 1 stored
    clipped = physics.moments(np.asarray(old["a2f_omega_meV"]), np.asarray(old["a2f"]))
    old["lambda_"], old["omega_log_K"] = float(clipped.lambda_), float(clipped.omega_log_K)
    (tmp_path / "Al1-fcc.json").write_text(json.dumps(old))
    rec = load_record(tmp_path / "Al1-fcc.json")
    assert rec.flags == ["clipped_moments"] and rec.lambda_ == pytest.approx(0.386, rel=0.01)
    assert rec.moments_by_broadening is None and rec.lambda_uncertainty is None


@pytest.mark.skipif(not (QE_RUNS_DIR / "Al1-fcc" / "a2f.dat.gz").exists(), reason="needs data/qe/Al1-fcc")
def test_build_and_rebuild_fcc_al_from_its_qe_run(tmp_path):
    """build_record on the real fcc-Al run gives QE's λ; rebuild_record keeps the run's provenance and σ."""
    runs, records = tmp_path / "qe", tmp_path / "records"
    shutil.copytree(QE_RUNS_DIR / "Al1-fcc", runs / "Al1-fcc")
    rec = build_record("Al1-fcc", QEConfig(), runs_dir=runs)
    assert rec.lambda_ == pytest.approx(rec.provenance["lambda_qe"], rel=0.03)
    mbb = rec.moments_by_broadening
    assert len(mbb["broadening_Ry"]) == 10 and mbb["broadening_Ry"][mbb["selected_index"]] == 0.02
    np.testing.assert_allclose(mbb["lambda_qe"], [0.1522, 0.3365, 0.3451, 0.3290, 0.3139, 0.3070, 0.3088, 0.3174, 0.3295, 0.3421])
    records.mkdir()
    data = json.loads((RECORDS_DIR / "Al1-fcc.json").read_text())
    data["schema_version"] = 1
    data["provenance"] = {**data["provenance"], "host": "the-qe-host", "date": "2026-11-25T13:27:07+00:00"}
    (records / "Al1-fcc.json").write_text(json.dumps(data))
    other_sigma = dataclasses.replace(QEConfig(), elph_smearing_index=7)  # the record's σ wins over the profile's
    new = rebuild_record("Al1-fcc", other_sigma, runs_dir=runs, records_dir=records)
    assert new.provenance["host"] == "the-qe-host" and new.provenance["date"] == "2026-11-25T13:27:07+00:00"
    assert new.provenance["elph_smearing_Ry"] == 0.02 and new.provenance["record_rebuilt"]["from_schema_version"] == 1
    assert new.lambda_ == pytest.approx(rec.lambda_, rel=1e-12)
    path = save_record(new, records, overwrite=True)
    assert load_record(path).flags == rec.flags
