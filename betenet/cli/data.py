"""``betenet data download | validate | convert-upstream``: the published BETE-NET data and record files
(:mod:`betenet.upstream`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from betenet.upstream import (
    DEFAULT_DOWNLOAD_DIR,
    PINNED_COMMIT,
    RAW_BASE_URL,
    DownloadError,
    UpstreamError,
    convert_upstream,
    default_records_dir,
    download_upstream,
    validate_paths,
)

__all__ = ["cli_main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="betenet data", description="Published BETE-NET data and record files.")
    sub = p.add_subparsers(dest="action", required=True)
    d = sub.add_parser("download", help="download database.json + structures/*.cif at a pinned commit (SHA-256 checked)")
    d.add_argument("--dest", type=Path, default=DEFAULT_DOWNLOAD_DIR, help=f"target directory (default {DEFAULT_DOWNLOAD_DIR})")
    d.add_argument("--commit", default=PINNED_COMMIT, help=f"upstream commit (default {PINNED_COMMIT})")
    d.add_argument("--checksums", type=Path, help="JSON {path: sha256} or a MANIFEST.json from a trusted download")
    d.add_argument("--allow-unverified", action="store_true", help="download even without known checksums (recorded, not checked)")
    d.add_argument("--base-url", default=RAW_BASE_URL, help=argparse.SUPPRESS)
    d.add_argument("--convert", type=Path, metavar="OUT_DIR", help="then convert to record files in OUT_DIR")
    v = sub.add_parser("validate", help="validate record files or directories of them (exit 1 on any failure)")
    v.add_argument("paths", nargs="+", type=Path)
    c = sub.add_parser("convert-upstream", help="convert an upstream database.json into record files")
    c.add_argument("db_json", type=Path)
    c.add_argument("--out", type=Path, default=None,
                   help="output directory (default data/upstream/records: never this project's data/records)")
    c.add_argument("--structures", type=Path,
                   help="directory of <index>.cif (default: next to database.json, else the vendored data/upstream/structures)")
    c.add_argument("--overwrite", action="store_true", help="replace existing record files")
    c.add_argument("--skip-invalid", action="store_true", help="report and skip rows that fail validation")
    return p


def cli_main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.action == "validate":
            return 1 if validate_paths(args.paths) else 0
        if args.action == "download":
            dest = download_upstream(
                args.dest, args.commit, allow_unverified=args.allow_unverified, checksums=args.checksums, base_url=args.base_url
            )
            print(f"upstream data in {dest}")
            if args.convert is None:
                return 0
            report = convert_upstream(dest / "database.json", args.convert, skip_invalid=True)
        else:
            report = convert_upstream(
                args.db_json, args.out if args.out is not None else default_records_dir(), args.structures,
                overwrite=args.overwrite, skip_invalid=args.skip_invalid,
            )
    except (UpstreamError, DownloadError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for msg in report.invalid:
        print(f"invalid: {msg}", file=sys.stderr)
    print(report.summary())
    return 0
