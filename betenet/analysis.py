"""Per-material and per-element error analysis (the paper's Fig. 4 j–l).

Normalised average error (Fig. 4 inset)
---------------------------------------
For each material *i* and property *p* ∈ {λ, ω_log, ω₂} take the absolute error
``e_ip = |p_pred − p_DFT|``, min–max normalise it over the set of materials,
``ê_ip = (e_ip − min_i e_ip) / (max_i e_ip − min_i e_ip)``, and average over the three properties:
``ē_i = mean_p ê_ip`` ∈ [0, 1].  The six smallest/largest ``ē`` give Fig. 4 j/k; the mean of ``ē``
over the materials containing an element gives Fig. 4 l.

Min–max bounds depend on the set: to compare models (CSO vs CPD vs FPD) on one scale pass common
``bounds`` (:func:`normalisation_bounds` over all models' errors); by default each call uses its own.

Small counts
------------
A per-element mean over two or three test materials says little (the paper's caution: 4 of 5
Ba-containing test materials also contain O).  Every per-element table carries ``count`` and the
plots mark elements with fewer than ``min_count`` materials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
import numpy as np

from .metrics import PROPERTIES

__all__ = [
    "absolute_errors",
    "normalisation_bounds",
    "normalised_errors",
    "model_errors",
    "per_element_error",
    "per_element_errors",
    "best_worst",
    "best_worst_table",
]


def absolute_errors(y_true, y_pred, properties: Sequence[str] = PROPERTIES):
    """DataFrame of |pred − true| per property (index: ``y_true``'s index, which ``y_pred`` must share)."""
    import pandas as pd

    index = getattr(y_true, "index", None)
    data = {}
    for p in properties:
        t = np.asarray(y_true[p], dtype=float)
        q = np.asarray(y_pred[p], dtype=float)
        if t.shape != q.shape:
            raise ValueError(f"{p}: {t.size} true values but {q.size} predictions")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
            raise ValueError(f"{p}: non-finite values; errors undefined")
        data[p] = np.abs(q - t)
    if index is not None and hasattr(y_pred, "index") and list(y_pred.index) != list(index):
        raise ValueError("y_true and y_pred are not aligned on the same materials")
    return pd.DataFrame(data, index=index)


def normalisation_bounds(*error_frames) -> dict[str, tuple[float, float]]:
    """Common (min, max) of each property's absolute error over several frames (e.g. all models)."""
    props = list(error_frames[0].columns)
    return {p: (float(min(f[p].min() for f in error_frames)), float(max(f[p].max() for f in error_frames))) for p in props}


def normalised_errors(
    y_true,
    y_pred,
    *,
    properties: Sequence[str] = PROPERTIES,
    bounds: Mapping[str, tuple[float, float]] | None = None,
):
    """Per-material absolute, normalised and mean normalised errors.

    Returns a DataFrame with columns ``<p>`` (|Δp|), ``<p>_norm`` (min–max normalised) for each
    property, and ``mean_error`` (ē, the average of the normalised ones).
    """
    abs_err = absolute_errors(y_true, y_pred, properties)
    out = abs_err.copy()
    bounds = bounds or normalisation_bounds(abs_err)
    for p in properties:
        lo, hi = bounds[p]
        out[f"{p}_norm"] = (abs_err[p] - lo) / (hi - lo) if hi > lo else 0.0
    out["mean_error"] = out[[f"{p}_norm" for p in properties]].mean(axis=1)
    return out


def model_errors(pairs: Mapping[str, tuple[Any, Any]], *, properties: Sequence[str] = PROPERTIES) -> dict[str, Any]:
    """:func:`normalised_errors` of several models on one min–max scale (bounds over all models).

    ``pairs``: model name -> ``(y_true, y_pred)``.  Returns model name -> error DataFrame.
    """
    abs_frames = {m: absolute_errors(t, p, properties) for m, (t, p) in pairs.items()}
    bounds = normalisation_bounds(*abs_frames.values())
    return {m: normalised_errors(t, p, properties=properties, bounds=bounds) for m, (t, p) in pairs.items()}


def per_element_error(elements: Mapping[str, Sequence[str]], errors, column: str = "mean_error"):
    """Mean (and std, count) of ``errors[column]`` over the materials containing each element.

    ``elements``: material id -> element symbols (e.g. :func:`betenet.splits.element_sets`).
    Returns a DataFrame ``element, Z, mean_error, std_error, count`` ordered by atomic number.
    """
    import pandas as pd
    from pymatgen.core import Element

    series = errors[column] if hasattr(errors, "columns") else errors
    by_el: dict[str, list[float]] = {}
    for mid, value in series.items():
        if mid not in elements:
            raise KeyError(f"material {mid!r} has errors but no element list")
        for el in elements[mid]:
            by_el.setdefault(el, []).append(float(value))
    rows = [
        (el, Element(el).Z, float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"), len(v))
        for el, v in by_el.items()
    ]
    df = pd.DataFrame(rows, columns=["element", "Z", "mean_error", "std_error", "count"])
    return df.sort_values("Z").reset_index(drop=True)


def per_element_errors(elements: Mapping[str, Sequence[str]], errors_by_model: Mapping[str, Any], column: str = "mean_error"):
    """:func:`per_element_error` for several models in one long DataFrame with a ``model`` column."""
    import pandas as pd

    frames = []
    for model, err in errors_by_model.items():
        df = per_element_error(elements, err, column)
        df.insert(0, "model", model)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def best_worst(errors, k: int = 6, column: str = "mean_error") -> tuple[list[str], list[str]]:
    """Ids of the ``k`` best (smallest error, ascending) and ``k`` worst (largest, descending) materials.

    Ties are broken by material id so the selection is deterministic.
    """
    series = errors[column] if hasattr(errors, "columns") else errors
    items = sorted(series.items(), key=lambda kv: (float(kv[1]), str(kv[0])))
    k = min(k, len(items))
    best = [m for m, _ in items[:k]]
    worst = [m for m, _ in sorted(series.items(), key=lambda kv: (-float(kv[1]), str(kv[0])))[:k]]
    return best, worst


def best_worst_table(errors_by_model: Mapping[str, Any], k: int = 6, column: str = "mean_error"):
    """:func:`best_worst` of each model as one table: columns ``(model, "best")`` and ``(model, "worst")``."""
    import pandas as pd

    return pd.DataFrame({(m, w): ids for m, err in errors_by_model.items()
                         for w, ids in zip(("best", "worst"), best_worst(err, k=k, column=column))})
