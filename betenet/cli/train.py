"""``betenet train``: train one model on the training split of the project's records (or time a bootstrap
member with ``--benchmark``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from betenet.cli.options import add_device_arg, add_profile_arg, positive_int, profile_from_args
from betenet.config import VARIANTS
from betenet.double_descent import regime_run
from betenet.paths import RECORDS_DIR, SPLITS_DIR, artifacts_dir
from betenet.records import load_records
from betenet.splits import split_for_run
from betenet.train import train_model
from betenet.train_benchmark import benchmark_training

__all__ = ["cli_main"]


def cli_main(argv: list[str]) -> int:
    """``betenet train``: train one model on the training split of the project's records."""
    p = argparse.ArgumentParser(
        prog="betenet train",
        description="Train one BETE-NET model with the double-descent policy on the training split of "
        "data/records (validation: an element-balanced part of it). Resumes from RUN_DIR/last.pt.",
    )
    add_profile_arg(p, "smoke | default | paper (default: default)")
    p.add_argument("--variant", default=None, choices=VARIANTS, help="default: the profile's")
    p.add_argument("--run-dir", default=None,
                   help="default: artifacts/<profile>/train/main-<variant>-<key>, the run notebook 03 uses")
    p.add_argument("--epochs", type=positive_int, default=None, help="override max_epochs (extends a finished run)")
    p.add_argument("--records", default=str(RECORDS_DIR), help="directory of record JSON files")
    p.add_argument("--split-dir", default=None,
                   help=f"directory of the train/test split files, made or extended there if needed (default: the "
                   f"committed split in {SPLITS_DIR}, read only; for other records a split derived in "
                   f"artifacts/<profile>/splits/)")
    p.add_argument("--no-progress", action="store_true")
    add_device_arg(p)
    p.add_argument("--benchmark", nargs=2, type=int, metavar=("N_TRAIN", "N_VAL"), default=None,
                   help="time epochs of a bootstrap member of N_TRAIN samples validated on N_VAL (drawn with "
                   "replacement from the training split; the paper: 654 238) instead of training; prints JSON")
    p.add_argument("--bench-epochs", type=positive_int, default=10, help="timed epochs (after 2 warm-up epochs)")
    p.add_argument("--bench-supercell", type=int, nargs=3, default=(1, 1, 1), metavar=("NA", "NB", "NC"),
                   help="time on supercells of the records (more atoms per crystal, as the paper's cells)")
    p.add_argument("--bench-rattle", type=float, default=0.03,
                   help="Gaussian displacement (Å) that makes every drawn sample a distinct crystal (0: exact copies)")
    args = p.parse_args(argv)

    prof = profile_from_args(args)
    variant = args.variant or prof.model.variant
    records = load_records(Path(args.records))
    if not records:
        raise FileNotFoundError(f"{args.records}: no record files (*.json) in this directory")
    split, split_where = split_for_run(records, prof.name, split_dir=args.split_dir)
    print(f"# split {split.name!r} from {split_where}: {len(split.train_ids)} train / {len(split.test_ids)} test",
          file=sys.stderr)
    train_ids = list(split.train_ids)
    by_id = {r.material_id: r for r in records}
    if args.benchmark:
        root = Path(args.run_dir) if args.run_dir else artifacts_dir(prof.name, "benchmarks")
        row = benchmark_training([by_id[m] for m in train_ids], prof, root, n_train=args.benchmark[0],
                                 n_val=args.benchmark[1], epochs=args.bench_epochs, variant=variant,
                                 supercell=args.bench_supercell, rattle_A=args.bench_rattle)
        print(json.dumps(row))
        return 0
    if args.run_dir:
        res = train_model([by_id[m] for m in train_ids], prof, Path(args.run_dir), variant=variant,
                          max_epochs=args.epochs, progress=not args.no_progress)
    else:
        res = regime_run(records, train_ids, prof, variant=variant, progress=not args.no_progress,
                         root=artifacts_dir(prof.name, "train"), max_epochs=args.epochs)
    print(json.dumps(res.to_dict(), indent=2, default=str))
    print(res.regimes.summary())
    return 0
