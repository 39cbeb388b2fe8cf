"""Regression metrics of the paper's Table 1: R², MAE and RMSE of λ, ω_log, ω₂ (and T_c).

Two different numbers are easily both called "R²": :func:`r2_score` is the **coefficient of determination**
of predictions against the truth (Table 1's R², can be negative); :func:`pearson_r2` is the **squared
Pearson correlation** of two quantities (how well *some* straight line relates them, Fig. 2's
correlations), always in [0, 1] and labelled "Pearson r²".

Every model in this project — the linear baseline, the mean model, the CSO/CPD/FPD ensembles —
is scored the same way: derived properties of its prediction against the **reference DFT
properties**, on the test split.

Which DFT reference?
--------------------
The paper compares against properties "calculated from the DFT α²F".  We use the moments of the
**raw** DFT α²F (its own 0.1 meV-class grid, full frequency range) — the physical quantities a DFT
user would quote — for every model (``reference_properties(records, source="raw")``, the default).
Networks predict the *smoothed, 51-bin* α²F (Savitzky–Golay 101/3 then 2 meV bins up to
100.25 meV), so even a perfect network inherits the smoothing/binning error: the "DFT 51-bin"
row of :func:`smoothing_floor_rows` (``source="binned"`` vs ``"raw"``) measures that floor on our
data and is shown in notebook 02.  Scoring against the binned moments instead would flatter the
networks by exactly that floor and would not be comparable with the baseline, which predicts
moments directly.

Undefined moments
-----------------
A predicted α²F that is zero everywhere has λ = 0 and no ω_log/ω₂ (NaN from
:func:`betenet.physics.moments`).  :func:`derived_properties` sets them to ``undefined_omega_K``
(0 K by default: no spectral weight, worst case) and T_c to 0 K, so such predictions are counted
as errors rather than dropped.

Table layout (``table1_*.csv``, read by ``betenet.pipeline.write_results_page``)
--------------------------------------------------------------------------------
One row per (model, metric)::

    model, metric, lambda, omega_log_K, omega_2_K, tc_K, tc_mae_K, n_train, n_test, data

``metric`` ∈ {R2, MAE, RMSE}; ``lambda``/``omega_log_K``/``omega_2_K``/``tc_K`` hold that metric for
the property (ω in K, T_c in K); ``tc_mae_K`` repeats the T_c MAE on every row of the model (the
paper quotes only the T_c MAE); ``data`` says which data the row was measured on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from . import physics
from .constants import MU_STAR_DEFAULT, TARGET_GRID_MEV
from .spectra import smooth_and_bin

__all__ = [
    "PROPERTIES",
    "ALL_PROPERTIES",
    "PROPERTY_LABELS",
    "METRICS",
    "TABLE1_COLUMNS",
    "r2_score",
    "pearson_r2",
    "property_metrics",
    "derived_properties",
    "reference_properties",
    "table1_rows",
    "table1_frame",
    "smoothing_floor_rows",
    "describe_data",
    "glue_values",
    "glue_table1",
]

#: The three properties of Table 1 (column names of tables and keys of property dicts).
PROPERTIES: tuple[str, ...] = ("lambda", "omega_log_K", "omega_2_K")
ALL_PROPERTIES: tuple[str, ...] = PROPERTIES + ("tc_K",)
PROPERTY_LABELS: dict[str, str] = {
    "lambda": "λ",
    "omega_log_K": "ω_log (K)",
    "omega_2_K": "ω₂ (K)",
    "tc_K": "T_c Allen–Dynes (K)",
}
METRICS: tuple[str, ...] = ("R2", "MAE", "RMSE")
TABLE1_COLUMNS: tuple[str, ...] = (
    "model", "metric", "lambda", "omega_log_K", "omega_2_K", "tc_K", "tc_mae_K", "n_train", "n_test", "data",
)


def _as_1d(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D array, got shape {a.shape}")
    return a


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination 1 − SS_res/SS_tot (as scikit-learn: 1 if perfect, 0 if y_true is constant otherwise).

    NaN for fewer than two values: R² of a single material is undefined (scikit-learn warns and
    returns NaN too), and a 0.0 in Table 1 would read as a measured "no skill".
    """
    t, p = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    if t.size < 2:
        return float("nan")
    ss_res = float(np.sum((t - p) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def pearson_r2(x, y) -> float:
    """Squared Pearson correlation of the finite pairs of ``x`` and ``y`` (the R² of the least-squares line of
    one on the other, not :func:`r2_score` of predictions); NaN for fewer than 3 pairs or a constant one."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1] ** 2)


def property_metrics(y_true, y_pred, *, name: str = "property") -> dict[str, float]:
    """``{"R2", "MAE", "RMSE", "n"}`` of one property; ``ValueError`` naming ``name`` for NaN/length mismatch."""
    t, p = _as_1d(y_true, f"{name} (true)"), _as_1d(y_pred, f"{name} (predicted)")
    if t.shape != p.shape:
        raise ValueError(f"{name}: {t.size} true values but {p.size} predictions")
    if t.size == 0:
        raise ValueError(f"{name}: no values to score")
    for arr, which in ((t, "true"), (p, "predicted")):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"{name}: {bad.size} non-finite {which} value(s) at positions {bad[:10].tolist()}")
    err = p - t
    return {
        "R2": r2_score(t, p),
        "MAE": float(np.mean(np.abs(err))),
        "RMSE": float(np.sqrt(np.mean(err**2))),
        "n": int(t.size),
    }


def derived_properties(
    a2f,
    omega_meV=TARGET_GRID_MEV,
    *,
    mu_star: float = MU_STAR_DEFAULT,
    undefined_omega_K: float = 0.0,
) -> dict[str, np.ndarray]:
    """λ, ω_log (K), ω₂ (K), Allen–Dynes T_c (K) of α²F (shape ``(..., n_omega)``; default grid: the 51 bins).

    Returns arrays of shape ``a2f.shape[:-1]`` under the keys of :data:`ALL_PROPERTIES`.
    """
    m = physics.moments(omega_meV, a2f)
    lam = np.asarray(m.lambda_, dtype=float)
    wlog = np.nan_to_num(np.asarray(m.omega_log_K, dtype=float), nan=undefined_omega_K)
    w2 = np.nan_to_num(np.asarray(m.omega_2_K, dtype=float), nan=undefined_omega_K)
    tc = np.asarray(physics.allen_dynes_tc_K(lam, wlog, w2, mu_star), dtype=float)
    return {"lambda": lam, "omega_log_K": wlog, "omega_2_K": w2, "tc_K": tc}


def reference_properties(
    records: Sequence[Any],
    source: Literal["raw", "binned"] = "raw",
    *,
    mu_star: float = MU_STAR_DEFAULT,
):
    """DFT reference properties of ``records`` as a DataFrame indexed by ``material_id``.

    ``source="raw"``: moments of the raw DFT α²F on its own grid (the reference used for every
    Table 1 row).  ``source="binned"``: moments of the smoothed 51-bin α²F (the networks' target,
    :func:`betenet.spectra.smooth_and_bin`).  Columns: ``lambda, omega_log_K, omega_2_K, tc_K``.
    """
    import pandas as pd

    rows = []
    for rec in records:
        if source == "raw":
            omega, a2f = rec.a2f_omega_meV, rec.a2f
        elif source == "binned":
            omega, a2f = TARGET_GRID_MEV, smooth_and_bin(rec.a2f_omega_meV, rec.a2f)
        else:
            raise ValueError(f"source must be 'raw' or 'binned', got {source!r}")
        d = derived_properties(a2f, omega, mu_star=mu_star, undefined_omega_K=np.nan)
        if not np.isfinite(d["omega_log_K"]):
            raise ValueError(f"material {rec.material_id!r}: field 'a2f' ({source}) has λ <= 0, moments undefined")
        rows.append({"material_id": rec.material_id, **{k: float(v) for k, v in d.items()}})
    return pd.DataFrame(rows, columns=["material_id", *ALL_PROPERTIES]).set_index("material_id")


def property_column(table: Any, key: str) -> np.ndarray:
    """Column ``key`` of a table or mapping as floats; ``KeyError`` naming the known properties."""
    try:
        return np.asarray(table[key], dtype=float)
    except KeyError:
        raise KeyError(f"property {key!r} missing; expected keys {ALL_PROPERTIES}") from None


def table1_rows(
    model: str,
    y_true: Mapping[str, Any] | Any,
    y_pred: Mapping[str, Any] | Any,
    *,
    n_train: int | None = None,
    data: str | None = None,
) -> list[dict[str, Any]]:
    """Three Table 1 rows (R2, MAE, RMSE) for ``model``.

    ``y_true``/``y_pred``: mappings or DataFrames with the keys of :data:`ALL_PROPERTIES` (T_c
    optional: ``tc_K`` columns are NaN without it), aligned (same materials, same order — for
    DataFrames the index must match).
    """
    if hasattr(y_true, "index") and hasattr(y_pred, "index"):
        if list(y_true.index) != list(y_pred.index):
            raise ValueError(f"{model}: y_true and y_pred are not aligned on the same materials")
    props = list(PROPERTIES) + (["tc_K"] if "tc_K" in y_true and "tc_K" in y_pred else [])
    scores = {p: property_metrics(property_column(y_true, p), property_column(y_pred, p), name=f"{model} {p}") for p in props}
    n_test = next(iter(scores.values()))["n"]
    tc_mae = scores["tc_K"]["MAE"] if "tc_K" in scores else float("nan")
    rows = []
    for metric in METRICS:
        row: dict[str, Any] = {"model": model, "metric": metric}
        for p in ALL_PROPERTIES:
            row[p] = scores[p][metric] if p in scores else float("nan")
        row.update(tc_mae_K=tc_mae, n_train=n_train, n_test=n_test, data=data)
        rows.append(row)
    return rows


def table1_frame(rows: Iterable[Mapping[str, Any]]):
    """DataFrame with the columns :data:`TABLE1_COLUMNS` (in that order)."""
    import pandas as pd

    return pd.DataFrame(list(rows), columns=list(TABLE1_COLUMNS))


def smoothing_floor_rows(records: Sequence[Any], *, mu_star: float = MU_STAR_DEFAULT, data: str | None = None):
    """Table 1 rows for "DFT 51-bin": the smoothed/binned α²F's moments scored against the raw ones.

    This is the error a *perfect* 51-bin network would have against our reference.
    """
    raw = reference_properties(records, "raw", mu_star=mu_star)
    binned = reference_properties(records, "binned", mu_star=mu_star)
    return table1_rows("DFT 51-bin", raw, binned, data=data)


def describe_data(records: Sequence[Any], split: Any | None = None) -> str:
    """One line saying which data a result was measured on, e.g. for the ``data`` column of Table 1.

    Counts records by ``source`` and by ``provenance["accuracy"]`` (the QE accuracy level); with a
    :class:`betenet.splits.Split`, adds the train/test sizes and the split's data hash prefix.
    """
    by = Counter((r.source, (r.provenance or {}).get("accuracy", "?")) for r in records)
    parts = [f"{n} {src} records (accuracy {acc})" for (src, acc), n in sorted(by.items())]
    text = "; ".join(parts) if parts else "no records"
    if split is not None:
        text += f"; split {split.name!r} {len(split.train_ids)} train / {len(split.test_ids)} test (data {split.data_hash[:8]})"
    return text


def _key(*parts: Any) -> str:
    return "_".join(re.sub(r"[^0-9A-Za-z_]+", "", str(p)) for p in parts)


def glue_values(values: Mapping[str, Any], glue, prefix: str = "") -> dict[str, Any]:
    """``glue(prefix_key, value, display=False)`` for every item (keys sanitised to [0-9A-Za-z_]).

    ``glue`` is ``myst_nb.glue`` (passed in so this module does not import myst_nb).  Returns the
    glued ``{key: value}``.
    """
    out = {}
    for k, v in values.items():
        key = _key(prefix, k) if prefix else _key(k)
        v = v.item() if hasattr(v, "item") else v
        glue(key, v, display=False)
        out[key] = v
    return out


def glue_table1(rows: Iterable[Mapping[str, Any]], glue) -> dict[str, Any]:
    """Glue every number of Table 1 rows as ``<model>_<metric>_<property>`` (e.g. ``Base_MAE_lambda``,
    ``Mean_R2_omega_log_K``, ``Base_MAE_tc_K``)."""
    values = {}
    for r in rows:
        for p in ALL_PROPERTIES:
            values[_key(r["model"], r["metric"], p)] = float(r[p])
    return glue_values(values, glue)
