"""``betenet qe``: moved to :mod:`betenet.cli.qe`; this module only re-exports its :func:`cli_main` for
callers of the old path."""

from betenet.cli.qe import cli_main

__all__ = ["cli_main"]
