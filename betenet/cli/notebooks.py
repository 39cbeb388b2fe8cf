"""``betenet notebooks run | book``: execute the notebooks with papermill for a profile and build the book.

The parser still lives in :func:`betenet.pipeline.cli_main` (that module is being edited elsewhere); it moves
here in a later step."""

from __future__ import annotations

from betenet.pipeline import cli_main

__all__ = ["cli_main"]
