"""QE input rendering/parsing: round trips, the el-ph namelists of the workflow, clear errors."""

from __future__ import annotations


import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from betenet.constants import CMM1_IN_MEV
from betenet.qe.inputs import (
    Namelist,
    NamelistInput,
    PseudoSpec,
    PWInput,
    QEInputError,
    check_structure,
    cutoffs_Ry,
    format_value,
    matdyn_input,
    parse_value,
    ph_input,
    projwfc_input,
    pseudo_specs,
    pw_input,
    q2r_input,
)


@pytest.fixture
def pseudos(tmp_path) -> dict[str, PseudoSpec]:
    out = {}
    for el, wfc in (("Nb", 35.0), ("Ru", 40.0)):
        p = tmp_path / f"{el}.test.UPF"
        p.write_text("<UPF version=\"2.0.1\"></UPF>\n")
        out[el] = PseudoSpec(el, p, ecutwfc_Ry=wfc, ecutrho_Ry=8 * wfc)
    return out


@pytest.fixture
def b2() -> Structure:
    return Structure(Lattice.cubic(3.07), ["Nb", "Ru"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_fortran_values_round_trip():
    for v in (True, False, 3, -7, 0.02, 1e-14, 2.5e7, "crystal", "./out"):
        assert parse_value(format_value(v)) == v
    assert format_value(1e-14) == "1d-14"
    assert parse_value("1.0D-3") == pytest.approx(1e-3)
    with pytest.raises(QEInputError, match="not finite"):
        format_value(float("nan"))
    with pytest.raises(QEInputError, match="cannot parse"):
        parse_value("abc")


def test_pw_vc_relax_round_trip(b2, pseudos):
    inp = pw_input(b2, pseudos, calculation="vc-relax", kpoints=(8, 8, 8), ecutwfc_Ry=40, ecutrho_Ry=320, outdir="./out", prefix="bn")
    text = inp.to_str()
    assert "&CELL" in text and "&IONS" in text and "cell_dynamics = 'bfgs'" in text
    assert "ibrav = 0" in text and "nat = 2" in text and "ntyp = 2" in text
    back = PWInput.from_str(text)
    assert back.to_str() == text
    assert back.structure.matches(b2)
    np.testing.assert_allclose(back.lattice_A, b2.lattice.matrix, atol=1e-10)
    assert back.kpoints == (8, 8, 8)
    assert back.control["calculation"] == "vc-relax"


def test_pw_scf_dense_has_la2f_and_smearing(b2, pseudos):
    text = pw_input(
        b2, pseudos, calculation="scf", kpoints=(12, 12, 12), ecutwfc_Ry=40, ecutrho_Ry=320, outdir="o", la2F=True, degauss_Ry=0.02
    ).to_str()
    back = PWInput.from_str(text)
    assert back.system["la2f"] is True
    assert back.system["occupations"] == "smearing" and back.system["smearing"] == "mp" and back.system["degauss"] == 0.02
    assert back.electrons["conv_thr"] == pytest.approx(2e-10)  # per atom
    assert "&CELL" not in text
    nscf = pw_input(b2, pseudos, calculation="nscf", kpoints=(12, 12, 12), ecutwfc_Ry=40, ecutrho_Ry=320, outdir="o", occupations="tetrahedra_opt")
    assert nscf.system["occupations"] == "tetrahedra_opt" and "degauss" not in nscf.system


def test_ph_elph_namelist(b2):
    inp = ph_input(b2, prefix="bn", outdir="./out", q=(4, 4, 3), fildyn="elph.dyn", elph=True, el_ph_sigma_Ry=0.005, el_ph_nsigma=10)
    text = inp.to_str()
    assert text.splitlines()[0] == "betenet el-ph"
    back = NamelistInput.from_str(text, has_title=True)
    p = back.params
    assert p["electron_phonon"] == "interpolated" and p["el_ph_sigma"] == 0.005 and p["el_ph_nsigma"] == 10
    assert (p["nq1"], p["nq2"], p["nq3"]) == (4, 4, 3) and p["ldisp"] is True and p["trans"] is True
    assert p["fildvscf"] and p["fildyn"] == "elph.dyn"
    # amass in ATOMIC_SPECIES order (sorted symbols): Nb then Ru
    assert p["amass(1)"] == pytest.approx(92.906, abs=1e-2) and p["amass(2)"] == pytest.approx(101.07, abs=1e-2)
    coarse = ph_input(b2, prefix="bn", outdir="./out", q=(2, 2, 2), fildyn="coarse.dyn", elph=False).params
    assert "electron_phonon" not in coarse and "fildvscf" not in coarse
    assert "start_q" not in p and "start_q" not in coarse


def test_ph_input_for_one_irreducible_q(b2):
    one = ph_input(b2, prefix="bn", outdir="./out", q=(4, 4, 3), fildyn="elph.dyn", elph=True, only_q=3)
    p = NamelistInput.from_str(one.to_str(), has_title=True).params
    assert p["start_q"] == 3 and p["last_q"] == 3 and p["ldisp"] is True and (p["nq1"], p["nq3"]) == (4, 3)
    with pytest.raises(QEInputError, match="only_q.*>= 1, got 0"):
        ph_input(b2, prefix="bn", outdir="./out", q=(2, 2, 2), fildyn="x", elph=False, only_q=0)


def test_q2r_matdyn_projwfc(b2):
    q = q2r_input(fildyn="elph.dyn", flfrc="fc", la2F=True)
    assert NamelistInput.from_str(q.to_str()).params == {"fildyn": "elph.dyn", "flfrc": "fc", "zasr": "crystal", "la2f": True}
    m = matdyn_input(b2, flfrc="fc", nk=(16, 16, 16), fldos="phdos.dos", flfrq="f.freq", la2F=True, delta_meV=0.1).params
    assert m["dos"] is True and m["la2f"] is True and (m["nk1"], m["nk2"], m["nk3"]) == (16, 16, 16)
    assert m["deltae"] * CMM1_IN_MEV == pytest.approx(0.1)  # DeltaE is in cm^-1
    pw = projwfc_input(prefix="bn", outdir="./out", filpdos="pdos", emin_eV=-2.0, emax_eV=12.0).params
    assert pw["emin"] == -2.0 and pw["deltae"] == 0.02


def test_namelist_parse_errors_name_the_problem():
    with pytest.raises(QEInputError, match="not closed"):
        Namelist.parse_all("&input\n a = 1\n")
    with pytest.raises(QEInputError, match=r"&input: expected 'key = value'"):
        Namelist.parse_all("&input\n a 1\n/\n")
    with pytest.raises(QEInputError, match="duplicate key 'a'"):
        Namelist.parse_all("&input\n a = 1, A = 2\n/\n")
    with pytest.raises(QEInputError, match="keys differ only by case"):
        Namelist("x", {"a": 1, "A": 2})
    # comments and quoted '/' are handled
    nls, _ = Namelist.parse_all("&input ! comment / here\n outdir = './a/b' , x=1.5d0\n/\n")
    assert nls[0].params == {"outdir": "./a/b", "x": 1.5}


def test_pw_parse_errors(b2, pseudos):
    text = pw_input(b2, pseudos, calculation="scf", kpoints=(4, 4, 4), ecutwfc_Ry=40, ecutrho_Ry=320, outdir="o").to_str()
    with pytest.raises(QEInputError, match="missing card K_POINTS"):
        PWInput.from_str(text.split("K_POINTS")[0], origin="bad.in")
    with pytest.raises(QEInputError, match="ATOMIC_POSITIONS has 1 atoms, &SYSTEM nat=2"):
        PWInput.from_str(text.replace("  Ru  0.5", "! Ru 0.5"), origin="bad.in")
    bad = text.replace("4 4 4 0 0 0", "4 4 x 0 0 0")
    with pytest.raises(QEInputError, match=r"bad.in:\d+: K_POINTS automatic"):
        PWInput.from_str(bad, origin="bad.in")
    with pytest.raises(QEInputError, match="ibrav=2 not supported"):
        PWInput.from_str(text.replace("ibrav = 0", "ibrav = 2"))


def test_structure_errors(pseudos):
    with pytest.raises(QEInputError, match="expected a pymatgen Structure"):
        check_structure("Nb")
    with pytest.raises(QEInputError, match="overlapping"):
        check_structure(Structure(Lattice.cubic(3.0), ["Nb", "Ru"], [[0, 0, 0], [0.01, 0, 0]]))
    with pytest.raises(QEInputError, match="disordered"):
        check_structure(Structure(Lattice.cubic(3.0), [{"Nb": 0.5, "Ru": 0.5}], [[0, 0, 0]]))
    with pytest.raises(QEInputError, match="exceeds max_atoms=1"):
        check_structure(Structure(Lattice.cubic(3.0), ["Nb", "Ru"], [[0, 0, 0], [0.5, 0.5, 0.5]]), max_atoms=1)
    al = Structure(Lattice.cubic(4.0), ["Al"], [[0, 0, 0]])
    with pytest.raises(QEInputError, match="no pseudopotential for element 'Al'"):
        pw_input(al, pseudos, calculation="scf", kpoints=(2, 2, 2), ecutwfc_Ry=30, ecutrho_Ry=120, outdir="o")


def test_pseudo_specs_and_cutoffs(tmp_path, pseudos):
    (tmp_path / "Al.pz-vbc.UPF").write_text("x")
    specs = pseudo_specs(tmp_path, ["Al"])
    assert specs["Al"].filename == "Al.pz-vbc.UPF"
    with pytest.raises(QEInputError, match=r"no pseudopotential for element 'Xe' in .* \(expected Xe\.\*\.UPF\)"):
        pseudo_specs(tmp_path, ["Xe"])
    with pytest.raises(QEInputError, match=r"no pseudopotential for element\(s\) \['Xe'\]"):
        pseudo_specs(pseudos, ["Nb", "Xe"])
    assert cutoffs_Ry(pseudos, None, None) == (40.0, 320.0)  # max of the recommendations
    assert cutoffs_Ry(pseudos, 75.0, 350.0) == (75.0, 350.0)  # explicit values win (paper)
    with pytest.raises(QEInputError, match="ecutrho_Ry=100.0 < 4 x ecutwfc_Ry=40.0"):
        cutoffs_Ry(pseudos, 40.0, 100.0)


def test_project_pseudo_library_missing_element_is_clear():
    from betenet.qe import pseudo as pseudo_mod

    try:
        lib = pseudo_mod.PseudoLibrary.default()
    except Exception as exc:  # library not generated in this checkout
        pytest.skip(f"project pseudopotential library unavailable: {exc}")
    with pytest.raises(QEInputError, match="Og"):
        pseudo_specs(lib, ["Og"])
    el = lib.elements[0]
    spec = pseudo_specs(lib, [el])[el]
    assert spec.path.is_file() and spec.ecutwfc_Ry and spec.ecutrho_Ry
