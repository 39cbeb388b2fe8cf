"""Choosing the el-ph double-delta broadening σ from λ(σ) (the ``validated`` accuracy level).

ph.x computes λ for ``n`` Gaussian broadenings σ_1 < … < σ_n of the double delta on the dense k mesh.
Too small a σ samples the Fermi surface of a finite mesh noisily; too large a σ smears it out.  The
usual practice (Wierzbowska, de Gironcoli & Giannozzi, arXiv:cond-mat/0504077) is to take λ where it
has become flat in σ.  :func:`select_plateau` does this reproducibly: the smallest σ_i from which the
next ``window`` values of λ stay within ``rel_tol`` of λ(σ_i).  A fixed index (the ``screening`` level's
0.02 Ry) ignores whether that σ is converged for the material's mesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .parsers import QEParseError, a2f_sigmas, parse_lambda_file

__all__ = [
    "BroadeningChoice", "select_plateau", "select_broadening", "choose_for_run", "choose_for_a2f_table",
    "lambda_sigma_table",
]


@dataclass(frozen=True)
class BroadeningChoice:
    """The selected broadening: 1-based ``index`` into the σ list, ``sigma_Ry``, and how it was found.

    ``method``: ``"plateau"`` (found), ``"plateau-fallback"`` (no plateau; the fallback index was used) or
    ``"index"`` (a fixed index was asked for).  ``spread``: the largest relative deviation of λ over the
    window after the choice (the plateau's own flatness; for a fallback, over the same window).
    """

    index: int
    sigma_Ry: float
    method: str
    spread: float

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "sigma_Ry": self.sigma_Ry, "method": self.method, "spread": round(self.spread, 4)}


def _window_spread(lam: np.ndarray, i: int, window: int) -> float:
    ref = lam[i]
    seg = lam[i : i + window + 1]
    if not np.isfinite(ref) or ref <= 0 or not np.all(np.isfinite(seg)):
        return float("inf")
    return float(np.max(np.abs(seg - ref)) / ref)


def select_plateau(
    sigmas_Ry: Sequence[float],
    lambdas: Sequence[float],
    *,
    rel_tol: float = 0.05,
    window: int = 2,
    fallback_index: int = 4,
) -> BroadeningChoice:
    """The smallest σ_i whose λ agrees with λ at the next ``window`` broadenings to ``rel_tol``.

    ``sigmas_Ry`` must be strictly increasing and as long as ``lambdas``.  When no σ qualifies (λ still
    drifting at the largest broadenings: a mesh too coarse for this material), ``fallback_index``
    (1-based) is returned with ``method="plateau-fallback"`` so that the caller can flag the label.
    """
    s = np.asarray(sigmas_Ry, dtype=float)
    lam = np.asarray(lambdas, dtype=float)
    if s.ndim != 1 or s.shape != lam.shape or len(s) < 2:
        raise ValueError(f"select_plateau: expected two equal-length 1-D sequences (>= 2), got {s.shape} and {lam.shape}")
    if np.any(np.diff(s) <= 0):
        raise ValueError(f"select_plateau: broadenings must increase strictly, got {list(s)}")
    if window < 1 or rel_tol <= 0:
        raise ValueError(f"select_plateau: window >= 1 and rel_tol > 0 expected, got window={window}, rel_tol={rel_tol}")
    if not 1 <= fallback_index <= len(s):
        raise ValueError(f"select_plateau: fallback_index={fallback_index} outside 1..{len(s)}")
    for i in range(len(s) - window):
        spread = _window_spread(lam, i, window)
        if spread <= rel_tol:
            return BroadeningChoice(i + 1, float(s[i]), "plateau", spread)
    j = fallback_index - 1
    return BroadeningChoice(fallback_index, float(s[j]), "plateau-fallback", _window_spread(lam, j, min(window, len(s) - 1 - j)))


def select_broadening(sigmas_Ry: Sequence[float], lambdas: Sequence[float], cfg) -> BroadeningChoice:
    """The broadening a :class:`betenet.config.QEConfig` asks for: its fixed ``elph_smearing_index``
    (``elph_sigma_selection == "index"``) or :func:`select_plateau` with its tolerance and window."""
    if cfg.elph_sigma_selection == "index":
        i = cfg.elph_smearing_index
        if not 1 <= i <= len(sigmas_Ry):
            raise ValueError(f"QEConfig.elph_smearing_index={i} but {len(sigmas_Ry)} broadenings stored")
        return BroadeningChoice(i, float(sigmas_Ry[i - 1]), "index", 0.0)
    return select_plateau(
        sigmas_Ry, lambdas, rel_tol=cfg.elph_plateau_rel_tol, window=cfg.elph_plateau_window,
        fallback_index=cfg.elph_smearing_index,
    )


def choose_for_run(run_dir, cfg) -> BroadeningChoice:
    """:func:`select_broadening` on a finished run's matdyn ``lambda`` file (λ of every broadening)."""
    rows = parse_lambda_file(Path(run_dir) / "lambda")
    return select_broadening([r.broadening_Ry for r in rows], [r.lambda_ for r in rows], cfg)


def choose_for_a2f_table(run_dir, cfg, header: str, data: np.ndarray) -> BroadeningChoice:
    """The broadening of a finished run's α²F table (``a2f.dat.gz``: ``header``, ``data`` with ω first)
    that ``cfg`` asks for: its fixed ``elph_smearing_index`` (``elph_sigma_selection == "index"``; σ from
    the table's header, the ``lambda`` file is not read) or :func:`choose_for_run`.  The one rule of the
    quality filters and of the record.  :class:`~betenet.qe.parsers.QEParseError` naming the table when
    the index is outside its broadenings."""
    choice = choose_for_run(run_dir, cfg) if cfg.elph_sigma_selection != "index" else None
    idx = choice.index if choice is not None else cfg.elph_smearing_index
    if not 1 <= idx <= data.shape[1] - 1:
        raise QEParseError(f"{Path(run_dir) / 'a2f.dat.gz'}: broadening index {idx} but {data.shape[1] - 1} broadenings stored")
    if choice is not None:
        return choice
    sigmas = a2f_sigmas(header)
    return BroadeningChoice(idx, sigmas[idx - 1], "index", 0.0)


def lambda_sigma_table(runs: dict[str, Path], cfg, tolerances: Sequence[float] | None = None) -> str:
    """Markdown comparison of λ(σ) between runs of one material (a convergence study's table).

    ``runs`` maps a label to a run directory; runs without a matdyn ``lambda`` file are left out.  One row
    per broadening σ, one column per run, then for each tolerance in ``tolerances`` (default: ``cfg``'s
    ``elph_plateau_rel_tol``) the plateau :func:`select_plateau` picks in each run with ``cfg``'s window and
    fallback, its λ and flatness.  :class:`ValueError` when the runs do not share the same σ list.
    """
    rows = {label: parse_lambda_file(Path(d) / "lambda") for label, d in runs.items() if (Path(d) / "lambda").exists()}
    out = ["| σ (Ry) | " + " | ".join(f"λ, {m}" for m in rows) + " |", "|---|" + "---|" * len(rows)]
    if not rows:
        return "\n".join(out + ["(no finished run yet)"])
    sigmas = {m: [r.broadening_Ry for r in rr] for m, rr in rows.items()}
    first = next(iter(sigmas.values()))
    for m, s in sigmas.items():
        if not np.allclose(s, first):
            raise ValueError(f"{Path(runs[m]) / 'lambda'}: broadenings {s} differ from the first run's {first}")
    for i, sigma in enumerate(first):
        out.append(f"| {sigma:.3f} | " + " | ".join(f"{rows[m][i].lambda_:.4f}" for m in rows) + " |")
    out.append("")
    for tol in (tolerances if tolerances is not None else (cfg.elph_plateau_rel_tol,)):
        for m, rr in rows.items():
            c = select_plateau(sigmas[m], [r.lambda_ for r in rr], rel_tol=tol, window=cfg.elph_plateau_window,
                               fallback_index=cfg.elph_smearing_index)
            out.append(f"- plateau tolerance {100 * tol:.0f} %, {m}: σ = {c.sigma_Ry:.3f} Ry ({c.method}), "
                       f"λ = {rr[c.index - 1].lambda_:.4f}, flatness {100 * c.spread:.1f} %")
    return "\n".join(out)
