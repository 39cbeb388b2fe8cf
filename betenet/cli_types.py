"""argparse value types shared by the ``cli_main`` functions: a bad option value ends with argparse's
usage line, one ``error:`` line naming the option and what was expected, and exit status 2 (as every
other ordinary mistake, :mod:`betenet.cli`)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["positive_int", "nonnegative_int", "finite_float"]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def nonnegative_int(text: str) -> int:
    """An integer ≥ 0."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def finite_float(lo: float | None = None, hi: float | None = None, *, hi_open: bool = False) -> Callable[[str], float]:
    """A finite float in ``[lo, hi]`` (``[lo, hi)`` with ``hi_open``); NaN and ±inf are refused."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        rng = f"[{'-inf' if lo is None else format(lo, 'g')}, {'inf' if hi is None else format(hi, 'g')}{')' if hi_open else ']'}"
        if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and (v >= hi if hi_open else v > hi)):
            raise argparse.ArgumentTypeError(f"expected a finite number in {rng}, got {text}")
        return v

    parse.__name__ = "number"  # argparse names the type in its message
    return parse
