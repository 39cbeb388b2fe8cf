"""betenet: a reproducible implementation of BETE-NET (Gibson, Hire et al., arXiv 2401.16611).

Importing the package does nothing global (no default dtype, no rcParams changes).
Subpackages/modules: ``physics`` (α²F moments, T_c), ``spectra`` (smoothing/binning),
``eliashberg`` (linearised Migdal-Eliashberg T_c), ``records`` (data schema), ``upstream``
(BETE-NET database.json), ``qe`` (Quantum ESPRESSO workflow), ``graphs``/``model``/``train``
(e3nn network, double-descent training), ``landscape``, ``baseline``, ``splits``, ``ensemble``,
``analysis``, ``screening``, ``pipeline`` (papermill + book).
"""

from __future__ import annotations

from .config import PROFILES, Profile, get_profile

__version__ = "0.1.0"

__all__ = ["__version__", "Profile", "PROFILES", "get_profile"]
