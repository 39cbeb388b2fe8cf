"""The material record (betenet.records): round trip, validation errors naming material and field, no overwrite."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from betenet.records import (
    A2F_NEGATIVE_WEIGHT_TOLERANCE,
    SCHEMA_VERSION,
    MaterialRecord,
    RecordError,
    load_record,
    load_records,
    save_record,
    validate_record,
)


@functools.lru_cache(maxsize=1)
def _rocksalt() -> Structure:
    conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return conv.get_primitive_structure()


def rocksalt() -> Structure:
    """Primitive rock-salt NaCl (2 sites); a fresh copy each call."""
    return _rocksalt().copy()


def make_record(material_id: str = "test-0001-NaCl", structure: Structure | None = None) -> MaterialRecord:
    structure = structure or rocksalt()
    n = len(structure)
    w = np.arange(0.1, 40.0, 0.1)
    a2f = 0.3 * np.exp(-0.5 * ((w - 15.0) / 3.0) ** 2)
    ph = np.exp(-0.5 * ((w - 12.0) / 4.0) ** 2)
    e = np.linspace(-500.0, 500.0, 101)
    return MaterialRecord(
        material_id=material_id,
        structure=structure,
        a2f_omega_meV=w,
        a2f=a2f,
        phdos_omega_meV=w,
        phdos_total=ph * n,
        phdos_site=np.stack([ph] * n),
        phdos_coarse_omega_meV=w[::2],
        phdos_coarse_total=ph[::2] * n,
        phdos_coarse_site=np.stack([ph[::2]] * n),
        edos_energy_meV=e,
        edos_total=np.full(e.size, 1.5),
        edos_site=np.full((n, e.size), 1.5 / n),
        edos_ef_per_eV=1.5,
        lambda_=0.42,
        omega_log_K=170.0,
        omega_2_K=180.0,
        tc_ad_K=0.9,
        source="betenet-qe",
        provenance={"code": "pw.x", "version": "6.7", "settings": {"ecutwfc_Ry": 30.0}},
    )


def test_round_trip(tmp_path):
    rec = make_record()
    path = save_record(rec, tmp_path)
    assert path == tmp_path / "test-0001-NaCl.json"
    assert not list(tmp_path.glob("*.tmp"))
    data = json.loads(path.read_text())
    assert data["schema"] == "betenet.record" and data["schema_version"] == SCHEMA_VERSION
    assert data["formula"] == "NaCl"
    back = load_record(path)
    assert back.material_id == rec.material_id and back.formula == "NaCl" and back.elements == ["Cl", "Na"]
    assert back.structure == rec.structure
    for name in ("a2f_omega_meV", "a2f", "phdos_site", "phdos_coarse_total", "edos_site"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rec, name))
    for name in ("edos_ef_per_eV", "lambda_", "omega_log_K", "omega_2_K", "tc_ad_K"):
        assert getattr(back, name) == getattr(rec, name)
    assert back.provenance == rec.provenance and back.source == "betenet-qe"


def test_optional_fields_may_be_absent(tmp_path):
    rec = make_record()
    minimal = MaterialRecord(material_id="min", structure=rec.structure, a2f_omega_meV=rec.a2f_omega_meV, a2f=rec.a2f)
    back = load_record(save_record(minimal, tmp_path))
    assert back.phdos_site is None and back.lambda_ is None and back.provenance == {}


def test_load_records_sorted_and_from_paths(tmp_path):
    for mid in ("b-2", "a-1", "c-3"):
        save_record(make_record(mid), tmp_path)
    assert [r.material_id for r in load_records(tmp_path)] == ["a-1", "b-2", "c-3"]
    assert [r.material_id for r in load_records([tmp_path / "c-3.json", tmp_path / "a-1.json"])] == ["a-1", "c-3"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_records(tmp_path / "nope")


def test_refuses_to_overwrite(tmp_path):
    rec = make_record()
    path = save_record(rec, tmp_path)
    before = path.read_text()
    rec.lambda_ = 0.99
    with pytest.raises(FileExistsError, match="overwrite"):
        save_record(rec, tmp_path)
    assert path.read_text() == before
    save_record(rec, tmp_path, overwrite=True)
    assert load_record(path).lambda_ == 0.99


def _expect(rec: MaterialRecord, field: str, fragment: str):
    with pytest.raises(RecordError) as err:
        validate_record(rec)
    msg = str(err.value)
    assert rec.material_id in msg and repr(field) in msg and fragment in msg, msg


def test_validation_names_material_and_field():
    rec = make_record()
    rec.a2f[10] = np.nan
    _expect(rec, "a2f", "NaN")

    rec = make_record()
    w, pos = rec.a2f_omega_meV, np.trapezoid(rec.a2f, rec.a2f_omega_meV)
    lobe = np.exp(-0.5 * ((w - 3.0) / 0.5) ** 2)
    lobe /= np.trapezoid(lobe, w)
    rec.a2f = rec.a2f - 0.5 * A2F_NEGATIVE_WEIGHT_TOLERANCE * pos * lobe  # an interpolation lobe is kept
    validate_record(rec)
    rec.a2f = make_record().a2f - 2.0 * A2F_NEGATIVE_WEIGHT_TOLERANCE * pos * lobe
    _expect(rec, "a2f", "negative α²F weight")

    rec = make_record()
    rec.a2f_omega_meV[20] = rec.a2f_omega_meV[19]
    _expect(rec, "a2f_omega_meV", "strictly increasing at index 19")

    rec = make_record()
    rec.phdos_site = rec.phdos_site[:1]
    _expect(rec, "phdos_site", "expected (2, ")

    rec = make_record()
    rec.edos_energy_meV = None
    _expect(rec, "edos_total", "without its grid")

    rec = make_record()
    rec.a2f = np.zeros_like(rec.a2f)
    _expect(rec, "a2f", "identically zero")

    rec = make_record()
    rec.omega_log_K = math.inf
    _expect(rec, "omega_log_K", "not finite")


def test_unknown_element_is_rejected():
    dummy = Structure(Lattice.cubic(3.0), ["X"], [[0, 0, 0]])  # pymatgen DummySpecies, not an element
    _expect(make_record("dummy-1", dummy), "structure", "unknown element")


def test_file_level_errors_name_the_file(tmp_path):
    path = save_record(make_record(), tmp_path)
    data = json.loads(path.read_text())

    broken = dict(data)
    del broken["a2f"]
    (tmp_path / "missing.json").write_text(json.dumps(broken))
    with pytest.raises(RecordError, match=r"missing\.json: material 'test-0001-NaCl': missing required field 'a2f'"):
        load_record(tmp_path / "missing.json")

    (tmp_path / "version.json").write_text(json.dumps({**data, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(RecordError, match=r"version\.json.*'schema_version'"):
        load_record(tmp_path / "version.json")

    (tmp_path / "struct.json").write_text(json.dumps({**data, "structure": {"lattice": "nonsense"}}))
    with pytest.raises(RecordError, match=r"struct\.json.*'structure'"):
        load_record(tmp_path / "struct.json")

    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RecordError, match=r"bad\.json: not valid JSON"):
        load_record(tmp_path / "bad.json")

    # A record that fails validation in a file names file, material and field.
    nan_data = {**data, "a2f": [float("nan")] * len(data["a2f"])}
    (tmp_path / "nan.json").write_text(json.dumps(nan_data))
    with pytest.raises(RecordError, match=r"nan\.json: material 'test-0001-NaCl': field 'a2f'"):
        load_record(tmp_path / "nan.json")


def test_save_validates_first(tmp_path):
    rec = make_record()
    rec.a2f[0] = np.nan
    with pytest.raises(RecordError):
        save_record(rec, tmp_path)
    assert not list(tmp_path.iterdir())
