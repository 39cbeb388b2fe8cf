"""Quantum ESPRESSO workflow: pseudopotentials, candidate structures, inputs, parsers, el-ph runs.

Submodules are imported explicitly (``from betenet.qe import pseudo``); importing this package
does nothing else.
"""

from __future__ import annotations

__all__: list[str] = []
