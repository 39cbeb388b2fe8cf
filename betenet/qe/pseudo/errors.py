"""The one error type of the pseudopotential package."""

from __future__ import annotations

__all__ = ["PseudoError"]


class PseudoError(RuntimeError):
    """A pseudopotential is missing, inconsistent, or could not be generated/parsed."""
