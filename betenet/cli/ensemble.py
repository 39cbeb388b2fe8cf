"""``betenet ensemble run --profile P --variant V`` / ``betenet ensemble status --profile P``: train, resume
and inspect bootstrap ensembles (Dask)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from betenet.cli.options import add_device_arg, add_profile_arg, positive_int, profile_from_args
from betenet.config import VARIANTS
from betenet.ensemble import ensemble_directory, ensemble_status, predict_runs, predictions_path, run_ensembles
from betenet.paths import RECORDS_DIR
from betenet.records import load_records
from betenet.splits import split_for_run

__all__ = ["cli_main"]


def cli_main(argv: list[str]) -> int:
    """``betenet ensemble run --profile P --variant V`` / ``betenet ensemble status --profile P``."""
    p = argparse.ArgumentParser(prog="betenet ensemble", description="Train / resume / inspect bootstrap ensembles (Dask).")
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run", help="train or resume ensembles on the saved train split (records in data/records)")
    add_profile_arg(r, "smoke | default | paper")
    r.add_argument("--variant", nargs="*", choices=VARIANTS, help="default: the profile's EnsembleConfig.variants")
    r.add_argument("--n-members", type=positive_int, default=None, help="override EnsembleConfig.n_members")
    r.add_argument("--records", default=None, help="record directory (default: data/records)")
    r.add_argument("--split-dir", default=None,
                   help="directory of the train/test split files, made or extended there if needed (default: the "
                   "committed data/splits, read only; for other records a split derived in artifacts/<profile>/splits/)")
    r.add_argument("--no-predict", action="store_true", help="do not write test-set predictions afterwards")
    r.add_argument("--no-progress", action="store_true")
    add_device_arg(r)
    s = sub.add_parser("status", help="state of every member (complete/partial/missing/stale)")
    add_profile_arg(s)
    s.add_argument("--variant", nargs="*", choices=VARIANTS)
    args = p.parse_args(argv)
    prof = profile_from_args(args)
    variants = tuple(args.variant or prof.ensemble.variants)
    if args.action == "status":
        for v in variants:
            rows = ensemble_status(prof, v)
            done = sum(row["state"] == "complete" for row in rows)
            print(f"{prof.name}/{v}: {done}/{len(rows)} members complete  ({ensemble_directory(prof.name, v, create=False)})")
            for row in rows:
                extra = (f"  {row['checkpoint']:8s} epochs={row['epochs']}  {row['wall_s']:.0f}s  OOB={row['oob_fraction']:.2f}"
                         if row["state"] == "complete" else "")
                print(f"  member-{row['member']:03d}  {row['state']:8s}{extra}")
        return 0
    records = load_records(Path(args.records) if args.records else RECORDS_DIR)
    if not records:
        raise FileNotFoundError(f"{args.records or RECORDS_DIR}: no record files (*.json) in this directory")
    split, split_where = split_for_run(records, prof.name, split_dir=args.split_dir)
    print(f"# split {split.name!r} from {split_where}: {len(split.train_ids)} train / {len(split.test_ids)} test",
          file=sys.stderr)
    train_ids, test_ids = list(split.train_ids), list(split.test_ids)
    runs = run_ensembles(records, prof, train_ids, variants, n_members=args.n_members, progress=not args.no_progress)
    for v, run in runs.items():
        print(f"{prof.name}/{v}: {run.n_members} members ({len(run.trained)} trained, {len(run.reused)} reused) "
              f"in {run.wall_s:.0f} s -> {run.directory}")
    if not args.no_predict:
        for v, ps in predict_runs(runs, records, test_ids, profile=prof).items():
            print(f"  {v} test predictions ({len(ps.ids)} materials) -> {predictions_path(prof.name, v)}")
    return 0
