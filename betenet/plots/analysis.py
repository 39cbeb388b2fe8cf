"""Figures of the error analysis (notebook 06, Fig. 4 l and Fig. 5 insets): errors per element (bars or a
periodic table) and the distribution of per-material errors.  Inputs are :mod:`betenet.analysis` tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from betenet.metrics import PROPERTIES, PROPERTY_LABELS

__all__ = ["plot_per_element_models", "plot_per_element_error", "plot_periodic_table", "plot_error_inset",
           "plot_error_insets"]


def plot_per_element_models(per_element, models: Sequence[str], *, min_count: int = 3, kind: str = "periodic"):
    """One panel per model: periodic-table heat map (``kind="periodic"``, Fig. 4 l) or bar chart
    (``"bar"``) of the per-element mean error, counts shown, sparse elements hatched, one colour scale."""
    import matplotlib.pyplot as plt

    models = [m for m in models if m in set(per_element["model"])]
    if not models:
        raise ValueError("none of the requested models is in the per-element table")
    vmax = float(per_element["mean_error"].max()) or 1.0
    if kind == "periodic":
        fig, axes = plt.subplots(len(models), 1, figsize=(8.0, 4.3 * len(models)), constrained_layout=True, squeeze=False)
    elif kind == "bar":
        width = max(6.0, 0.3 * per_element["element"].nunique() + 2)
        fig, axes = plt.subplots(len(models), 1, figsize=(width, 2.9 * len(models)), constrained_layout=True, squeeze=False)
    else:
        raise ValueError(f"kind must be 'periodic' or 'bar', got {kind!r}")
    for ax, m in zip(axes[:, 0], models):
        df = per_element[per_element["model"] == m]
        if kind == "periodic":
            plot_periodic_table(dict(zip(df["element"], df["mean_error"])), dict(zip(df["element"], df["count"])),
                                ax=ax, min_count=min_count, vmax=vmax)
            ax.set_title(f"{m}: mean normalised error ē per element", fontsize=9)
        else:
            plot_per_element_error(df.reset_index(drop=True), min_count=min_count, ax=ax, title=m)
    return fig


def plot_per_element_error(per_element, *, min_count: int = 3, ax=None, title: str | None = None):
    """Bar chart of the per-element mean normalised error with the count of materials on each bar.

    Elements with fewer than ``min_count`` materials are drawn hatched and pale, with a caution
    note.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    df = per_element
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(df) + 2), 3.4), constrained_layout=True)
    else:
        fig = ax.figure
    x = np.arange(len(df))
    few = df["count"].to_numpy() < min_count
    yerr = np.where(np.isfinite(df["std_error"]), df["std_error"], 0.0)
    bars = ax.bar(x, df["mean_error"], yerr=yerr, color=np.where(few, "lightgray", "tab:blue"), capsize=1.5,
                  error_kw={"elinewidth": 0.6})
    for b, is_few in zip(bars, few):
        if is_few:
            b.set_hatch("///")
    for xi, (m, c) in enumerate(zip(df["mean_error"], df["count"])):
        ax.text(xi, m + 0.01, str(int(c)), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, df["element"], rotation=90, fontsize=8)
    ax.set_ylabel("mean normalised error ē")
    ax.set_xlim(-0.7, len(df) - 0.3)
    ax.set_ylim(0, max(1.0, float((df["mean_error"] + yerr).max()) + 0.08))
    ax.text(0.01, 0.98, f"numbers: materials per element; hatched: < {min_count} (little evidence)",
            transform=ax.transAxes, va="top", fontsize=7)
    if title:
        ax.set_title(title)
    return fig


def _table_position(symbol: str) -> tuple[int, int]:
    """(row, column) of an element in the 18-column periodic table, f-block as two extra rows."""
    from pymatgen.core import Element

    el = Element(symbol)
    if 57 <= el.Z <= 71:
        return 8, el.Z - 57 + 2
    if 89 <= el.Z <= 103:
        return 9, el.Z - 89 + 2
    return el.row, el.group


def plot_periodic_table(values: Mapping[str, float], counts: Mapping[str, int] | None = None, *, ax=None,
                        label: str = "mean normalised error ē", min_count: int = 3, vmin: float = 0.0,
                        vmax: float | None = None, cmap: str = "viridis"):
    """Periodic-table heat map of a per-element value (Fig. 4 l style); counts printed in each cell,
    cells with fewer than ``min_count`` materials hatched.  Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib import colors, patches

    if ax is None:
        fig, ax = plt.subplots(figsize=(9.0, 4.8), constrained_layout=True)
    else:
        fig = ax.figure
    vals = {k: float(v) for k, v in values.items()}
    vmax = vmax if vmax is not None else (max(vals.values()) if vals else 1.0)
    norm = colors.Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1.0)
    cm = plt.get_cmap(cmap)
    rows_used = {_table_position(s)[0] for s in vals} | {1, 2, 3, 4, 5, 6}
    from pymatgen.core import Element

    for Z in range(1, 87):
        sym = Element.from_Z(Z).symbol
        r, c = _table_position(sym)
        if r not in rows_used:
            continue
        has = sym in vals
        face = cm(norm(vals[sym])) if has else "white"
        n = int(counts.get(sym, 0)) if counts is not None else None
        hatch = "///" if has and n is not None and n < min_count else None
        ax.add_patch(patches.Rectangle((c - 0.5, r - 0.5), 0.95, 0.95, facecolor=face, edgecolor="0.6", lw=0.5, hatch=hatch))
        txt_color = "white" if has and norm(vals[sym]) < 0.6 else "black"
        ax.text(c, r - 0.12, sym, ha="center", va="center", fontsize=7, color=txt_color if has else "0.6")
        if has and n is not None:
            ax.text(c, r + 0.22, str(n), ha="center", va="center", fontsize=5.5, color=txt_color)
    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(max(rows_used) + 0.6, 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cm)
    fig.colorbar(sm, ax=ax, shrink=0.6, label=label)
    if counts is not None:
        ax.text(0.5, 1.0, f"small number: materials with the element; hatched: < {min_count}",
                transform=ax.transAxes, ha="left", va="top", fontsize=7)
    return fig


def plot_error_inset(errors, *, properties: Sequence[str] = PROPERTIES, ax=None, bins: int = 20, title: str | None = None):
    """Histograms of the normalised per-property errors and of ē (what the Fig. 4 inset averages)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 3.2), constrained_layout=True)
    else:
        fig = ax.figure
    edges = np.linspace(0, 1, bins + 1)
    for p in properties:
        ax.hist(errors[f"{p}_norm"], bins=edges, histtype="step", label=f"|Δ{PROPERTY_LABELS[p].split(' ')[0]}| norm.")
    ax.hist(errors["mean_error"], bins=edges, color="k", alpha=0.3, label="ē (mean)")
    ax.set_xlabel("min–max normalised absolute error")
    ax.set_ylabel("materials")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_error_insets(errors: Mapping[str, Any], *, properties: Sequence[str] = PROPERTIES, bins: int = 20):
    """:func:`plot_error_inset` of each model side by side (``errors``: model → per-material error frame, as
    :func:`betenet.analysis.model_errors` returns)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(errors), figsize=(3.6 * len(errors), 3.0), constrained_layout=True, squeeze=False)
    for ax, (name, err) in zip(axes[0], errors.items()):
        plot_error_inset(err, properties=properties, ax=ax, bins=bins, title=name)
    return fig
