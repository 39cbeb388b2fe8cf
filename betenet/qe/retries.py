"""pw.x retries: how an input is rewritten when Davidson leaves bands unconverged.

:meth:`betenet.qe.workflow.MaterialRun.qe` retries a pw.x run whose log says :data:`DAVIDSON_FAILURE`,
first with conjugate gradients (:func:`with_cg_diagonalization`), then, for a non-self-consistent run,
at a bounded diagonalisation threshold (:func:`with_loose_nscf_threshold`).  Each rewrite changes the
:class:`~betenet.qe.inputs.PWInput` object, never the text, and returns ``None`` when it does not apply.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from .inputs import FormattedReal, PWInput

__all__ = ["DAVIDSON_FAILURE", "NSCF_RETRY_ETHR_RY", "with_cg_diagonalization", "with_loose_nscf_threshold", "n_electrons"]


#: pw.x's message when Davidson diagonalisation leaves bands unconverged (retried once with 'cg').
DAVIDSON_FAILURE = "too many bands are not converged"


def with_cg_diagonalization(pw: PWInput) -> PWInput | None:
    """``pw`` with ``diagonalization = 'cg'`` first in ``&ELECTRONS``; ``None`` when it already sets a
    diagonalization."""
    if "diagonalization" in pw.electrons:
        return None
    return replace(pw, electrons={"diagonalization": "cg", **pw.electrons})


#: Diagonalisation threshold (Ry) of the last retry of a non-self-consistent pw.x run whose bands Davidson
#: and CG both left unconverged.  pw.x sets an nscf run's threshold to 0.1 min(1e-2, conv_thr / N_el),
#: ~1e-12 Ry for the dataset's conv_thr; with the project's Sc pseudopotential neither method gets the
#: highest bands there (fcc Sc, L1_2 Al3Sc: "too many bands are not converged", while the scf converged).
#: At 1e-8 Ry Davidson finishes (fcc Sc, 12^3 k: 20 s; Al3Sc, 8^3 k: 32 s); an eigenvalue error of
#: ~1e-8 Ry (1e-7 eV) is far below the meV scale of the eDOS and of E_F that the step is used for.
NSCF_RETRY_ETHR_RY = 1e-8


def with_loose_nscf_threshold(pw: PWInput, n_electrons: float, ethr_Ry: float = NSCF_RETRY_ETHR_RY) -> PWInput | None:
    """The nscf ``pw`` with Davidson and ``conv_thr = 10 ethr_Ry n_electrons`` (so that pw.x's nscf
    diagonalisation threshold is ``ethr_Ry``; first in ``&ELECTRONS``, written ``%.3e``) instead of its
    diagonalization/conv_thr; ``None`` for a self-consistent input or one already that loose."""
    if str(pw.control.get("calculation", "")).lower() != "nscf" or n_electrons <= 0:
        return None
    conv = 10.0 * ethr_Ry * n_electrons
    old = pw.electrons.get("conv_thr")
    if old is not None and float(old) >= conv * (1 - 1e-9):
        return None
    rest = {k: v for k, v in pw.electrons.items() if k not in ("diagonalization", "conv_thr")}
    return replace(pw, electrons={"conv_thr": FormattedReal(conv, ".3e"), **rest})


def n_electrons(out: Path) -> float | None:
    """``number of electrons`` from a pw.x log (``None`` when absent or the log is missing)."""
    if out.exists():
        m = re.search(r"number of electrons\s*=\s*([0-9.]+)", out.read_text(errors="replace"))
        if m:
            return float(m.group(1))
    return None
