"""betenet: a reproducible implementation of BETE-NET (Gibson, Hire et al., arXiv 2401.16611).

The package's face is the typed configuration: :class:`Profile`, :data:`PROFILES` and :func:`get_profile`
(what every notebook starts from).  Everything else is imported from its own module; importing ``betenet``
imports only :mod:`betenet.config` (and NumPy through :mod:`betenet.constants`) and changes no global state
(no default dtype, no rcParams).

The modules, in pipeline order:

- configuration and files: ``config``, ``constants``, ``paths``, ``seeding``, ``jsonio``, ``locks``, ``cluster``;
- physics and data: ``physics``, ``eliashberg``, ``spectra``, ``records``, ``reference``, ``validation``,
  ``upstream``, ``upstream_split``, ``datasource``, ``qe`` (the Quantum ESPRESSO workflow);
- learning: ``graphs``, ``dataset``, ``model``, ``regimes``, ``train``, ``double_descent``, ``landscape``,
  ``splits``, ``metrics``, ``baseline``, ``ensemble``;
- analysis: ``analysis``, ``screening``, ``structure_screening``;
- presentation and entry points: ``plots`` (every figure), ``outputs``, ``pipeline`` (papermill + book),
  ``cli`` (the ``betenet`` command).
"""

from __future__ import annotations

from .config import PROFILES, Profile, get_profile

__version__ = "0.1.0"

__all__ = ["__version__", "Profile", "PROFILES", "get_profile"]
