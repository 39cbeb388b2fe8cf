"""QE's ``ld1.x``: generation and transferability-test inputs from a :class:`GenerationSpec`, the run,
the parsing of its output (ghost test in a spherical-Bessel basis, transferability on excited and
ionised configurations) and :func:`generate` of one pseudopotential with its verdict."""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pymatgen.core import Element

from ...paths import PSEUDO_DIR
from ..runner import QEError, run_qe
from .errors import PseudoError
from .specs import PSEUDO_SUFFIX, SPECS, GenerationSpec, pseudo_filename
from .upf import read_upf_header, rewrap_upf

__all__ = [
    "ld1_generation_input",
    "ld1_test_input",
    "test_configurations",
    "reference_lapack_path",
    "run_ld1",
    "TransferabilityTest",
    "Ld1Validation",
    "LD1_MAX_DELTA_E_RY",
    "LD1_MAX_EIG_ERROR_RY",
    "LD1_GHOST_TOL_RY",
    "parse_ld1_generation",
    "parse_ld1_transferability",
    "generate",
    "regenerate_from_input",
]

#: File names of an ld1.x run in its directory: ``<name>.in``, ``.out`` (standard output), ``.err``.
_RUN_NAME = "betenet-ld1"

# ld1.x inputs


def _f(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x != int(x) else f"{x:.1f}"


def _zed(element: str) -> int:
    try:
        return int(Element(element).Z)
    except ValueError:
        raise PseudoError(f"unknown element symbol {element!r}") from None


def ld1_generation_input(spec: GenerationSpec, upf_name: str | None = None, ecut_test_Ry: tuple[float, float, float] = (20.0, 70.0, 5.0)) -> str:
    """ld1.x input (``iswitch=3``) generating ``upf_name`` from ``spec``.

    A ``&test`` namelist on the reference configuration follows the cards: ld1.x then tests
    the pseudo-atom against the all-electron atom and diagonalises it in a spherical-Bessel
    basis from ``ecut_test_Ry[0]`` to ``[1]`` in steps of ``[2]`` (ghost/cutoff test).
    """
    upf_name = upf_name or pseudo_filename(spec.element)
    inp = [
        " &input",
        f"   title='{spec.element}',",
        f"   zed={_zed(spec.element)}.0,",
        f"   rel={spec.rel},",
        f"   config='{spec.configuration}',",
        "   iswitch=3,",
        f"   dft='{spec.ld1_dft}'",
        " /",
        " &inputp",
        f"   pseudotype={spec.pseudotype},",
        f"   file_pseudopw='{upf_name}',",
        "   author='betenet (pslibrary parameters)',",
        f"   lloc={spec.lloc},",
    ]
    if spec.rcloc_au is not None:
        inp.append(f"   rcloc={_f(spec.rcloc_au)},")
    if spec.pseudotype == 3 and spec.which_augfun:
        inp.append(f"   which_augfun='{spec.which_augfun}',")
        if spec.rmatch_augfun_au is not None:
            inp.append(f"   rmatch_augfun={_f(spec.rmatch_augfun_au)},")
    if spec.nlcc:
        inp.append("   nlcc=.true.,")
        if spec.new_core_ps:
            inp.append("   new_core_ps=.true.,")
        if spec.rcore_au is not None:
            inp.append(f"   rcore={_f(spec.rcore_au)},")
    inp.append(f"   tm={'.true.' if spec.tm else '.false.'}")
    inp.append(" /")
    inp.append(str(len(spec.channels)))
    inp.extend(c.card() for c in spec.channels)
    ref = test_configurations(spec)[0]
    emin, emax, de = ecut_test_Ry
    inp += [
        " &test",
        f"   nconf=1, configts(1)='{ref}',",
        f"   ecutmin={_f(emin)}, ecutmax={_f(emax)}, decut={_f(de)}",
        " /",
        "",
    ]
    return "\n".join(inp)


_CAPACITY = {0: 2.0, 1: 6.0, 2: 10.0, 3: 14.0}


def test_configurations(spec: GenerationSpec) -> list[str]:
    """Reference plus excited/ionised valence configurations for the transferability test.

    Built from the bound channels (occupation >= 0, first card of each label): ``[0]`` the
    reference; then the outermost valence electron ionised (-1 e, or what is there), and — where
    the shells allow — one electron promoted s->p and (for open d shells) s->d.
    """
    states: dict[str, list[float]] = {}
    order: list[str] = []
    for c in spec.channels:
        if c.occupation < 0 or c.label in states:
            continue
        states[c.label] = [c.l, c.occupation, int(c.label[0])]
        order.append(c.label)

    def fmt(occ: dict[str, float]) -> str:
        return " ".join(f"{lab.lower()}{_f(occ[lab])}" for lab in order)

    ref = {lab: states[lab][1] for lab in order}
    configs = [fmt(ref)]

    def outer(l: int) -> str | None:
        cands = [lab for lab in order if states[lab][0] == l]
        return max(cands, key=lambda lab: states[lab][2]) if cands else None

    s, p, d = outer(0), outer(1), outer(2)
    occupied_outer = [lab for lab in (p, s) if lab and ref[lab] > 0]
    if occupied_outer:
        lab = occupied_outer[0]
        occ = dict(ref)
        occ[lab] = max(0.0, ref[lab] - 1.0)
        configs.append(fmt(occ))
    if s and p and ref[s] >= 1.0 and ref[p] + 1.0 <= _CAPACITY[1]:
        occ = dict(ref)
        occ[s] -= 1.0
        occ[p] += 1.0
        configs.append(fmt(occ))
    if s and d and ref[s] >= 1.0 and 0 < ref[d] and ref[d] + 1.0 <= _CAPACITY[2]:
        occ = dict(ref)
        occ[s] -= 1.0
        occ[d] += 1.0
        configs.append(fmt(occ))
    return list(dict.fromkeys(configs))


def ld1_test_input(spec: GenerationSpec, upf_name: str | None = None, configurations: Sequence[str] | None = None) -> str:
    """ld1.x input (``iswitch=2``) testing ``upf_name`` on ``configurations`` (default:
    :func:`test_configurations`; the first is the reference)."""
    upf_name = upf_name or pseudo_filename(spec.element)
    configs = list(configurations) if configurations is not None else test_configurations(spec)
    lines = [
        " &input",
        f"   title='{spec.element}',",
        f"   zed={_zed(spec.element)}.0,",
        f"   rel={spec.rel},",
        f"   config='{spec.configuration}',",
        "   iswitch=2,",
        f"   dft='{spec.ld1_dft}'",
        " /",
        " &test",
        f"   file_pseudo='{upf_name}',",
        f"   nconf={len(configs)},",
    ]
    lines += [f"   configts({i + 1})='{c}'," for i, c in enumerate(configs)]
    lines += [" /", ""]
    return "\n".join(lines)


def reference_lapack_path() -> str | None:
    """``LD_LIBRARY_PATH`` entries that make a QE executable load the reference (netlib) BLAS and
    LAPACK of Debian/Ubuntu (``/usr/lib/<arch>/blas``, ``/usr/lib/<arch>/lapack``), or ``None`` where
    they are not installed.

    The recorded UPF digests (``validation.json``) were made by ld1.x on the reference libraries;
    OpenBLAS (which ``make qe-deps`` installs to speed up pw.x/ph.x, and which the alternatives
    system then hands every program) changes the last digits of a UPF (1e-12), so ld1.x is pinned to
    the reference libraries wherever they exist.
    """
    blas = sorted(glob.glob("/usr/lib/*/blas/libblas.so.3"))
    lapack = sorted(glob.glob("/usr/lib/*/lapack/liblapack.so.3"))
    if not blas or not lapack:
        return None
    return f"{Path(blas[0]).parent}:{Path(lapack[0]).parent}"


def run_ld1(input_text: str, workdir: Path, *, timeout_s: float = 300.0, executable: str = "ld1.x") -> str:
    """Run ld1.x on ``input_text`` in ``workdir`` (through :func:`betenet.qe.runner.run_qe`: one OpenMP
    thread, the reference BLAS/LAPACK where installed: :func:`reference_lapack_path`); return its standard
    output (standard error, e.g. the compiler's floating-point notes, is kept apart).

    Raises :class:`PseudoError` with the tail of the output when ld1.x is missing, stops with an error
    or runs past ``timeout_s``.
    """
    workdir = Path(workdir)
    ref = reference_lapack_path()
    env = None
    if ref:
        env = {"LD_LIBRARY_PATH": ref + (f":{os.environ['LD_LIBRARY_PATH']}" if os.environ.get("LD_LIBRARY_PATH") else "")}
    returncode, why = 0, ""
    try:
        run_qe(executable, input_text, workdir, _RUN_NAME, timeout_s=timeout_s, check_done=False, env=env,
               stderr=f"{_RUN_NAME}.err")
    except QEError as exc:
        if exc.reason == "not found":
            raise PseudoError(f"{executable} not found on PATH (install quantum-espresso, e.g. `apt-get install quantum-espresso`)") from None
        returncode = exc.returncode
        why = "" if returncode is not None else f"ran past {timeout_s:.0f} s"
    out = (workdir / f"{_RUN_NAME}.out").read_text(encoding="utf-8", errors="replace")
    if why or returncode != 0 or "Error in routine" in out or "CRASH" in out.upper().split("\n")[-1]:
        m = re.search(r"Error in routine (.*?)\n(.*?)\n", out)
        msg = why or (f"{m.group(1).strip()}: {m.group(2).strip()}" if m else f"exit status {returncode}")
        tail = "\n".join(out.splitlines()[-15:])
        raise PseudoError(f"ld1.x failed in {workdir} ({msg}); tail of output:\n{tail}")
    return out


# Parsing ld1.x output


@dataclass
class TransferabilityTest:
    """One test configuration: AE vs PS excitation energy and eigenvalue errors (Ry)."""

    configuration: str
    dE_ae_Ry: float
    dE_ps_Ry: float
    delta_E_Ry: float
    max_eigenvalue_error_Ry: float


@dataclass
class Ld1Validation:
    """What ld1.x itself says about a generated pseudopotential."""

    element: str
    generated: bool
    warnings: list[str] = field(default_factory=list)
    #: Per angular momentum: (lowest eigenvalue in the Bessel basis at the highest cutoff, PS eigenvalue), Ry.
    bessel_vs_ps_Ry: dict[str, tuple[float, float]] = field(default_factory=dict)
    ghost_free: bool = False
    #: Lowest Bessel-basis cutoff (Ry) at which every N=1 eigenvalue is within 1 mRy of the highest-cutoff value.
    bessel_converged_cutoff_Ry: float | None = None
    #: ld1.x's own estimate (UPF header) of the minimum cutoffs.
    suggested_ecutwfc_Ry: float | None = None
    suggested_ecutrho_Ry: float | None = None
    transferability: list[TransferabilityTest] = field(default_factory=list)
    max_abs_delta_E_Ry: float | None = None
    max_eigenvalue_error_Ry: float | None = None
    passed: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Ld1Validation":
        d = dict(d)
        d["transferability"] = [TransferabilityTest(**t) for t in d.get("transferability", [])]
        d["bessel_vs_ps_Ry"] = {k: tuple(v) for k, v in d.get("bessel_vs_ps_Ry", {}).items()}
        return cls(**d)


_WARNING_RE = re.compile(r"^.*(warning|negative|ghost|not converged|wrong).*$", re.IGNORECASE | re.MULTILINE)
_L_NAMES = "SPDF"

#: Acceptance thresholds of the ld1.x tests (Ry).
LD1_MAX_DELTA_E_RY = 0.005
LD1_MAX_EIG_ERROR_RY = 0.010
LD1_GHOST_TOL_RY = 0.010


def _ps_eigenvalues(section: str) -> dict[int, list[float]]:
    """PS eigenvalues per l from a 'Testing the pseudopotential' block (Ry)."""
    out: dict[int, list[float]] = {}
    for m in re.finditer(r"^\s*\d+\s+(\d)\s+\d[SPDF]\s+\d\(\s*[-\d.]+\)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)", section, re.MULTILINE):
        out.setdefault(int(m.group(1)), []).append(float(m.group(3)))
    return {l: sorted(v) for l, v in out.items()}


def _ghosts(bessel: dict[int, list[float]], ps: dict[int, list[float]], tol_Ry: float) -> tuple[bool, dict[str, tuple[float, float]]]:
    """Ghost test: every Bessel-basis eigenvalue below the highest PS bound state of its l must
    match a PS eigenvalue (within ``tol_Ry``); an unmatched one is a spurious (ghost) state.
    An l without PS bound states must have no deeply bound (< -0.5 Ry) Bessel state."""
    ghost = False
    pairs: dict[str, tuple[float, float]] = {}
    for l, eb in bessel.items():
        eps = ps.get(l, [])
        if not eps:
            if eb and min(eb) < -0.5:
                ghost = True
                pairs[_L_NAMES[l]] = (min(eb), float("nan"))
            continue
        below = [e for e in eb if e < max(eps) + tol_Ry]
        unmatched = list(below)
        for e_ps in eps:
            if not unmatched:
                break
            j = int(np.argmin([abs(e - e_ps) for e in unmatched]))
            pairs.setdefault(_L_NAMES[l], (unmatched[j], e_ps))
            if abs(unmatched[j] - e_ps) <= 5 * tol_Ry:
                unmatched.pop(j)
        if unmatched:
            ghost = True
    return ghost, pairs


def parse_ld1_generation(text: str, element: str) -> Ld1Validation:
    """Warnings, ghost (Bessel-basis) test and cutoff convergence from an ``iswitch=3`` run."""
    val = Ld1Validation(element=element, generated="End of pseudopotential generation" in text)
    val.warnings = sorted({m.group(0).strip() for m in _WARNING_RE.finditer(text)})
    # Bessel basis test: blocks "Cutoff (Ry) : X" followed by "E(L=l) = e1 Ry e2 Ry ..."
    blocks = re.split(r"Cutoff \(Ry\) :\s*", text.split("Test with a basis set of Bessel functions", 1)[-1])[1:]
    table: list[tuple[float, dict[int, list[float]]]] = []
    for b in blocks:
        cut = float(b.split()[0])
        vals = {int(m.group(1)): [float(x) for x in re.findall(r"([-\d.]+)\s*Ry", m.group(2))]
                for m in re.finditer(r"E\(L=(\d)\)\s*=(.*)", b)}
        table.append((cut, vals))
    test_sec = text.split("Testing the pseudopotential", 1)[-1].split("End of pseudopotential test", 1)[0]
    ps = _ps_eigenvalues(test_sec)
    if table:
        last = table[-1][1]
        ghost, val.bessel_vs_ps_Ry = _ghosts(last, ps, LD1_GHOST_TOL_RY)
        val.ghost_free = not ghost
        for cut, vals in table:
            if all(vals.get(l) and abs(vals[l][0] - last[l][0]) <= 1e-3 for l in last):
                val.bessel_converged_cutoff_Ry = cut
                break
    return val


def parse_ld1_transferability(text: str, configurations: Sequence[str]) -> list[TransferabilityTest]:
    """Per-configuration results of an ``iswitch=2`` run (the first configuration is the reference)."""
    sections = text.split("Testing the pseudopotential")[1:]
    if len(sections) != len(configurations):
        raise PseudoError(f"ld1.x transferability output has {len(sections)} test sections, expected {len(configurations)}")
    tests = []
    for conf, sec in zip(configurations, sections):
        sec = sec.split("End of pseudopotential test", 1)[0]
        errs = [abs(float(m.group(1))) for m in re.finditer(
            r"^\s*\d+\s+\d\s+\d[SPDF]\s+\d\(\s*[-\d.]+\)\s+[-\d.]+\s+[-\d.]+\s+([-\d.]+)", sec, re.MULTILINE)]
        m_ae = re.search(r"dEtot_ae =\s*([-\d.]+)", sec)
        m_ps = re.search(r"dEtot_ps =\s*([-\d.]+) Ry,\s*Delta E=\s*([-\d.]+)", sec)
        tests.append(TransferabilityTest(
            configuration=conf,
            dE_ae_Ry=float(m_ae.group(1)) if m_ae else 0.0,
            dE_ps_Ry=float(m_ps.group(1)) if m_ps else 0.0,
            delta_E_Ry=float(m_ps.group(2)) if m_ps else 0.0,
            max_eigenvalue_error_Ry=max(errs) if errs else float("nan"),
        ))
    return tests


def _compact_bessel_table(text: str) -> str:
    """Drop the intermediate blocks of the Bessel-basis table (keep the first and last cutoff)."""
    if "Test with a basis set of Bessel functions" not in text:
        return text
    head, rest = text.split("Test with a basis set of Bessel functions", 1)
    body, tail = (rest.split("End of Bessel function test", 1) + [""])[:2]
    blocks = re.split(r"(?=\n\s*Cutoff \(Ry\) :)", body)
    if len(blocks) > 3:
        blocks = [blocks[0], blocks[1], "\n     [... intermediate cutoffs omitted ...]", blocks[-1]]
    return head + "Test with a basis set of Bessel functions" + "".join(blocks) + "End of Bessel function test" + tail


def generate(
    element: str | GenerationSpec,
    outdir: Path | str = PSEUDO_DIR,
    *,
    overwrite: bool = False,
    timeout_s: float = 300.0,
) -> Ld1Validation:
    """Generate and ld1-test one pseudopotential; write UPF, inputs and compact logs to ``outdir``.

    Files: ``<El>.pbesol-betenet.UPF``, ``.in`` (generation input), ``.test.in`` (transferability
    input), ``.log`` (compact ld1.x output of both runs).  An existing UPF is kept unless
    ``overwrite`` (nothing computed is silently replaced).
    """
    spec = SPECS[element] if isinstance(element, str) else element
    if isinstance(element, str) and element not in SPECS:
        raise PseudoError(f"no generation spec for element {element!r}; known: {sorted(SPECS)}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    upf = outdir / pseudo_filename(spec.element)
    if upf.exists() and not overwrite:
        raise PseudoError(f"{upf} exists; pass overwrite=True (CLI: --overwrite) to regenerate")
    stem = f"{spec.element}{PSEUDO_SUFFIX}"
    gen_in = ld1_generation_input(spec, upf.name)
    test_in = ld1_test_input(spec, upf.name)
    with tempfile.TemporaryDirectory(prefix=f"ld1-{spec.element}-") as tmp:
        tmpd = Path(tmp)
        try:
            gen_out = run_ld1(gen_in, tmpd, timeout_s=timeout_s)
        except PseudoError as exc:
            (outdir / f"{stem}.in").write_text(gen_in)
            return Ld1Validation(element=spec.element, generated=False, reason=str(exc).splitlines()[0])
        val = parse_ld1_generation(gen_out, spec.element)
        produced = tmpd / upf.name
        if not produced.exists():
            val.generated = False
            val.reason = "ld1.x produced no UPF file"
            return val
        rewrap_upf(produced)
        configs = test_configurations(spec)
        test_out, val.transferability, failed = _run_transferability(spec, upf.name, configs, tmpd, timeout_s)
        if failed:
            val.warnings.extend(f"test configuration '{c}' failed: {why}" for c, why in failed)
            val.reason = "; ".join(f"configuration '{c}' failed ({why})" for c, why in failed)
        hdr = read_upf_header(produced)
        val.suggested_ecutwfc_Ry, val.suggested_ecutrho_Ry = hdr.wfc_cutoff_Ry, hdr.rho_cutoff_Ry
        shutil.copyfile(produced, upf)
    (outdir / f"{stem}.in").write_text(gen_in)
    (outdir / f"{stem}.test.in").write_text(test_in)
    (outdir / f"{stem}.log").write_text(
        "# ld1.x generation run (iswitch=3)\n" + _compact_bessel_table(gen_out) + "\n# ld1.x transferability run (iswitch=2)\n" + test_out
    )
    _judge_ld1(val)
    return val


def _run_transferability(
    spec: GenerationSpec, upf_name: str, configs: list[str], workdir: Path, timeout_s: float
) -> tuple[str, list[TransferabilityTest], list[tuple[str, str]]]:
    """Run the ``iswitch=2`` test; if ld1.x stops, rerun configuration by configuration (each
    against the reference) so that one failing configuration is identified and recorded."""
    try:
        out = run_ld1(ld1_test_input(spec, upf_name, configs), workdir, timeout_s=timeout_s)
        return out, parse_ld1_transferability(out, configs), []
    except PseudoError:
        pass
    outs, tests, failed = [], [], []
    ref = configs[0]
    for conf in configs[1:]:
        try:
            out = run_ld1(ld1_test_input(spec, upf_name, [ref, conf]), workdir, timeout_s=timeout_s)
        except PseudoError as exc:
            first = str(exc).splitlines()[0]
            m = re.search(r"\((.*)\)", first)
            failed.append((conf, m.group(1) if m else first))
            outs.append(f"# configuration '{conf}': ld1.x failed: {first}\n")
            continue
        res = parse_ld1_transferability(out, [ref, conf])
        if not tests:
            tests.append(res[0])
        tests.append(res[1])
        outs.append(out)
    return "\n".join(outs), tests, failed



def regenerate_from_input(input_file: Path | str, dest: Path | str | None = None, *, timeout_s: float = 300.0) -> Path:
    """Re-run ld1.x on a committed generation input (``<El>.pbesol-betenet.in``) and place the UPF.

    The project commits the ld1.x inputs, not the (large, reproducible) UPF files; this rebuilds a
    missing UPF exactly from its recorded input.
    """
    input_file = Path(input_file)
    text = input_file.read_text()
    m = re.search(r"file_pseudopw\s*=\s*'([^']+)'", text)
    if not m:
        raise PseudoError(f"{input_file}: no file_pseudopw in ld1.x input")
    dest = Path(dest) if dest else input_file.parent
    with tempfile.TemporaryDirectory(prefix="ld1-regen-") as tmp:
        run_ld1(text, Path(tmp), timeout_s=timeout_s)
        produced = Path(tmp) / m.group(1)
        if not produced.exists():
            raise PseudoError(f"ld1.x on {input_file} produced no {m.group(1)}")
        rewrap_upf(produced)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced, dest / m.group(1))
    return dest / m.group(1)


def _judge_ld1(val: Ld1Validation) -> None:
    tests = val.transferability[1:]
    if tests:
        val.max_abs_delta_E_Ry = max(abs(t.delta_E_Ry) for t in tests)
    if val.transferability:
        val.max_eigenvalue_error_Ry = max(t.max_eigenvalue_error_Ry for t in val.transferability)
    problems = []
    if not val.generated:
        problems.append("generation failed")
    if not val.ghost_free:
        problems.append("ghost state in Bessel-basis test")
    if not val.transferability:
        problems.append("no transferability tests")
    if val.max_abs_delta_E_Ry is not None and val.max_abs_delta_E_Ry > LD1_MAX_DELTA_E_RY:
        problems.append(f"|ΔE| {val.max_abs_delta_E_Ry * 1e3:.1f} mRy > {LD1_MAX_DELTA_E_RY * 1e3:.0f} mRy")
    if val.max_eigenvalue_error_Ry is not None and val.max_eigenvalue_error_Ry > LD1_MAX_EIG_ERROR_RY:
        problems.append(f"eigenvalue error {val.max_eigenvalue_error_Ry * 1e3:.1f} mRy > {LD1_MAX_EIG_ERROR_RY * 1e3:.0f} mRy")
    val.passed = not problems and not val.reason
    if problems:
        val.reason = "; ".join(([val.reason] if val.reason else []) + problems)
