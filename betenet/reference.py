"""Reference materials for the DFT-validation chapter: literature values with full citations.

Every number here was read in its source (or in a named secondary source quoting it) during the
session that wrote this module; :data:`SOURCES` says for each source where and how it was read.  A
value that could not be checked was left out (``None``), not guessed: the module docstring of
:mod:`betenet.validation` and the chapter say which comparisons are therefore missing.  Nothing
here is a result of this project: these are the numbers our own Quantum ESPRESSO records are
compared **against**.

Kinds of value
--------------
``lambda_dft`` / ``omega_log_dft_K``
    λ and ω_log of a published DFT (linear-response) calculation, as published.
``lambda_exp``
    λ deduced from experiment (tunnelling inversion of α²F).
``tc_exp_K``
    measured superconducting T_c at ambient pressure.  Elements: the CRC Handbook values as
    tabulated in pymatgen's ``periodic_table.json`` ("Superconduction temperature"),
    cross-checked against that file by ``tests/test_reference.py``.
``superconductor``
    whether the material superconducts at ambient pressure.  ``False`` for metals with no known
    transition (Cu, Ag, Au, Pt, Pd, Na, K, Mg): the validation asks that none of them is predicted
    above the high-T_c threshold.  ``None``: not verified (the entry serves the λ comparison only).

``known_issue`` says where the isotropic, scalar-relativistic DFT + Allen–Dynes answer is
expected to miss, and why (spin–orbit coupling, multi-gap anisotropy, spin fluctuations,
vacancies, anharmonicity, ...).  Material ids are this project's candidate ids
(:func:`betenet.qe.prototypes.material_id`: ``Nb1-bcc``, ``NbC-B1``, ``MgB2-AlB2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

__all__ = [
    "Source",
    "LiteratureValue",
    "ReferenceMaterial",
    "SOURCES",
    "REFERENCE_SET",
    "UNVERIFIED",
    "reference",
    "reference_ids",
    "reference_table",
    "ReferenceError",
]


class ReferenceError(KeyError):
    """A material id or source key that the reference set does not have (the message names it)."""


@dataclass(frozen=True)
class Source:
    """One publication (or compilation) and how its numbers were read for this table."""

    key: str
    #: Full citation (authors, title, journal, volume, page, year; arXiv id or DOI where known).
    citation: str
    #: Where the numbers were read: the page or file, and which part of it (abstract, table, intro).
    read_in: str


@dataclass(frozen=True)
class LiteratureValue:
    """A number from the literature and the key of its :class:`Source` in :data:`SOURCES`."""

    value: float
    source: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ReferenceError(f"LiteratureValue({self.value}): unknown source key {self.source!r}; known: {sorted(SOURCES)}")


@dataclass(frozen=True)
class ReferenceMaterial:
    """A material of the reference set: our candidate id and what the literature says about it."""

    material_id: str
    label: str
    kind: Literal["element", "compound"]
    #: Superconducting at ambient pressure (experiment); ``status_source`` is where that is stated.
    #: ``None``: the experimental status was not verified (the entry serves the λ comparison only).
    superconductor: bool | None
    status_source: str
    tc_exp_K: LiteratureValue | None = None
    lambda_dft: LiteratureValue | None = None
    omega_log_dft_K: LiteratureValue | None = None
    lambda_exp: LiteratureValue | None = None
    #: Why isotropic DFT + Allen–Dynes may miss here (empty: no known reason).
    known_issue: str = ""
    #: Which way ``known_issue`` pushes our answer, where the cited physics says so: ``"low"`` (we expect
    #: too small a λ / T_c), ``"high"``, or ``None`` (no direction established).  A miss the other way is
    #: not explained by the note (:func:`betenet.validation.summarize`).
    lambda_bias: Literal["low", "high"] | None = None
    tc_bias: Literal["low", "high"] | None = None
    #: A remark for the reader that is not a reason for a miss (shown in the reference table only).
    comment: str = ""

    def __post_init__(self) -> None:
        for name in ("lambda_bias", "tc_bias"):
            if getattr(self, name) not in (None, "low", "high"):
                raise ValueError(f"{self.material_id}: {name} must be 'low', 'high' or None, got {getattr(self, name)!r}")
        if self.status_source not in SOURCES:
            raise ReferenceError(f"{self.material_id}: unknown status_source {self.status_source!r}; known: {sorted(SOURCES)}")
        if self.superconductor and self.tc_exp_K is None:
            raise ValueError(f"{self.material_id}: a superconductor needs tc_exp_K")
        if self.superconductor is not True and self.tc_exp_K is not None:
            raise ValueError(f"{self.material_id}: a non-superconductor has no tc_exp_K")


_READ = "read 2026-12-03"
#: A second, independent reading of the same source (a later session, looking for the numbers again).
_REREAD = "re-read 2026-12-03 by a second reader"

#: The sources, by key.
SOURCES: dict[str, Source] = {s.key: s for s in [
    Source(
        "crc-pymatgen",
        "CRC Handbook of Chemistry and Physics, 'Properties of superconductors' (elements), as tabulated in "
        "pymatgen's periodic_table.json, field 'Superconduction temperature' (pymatgen 2026.10.24)",
        f"the installed pymatgen data file ({_READ}); values cross-checked at test time by tests/test_reference.py",
    ),
    Source(
        "crc-pymatgen-none",
        "CRC Handbook of Chemistry and Physics, 'Properties of superconductors' (elements), as tabulated in "
        "pymatgen's periodic_table.json (pymatgen 2026.10.24): no 'Superconduction temperature' entry",
        f"the installed pymatgen data file ({_READ}): no ambient-pressure T_c listed for the element; checked at "
        "test time by tests/test_reference.py",
    ),
    Source(
        "bristol-cu-ag-au-pt",
        "University of Bristol School of Chemistry web project 2006, 'Which elements are low-temperature "
        "superconductors?' (www.chm.bris.ac.uk/webprojects2006/Truscott/pagec_r.html), after superconductors.org; "
        "used for Pt, whose CRC entry (pymatgen) is also empty",
        f"page text ({_READ}): copper, silver, platinum and gold do not become superconductors at low temperature",
    ),
    Source(
        "ummarino2024",
        "G. A. Ummarino, A. Zaccone, 'Can the noble metals (Au, Ag and Cu) be superconductors?', arXiv:2406.16621 (2024)",
        f"abstract and first paragraph (ar5iv copy, {_READ}): Au, Ag and Cu are not superconductors, even under high "
        "pressure (citing Khan & Raub 1975; Buzea & Robbie 2004)",
    ),
    Source(
        "kong2001",
        "Y. Kong, O. V. Dolgov, O. Jepsen, O. K. Andersen, 'Electron-phonon interaction in the normal and "
        "superconducting states of MgB2', Phys. Rev. B 64, 020501(R) (2001), arXiv:cond-mat/0102499",
        f"abstract ({_READ}): λ = 0.87, λ_tr = 0.60; T_c = 40 K reproduced with μ* = 0.10; {_REREAD} in the "
        "arXiv abstract as shown on pith.science/paper/cond-mat/0102499 and shamra-academia.com: same numbers",
    ),
    Source(
        "kortus2001",
        "J. Kortus, I. I. Mazin, K. D. Belashchenko, V. P. Antropov, L. L. Boyer, 'Superconductivity of metallic "
        "boron in MgB2', Phys. Rev. Lett. 86, 4656 (2001), arXiv:cond-mat/0101446",
        f"abstract ({_READ}), quoting the experiment of J. Nagamatsu, J. Akimitsu et al., Nature 410, 63 (2001): "
        "T_c = 39 K",
    ),
    Source(
        "dicataldo2025",
        "S. Di Cataldo, W. Cursio, L. Boeri, 'Vacancy-controlled superconductivity in rock-salt carbides: towards "
        "predictive modelling of real-world superconductors', arXiv:2506.07768 (2025)",
        f"Table I ({_READ}), stoichiometric rock-salt columns: experimental T_c range, McMillan T_c, λ and ω_log "
        f"(K) of DFPT; λ is given to one decimal. {_REREAD} (arxiv.org/html/2506.07768v1, Table I, printed before "
        "the introduction; columns Comp., Exp. T_c, Dyn. st., ΔH, N(E_F), T_c^McM, λ, ω_log): NbC exp. 0–11.5 K, "
        "λ 1.0, ω_log 299 K; TaC exp. 0–10.3 K, λ 0.7, ω_log 259 K; ZrC λ 0.2, ω_log 473 K; HfC λ 0.2, ω_log 427 K. "
        "The Exp. T_c column also shows 0.3 K (ZrC) and 1.2 K (HfC), but without a reference marker in that "
        "rendering (the NbC, TaC, TiC entries carry one): not used (see UNVERIFIED)",
    ),
    Source(
        "zou2016",
        "Y. Zou et al., 'Discovery of superconductivity in hard hexagonal ε-NbN', Sci. Rep. 6, 22330 (2016), "
        "doi:10.1038/srep22330",
        f"introduction ({_READ}): experimental T_c 10 K for ZrN, 8.8 K for HfN, 17.3 K for δ-NbN (their refs.); "
        f"{_REREAD} (doi.org/10.1038/srep22330 page, first paragraph of the introduction): same numbers",
    ),
    Source(
        "kogler2025",
        "E. Kogler et al., 'Vacancy-free cubic superconducting NbN enabled by quantum anharmonicity', "
        "arXiv:2507.03417 (2025)",
        f"abstract ({_READ}): ideal stoichiometric cubic δ-NbN is dynamically unstable in harmonic DFT; "
        "SSCHA phonons give T_c = 20 K",
    ),
    Source(
        "wolf1981",
        "E. L. Wolf, D. M. Burnell, R. J. Noer, 'Electron-longitudinal-phonon coupling in a transition metal: Ta', "
        "Phys. Lett. A 83, 300 (1981)",
        f"abstract (NYU scholars page, {_READ}): proximity tunnelling gives λ = 0.73, μ* = 0.10 for Ta",
    ),
    Source(
        "pena-seaman2011",
        "O. De la Peña-Seaman, R. Heid, K.-P. Bohnen, 'First principles study of the spin-orbit coupling effect on "
        "the Tl-Pb-Bi superconducting alloys', DPG spring meeting Dresden 2011, TT 7.2",
        f"abstract ({_READ}): spin-orbit coupling softens the phonons of Pb-based fcc alloys and enhances λ by up "
        "to 48 %, needed to agree with tunnelling",
    ),
    Source(
        "zarea2023",
        "M. Zarea, H. Ueki, J. A. Sauls, 'Effects of anisotropy and disorder on the superconducting properties of "
        "niobium', Front. Phys. (2023), doi:10.3389/fphy.2023.1269872, arXiv:2201.07403",
        f"abstract (frontiersin.org and ar5iv copies, {_READ}): DFT α²F of Nb with λ = 1.057; Eliashberg T_c = 9.33 K "
        f"needs μ* = 0.218; {_REREAD} (frontiersin.org full-text page, abstract): same numbers",
    ),
    Source(
        "choi2002",
        "H. J. Choi, D. Roundy, H. Sun, M. L. Cohen, S. G. Louie, 'The origin of the anomalous superconducting "
        "properties of MgB2', Nature 418, 758 (2002)",
        f"abstract (nature.com, {_READ}): conventional models fail to predict MgB2's T_c; the boron-plane states couple "
        "strongly to specific phonons, giving multiple gaps and the high T_c",
    ),
    Source(
        "knapp1974",
        "G. S. Knapp, R. W. Jones, B. A. Loomis, 'The electron-phonon enhancement factor for some transition metals', "
        "in Low Temperature Physics LT 13 (Springer, 1974), doi:10.1007/978-1-4684-2688-5_123",
        f"abstract (link.springer.com, {_READ}): specific-heat λ of Pt and Pd agree with McMillan theory only if strong "
        "spin-fluctuation effects are taken into account",
    ),
    Source(
        "savrasov1996",
        "S. Y. Savrasov, D. Y. Savrasov, 'Electron-phonon interactions and related physical properties of metals "
        "from linear-response theory', Phys. Rev. B 54, 16487 (1996)",
        f"abstract only ({_READ}): LDA linear-response α²F of Al, Cu, Mo, Nb, Pb, Pd, Ta, V; λ agrees with "
        "specific heat without a paramagnon contribution except in Pd. Its tables were not accessible: no "
        f"number is taken from it (see UNVERIFIED). {_REREAD}: the stored scribd copy "
        "(de.scribd.com/document/360824907) yields page 1 of 15 only (abstract and the first lines of the "
        "introduction), whatever the query; same conclusion",
    ),
    Source(
        "savrasov1996-abinit",
        "S. Y. Savrasov, D. Y. Savrasov, Phys. Rev. B 54, 16487 (1996), as quoted by the ABINIT electron-phonon "
        "tutorials for fcc Al (X. Gonze et al., ABINIT; github.com/abinit)",
        "second-hand, read 2026-12-04: abinit/abitutorials, Al e-ph lesson (eph_al): 'our estimate for λ should be "
        "somewhere in [0.39, 0.42] that compares much better with the value of 0.44 reported by Savrasov' (a 32³ k "
        "mesh, as in the paper); abinit/abinit doc/tutorial/eph.md: 'the logarithmic average frequency is a bit too "
        "high (converged value of 270 K in [Savrasov1996])'. The same eph.md calls 0.44 'experiment'; the paper's "
        "own table was not read (see the savrasov1996 entry)",
    ),
]}

_CRC = "crc-pymatgen"
_SO = ("scalar-relativistic DFT without spin-orbit coupling: in Pb-based fcc metals spin-orbit coupling softens "
       "the phonons and raises λ (by up to 48 % in Pb-Tl-Bi alloys, pena-seaman2011); λ and T_c expected too low")
_SF = ("spin fluctuations (paramagnons) suppress T_c in this nearly magnetic d metal; Allen–Dynes with μ* = 0.1 "
       "ignores them, so T_c is expected too high")


def _el(mid: str, label: str, tc: float | None, *, issue: str = "", lam_exp: LiteratureValue | None = None,
        status: str = _CRC, lambda_bias: str | None = None, tc_bias: str | None = None,
        comment: str = "", lam_dft: LiteratureValue | None = None,
        wlog_dft: LiteratureValue | None = None) -> ReferenceMaterial:
    return ReferenceMaterial(
        mid, label, "element", superconductor=tc is not None, status_source=status,
        tc_exp_K=None if tc is None else LiteratureValue(tc, _CRC), lambda_exp=lam_exp, known_issue=issue,
        lambda_dft=lam_dft, omega_log_dft_K=wlog_dft,
        lambda_bias=lambda_bias, tc_bias=tc_bias, comment=comment,  # type: ignore[arg-type]
    )


#: The reference set, in display order: elemental superconductors, elemental non-superconductors, compounds.
REFERENCE_SET: tuple[ReferenceMaterial, ...] = (
    # --- elemental superconductors (experimental ground-state structure) ---
    _el("Al1-fcc", "Al (fcc)", 1.175, lam_dft=LiteratureValue(0.44, "savrasov1996-abinit", "second-hand"),
        wlog_dft=LiteratureValue(270.0, "savrasov1996-abinit", "second-hand")),
    ReferenceMaterial(
        "Nb1-bcc", "Nb (bcc)", "element", superconductor=True, status_source=_CRC,
        tc_exp_K=LiteratureValue(9.25, _CRC), lambda_dft=LiteratureValue(1.057, "zarea2023"),
        known_issue="Zarea et al. reproduce T_c = 9.33 K from their DFT λ = 1.057 only with μ* = 0.218 (Eliashberg): "
                    "with μ* = 0.1, a λ as large as published DFT over-predicts Nb's T_c",
        tc_bias="high",
    ),
    _el("Pb1-fcc", "Pb (fcc)", 7.2, issue=_SO, lambda_bias="low", tc_bias="low"),
    _el("Ta1-bcc", "Ta (bcc)", 4.47, lam_exp=LiteratureValue(0.73, "wolf1981", "proximity tunnelling, μ* = 0.10")),
    _el("V1-bcc", "V (bcc)", 5.4, issue=_SF.replace("this nearly magnetic d metal", "V"), tc_bias="high"),
    _el("Mo1-bcc", "Mo (bcc)", 0.915),
    _el("W1-bcc", "W (bcc)", 0.015, comment="T_c far below 1 K: only the sign of the error (predicted ≪ 5 K) is meaningful"),
    _el("Ti1-hcp", "Ti (hcp)", 0.4),
    _el("Zr1-hcp", "Zr (hcp)", 0.61),
    _el("Hf1-hcp", "Hf (hcp)", 0.128),
    _el("Zn1-hcp", "Zn (hcp)", 0.85),
    _el("Cd1-hcp", "Cd (hcp)", 0.517),
    _el("Tl1-hcp", "Tl (hcp)", 2.38, issue="6p metal: spin-orbit coupling omitted (scalar-relativistic pseudopotentials)"),
    _el("Re1-hcp", "Re (hcp)", 1.7, issue="5d metal: spin-orbit coupling omitted"),
    _el("Ru1-hcp", "Ru (hcp)", 0.49),
    _el("Os1-hcp", "Os (hcp)", 0.66, issue="5d metal: spin-orbit coupling omitted"),
    _el("Ir1-fcc", "Ir (fcc)", 0.11, issue="5d metal: spin-orbit coupling omitted"),
    _el("Be1-hcp", "Be (hcp)", 0.026, comment="T_c = 0.026 K: a λ error matters only if it lifts T_c above the 5 K threshold (the screening records did, issue 15)"),
    # --- elemental non-superconductors at ambient pressure ---
    _el("Cu1-fcc", "Cu (fcc)", None, status="ummarino2024"),
    _el("Ag1-fcc", "Ag (fcc)", None, status="ummarino2024"),
    _el("Au1-fcc", "Au (fcc)", None, status="ummarino2024"),
    _el("Pt1-fcc", "Pt (fcc)", None, status="bristol-cu-ag-au-pt",
        issue="5d metal: spin-orbit coupling omitted; spin fluctuations (knapp1974) suppress pairing, ignored by Allen–Dynes",
        tc_bias="high"),
    _el("Pd1-fcc", "Pd (fcc)", None, status="crc-pymatgen-none", issue=_SF.replace("suppress T_c in this nearly magnetic d metal", "suppress pairing in Pd")
        + " (knapp1974; Savrasov & Savrasov 1996: λ agrees with specific heat without paramagnons in every metal "
          "they studied except Pd)", tc_bias="high"),
    _el("Na1-bcc", "Na (bcc)", None, status="crc-pymatgen-none"),
    _el("K1-bcc", "K (bcc)", None, status="crc-pymatgen-none"),
    _el("Mg1-hcp", "Mg (hcp)", None, status="crc-pymatgen-none"),
    # --- compounds ---
    ReferenceMaterial(
        "MgB2-AlB2", "MgB2", "compound", superconductor=True, status_source="kortus2001",
        tc_exp_K=LiteratureValue(39.0, "kortus2001", "Nagamatsu et al. 2001, as quoted"),
        lambda_dft=LiteratureValue(0.87, "kong2001"),
        known_issue="two-gap (σ/π) anisotropic superconductor: conventional isotropic models fail to predict its T_c "
                    "(choi2002); one isotropic α²F with the Allen–Dynes formula is expected to fall short of 39 K "
                    "(Kong et al. reach 40 K by solving the Eliashberg equations, μ* = 0.10)",
        tc_bias="low",
    ),
    ReferenceMaterial(
        "NbC-B1", "NbC", "compound", superconductor=True, status_source="dicataldo2025",
        tc_exp_K=LiteratureValue(11.5, "dicataldo2025", "upper end of the reported range 0–11.5 K (carbon vacancies lower it)"),
        lambda_dft=LiteratureValue(1.0, "dicataldo2025", "one decimal"),
        omega_log_dft_K=LiteratureValue(299.0, "dicataldo2025"),
        known_issue="real samples are carbon-deficient (NbC_x): the measured T_c spans 0–11.5 K with composition "
                    "(dicataldo2025), and the stoichiometric crystal computed here need not match its upper end",
    ),
    ReferenceMaterial(
        "TaC-B1", "TaC", "compound", superconductor=True, status_source="dicataldo2025",
        tc_exp_K=LiteratureValue(10.3, "dicataldo2025", "upper end of the reported range 0–10.3 K"),
        lambda_dft=LiteratureValue(0.7, "dicataldo2025", "one decimal"),
        omega_log_dft_K=LiteratureValue(259.0, "dicataldo2025"),
        known_issue="carbon vacancies; 5d metal: spin-orbit coupling omitted",
    ),
    ReferenceMaterial(
        "ZrC-B1", "ZrC", "compound", superconductor=None, status_source="dicataldo2025",
        lambda_dft=LiteratureValue(0.2, "dicataldo2025", "one decimal"),
        omega_log_dft_K=LiteratureValue(473.0, "dicataldo2025"),
        comment="experimental status not verified here: a λ comparison only",
    ),
    ReferenceMaterial(
        "HfC-B1", "HfC", "compound", superconductor=None, status_source="dicataldo2025",
        lambda_dft=LiteratureValue(0.2, "dicataldo2025", "one decimal"),
        omega_log_dft_K=LiteratureValue(427.0, "dicataldo2025"),
        comment="experimental status not verified here: a λ comparison only",
    ),
    ReferenceMaterial(
        "ZrN-B1", "ZrN", "compound", superconductor=True, status_source="zou2016",
        tc_exp_K=LiteratureValue(10.0, "zou2016"),
        known_issue="nitrogen vacancies in real samples",
    ),
    ReferenceMaterial(
        "HfN-B1", "HfN", "compound", superconductor=True, status_source="zou2016",
        tc_exp_K=LiteratureValue(8.8, "zou2016"),
        known_issue="nitrogen vacancies; 5d metal: spin-orbit coupling omitted",
    ),
    ReferenceMaterial(
        "NbN-B1", "NbN (δ)", "compound", superconductor=True, status_source="zou2016",
        tc_exp_K=LiteratureValue(17.3, "zou2016"),
        known_issue="ideal stoichiometric B1 NbN is dynamically unstable in harmonic DFT (kogler2025): expect "
                    "imaginary modes and no harmonic label; vacancies or anharmonicity stabilise the real phase",
    ),
)

#: Values asked for but not verified in this session (left out of :data:`REFERENCE_SET`): what and why.
UNVERIFIED: tuple[tuple[str, str], ...] = (
    ("Savrasov & Savrasov 1996 λ, ω_log for Cu, Mo, Nb, Pb, Pd, Ta, V (Nb's DFT λ is Zarea et al. 2023's instead; "
     "Al's 0.44 and 270 K are read second-hand in the ABINIT tutorials, source savrasov1996-abinit)",
     "only the abstract was readable in the stored copies; the tables (λ, ω_log per metal) were not. A second "
     "search (same day) tried the scribd copy with table-caption and per-metal queries (page 1 of 15 only), the "
     "authors' review E. G. Maksimov, D. Yu. Savrasov, S. Yu. Savrasov, Phys. Usp. 40, 337 (1997) (abstract "
     "only), ABINIT/QE documentation that cites the paper (no numbers), and public code: one repository file "
     "attributes a λ and ω_log for Re to 'Savrasov & Savrasov, PRB 54, 16487', a metal the paper does not treat, "
     "so numbers quoted in code were not trusted"),
    ("published DFT λ, ω_log of the other elements (Pb with and without spin–orbit, Ta, V, Mo, Cu, Pd, W, Pt)",
     "looked for in abstracts and openings of later work: Kawamura, Hizume, Ozaki, Phys. Rev. B 101, 134511 (2020) "
     "(arXiv:1911.06481, SCDFT benchmark of the elements with λ and ω_ln tables: abstract and introduction only; "
     "its data are linked off-site), Goudreault, Poncé, Giustino, Côté (arXiv:2410.20157, Pb with SOC: abstract "
     "only, no number), Heid et al. 2010 (Pb, Tl with SOC: not found), Bauer et al. (Al, Au, Na, Nb: not found), Wierzbowska et al. (cond-mat/0504077, Nb: no λ in the readable part), B. Acharya (AIP Advances, "
     "doi:10.1063/5.0204055, Nb and V under pressure: abstract without a number). None gave a number in a readable part"),
    ("Ta: λ = 0.88 from 'Electron-phonon interaction effects in tantalum' (abstract on scilit.com)",
     "read, but not entered as lambda_dft: KKR bands, Born–von Kármán phonons fitted to experiment and "
     "rigid-muffin-tin matrix elements, not a linear-response DFT calculation like ours; authors and journal were "
     "not visible in the excerpt"),
    ("ZrN, HfN: transport coupling λ_tr = 1.11 (ZrN), 0.82 (HfN) from resistivity inversion of epitaxial films "
     "('Electron/phonon coupling in group-IV transition-metal and rare-earth nitrides', abstract on "
     "discovery.researcher.life)",
     "read, but λ_tr is not λ (lambda_exp here means a tunnelling λ), and authors, journal and year were not "
     "visible in the excerpt"),
    ("experimental T_c of ZrC (0.3 K) and HfC (1.2 K) in Di Cataldo et al. 2025, Table I",
     "read, but printed without a reference marker where the other carbides carry one; ZrC and HfC stay "
     "'status not verified' (λ comparison only)"),
    ("P. B. Allen's table of experimental λ (Handbook of Superconductivity, ed. C. P. Poole, 2000)",
     "only the introduction of the stored copy was readable; no table row could be checked"),
    ("DFT λ for Pb, Ta, V, Mo, Cu, Pd, Na, Mg, Zr, Ti, NbN, ZrN, HfN, TiN",
     "no source with the number in a readable part (abstract, introduction) was found"),
    ("experimental T_c of TiN, VN, ZrC, HfC, TiC", "no readable source found; ZrC and HfC are kept for the λ comparison"),
    ("experimental T_c of Li (≈ 0.4 mK), Y/Sc (under pressure)", "not verified; Li, Y, Sc are not in the set"),
)


def reference(material_id: str) -> ReferenceMaterial:
    """The reference entry of ``material_id``; :class:`ReferenceError` naming the known ids otherwise."""
    for entry in REFERENCE_SET:
        if entry.material_id == material_id:
            return entry
    raise ReferenceError(f"material {material_id!r} is not in the reference set; known: {reference_ids()}")


def reference_ids() -> list[str]:
    """Material ids of :data:`REFERENCE_SET`, in display order."""
    return [e.material_id for e in REFERENCE_SET]


def _v(x: LiteratureValue | None) -> float | None:
    return None if x is None else x.value


def _s(x: LiteratureValue | None) -> str:
    return "" if x is None else x.source


def reference_table() -> pd.DataFrame:
    """:data:`REFERENCE_SET` as a table: one row per material, values and the source key of each."""
    rows = [{
        "material_id": e.material_id, "label": e.label, "kind": e.kind, "superconductor": e.superconductor,
        "tc_exp_K": _v(e.tc_exp_K), "tc_exp_source": _s(e.tc_exp_K) or e.status_source,
        "lambda_dft": _v(e.lambda_dft), "omega_log_dft_K": _v(e.omega_log_dft_K), "dft_source": _s(e.lambda_dft),
        "lambda_exp": _v(e.lambda_exp), "lambda_exp_source": _s(e.lambda_exp), "known_issue": e.known_issue,
        "comment": e.comment,
    } for e in REFERENCE_SET]
    return pd.DataFrame(rows)
