"""Temporary re-exports of names that moved to another module, resolved on first use.

A module whose ``plot_*`` functions moved to :mod:`betenet.plots` sets
``__getattr__ = moved(__name__, "betenet.plots.x", ("plot_a", ...))`` so that ``from betenet.x import plot_a``
and ``x.plot_a`` keep working without the module importing the plotting one (and matplotlib) itself.  Remove an
entry once its callers (notebooks, tests) use the new path."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["moved"]


def moved(module: str, target: str | Mapping[str, Iterable[str]], names: Iterable[str] = ()) -> Callable[[str], Any]:
    """A module ``__getattr__`` answering each of ``names`` with the attribute of module ``target``
    (or, with a mapping ``{target: names}`` as ``target``, each name with that of its own target)."""
    where = {n: t for t, ns in target.items() for n in ns} if isinstance(target, Mapping) else dict.fromkeys(names, target)

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
