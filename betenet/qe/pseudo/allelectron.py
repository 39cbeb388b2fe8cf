"""All-electron E(V) of the reference solids with Elk (FP-LAPW + local orbitals, PBEsol), the reference that
tells a pseudopotential's error from the functional's.

The PseudoDojo E(V) check compared pw.x with room-temperature experiment.  PBEsol itself misses the early 3d
metals by about 2 % (Sc, Ti, V fail a 1.5 % tolerance), so that comparison cannot say whether the
pseudopotential or the functional is off.  The careful test (the Δ-gauge idea of Lejaeghere et al.,
Science 351, aad3000 (2016)) is the pseudopotential against an all-electron calculation of the *same*
functional in the *same* protocol: here Elk (J. K. Dewhurst, S. Sharma et al., https://elk.sourceforge.io;
Debian package ``elk-lapw``), PBEsol (``xctype 22``), valence scalar-relativistic, core Dirac, on the pw.x
scan's own cells (:func:`~betenet.qe.pseudo.solids.reference_structure`, c/a at experiment) and k mesh,
with Methfessel-Paxton smearing of the same width.  Elk's basis is converged by scanning twice, at
``rgkmax`` (R_MT x max|G+k|) :attr:`ElkSettings.rgkmax` and :attr:`ElkSettings.rgkmax_check`: the lattice
constants of the two scans must agree within :attr:`ElkSettings.convergence_a_pct` and each fit must pass
through its points within :attr:`ElkSettings.max_residual_mRy`.  At R_MT x max|G+k| 9 some SCFs of bcc Nb, Mo and
fcc Al land in a spurious state tens of Ha away (bcc Nb at a_exp: the 4s semicore level at -1.59 Ha is gone and a
flat band sits at the Fermi level, N(E_F) 12 instead of 44 states/Ha, total energy 36 Ha too low), a known
failure of an LAPW basis with local orbitals, which does not happen at 8 or 7: when the larger scan has a point off
its fit, or an SCF that does not converge (seen once for fcc Pd), the pair steps down to
:attr:`ElkSettings.rgkmax_check` and :attr:`ElkSettings.rgkmax_fallback` (``rgkmax_used``; every scan is kept, a
failed one as ``failed``).  One muffin-tin radius serves the whole scan (:func:`fixed_rmt`, :attr:`ElkSettings.rmt_fill`).

Results live in ``data/pseudo/allelectron/elk-pbesol.json`` (:func:`load_index`, one entry per element, with
the Elk version, the species files' sha256 and the settings); :func:`compare_eos` puts one beside a pw.x E(V)
and :func:`eos_verdict` judges a pw.x E(V) against it (or, without one, against experiment).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pymatgen.core import Structure

from ...constants import BOHR_IN_ANGSTROM, RY_IN_EV
from ...jsonio import read_json, sha256_file, write_json_atomic
from ...paths import PSEUDO_DIR
from ..runner import QEError, run_qe
from .errors import PseudoError
from .solids import eos_scan_scales, eos_step, fit_lattice_constant, reference_structure

__all__ = [
    "ELK_SPECIES_DIRS",
    "INDEX_NAME",
    "XC_NAMES",
    "ElkSettings",
    "allelectron_eos",
    "basis_pair",
    "compare_eos",
    "elements_with_eos",
    "elk_binary",
    "elk_input",
    "eos_verdict",
    "fit_scan",
    "fixed_rmt",
    "index_path",
    "load_index",
    "merge_entry",
    "parse_info",
    "read_index",
    "reusable",
    "run_elk",
    "save_entry",
    "scan_rmt",
    "species_dir",
    "species_rmt",
    "stage_species",
    "steps_down",
    "summary",
    "used_comparison",
]

#: Where Elk's species files are looked for (``ELK_SPECIES`` first): Debian's package, then a source build's.
ELK_SPECIES_DIRS = ("/usr/share/elk-lapw/species", "/usr/local/share/elk/species")
#: The index of all-electron results, under ``data/pseudo/allelectron/``.
INDEX_NAME = "elk-pbesol.json"
_HARTREE_IN_RY = 2.0
#: Elk's ``xctype`` codes of the functionals used here.
XC_NAMES = {20: "PBE", 22: "PBEsol"}


@dataclass(frozen=True)
class ElkSettings:
    """How the all-electron scans are run and how a pw.x E(V) is judged against them."""

    #: R_MT x max|G+k| of the reported scan and of the convergence scan; when the reported scan has a point off
    #: its fit (a spurious SCF state, see the module docstring) the pair becomes (``rgkmax_check``,
    #: ``rgkmax_fallback``).
    rgkmax: float = 9.0
    rgkmax_check: float = 8.0
    rgkmax_fallback: float = 7.0
    #: max |G| of the density and potential (bohr^-1) and empty states per atom (Elk's ``gmaxvr``, ``nempty``).
    gmaxvr: float = 16.0
    nempty: int = 10
    #: smearing width (Ry) of Methfessel-Paxton order 1, as pw.x's E(V) (``DojoSettings.degauss_Ry``).
    degauss_Ry: float = 0.02
    #: self-consistency: total energy change (Ha) and potential RMS change.
    epsengy: float = 1e-7
    epspot: float = 1e-7
    #: the two scans' lattice constants must agree within this (%), else the reference is not used.
    convergence_a_pct: float = 0.1
    #: ... and each scan's Birch-Murnaghan fit must pass through its points within this (mRy/atom).
    max_residual_mRy: float = 0.1
    #: a pw.x E(V) passes against the all-electron one when |Δa0| <= ``a0_tol_pct`` and |ΔB0| <= ``b0_tol_pct``,
    #: and its a0 is within ``a0_exp_sanity_pct`` of experiment (PBEsol's own error is ~2 % at most for metals).
    a0_tol_pct: float = 0.5
    b0_tol_pct: float = 10.0
    a0_exp_sanity_pct: float = 3.0
    #: where the protocol has been run with PBE against WIEN2k's PBE (:mod:`betenet.qe.pseudodojo_pbe`), its V0
    #: must be within this (%) for its PBEsol E(V) to judge a pseudopotential (all-electron codes agree within
    #: ~0.3 %; pw.x's tolerance against the reference is 0.5 % in a0, i.e. 1.5 % in V0).
    protocol_v0_tol_pct: float = 1.0
    timeout_s: float = 3600.0
    #: Elk's exchange-correlation functional (:data:`XC_NAMES`): PBEsol (22) for the reference the pseudopotentials
    #: are judged against; PBE (20) for the cross-check against the published WIEN2k PBE equations of state
    #: (:mod:`betenet.qe.pseudodojo_pbe`).
    xctype: int = 22
    #: muffin-tin radii: ``None`` (the protocol) the species files' radii, shrunk by one common factor only where
    #: they would overlap in the scan's smallest cell; a number: scaled, up or down, so that the closest pair of
    #: spheres there fills this fraction of its distance.  No such rule was adopted: hcp Mg's PBE V0 against
    #: WIEN2k's moves from -3.4 % (species radius 2.2 bohr) to +2.1 % (2.5), +0.4 % (2.8) and -0.35 % (2.84),
    #: with Elk warning that the valence charge does not integrate to its number at the larger radii
    #: (``data/studies/elk-muffin-tin``); the PBE cross-check (:func:`betenet.qe.pseudodojo_pbe.protocol_refusal`)
    #: is what catches such a solid.  Not a run field: what counts is the radii a scan used (``rmt_bohr``,
    #: :func:`reusable`).
    rmt_fill: float | None = None

    #: the fields that change what Elk computes (the rest are tolerances of the judgement)
    RUN_FIELDS = ("rgkmax", "rgkmax_check", "gmaxvr", "nempty", "degauss_Ry", "epsengy", "epspot", "xctype")
    #: what a saved scan lacking a run field ran with (``None``: any value; the field came later)
    _IF_MISSING: ClassVar[dict[str, Any]] = {"xctype": 22, "rgkmax_fallback": None}

    def __post_init__(self) -> None:
        if not self.rgkmax > self.rgkmax_check > self.rgkmax_fallback > 0:
            raise ValueError(f"ElkSettings: expected rgkmax > rgkmax_check > rgkmax_fallback > 0, got "
                             f"{self.rgkmax:g}, {self.rgkmax_check:g}, {self.rgkmax_fallback:g}")
        if self.xctype not in XC_NAMES:
            raise ValueError(f"ElkSettings: xctype {self.xctype} is not one of {sorted(XC_NAMES)} ({XC_NAMES})")
        if self.rmt_fill is not None and not 0.5 < self.rmt_fill < 1:
            raise ValueError(f"ElkSettings: rmt_fill must be in (0.5, 1) or None, got {self.rmt_fill}")

    @property
    def functional(self) -> str:
        """The functional's name and Elk's code, e.g. ``"PBEsol (xctype 22)"``."""
        return f"{XC_NAMES[self.xctype]} (xctype {self.xctype})"

    def same_run(self, settings: dict[str, Any]) -> bool:
        """Whether a saved scan's ``settings`` ran Elk as these do (tolerances may differ).  A scan saved before
        a field existed ran with its :attr:`_IF_MISSING` value (PBEsol; ``rgkmax_fallback``: it never stepped
        down, so any fallback matches)."""
        for k in (*self.RUN_FIELDS, "rgkmax_fallback"):
            want = getattr(self, k)
            have = settings[k] if k in settings else self._IF_MISSING.get(k, "missing")
            if have is not None and have != want:
                return False
        return True


def elk_binary() -> str:
    """The Elk executable (``ELK_BINARY``, else ``elk-lapw`` (Debian) or ``elk`` on PATH)."""
    for name in filter(None, (os.environ.get("ELK_BINARY"), "elk-lapw", "elk")):
        if (path := shutil.which(name)) is not None:
            return path
    raise PseudoError("Elk not found: install the Debian package elk-lapw (`make setup` does) or set ELK_BINARY")


def species_dir() -> Path:
    """Elk's species directory (``ELK_SPECIES``, else :data:`ELK_SPECIES_DIRS`)."""
    for d in filter(None, (os.environ.get("ELK_SPECIES"), *ELK_SPECIES_DIRS)):
        if (Path(d) / "Al.in").is_file():
            return Path(d)
    raise PseudoError(f"Elk species files (e.g. Al.in) not found in ELK_SPECIES or {', '.join(ELK_SPECIES_DIRS)}")


def elk_input(structure: Structure, kpoints: Sequence[int], rgkmax: float, s: ElkSettings = ElkSettings(),
              species: Path | None = None) -> str:
    """``elk.in`` of one ground-state run (task 0) of ``structure``: lattice vectors in bohr, atoms in
    lattice coordinates, ``s.xctype`` (PBEsol), MP1 smearing of ``s.degauss_Ry``, Γ-centred ``kpoints``."""
    sp = species or species_dir()
    avec = "\n".join("  " + "  ".join(f"{x / BOHR_IN_ANGSTROM:.10f}" for x in row) for row in structure.lattice.matrix)
    blocks = []
    for el in dict.fromkeys(site.specie.symbol for site in structure):
        pos = [site.frac_coords for site in structure if site.specie.symbol == el]
        blocks.append(f"  '{el}.in'\n  {len(pos)}\n" + "\n".join("  " + "  ".join(f"{x:.10f}" for x in p) for p in pos))
    return (f"tasks\n  0\n\nxctype\n  {s.xctype}\n\nrgkmax\n  {rgkmax:g}\n\ngmaxvr\n  {s.gmaxvr:g}\n\nnempty\n  {s.nempty}\n\n"
            f"ngridk\n  {' '.join(str(int(k)) for k in kpoints)}\n\nstype\n  1\n\nswidth\n  {s.degauss_Ry / _HARTREE_IN_RY:g}\n\n"
            f"epsengy\n  {s.epsengy:g}\n\nepspot\n  {s.epspot:g}\n\nmaxscl\n  200\n\nsppath\n  '{sp}/'\n\n"
            f"avec\n{avec}\n\nscale\n  1.0\n\natoms\n  {len(blocks)}\n" + "\n".join(blocks) + "\n")


_ENERGY = re.compile(r"^\s*total energy\s*:\s*(-?\d+\.\d+)", re.MULTILINE)
_VERSION = re.compile(r"Elk version (\S+) started")
_CPU = re.compile(r"^\s*total\s*:\s*(\d+\.\d+)\s*$", re.MULTILINE)
_CHARGE = re.compile(r"^\s*total calculated charge\s*:\s*(-?\d+\.\d+)\s*\n\s*total charge\s*:\s*(-?\d+\.\d+)", re.MULTILINE)


def parse_info(path: Path | str) -> dict[str, Any]:
    """Total energy (Ha, the last SCF iteration's), Elk version, CPU time and ``charge_error_e`` (the last
    iteration's calculated minus required total charge, electrons per cell: Elk renormalises the density and only
    warns, ``rhonorm``) of a finished ground-state run's ``INFO.OUT``; :class:`PseudoError` naming the file if it
    did not converge or stop normally."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise PseudoError(f"{path}: cannot read Elk's output ({exc})") from exc
    if "Convergence targets achieved" not in text or "Self-consistent loop stopped" not in text:
        raise PseudoError(f"{path}: Elk's self-consistent loop did not converge or did not finish "
                          "(expected 'Convergence targets achieved')")
    energies = _ENERGY.findall(text)
    if not energies:
        raise PseudoError(f"{path}: no 'total energy' line in Elk's output")
    version = _VERSION.search(text)
    cpu = _CPU.findall(text)
    charge = _CHARGE.findall(text)
    return {"energy_Ha": float(energies[-1]), "elk_version": version.group(1) if version else None,
            "cpu_s": float(cpu[-1]) if cpu else None,
            "charge_error_e": float(charge[-1][0]) - float(charge[-1][1]) if charge else None}


def run_elk(text: str, workdir: Path, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Run Elk on ``text`` (written as ``elk.in``, which Elk reads from its working directory) in ``workdir``
    through the project's one launcher (:func:`betenet.qe.runner.run_qe`: own process group, timeout; OpenMP
    threads from ``OMP_NUM_THREADS``, default 1); :func:`parse_info`'s result plus ``wall_s``."""
    try:
        wall = run_qe(elk_binary(), text, workdir, "elk", omp_threads=int(os.environ.get("OMP_NUM_THREADS", "1")),
                      timeout_s=timeout_s, check_done=False)
    except QEError as exc:
        raise PseudoError(f"Elk in {workdir}: {exc}") from exc
    out = parse_info(Path(workdir) / "INFO.OUT")
    out["wall_s"] = wall
    return out


_RMT_LINE = re.compile(r"^(\s*\S+\s+)(\S+)(\s+\S+\s+\S+\s*:\s*rminsp, rmt, rmaxsp, nrmt.*)$", re.MULTILINE)


def species_rmt(path: Path) -> float:
    """The muffin-tin radius (bohr) of an Elk species file; :class:`PseudoError` naming it if there is none."""
    m = _RMT_LINE.search(path.read_text())
    if m is None:
        raise PseudoError(f"{path}: no 'rminsp, rmt, rmaxsp, nrmt' line in this Elk species file")
    return float(m.group(2))


def fixed_rmt(structures: Sequence[Structure], rmt: dict[str, float], gap: float = 0.02, *, fill: bool = False
              ) -> dict[str, float]:
    """Muffin-tin radii (bohr) that fit every cell of ``structures`` (the scan's smallest decides): the species'
    own ``rmt`` scaled down by one common factor until no two spheres come closer than ``gap`` x their distance
    (``fill``: scaled up or down to exactly that).  Elk would otherwise shrink them itself in the compressed cells
    only, changing the basis inside one E(V) scan (bcc V, rmt 2.4 bohr: touching at 0.97 x the experimental
    lattice), which shows as noise in E(V)."""
    f = math.inf if fill else 1.0
    for st in structures:
        for site in st:
            for nb in st.get_neighbors(site, 4.0):
                d = nb.nn_distance / BOHR_IN_ANGSTROM
                f = min(f, (1 - gap) * d / (rmt[site.specie.symbol] + rmt[nb.specie.symbol]))
    if not math.isfinite(f):
        raise PseudoError("fixed_rmt: no two atoms within 4 Å in these cells; cannot fit the muffin tins to them")
    return {el: float(r * f) for el, r in rmt.items()}


def _scan_cells(element: str, scales: Sequence[float], max_points: int) -> dict[float, Structure]:
    """The cells of a scan at ``scales`` and of the smallest cell its extension (:func:`allelectron_eos`) can reach."""
    lowest = round(min(scales) - eos_step(scales) * max(0, max_points - len(scales)), 6)
    return {sc: reference_structure(element, sc)[0] for sc in sorted({*scales, lowest})}


def scan_rmt(element: str, scales: Sequence[float], s: ElkSettings | None = None, max_points: int = 7,
             cells: dict[float, Structure] | None = None) -> dict[str, float]:
    """The muffin-tin radii (bohr) of a scan of ``element``'s reference solid at ``scales`` (:func:`fixed_rmt`,
    ``s.rmt_fill``)."""
    s = s or ElkSettings()
    cells = cells or _scan_cells(element, scales, max_points)
    els = sorted({site.specie.symbol for st in cells.values() for site in st})
    sp = species_dir()
    species = {e: species_rmt(sp / f"{e}.in") for e in els}
    if s.rmt_fill is None:
        return fixed_rmt(list(cells.values()), species)
    return fixed_rmt(list(cells.values()), species, 1 - s.rmt_fill, fill=True)


def reusable(entry: dict[str, Any] | None, element: str, scales: Sequence[float], kpoints: Sequence[int],
             s: ElkSettings) -> bool:
    """Whether a saved all-electron E(V) ``entry`` is the scan :func:`allelectron_eos` would run now: the same
    scales and k mesh, Elk run fields (:meth:`ElkSettings.same_run`) and muffin-tin radii (:func:`scan_rmt`)."""
    if entry is None or (list(entry["scales"]), list(entry["kpoints"])) != (list(scales), list(kpoints)):
        return False
    if not s.same_run(entry["settings"]):
        return False
    want, have = scan_rmt(element, scales, s), entry.get("rmt_bohr") or {}
    return set(want) == set(have) and all(abs(want[e] - have[e]) < 1e-6 for e in want)


def stage_species(src: Path, dst: Path, rmt: dict[str, float]) -> None:
    """Copy the species files of ``rmt``'s elements from ``src`` to ``dst`` with these muffin-tin radii."""
    dst.mkdir(parents=True, exist_ok=True)
    for el, r in rmt.items():
        text = (src / f"{el}.in").read_text()
        species_rmt(src / f"{el}.in")  # the line is there (error naming the file if not)
        new = _RMT_LINE.sub(lambda m, r=r: f"{m.group(1)}{r:.6f}{m.group(3)}", text, count=1)
        (dst / f"{el}.in").write_text(new)


def fit_scan(element: str, volumes: list[float], energies_Ry: list[float]) -> dict[str, float]:
    """Birch-Murnaghan fit and its largest residual (mRy/atom): a point off a smooth E(V) (an SCF that found
    another state: bcc Nb at R_MT·max|G+k| 9 gave -3854.4 Ha at the experimental lattice, its neighbours -3818.4)
    shows there, and :func:`compare_eos` then does not use the scan."""
    fit, a = fit_lattice_constant(element, volumes, energies_Ry)
    lowest = min(energies_Ry)  # the fit is of the energies relative to the lowest
    resid = max(abs(float(fit.func(v)) / RY_IN_EV - (e - lowest)) for v, e in zip(volumes, energies_Ry))
    return {"v0_A3_per_atom": float(fit.v0), "b0_GPa": float(fit.b0_GPa), "b1": float(fit.b1), "a_A": float(a),
            "max_residual_mRy": 1e3 * resid}


def steps_down(top: dict[str, Any], max_residual_mRy: float) -> bool:
    """Whether the largest-basis scan ``top`` is not to be used: its SCF failed (``{"failed": why}``) or a point
    lies more than ``max_residual_mRy`` off its fit (:func:`fit_scan`)."""
    return "failed" in top or top.get("max_residual_mRy", 0.0) > max_residual_mRy


def basis_pair(top: dict[str, Any], settings: Mapping[str, Any]) -> list[float]:
    """The two bases (R_MT·max|G+k|) an entry is summarised from, given its largest-basis scan ``top`` and its
    Elk ``settings`` (:class:`ElkSettings` as a mapping): ``[rgkmax, rgkmax_check]``, or
    ``[rgkmax_check, rgkmax_fallback]`` when ``top`` :func:`steps_down`."""
    if steps_down(top, settings["max_residual_mRy"]):
        return [settings["rgkmax_check"], settings.get("rgkmax_fallback")]
    return [settings["rgkmax"], settings["rgkmax_check"]]


def summary(scans: dict[str, dict[str, Any]], used: Sequence[float]) -> dict[str, float]:
    """An entry's numbers from its scans (keyed ``f"{rgkmax:g}"``): the fit of the larger basis of the pair
    ``used`` and the pair's difference in lattice constant and bulk modulus (%, smaller minus larger)."""
    hi, lo = (scans[f"{r:g}"] for r in used)
    return {"a_A": hi["a_A"], "b0_GPa": hi["b0_GPa"], "b1": hi["b1"], "v0_A3_per_atom": hi["v0_A3_per_atom"],
            "convergence_a_pct": 100 * (lo["a_A"] - hi["a_A"]) / hi["a_A"],
            "convergence_b0_pct": 100 * (lo["b0_GPa"] - hi["b0_GPa"]) / hi["b0_GPa"]}


def allelectron_eos(element: str, scales: Sequence[float], kpoints: Sequence[int], s: ElkSettings = ElkSettings(),
                    log: Callable[[str], None] = print, max_points: int = 7) -> dict[str, Any]:
    """Elk E(V) of ``element``'s reference solid at ``scales`` x the experimental lattice on ``kpoints``, at
    ``s.rgkmax`` and ``s.rgkmax_check``, with one set of muffin-tin radii for the whole scan (:func:`fixed_rmt`):
    the Birch-Murnaghan fits and the used pair's difference.  When the ``s.rgkmax`` scan has a point more than
    ``s.max_residual_mRy`` off its fit, or an SCF that fails (kept as ``{"failed": why}``), ``s.rgkmax_fallback``
    is scanned too and the pair used (``rgkmax_used``) is the two smaller.  A scan whose lowest energy is at an
    end of ``scales`` is extended by their spacing, up to ``max_points`` points
    (:func:`~betenet.qe.pseudo.solids.eos_scan_scales`: all-electron fcc Cu's minimum lies at 0.984 x experiment,
    the end of the pw.x scan's 0.98 ... 1.02, and a fit of it fails); the muffin-tin radii fit the smallest cell
    such an extension can reach."""
    sp = species_dir()
    st0, x = reference_structure(element)
    els = sorted({site.specie.symbol for site in st0})
    cost = {"cpu_s": 0.0, "wall_s": 0.0}
    version = None
    cells = _scan_cells(element, scales, max_points)
    rmt = scan_rmt(element, scales, s, max_points, cells)
    with tempfile.TemporaryDirectory(prefix=f"elk-eos-{element}-") as tmp:
        stage_species(sp, Path(tmp) / "species", rmt)

        def scan(rgk: float) -> dict[str, Any]:
            """The E(V) at basis ``rgk``; a scan at ``s.rgkmax`` that fails ends as ``{"failed": why}``."""
            def energy_at(sc: float) -> float:
                st = cells.get(sc) or reference_structure(element, sc)[0]
                try:
                    r = run_elk(elk_input(st, kpoints, rgk, s, Path(tmp) / "species"),
                                Path(tmp) / f"r{rgk:g}-s{sc:g}", s.timeout_s)
                except PseudoError as exc:
                    raise PseudoError(f"no SCF at scale {sc:g} ({exc})") from exc
                nonlocal version
                version = r["elk_version"]
                cost["cpu_s"] += r["cpu_s"] or 0.0
                cost["wall_s"] += r["wall_s"]
                log(f"{element}: Elk rgkmax {rgk:g}, scale {sc:g}: {r['energy_Ha']:.8f} Ha ({r['wall_s']:.0f} s)")
                charge[sc] = r["charge_error_e"]
                return r["energy_Ha"] * _HARTREE_IN_RY / len(st)

            charge: dict[float, float | None] = {}
            try:  # an SCF that fails, a minimum not bracketed (a spurious point at an end), a fit that fails
                done, vols, ens = eos_scan_scales(element, energy_at, scales, max_points)
                return {"rgkmax": rgk, "scales": done, "volumes_A3_per_atom": vols, "energies_Ry_per_atom": ens,
                        "charge_error_e": [charge.get(sc) for sc in done], **fit_scan(element, vols, ens)}
            except PseudoError as exc:
                if rgk != s.rgkmax:  # the pair of last resort: nothing to step down to
                    raise PseudoError(f"{element}: Elk rgkmax {rgk:g}: {exc}") from exc
                return {"rgkmax": rgk, "failed": str(exc)}

        scans = {f"{rgk:g}": scan(rgk) for rgk in (s.rgkmax_check, s.rgkmax)}
        top = scans[f"{s.rgkmax:g}"]
        used = basis_pair(top, dataclasses.asdict(s))
        if used != [s.rgkmax, s.rgkmax_check]:
            why = top.get("failed") or f"a point {top['max_residual_mRy']:.3g} mRy/atom off its fit"
            log(f"{element}: the rgkmax {s.rgkmax:g} scan has {why}; stepping down to "
                f"{s.rgkmax_check:g} / {s.rgkmax_fallback:g}")
            scans[f"{s.rgkmax_fallback:g}"] = scan(s.rgkmax_fallback)
    return {"element": element, "structure": x.structure, "formula": x.formula or element, "code": f"Elk {version}",
            "functional": s.functional, "species_sha256": {e: sha256_file(sp / f"{e}.in") for e in els},
            "rmt_bohr": rmt,
            "kpoints": [int(k) for k in kpoints], "scales": [float(v) for v in scales],
            **summary(scans, used), "rgkmax_used": used, "scans": scans, "settings": dataclasses.asdict(s), **cost}


def index_path(directory: Path | str | None = None, name: str = INDEX_NAME) -> Path:
    """``data/pseudo/allelectron/elk-pbesol.json`` (or ``name`` in ``directory``)."""
    return Path(directory or PSEUDO_DIR / "allelectron") / name


def read_index(path: Path, empty: dict[str, Any]) -> dict[str, Any]:
    """A per-element index file (``{**empty, "elements": {}}`` when there is none yet)."""
    if not path.exists():
        return {**empty, "elements": {}}
    data = read_json(path, error=PseudoError)
    if not isinstance(data.get("elements"), dict):
        raise PseudoError(f"{path}: expected an object with an 'elements' mapping")
    return data


def merge_entry(path: Path, element: str, entry: dict[str, Any], empty: dict[str, Any]) -> Path:
    """Put one element's ``entry`` into the index at ``path`` as the file is now (another process may have
    added other elements), elements sorted."""
    data = read_index(path, empty)
    data["elements"][element] = entry
    data["elements"] = dict(sorted(data["elements"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data)
    return path


_EMPTY = {"code": "Elk", "functional": "PBEsol"}


def load_index(directory: Path | str | None = None) -> dict[str, Any]:
    """The all-electron index (``{"elements": {}}`` when there is none yet)."""
    return read_index(index_path(directory), _EMPTY)


def save_entry(entry: dict[str, Any], directory: Path | str | None = None) -> Path:
    """Merge one element's :func:`allelectron_eos` result into the index (the file as it is now)."""
    return merge_entry(index_path(directory), entry["element"], entry, _EMPTY)


def compare_eos(eos: dict[str, Any], ae: dict[str, Any], s: ElkSettings = ElkSettings()) -> dict[str, Any]:
    """A pw.x E(V) (``eos_check``'s result) beside the all-electron one of the same solid: Δa0, ΔB0 (%) and
    whether the all-electron scan is converged (``converged``: its two basis sizes used (``rgkmax_used``) within
    ``s.convergence_a_pct``, each of their fits through its points within ``s.max_residual_mRy``).
    :class:`PseudoError` when the two are not of the same solid."""
    if (eos.get("structure"), eos.get("formula")) != (ae.get("structure"), ae.get("formula")):
        raise PseudoError(f"all-electron E(V) is of {ae.get('formula')} {ae.get('structure')}, the pw.x one of "
                          f"{eos.get('formula')} {eos.get('structure')}")
    pair = ae.get("rgkmax_used") or [ae["settings"]["rgkmax"], ae["settings"]["rgkmax_check"]]  # older entries
    used = {f"{r:g}" for r in pair}
    resid = max((fit_scan(ae["element"], sc["volumes_A3_per_atom"], sc["energies_Ry_per_atom"])["max_residual_mRy"]
                 for k, sc in ae.get("scans", {}).items() if k in used), default=0.0)  # refitted: older entries too
    return {"code": ae["code"], "a_ae_A": ae["a_A"], "b0_ae_GPa": ae["b0_GPa"],
            "a0_error_pct": 100 * (eos["a_calc_A"] - ae["a_A"]) / ae["a_A"],
            "b0_error_pct": 100 * (eos["b0_GPa"] - ae["b0_GPa"]) / ae["b0_GPa"],
            "ae_a_exp_error_pct": 100 * (ae["a_A"] - eos["a_exp_A"]) / eos["a_exp_A"],
            "same_kpoints": list(ae["kpoints"]) == list(eos.get("kpoints", [])),
            "max_residual_mRy": resid, "rgkmax_used": [float(r) for r in pair],
            "converged": abs(ae["convergence_a_pct"]) <= s.convergence_a_pct and resid <= s.max_residual_mRy}


def used_comparison(eos: dict[str, Any]) -> dict[str, Any] | None:
    """The all-electron comparison attached to a pw.x E(V) (``eos["allelectron"]``) when it is used, i.e. converged
    (:func:`compare_eos`) and not refused by the protocol's PBE cross-check (``refused``, :func:`betenet.qe.pseudodojo_pbe.protocol_refusal`);
    ``None`` when there is none or it was refused."""
    ae = eos.get("allelectron")
    return ae if ae is not None and ae.get("converged") and not ae.get("refused") else None


def eos_verdict(eos: dict[str, Any], exp_tol: tuple[float, float, float], s: ElkSettings = ElkSettings()
                ) -> tuple[list[str], str]:
    """What is wrong with a pw.x E(V) (empty: nothing) and a short note.  With a converged all-electron
    comparison (``eos["allelectron"]``, :func:`compare_eos`) the pseudopotential is judged against it
    (``s.a0_tol_pct``, ``s.b0_tol_pct``) and experiment only as a sanity bound (``s.a0_exp_sanity_pct``);
    without one, against experiment with ``exp_tol`` = (a0 %, B0 low %, B0 high %)."""
    ae = used_comparison(eos)
    a_exp, b_exp = eos["a0_error_pct"], eos.get("b0_error_pct")
    if ae is not None:
        bad = []
        if abs(ae["a0_error_pct"]) > s.a0_tol_pct:
            bad.append(f"a0 {ae['a0_error_pct']:+.2f} % from all-electron (> {s.a0_tol_pct:g} %)")
        if abs(ae["b0_error_pct"]) > s.b0_tol_pct:
            bad.append(f"B0 {ae['b0_error_pct']:+.0f} % from all-electron (> {s.b0_tol_pct:g} %)")
        if abs(a_exp) > s.a0_exp_sanity_pct:
            bad.append(f"a0 {a_exp:+.2f} % from experiment (> {s.a0_exp_sanity_pct:g} %)")
        return bad, (f"a0 {ae['a0_error_pct']:+.2f} % / B0 {ae['b0_error_pct']:+.0f} % vs all-electron "
                     f"(a0 {a_exp:+.2f} % vs exp.)")
    a_tol, b_low, b_high = exp_tol
    bad = []
    if abs(a_exp) > a_tol:
        bad.append(f"a0 {a_exp:+.2f} % (> {a_tol:g} %)")
    if b_exp is not None and not (-b_low <= b_exp <= b_high):
        bad.append(f"B0 {b_exp:+.0f} % (outside -{b_low:g} % ... +{b_high:g} %)")
    refused = (eos.get("allelectron") or {}).get("refused")
    return bad, (f"a0 {a_exp:+.2f} %" + (f", B0 {b_exp:+.0f} %" if b_exp is not None else "")
                 + (f" vs exp. (all-electron not used: {refused})" if refused else ""))


def elements_with_eos(dojo: dict[str, Any], elements: Iterable[str] | None = None) -> list[str]:
    """The elements of a PseudoDojo index (``elements`` of them) that have a pw.x E(V) to compare."""
    names = list(elements) if elements else sorted(dojo["elements"])
    return [el for el in names if (dojo["elements"].get(el) or {}).get("eos")]
