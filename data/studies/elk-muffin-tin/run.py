"""Elk PBE E(V) of one reference solid at a given muffin-tin radius and basis, against WIEN2k's PBE E(V).

    OMP_NUM_THREADS=1 .venv/bin/python data/studies/elk-muffin-tin/run.py Mg 2.8 8 [--gmaxvr 16] [--extra dv]

RMT: a radius in bohr (fitted to the scan's cells like the protocol's, :func:`fixed_rmt`), or ``species``
(the Debian species file's own).  ``--extra``: Elk lines added to the protocol's input, ``auto``
(``autolinengy``) or ``dv`` (Elk's own Delta-value example: ``autolinengy``, ``lorbcnd``, ``nxlo 3``, plus
``lmaxapw 10``, ``lmaxo 8``).  Prints each point and the Birch-Murnaghan fit; nothing is saved.
"""

import argparse
import json
import tempfile
from pathlib import Path

from betenet.qe.pseudo import allelectron as A
from betenet.qe.pseudo.delta import WIEN2K_PBE
from betenet.qe.pseudo.solids import reference_structure
from betenet.qe.pseudodojo_pbe import compare_to

EXTRA = {"none": "", "auto": "autolinengy\n  .true.\n\n",
         "dv": "autolinengy\n  .true.\n\nlorbcnd\n  .true.\n\nnxlo\n  3\n\nlmaxapw\n  10\n\nlmaxo\n  8\n\n"}

ap = argparse.ArgumentParser()
ap.add_argument("element")
ap.add_argument("rmt")
ap.add_argument("rgkmax", type=float)
ap.add_argument("--gmaxvr", type=float, default=16.0)
ap.add_argument("--extra", choices=sorted(EXTRA), default="none")
ap.add_argument("--kpoints", type=int, nargs=3, default=None, help="default: the committed PBE cross-check's mesh")
args = ap.parse_args()

from betenet.qe import pseudodojo_pbe as pbe  # noqa: E402

cross = pbe.load_index()["elements"][args.element]["pwx"]
kpoints = args.kpoints or cross["kpoints"]
s = A.ElkSettings(xctype=20, gmaxvr=args.gmaxvr, rmt_fill=None)
scales = [0.98, 0.99, 1.0, 1.01, 1.02]
cells = {sc: reference_structure(args.element, sc)[0] for sc in scales}
sp = A.species_dir()
own = A.species_rmt(sp / f"{args.element}.in")
rmt = A.fixed_rmt(list(cells.values()), {args.element: own if args.rmt == "species" else float(args.rmt)})
vols, ens = [], []
with tempfile.TemporaryDirectory() as tmp:
    A.stage_species(sp, Path(tmp) / "species", rmt)
    for sc in scales:
        st = cells[sc]
        text = A.elk_input(st, kpoints, args.rgkmax, s, Path(tmp) / "species")
        text = text.replace("tasks\n  0\n\n", "tasks\n  0\n\n" + EXTRA[args.extra])
        r = A.run_elk(text, Path(tmp) / f"s{sc:g}", 3600)
        vols.append(st.volume / len(st))
        ens.append(r["energy_Ha"] * 2 / len(st))
        print(f"scale {sc:g}: {r['energy_Ha']:.9f} Ha ({r['wall_s']:.0f} s)", flush=True)
fit = A._fit(args.element, vols, ens)
print(json.dumps({"element": args.element, "rmt_bohr": rmt[args.element], "rgkmax": args.rgkmax, "gmaxvr": args.gmaxvr,
                  "extra": args.extra, "kpoints": kpoints, **fit,
                  "vs_wien2k": compare_to(fit["v0_A3_per_atom"], fit["b0_GPa"], fit["b1"], WIEN2K_PBE[args.element])}))
