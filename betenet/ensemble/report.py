"""Report material of the ensemble chapter (notebook 05): Table 1 rows, the calibration of the members'
spread, and the findings paragraph."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..metrics import ALL_PROPERTIES, PROPERTY_LABELS, table1_rows
from .predict import PredictionSet
from .store import VARIANTS

__all__ = ["table1_ensemble_rows", "spread_calibration", "findings_markdown"]


def table1_ensemble_rows(prediction_sets: Iterable[PredictionSet], *, n_train: int | None = None, data: str | None = None) -> list[dict[str, Any]]:
    """Table 1 rows (R2/MAE/RMSE of λ, ω_log, ω₂, T_c) per variant, model name = variant.

    Predicted properties are those of the ensemble-mean α²F (see the module docstring).
    """
    rows: list[dict[str, Any]] = []
    for ps in prediction_sets:
        rows += table1_rows(ps.variant, ps.reference, ps.predicted("of_mean"), n_train=n_train, data=data)
    return rows


def spread_calibration(prediction_sets: Iterable[PredictionSet], properties: Sequence[str] | None = None):
    """How informative the ensemble spread is on a prediction set (beyond the paper).

    One row per (variant, property): ``mean_std`` (mean over materials of the std over members),
    ``MAE`` (of the ensemble-mean α²F's property), ``within_1std`` (fraction of materials whose error
    is at most one std — 0.68 for a calibrated Gaussian spread), ``spearman_std_error`` (rank
    correlation of std and |error|; NaN below 3 materials or for a constant column) and ``n``.
    """
    import pandas as pd
    from scipy.stats import spearmanr


    props = tuple(ALL_PROPERTIES if properties is None else properties)
    rows = []
    for ps in prediction_sets:
        pred, std = ps.predicted("of_mean"), ps.predicted("member_std")
        for p in props:
            err = np.abs(pred[p].to_numpy() - ps.reference[p].to_numpy())
            sd = std[p].to_numpy()
            rho = float("nan")
            if err.size >= 3 and np.ptp(err) > 0 and np.ptp(sd) > 0:
                rho = float(spearmanr(sd, err).statistic)
            rows.append({"model": ps.variant, "property": p, "mean_std": float(sd.mean()), "MAE": float(err.mean()),
                         "within_1std": float(np.mean(err <= sd)), "spearman_std_error": rho, "n": int(err.size)})
    return pd.DataFrame(rows)


def findings_markdown(rows: Iterable[Mapping[str, Any]], calibration: Any = None, *,
                      references: Sequence[str] = ("Base", "Mean")) -> str:
    """Markdown bullet points generated from measured Table 1 rows (ensembles next to ``references``)
    and, optionally, :func:`spread_calibration` — for the notebook text, so no number is typed by hand."""
    rows = list(rows)
    table: dict[tuple[str, str], Mapping[str, Any]] = {(str(r["model"]), str(r["metric"])): r for r in rows}
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    ens = [m for m in models if m in VARIANTS]
    refs = [m for m in references if m in models]
    if not ens:
        return "- no ensemble rows to describe"
    n_test = {m: table[(m, "MAE")].get("n_test") for m in models}
    lines = []
    for p in ("lambda", "omega_log_K", "omega_2_K"):
        fmt = ".2f" if p == "lambda" else ".0f"
        best = max(ens, key=lambda m: float(table[(m, "R2")][p]))
        parts = [f"{m} {float(table[(m, 'R2')][p]):.2f}" for m in ens + refs]
        maes = [f"{m} {float(table[(m, 'MAE')][p]):{fmt}}" for m in ens + refs]
        lines.append(f"- {PROPERTY_LABELS[p]}: R² {', '.join(parts)}; MAE {', '.join(maes)}. Best ensemble by R²: {best}.")
    tc = [f"{m} {float(table[(m, 'MAE')]['tc_mae_K']):.2f} K" for m in ens + refs]
    lines.append(f"- T_c (Allen–Dynes) MAE: {', '.join(tc)}.")
    sizes = sorted({int(v) for v in n_test.values() if v is not None and v == v})
    if sizes:
        lines.append(f"- Test materials scored: {', '.join(str(x) for x in sizes)} (the baseline leaves out materials "
                     "without its features, so its count can differ).")
    if calibration is not None and len(calibration):
        for m, grp in calibration.groupby("model", sort=False):
            g = grp.set_index("property")
            parts = [f"{PROPERTY_LABELS[p].split(' ')[0]} {100 * float(g.loc[p, 'within_1std']):.0f} %"
                     for p in g.index if p in PROPERTY_LABELS]
            rho = g["spearman_std_error"].dropna()
            rho_txt = (f"; rank correlation of spread and error {rho.min():.2f} to {rho.max():.2f}" if len(rho)
                       else "; too few materials for a rank correlation")
            lines.append(f"- {m} spread: test materials with |error| ≤ one std: {', '.join(parts)} "
                         f"(68 % for a calibrated Gaussian){rho_txt}.")
    return "\n".join(lines)
