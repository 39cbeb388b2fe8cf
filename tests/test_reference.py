"""The reference set of the DFT-validation chapter: ids, sources, and the experimental T_c against pymatgen's table."""

from __future__ import annotations

import re
import warnings

import pytest
from pymatgen.core import Element

from betenet import reference as ref
from betenet.qe import prototypes


def _pymatgen_tc(symbol: str) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns "No data available" for elements without a T_c
        tc = Element(symbol).superconduction_temperature
    return None if tc is None else float(tc)


def test_elemental_tc_equals_the_crc_table_in_pymatgen():
    checked = 0
    for e in ref.REFERENCE_SET:
        if e.kind != "element":
            continue
        (symbol,), _ = prototypes.parse_material_id(e.material_id)
        if e.tc_exp_K is not None and e.tc_exp_K.source == "crc-pymatgen":
            assert _pymatgen_tc(symbol) == pytest.approx(e.tc_exp_K.value, abs=1e-9), e.material_id
            checked += 1
        if e.status_source == "crc-pymatgen-none":
            assert e.superconductor is False and _pymatgen_tc(symbol) is None, e.material_id
    assert checked == 18  # Al Nb Pb Ta V Mo W Ti Zr Hf Zn Cd Tl Re Ru Os Ir Be


def test_ids_are_candidates_in_their_ground_state_structure():
    ids = ref.reference_ids()
    assert len(ids) == len(set(ids)) == 34
    elements = {el for mid in ids for el in prototypes.parse_material_id(mid)[0]}
    candidates = {mid for mid, _, _ in prototypes.candidate_ids(elements=elements)}
    for e in ref.REFERENCE_SET:
        assert e.material_id in candidates, e.material_id
        if e.kind == "element":
            (symbol,), proto = prototypes.parse_material_id(e.material_id)
            assert prototypes.GROUND_STATE[symbol] == proto, e.material_id


def test_every_value_has_a_full_citation():
    for key, src in ref.SOURCES.items():
        assert src.key == key
        assert re.search(r"\b(19|20)\d\d\b", src.citation), key  # a year
        assert src.read_in, key
    used = set()
    for e in ref.REFERENCE_SET:
        used.add(e.status_source)
        for v in (e.tc_exp_K, e.lambda_dft, e.omega_log_dft_K, e.lambda_exp):
            if v is not None:
                assert v.source in ref.SOURCES and v.value > 0, e.material_id
                used.add(v.source)
    # the sources not used for a number are cited in known issues (Savrasov's tables were not readable)
    cited_only = set(ref.SOURCES) - used
    assert cited_only == {"savrasov1996", "pena-seaman2011", "kogler2025", "choi2002", "knapp1974"}
    issues = " ".join(e.known_issue for e in ref.REFERENCE_SET)
    assert all(key in issues or ref.SOURCES[key].citation.split(",")[0].split()[-1] in issues for key in cited_only)


def test_superconductor_status_is_consistent():
    table = ref.reference_table()
    sc = table[table["superconductor"] == True]  # noqa: E712
    assert sc["tc_exp_K"].notna().all() and len(sc) == 24  # 18 elements, 6 compounds
    assert set(table.loc[table["superconductor"] == False, "material_id"]) == {  # noqa: E712
        "Cu1-fcc", "Ag1-fcc", "Au1-fcc", "Pt1-fcc", "Pd1-fcc", "Na1-bcc", "K1-bcc", "Mg1-hcp"}
    assert table.loc[table["material_id"] == "MgB2-AlB2", ["tc_exp_K", "lambda_dft"]].values.tolist() == [[39.0, 0.87]]
    # published DFT λ: two elements (Nb, Zarea et al. 2023; Al, Savrasov 1996 via the ABINIT tutorials), five compounds
    dft = table[table["lambda_dft"].notna()]
    assert dict(zip(dft["material_id"], dft["lambda_dft"])) == {
        "Al1-fcc": 0.44, "Nb1-bcc": 1.057, "MgB2-AlB2": 0.87, "NbC-B1": 1.0, "TaC-B1": 0.7, "ZrC-B1": 0.2, "HfC-B1": 0.2}
    with pytest.raises(ValueError, match="X1-fcc: a superconductor needs tc_exp_K"):
        ref.ReferenceMaterial("X1-fcc", "X", "element", superconductor=True, status_source="crc-pymatgen")
    with pytest.raises(ValueError, match="X1-fcc: a non-superconductor has no tc_exp_K"):
        ref.ReferenceMaterial("X1-fcc", "X", "element", superconductor=False, status_source="crc-pymatgen",
                              tc_exp_K=ref.LiteratureValue(1.0, "crc-pymatgen"))


def test_known_issues_name_the_physics_of_the_expected_misses():
    assert "spin-orbit" in ref.reference("Pb1-fcc").known_issue
    assert "spin-orbit" in ref.reference("Tl1-hcp").known_issue
    assert "anisotropic" in ref.reference("MgB2-AlB2").known_issue
    for mid in ("Pd1-fcc", "V1-bcc"):
        assert "spin fluctuations" in ref.reference(mid).known_issue, mid
    assert "dynamically unstable" in ref.reference("NbN-B1").known_issue
    # the direction each note predicts: spin-orbit coupling → λ and T_c too low; spin fluctuations → T_c too high
    biases = {e.material_id: (e.lambda_bias, e.tc_bias) for e in ref.REFERENCE_SET if e.lambda_bias or e.tc_bias}
    assert biases == {"Pb1-fcc": ("low", "low"), "V1-bcc": (None, "high"), "Pd1-fcc": (None, "high"),
                      "Pt1-fcc": (None, "high"), "Nb1-bcc": (None, "high"), "MgB2-AlB2": (None, "low")}
    with pytest.raises(ValueError, match="X1-fcc: tc_bias must be 'low', 'high' or None, got 'up'"):
        ref.ReferenceMaterial("X1-fcc", "X", "element", superconductor=False, status_source="crc-pymatgen", tc_bias="up")


def test_unknown_ids_and_sources_raise_naming_them():
    with pytest.raises(ref.ReferenceError, match="'Xx1-fcc' is not in the reference set"):
        ref.reference("Xx1-fcc")
    with pytest.raises(ref.ReferenceError, match="unknown source key 'nobody2024'"):
        ref.LiteratureValue(1.0, "nobody2024")
    with pytest.raises(ref.ReferenceError, match="Al1-fcc: unknown status_source 'x'"):
        ref.ReferenceMaterial("Al1-fcc", "Al", "element", superconductor=False, status_source="x")
    assert any("Savrasov" in what for what, _ in ref.UNVERIFIED)


def _literature_values():
    for e in ref.REFERENCE_SET:
        for field in ("tc_exp_K", "lambda_dft", "omega_log_dft_K", "lambda_exp"):
            v = getattr(e, field)
            if v is not None:
                yield e.material_id, field, v


def test_every_published_number_is_written_in_its_reading_note():
    """A number from the literature (other than the CRC T_c, checked against pymatgen above) appears in the
    ``read_in`` note of its source, so each value says where it was read and what was read there."""
    checked = 0
    for mid, field, v in _literature_values():
        if v.source == "crc-pymatgen":
            continue
        note = ref.SOURCES[v.source].read_in
        forms = {f"{v.value:g}", f"{v.value}"}
        assert any(re.search(rf"(?<![\d.]){re.escape(f)}(?!\.?\d)", note) for f in forms), (mid, field, v)
        checked += 1
    assert checked == 19  # Al λ and ω_log, Nb λ, Ta λ_exp, MgB2 (2), NbC, TaC (3 each), ZrC, HfC (2 each), ZrN, HfN, NbN T_c


def test_no_number_comes_from_a_source_whose_tables_were_not_read():
    # Savrasov & Savrasov 1996: abstract only (scribd page 1 of 15); it may be cited, never used for a number
    assert all(v.source != "savrasov1996" for _, _, v in _literature_values())
    what, why = next((w, y) for w, y in ref.UNVERIFIED if w.startswith("Savrasov"))
    assert "scribd" in why and "Re" in why  # what was tried, and why numbers quoted in code were not trusted


def test_rock_salt_carbides_match_di_cataldo_table_one():
    got = {mid: (ref.reference(mid).lambda_dft.value, ref.reference(mid).omega_log_dft_K.value)
           for mid in ("NbC-B1", "TaC-B1", "ZrC-B1", "HfC-B1")}
    assert got == {"NbC-B1": (1.0, 299.0), "TaC-B1": (0.7, 259.0), "ZrC-B1": (0.2, 473.0), "HfC-B1": (0.2, 427.0)}
    assert all(ref.reference(mid).lambda_dft.source == "dicataldo2025" for mid in got)
    # ZrC, HfC: the table's experimental T_c carries no reference marker, so their status stays unverified
    assert ref.reference("ZrC-B1").superconductor is None and ref.reference("HfC-B1").superconductor is None
