"""``betenet screen PATH... [--profile P | --run-dir DIR] [--variant CSO] [--csv OUT] [--top N]``: rank CIF/POSCAR
structures by the T_c of the α²F a saved ensemble predicts (:mod:`betenet.screening`)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import sys
from pathlib import Path

from betenet import ensemble
from betenet.cli.options import add_profile_arg, add_workers_arg, finite_float, positive_int, profile_from_args
from betenet.cluster import dask_client
from betenet.constants import MU_STAR_DEFAULT
from betenet.datasource import records_dir as source_records_dir
from betenet.structure_screening import oob_spread_calibration, read_structures, screen_structures, training_domain

__all__ = ["cli_main", "format_table"]


def format_table(table) -> str:
    lines = [f"{'rank':>4}  {'T_c (K)':>15}  {'LCB (K)':>8}  {'lambda':>6}  {'w_log (K)':>9}  {'w_2 (K)':>8}  {'formula':<12} file"]
    for r in table.to_dict("records"):
        lines.append(
            f"{r['rank']:>4}  {r['tc_K']:7.2f} ± {r['tc_std_cal_K']:5.2f}  {r['tc_lcb_K']:8.2f}  {r['lambda']:6.3f}  "
            f"{r['omega_log_K']:9.1f}  {r['omega_2_K']:8.1f}  {r['formula']:<12} {r['file']}"
            + ("" if r["in_domain"] else f"\n{'':>6}OUTSIDE THE TRAINING DOMAIN: {r['flags']}")
        )
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """``betenet screen PATH... [--profile P | --run-dir DIR] [--variant CSO] [--csv OUT] [--top N]``."""
    p = argparse.ArgumentParser(
        prog="betenet screen",
        description="Rank CIF/POSCAR structures by the Allen-Dynes T_c of the α²F predicted by a saved BETE-NET ensemble "
        "(T_c of the ensemble-mean α²F ± the members' std, calibrated on out-of-bag errors; LCB = mean - z·std). "
        "Unreadable or unphysical structures are reported and skipped; structures outside the training domain "
        "(unknown elements, unusual density or bonding, bigger cells) are flagged and ranked below all others. "
        "Needs a trained ensemble first: `betenet ensemble run --profile P --variant CSO`.",
    )
    p.add_argument("paths", nargs="+", help="CIF/POSCAR files or directories containing them")
    add_profile_arg(p, "profile whose ensemble to use (artifacts/<profile>/ensembles/<variant>)")
    p.add_argument("--run-dir", default=None, help="ensemble directory (overrides --profile/--variant lookup)")
    p.add_argument("--variant", default="CSO", choices=("CSO",),
                   help="model variant; CPD/FPD need phonon DOS, not available from a structure file")
    p.add_argument("--records", default=None,
                   help="records the ensemble was trained on, for the training domain (default: the profile's data source)")
    p.add_argument("--mu-star", type=finite_float(0.0, 1.0, hi_open=True), default=None,
                   help=f"Coulomb pseudopotential in [0, 1) (default: {MU_STAR_DEFAULT}, the paper's)")
    p.add_argument("--z", type=finite_float(0.0), default=None, help="LCB = mean - z * std, z >= 0 (default: the profile's lcb_z)")
    p.add_argument("--top", type=positive_int, default=None, help="print only the N best")
    p.add_argument("--csv", default=None, help="also write the full ranked table to this CSV file")
    add_workers_arg(p, "spread the members over N one-thread Dask workers (the profile's dask section: a local "
                    "cluster, or its scheduler address); 0 = in this process (default)")
    args = p.parse_args(argv)

    prof = profile_from_args(args)
    mu_star = MU_STAR_DEFAULT if args.mu_star is None else args.mu_star
    z = prof.screening.lcb_z if args.z is None else args.z
    structures, failures = read_structures(args.paths)
    for f, why in failures:
        print(f"skipped {f}: {why}", file=sys.stderr)
    if not structures:
        print("betenet screen: no structure could be read; nothing screened", file=sys.stderr)
        return 1
    run_dir = Path(args.run_dir) if args.run_dir else ensemble.ensemble_directory(prof.name, args.variant, create=False)
    try:
        members = ensemble.load_ensemble(run_dir)
    except (FileNotFoundError, ensemble.EnsembleError) as exc:
        print(f"betenet screen: cannot load the ensemble: {exc}\n"
              f"  train one with `betenet ensemble run --profile {prof.name} --variant {args.variant}` or pass --run-dir",
              file=sys.stderr)
        return 1
    if args.records:
        records_dir = Path(args.records)
    else:
        records_dir = source_records_dir(prof)
    try:
        domain = training_domain(members, records_dir)
    except FileNotFoundError as exc:
        domain = None
        print(f"betenet screen: training domain unknown, every structure is flagged: {exc}", file=sys.stderr)
    cal = oob_spread_calibration([m.directory for m in members], mu_star=mu_star)
    scale = cal.scale if cal is not None else 1.0
    with contextlib.ExitStack() as stack:
        predict = None  # in this process
        if args.workers > 0:
            client = stack.enter_context(dask_client(dataclasses.replace(prof.dask, n_workers=args.workers, threads_per_worker=1)))
            predict = functools.partial(ensemble.predict_ensemble, client=client)
        table, bad = screen_structures(members, structures, mu_star=mu_star, z=z, predict=predict, domain=domain,
                                       spread_scale=scale)
    for f, why in bad:
        print(f"skipped {f}: {why}", file=sys.stderr)
    if table.empty:
        print("betenet screen: no structure could be screened", file=sys.stderr)
        return 1
    n_out = int((~table["in_domain"]).sum())
    print(f"# {len(table)} structure(s) screened with {len(members)} {members[0].variant} member(s) from {run_dir}; "
          f"Allen-Dynes mu*={mu_star}, LCB z={z}; {len(failures) + len(bad)} skipped; {n_out} outside the training domain "
          f"(ranked last)")
    print("# " + (cal.describe() if cal is not None else
                  "spread not calibrated (fewer than 3 materials out of bag in >= 2 members): ± is the raw member std"))
    print(format_table(table.head(args.top) if args.top else table))
    if args.csv:  # atomic: a full table or none (never a partial file)
        out = Path(args.csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        table.to_csv(tmp, index=False)
        tmp.replace(out)
        print(f"# table written to {args.csv}")
    return 0
