"""The paper's linear baseline (Sec. II.1, Table 1 "Base") and the mean model.

Features (per material, from its record)
----------------------------------------
``edos_ef_per_eV``
    total electronic DOS at the Fermi level (states/eV/cell), as stored in the record.
``phdos_lambda_like_per_meV``, ``phdos_omega_log_K``, ``phdos_omega_2_K``
    the Allen–Dynes moments of the **coarse** phonon DOS F(ω), computed with *the same formulas as
    the α²F moments* (:func:`betenet.physics.moments`), i.e. treating F(ω) as a spectral function,
    after normalising F to unit area over ω > 0 (negative values — interpolation noise —
    clipped to 0 first).  The normalisation makes them intensive and independent of the number
    of atoms: the λ-like moment is then 2⟨1/ω⟩_F in 1/meV, and ω_log/ω₂ (in K) are unchanged by
    any normalisation.  These are exactly the PhDOS moments of the paper's Fig. 2(b–c), where
    Allen and Dynes' observation α²F ∝ F makes them strong predictors of the α²F moments.

Models
------
:class:`LinearBaseline` — one multivariate ordinary-least-squares fit (scikit-learn
``LinearRegression``) of the three targets (λ, ω_log K, ω₂ K of the raw DFT α²F, see
:mod:`betenet.metrics`) on all four features, fitted on the training split.
:class:`MeanModel` — predicts the training mean of every target for every material (the paper's
"mean model"); its R² on the training data is 0 by construction.

T_c of both comes from the Allen–Dynes formula applied to the predicted moments (μ* from the
screening config, 0.1 as the paper).  A linear model can predict unphysical negative moments:
they are kept as predicted for the moment metrics, and clipped at 0 only inside the T_c formula
(λ ≤ μ*(1 + 0.62λ) gives T_c = 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import physics
from .constants import MU_STAR_DEFAULT
from .metrics import PROPERTIES, PROPERTY_LABELS, reference_properties, table1_frame, table1_rows
from .records import RecordError

__all__ = [
    "FEATURES",
    "FEATURE_LABELS",
    "TARGETS",
    "phdos_moments",
    "baseline_features",
    "LinearBaseline",
    "MeanModel",
    "tc_from_moments",
    "BaselineResult",
    "run_baseline",
    "one_metric_comparison",
    "one_metric_findings",
]

FEATURES: tuple[str, ...] = ("edos_ef_per_eV", "phdos_lambda_like_per_meV", "phdos_omega_log_K", "phdos_omega_2_K")
FEATURE_LABELS: dict[str, str] = {
    "edos_ef_per_eV": "eDOS(E_F) (states/eV/cell)",
    "phdos_lambda_like_per_meV": "coarse PhDOS 2⟨1/ω⟩ (1/meV)",
    "phdos_omega_log_K": "coarse PhDOS ω_log (K)",
    "phdos_omega_2_K": "coarse PhDOS ω₂ (K)",
}
TARGETS: tuple[str, ...] = PROPERTIES


def phdos_moments(omega_meV, dos) -> physics.Moments:
    """Allen–Dynes moments of a phonon DOS treated as a spectral function, after unit-area normalisation.

    Returns ``Moments(lambda_ = 2⟨1/ω⟩ (1/meV), omega_log_K, omega_2_K)``; raises ``ValueError`` if
    the DOS has no weight at ω > 0.
    """
    w = np.asarray(omega_meV, dtype=float)
    f = np.clip(np.asarray(dos, dtype=float), 0.0, None)
    f = np.where(w > 0, f, 0.0)
    area = float(np.trapezoid(f, w))
    if not area > 0:
        raise ValueError("phonon DOS has no weight at positive frequencies")
    return physics.moments(w, f / area)


def baseline_features(records: Sequence[Any], *, skip_incomplete: bool = False):
    """Feature table (DataFrame indexed by ``material_id``, columns :data:`FEATURES`).

    A record without ``edos_ef_per_eV`` or a coarse PhDOS raises :class:`~betenet.records.RecordError`
    naming the material and the field; with ``skip_incomplete=True`` such materials are left out
    instead and listed in ``frame.attrs["skipped"]`` (``{material_id: reason}``).
    """
    import pandas as pd

    rows, skipped = [], {}
    for rec in records:
        try:
            if rec.edos_ef_per_eV is None or not np.isfinite(rec.edos_ef_per_eV):
                raise RecordError(f"material {rec.material_id!r}: field 'edos_ef_per_eV' is missing (needed by the baseline)")
            for name in ("phdos_coarse_omega_meV", "phdos_coarse_total"):
                if getattr(rec, name) is None:
                    raise RecordError(f"material {rec.material_id!r}: field {name!r} is missing (needed by the baseline)")
            try:
                m = phdos_moments(rec.phdos_coarse_omega_meV, rec.phdos_coarse_total)
            except ValueError as exc:
                raise RecordError(f"material {rec.material_id!r}: field 'phdos_coarse_total': {exc}") from exc
        except RecordError as exc:
            if not skip_incomplete:
                raise
            skipped[rec.material_id] = str(exc)
            continue
        rows.append((rec.material_id, float(rec.edos_ef_per_eV), float(m.lambda_), float(m.omega_log_K), float(m.omega_2_K)))
    frame = pd.DataFrame(rows, columns=["material_id", *FEATURES]).set_index("material_id")
    frame.attrs["skipped"] = skipped
    return frame


def _matrix(frame, columns: Sequence[str], what: str) -> np.ndarray:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what}: missing column(s) {missing}")
    return frame.loc[:, list(columns)].to_numpy(dtype=float)


def tc_from_moments(pred, *, mu_star: float = MU_STAR_DEFAULT) -> np.ndarray:
    """Allen–Dynes T_c (K) from predicted moments (negative moments clipped to 0 inside the formula;
    ω_log or ω₂ ≤ 0 gives T_c = 0)."""
    lam = np.clip(np.asarray(pred["lambda"], dtype=float), 0.0, None)
    wlog = np.clip(np.asarray(pred["omega_log_K"], dtype=float), 0.0, None)
    w2 = np.clip(np.asarray(pred["omega_2_K"], dtype=float), 0.0, None)
    ok = (wlog > 0) & (w2 > 0)
    tc = np.asarray(physics.allen_dynes_tc_K(lam, np.where(ok, wlog, 1.0), np.where(ok, w2, 1.0), mu_star), dtype=float)
    return np.where(ok, tc, 0.0)


@dataclass
class LinearBaseline:
    """Multivariate linear regression ``targets = features @ coef.T + intercept`` (OLS, scikit-learn)."""

    features: tuple[str, ...] = FEATURES
    targets: tuple[str, ...] = TARGETS
    coef: np.ndarray | None = None  #: shape (n_targets, n_features)
    intercept: np.ndarray | None = None  #: shape (n_targets,)
    underdetermined: bool = False  #: fitted on no more materials than features (minimum-norm solution)

    def fit(self, X, Y) -> "LinearBaseline":
        """Fit on DataFrames ``X`` (columns ``features``) and ``Y`` (columns ``targets``), same index."""
        from sklearn.linear_model import LinearRegression

        if list(X.index) != list(Y.index):
            raise ValueError("features and targets are not aligned on the same materials")
        if len(X) < 2:
            raise ValueError(f"need at least 2 training materials for the linear baseline, got {len(X)}")
        self.underdetermined = len(X) <= len(self.features)
        if self.underdetermined:
            warnings.warn(
                f"linear baseline fitted on {len(X)} training materials for {len(self.features)} features + intercept: "
                "underdetermined, scikit-learn returns the minimum-norm least-squares solution; its coefficients "
                "are not identifiable and its test metrics say little",
                UserWarning, stacklevel=2,
            )
        reg = LinearRegression().fit(_matrix(X, self.features, "features"), _matrix(Y, self.targets, "targets"))
        self.coef = np.asarray(reg.coef_, dtype=float).reshape(len(self.targets), len(self.features))
        self.intercept = np.asarray(reg.intercept_, dtype=float).reshape(len(self.targets))
        return self

    def predict(self, X):
        """DataFrame of predicted targets (index of ``X``)."""
        import pandas as pd

        if self.coef is None:
            raise RuntimeError("LinearBaseline.predict called before fit")
        Y = _matrix(X, self.features, "features") @ self.coef.T + self.intercept
        return pd.DataFrame(Y, index=X.index, columns=list(self.targets))

    def coefficients(self):
        """Coefficients as a DataFrame (rows: targets; columns: intercept + features)."""
        import pandas as pd

        data = np.column_stack([self.intercept, self.coef])
        return pd.DataFrame(data, index=list(self.targets), columns=["intercept", *self.features])


@dataclass
class MeanModel:
    """Predicts the training mean of every target (the paper's "mean model")."""

    targets: tuple[str, ...] = TARGETS
    means: dict[str, float] = field(default_factory=dict)

    def fit(self, X, Y) -> "MeanModel":
        self.means = {t: float(np.mean(_matrix(Y, [t], "targets"))) for t in self.targets}
        return self

    def predict(self, X):
        import pandas as pd

        if not self.means:
            raise RuntimeError("MeanModel.predict called before fit")
        return pd.DataFrame({t: np.full(len(X), self.means[t]) for t in self.targets}, index=X.index)


@dataclass
class BaselineResult:
    """Everything notebook 02 shows: features, DFT targets, predictions and Table 1 rows."""

    linear: LinearBaseline
    mean: MeanModel
    features: Any  #: DataFrame, all materials used
    targets: Any  #: DataFrame of DFT reference properties (incl. tc_K)
    train_ids: list[str]
    test_ids: list[str]
    predictions: dict[str, Any]  #: model name -> DataFrame of test predictions (incl. tc_K)
    train_predictions: dict[str, Any]
    rows: list[dict[str, Any]]
    skipped: dict[str, str]

    def table(self):
        return table1_frame(self.rows)


def run_baseline(
    records: Sequence[Any],
    train_ids: Sequence[str],
    test_ids: Sequence[str],
    *,
    mu_star: float = MU_STAR_DEFAULT,
    data: str | None = None,
    skip_incomplete: bool = False,
) -> BaselineResult:
    """Fit the linear baseline and the mean model on ``train_ids``; Table 1 rows on ``test_ids``.

    Rows are named ``"Base"`` and ``"Mean"``.  Materials of the split without features raise (or
    are skipped with ``skip_incomplete``, listed in ``result.skipped``).
    """
    X = baseline_features(records, skip_incomplete=skip_incomplete)
    keep = set(X.index)
    Y = reference_properties([r for r in records if r.material_id in keep], "raw", mu_star=mu_star)
    unknown = sorted((set(train_ids) | set(test_ids)) - {r.material_id for r in records})
    if unknown:
        raise KeyError(f"split ids not among the records: {unknown[:10]}")
    tr = [m for m in train_ids if m in keep]
    te = [m for m in test_ids if m in keep]
    if not te:
        raise ValueError("no test materials with baseline features")
    linear = LinearBaseline().fit(X.loc[tr], Y.loc[tr])
    mean = MeanModel().fit(X.loc[tr], Y.loc[tr])
    preds, train_preds, rows = {}, {}, []
    for name, model in (("Base", linear), ("Mean", mean)):
        for ids, store in ((te, preds), (tr, train_preds)):
            p = model.predict(X.loc[ids])
            p["tc_K"] = tc_from_moments(p, mu_star=mu_star)
            store[name] = p
        rows += table1_rows(name, Y.loc[te], preds[name], n_train=len(tr), data=data)
    return BaselineResult(linear, mean, X, Y, tr, te, preds, train_preds, rows, dict(X.attrs.get("skipped", {})))


def one_metric_comparison(rows: Sequence[dict[str, Any]], y_test, model: str = "Base", reference: str = "Mean"):
    """Why one metric is not enough: per property, ``model`` vs ``reference`` in MAE, RMSE and R².

    Columns: ``MAE_<model>, MAE_<reference>, MAE_gain`` (relative MAE reduction vs the reference),
    ``MAE_over_std`` (the model's MAE in units of the test set's standard deviation),
    ``R2_<model>, R2_<reference>, RMSE_<model>, RMSE_<reference>``.  Index: the properties (incl. tc_K).
    """
    import pandas as pd

    def get(m: str, metric: str, p: str) -> float:
        for r in rows:
            if r["model"] == m and r["metric"] == metric:
                return float(r[p])
        raise KeyError(f"no {metric} row for model {m!r}")

    out = []
    for p in (*PROPERTIES, "tc_K"):
        mae_m, mae_r = get(model, "MAE", p), get(reference, "MAE", p)
        sd = float(np.std(np.asarray(y_test[p], dtype=float)))  # 0 for a one-material test set
        out.append(
            {
                "property": p,
                f"MAE_{model}": mae_m,
                f"MAE_{reference}": mae_r,
                "MAE_gain": 1.0 - mae_m / mae_r if mae_r > 0 else float("nan"),
                "MAE_over_std": mae_m / sd if sd > 0 else float("nan"),
                f"R2_{model}": get(model, "R2", p),
                f"R2_{reference}": get(reference, "R2", p),
                f"RMSE_{model}": get(model, "RMSE", p),
                f"RMSE_{reference}": get(reference, "RMSE", p),
            }
        )
    return pd.DataFrame(out).set_index("property")


def one_metric_findings(comparison, model: str = "Base", reference: str = "Mean") -> str:
    """Markdown bullet list, generated from the measured numbers, of what each metric alone would say.

    For every property: the MAE gain over the mean model and the MAE in units of the data's
    standard deviation, next to R²; flags properties where the MAE looks moderate while R² is
    near zero or negative ("MAE alone overstates the model").
    """
    lines = []
    for p, row in comparison.iterrows():
        label = PROPERTY_LABELS.get(p, p)
        r2 = row[f"R2_{model}"]
        gain = row["MAE_gain"]
        verdict = (
            "R² is undefined for a single test material, so only the errors can be compared"
            if r2 != r2
            else "the MAE alone would overstate it: it explains almost none of the variance (R² ≤ 0.2)"
            if r2 <= 0.2
            else "here MAE and R² agree that it captures much of the variance"
            if r2 >= 0.6
            else "a partial fit"
        )
        fmt = ".2f" if p == "lambda" else ".1f"
        lines.append(
            f"- **{label}**: MAE {row[f'MAE_{model}']:{fmt}} vs {row[f'MAE_{reference}']:{fmt}} for the {reference.lower()} model "
            f"({100 * gain:.0f} % lower; {row['MAE_over_std']:.2f} standard deviations of the test data), "
            f"R² {r2:.2f} vs {row[f'R2_{reference}']:.2f}, RMSE {row[f'RMSE_{model}']:{fmt}} vs "
            f"{row[f'RMSE_{reference}']:{fmt}} — {verdict}."
        )
    return "\n".join(lines)
