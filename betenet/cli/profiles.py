"""``betenet profiles [NAME]``: print the named profiles (:data:`betenet.config.PROFILES`) as JSON."""

from __future__ import annotations

import argparse
import json

from betenet.config import PROFILES

__all__ = ["cli_main"]


def cli_main(argv: list[str]) -> int:
    """``betenet profiles [NAME]``: print profiles as JSON."""
    p = argparse.ArgumentParser(prog="betenet profiles", description="Print the named profiles as JSON.")
    p.add_argument("name", nargs="?", choices=sorted(PROFILES))
    args = p.parse_args(argv)
    names = [args.name] if args.name else sorted(PROFILES)
    print(json.dumps({n: PROFILES[n].to_dict() for n in names}, indent=2, default=str))
    return 0
