"""Options shared by the ``betenet`` commands.

- argparse value types: a bad option value ends with argparse's usage line, one ``error:`` line naming the
  option and what was expected, and exit status 2 (as every other ordinary mistake, :mod:`betenet.cli`);
- ``--profile`` / ``--device`` / ``--workers`` declarations, and :func:`profile_from_args`, the one place a
  profile *name* from the command line becomes a :class:`betenet.config.Profile` (library functions take
  the ``Profile``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from betenet.config import get_profile

__all__ = ["positive_int", "nonnegative_int", "finite_float", "add_profile_arg", "add_device_arg", "add_workers_arg",
           "profile_from_args"]


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


# ---------------------------------------------------------------------------------------------- shared options

#: ``--device`` help, the same for every command that trains or predicts
DEVICE_HELP = "auto | cpu | cuda | cuda:N (default: the profile's ExecutionConfig.device)"


def add_profile_arg(p: argparse.ArgumentParser, help: str | None = None, default: str = "default") -> None:
    """``--profile NAME`` (a name of :data:`betenet.config.PROFILES`; checked by :func:`profile_from_args`,
    so an unknown name is an ordinary mistake with the list of known ones)."""
    p.add_argument("--profile", default=default, help=help)


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """``--device``: overrides the profile's ``ExecutionConfig.device`` (:func:`profile_from_args`)."""
    p.add_argument("--device", default=None, help=DEVICE_HELP)


def add_workers_arg(p: argparse.ArgumentParser, help: str, *, type: Callable[[str], int] = nonnegative_int,
                    default: int | None = 0) -> None:
    """``--workers N``: Dask workers (what 0 / the default means is the command's, in ``help``)."""
    p.add_argument("--workers", type=type, default=default, help=help)


def profile_from_args(args: argparse.Namespace):
    """The :class:`~betenet.config.Profile` named by ``args.profile``, with ``args.device`` (when the command
    has that option and it is given) as its training device."""
    prof = get_profile(args.profile)
    device = getattr(args, "device", None)
    if device:
        prof = prof.with_overrides(execution={"device": device})
    return prof
