"""``betenet`` command line.  Each subcommand lives in its own module of this package as
``cli_main(argv) -> int`` (``betenet.cli.<command>``; options shared by several commands, and the one place a
profile name is resolved, in :mod:`betenet.cli.options`); this dispatcher only lists them, so
``betenet --help`` stays fast (no torch import).  The library modules never import argparse.

One error path for every command: an ordinary mistake (missing, corrupt or read-only file, bad value,
stale split, busy run) ends with exit status 2 and one line ``betenet CMD: error: FILE: what`` on
stderr; anything else is a bug and keeps its traceback.  ``BETENET_TRACEBACK=1`` shows the traceback
of ordinary mistakes too."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import zlib

from betenet import __version__

__all__ = ["main", "COMMANDS", "USER_ERROR_EXIT", "is_user_error", "error_line"]

#: name -> (module implementing ``cli_main(argv)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("betenet.cli.data", "download the published BETE-NET data; validate/convert record files"),
    "qe": ("betenet.cli.qe", "run / resume / inspect the Quantum ESPRESSO el-ph dataset workflow"),
    "pseudo": ("betenet.cli.pseudo", "PBEsol pseudopotentials: the ld1.x set (generate, validate) and the PseudoDojo set (dojo validate)"),
    "train": ("betenet.cli.train", "train one BETE-NET model with the double-descent policy"),
    "ensemble": ("betenet.cli.ensemble", "train / resume a bootstrap ensemble (Dask)"),
    "screen": ("betenet.cli.screen", "rank CIF/POSCAR structures by predicted T_c with a saved ensemble"),
    "notebooks": ("betenet.cli.notebooks", "execute the notebooks with papermill for a profile and build the book"),
    "profiles": ("betenet.cli.profiles", "print the named profiles"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="betenet",
        description="Reproducible BETE-NET (arXiv 2401.16611): QE α²F dataset, e3nn models, ensembles, screening.",
    )
    p.add_argument("--version", action="store_true", help="print the package version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv or argv[0] in {"-h", "--help"}:
        parser.print_help()
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.cli_main(rest) or 0)
    except KeyboardInterrupt:
        print(f"betenet {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_user_error(exc) or os.environ.get("BETENET_TRACEBACK"):
            raise
        print(f"betenet {name}: error: {error_line(exc)}", file=sys.stderr)
        return USER_ERROR_EXIT


#: Exit status of every command for an ordinary mistake (bad file, bad option value, busy resource),
#: as argparse's own usage errors.
USER_ERROR_EXIT = 2


def is_user_error(exc: BaseException) -> bool:
    """An ordinary mistake the user can fix (a missing/corrupt/read-only file, a bad value, a stale split,
    a busy lock), as opposed to a bug: those keep their traceback."""
    return isinstance(exc, (OSError, ValueError, EOFError, zlib.error)) or type(exc).__module__.startswith("betenet.")


def error_line(exc: BaseException) -> str:
    """One line naming the file (OSError's ``filename``) and what went wrong."""
    if isinstance(exc, OSError) and exc.filename is not None:
        what = exc.strerror or str(exc)
        msg = f"{exc.filename}: {what}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    else:
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, (KeyError,)) and msg.startswith("'"):
            msg = f"unknown key {msg}"
    return " ".join(msg.split())

