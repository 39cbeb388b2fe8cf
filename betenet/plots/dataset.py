"""Figures of the dataset chapter (notebook 01): a gallery of α²F, the correlations of Fig. 2, and the QE
run timings (:mod:`betenet.qe.summary`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from betenet.paths import QE_RUNS_DIR
from betenet.qe.filters import status_files
from betenet.jsonio import read_json
from betenet.qe.parsers import QEParseError
from betenet.metrics import pearson_r2
from betenet.qe.summary import record_moments
from betenet.qe.status import STEPS

__all__ = ["plot_gallery", "plot_correlations", "plot_timings", "plot_ph_cost"]


def plot_gallery(records: Sequence, *, n: int = 12, ncols: int = 4):
    """α²F(ω) of up to ``n`` records (highest λ first), annotated with λ, ω_log, ω₂, T_c."""
    import matplotlib.pyplot as plt

    recs = sorted(records, key=lambda r: -record_moments(r)["lambda"])[:n]
    nrows = max(1, int(np.ceil(len(recs) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False, sharex=True)
    for ax in axes.flat[len(recs):]:
        ax.set_visible(False)
    for ax, rec in zip(axes.flat, recs):
        m = record_moments(rec)
        ax.plot(rec.a2f_omega_meV, rec.a2f, lw=1.0, color="C0")
        ax.fill_between(rec.a2f_omega_meV, rec.a2f, alpha=0.25, color="C0")
        ax.set_title(f"{rec.formula} ({rec.material_id})", fontsize=8)
        ax.text(
            0.97, 0.95,
            f"λ={m['lambda']:.2f}\nω_log={m['omega_log_K']:.0f} K\nω₂={m['omega_2_K']:.0f} K\nT_c={m['tc_ad_K']:.1f} K",
            transform=ax.transAxes, ha="right", va="top", fontsize=7,
        )
    for ax in axes[-1]:
        ax.set_xlabel("ω (meV)")
    for ax in axes[:, 0]:
        ax.set_ylabel("α²F(ω)")
    fig.tight_layout()
    return fig


def plot_correlations(data):
    """Fig. 2 on our data: (a) λ vs eDOS(E_F); (b) ω_log and (c) ω₂ of α²F vs the coarse PhDOS, with the Pearson r²."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    panels = [
        ("edos_ef_per_eV", "lambda", "eDOS(E_F) (states/eV/cell)", "λ"),
        ("phdos_coarse_omega_log_K", "omega_log_K", "ω_log of coarse PhDOS (K)", "ω_log of α²F (K)"),
        ("phdos_coarse_omega_2_K", "omega_2_K", "ω₂ of coarse PhDOS (K)", "ω₂ of α²F (K)"),
    ]
    for ax, (x, y, xl, yl) in zip(axes, panels):
        ax.scatter(data[x], data[y], s=14, alpha=0.8)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(f"Pearson r² = {pearson_r2(data[x], data[y]):.2f}  (n = {int(np.isfinite(data[x]).sum())})", fontsize=9)
        if x != "edos_ef_per_eV" and len(data):
            lo = np.nanmin([data[x].min(), data[y].min()])
            hi = np.nanmax([data[x].max(), data[y].max()])
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    fig.tight_layout()
    return fig


def plot_timings(runs_dir: Path = QE_RUNS_DIR):
    """Wall time per kept material (histogram, minutes) and per step (box plot, seconds)."""
    import matplotlib.pyplot as plt

    per_step: dict[str, list[float]] = {s: [] for s in STEPS}
    totals = []
    for s in (read_json(p, error=QEParseError) for p in status_files(runs_dir)):
        if s.get("state") != "kept":
            continue
        steps = s.get("steps") or {}
        totals.append(sum(float(v.get("wall_s", 0.0)) for v in steps.values()) / 60)
        for k, v in steps.items():
            if k in per_step:
                per_step[k].append(float(v.get("wall_s", 0.0)))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2]})
    a.hist(totals, bins=20, color="C2")
    a.set_xlabel("wall time per kept material (min)")
    a.set_ylabel("materials")
    per_step = {k: [x for x in v if x > 0] for k, v in per_step.items()}  # reused steps take 0 s
    names = [k for k, v in per_step.items() if v]
    if names:
        b.boxplot([per_step[k] for k in names], showfliers=True)
        b.set_xticks(range(1, len(names) + 1), names)
        b.set_yscale("log")
        b.tick_params(axis="x", rotation=45)
    b.set_ylabel("wall time per step (s)")
    fig.tight_layout()
    return fig


def _short_name(material_id: str) -> str:
    """``Pd1-fcc`` -> ``Pd``, ``up0256-AlPd`` -> ``AlPd`` (a label for a crowded figure)."""
    mid = str(material_id)
    if mid.startswith("up") and "-" in mid:
        return mid.split("-", 1)[1]
    return mid.split("-")[0].rstrip("0123456789") or mid


def plot_ph_cost(check, fit_rows: Sequence[dict] = ()):
    """The ph.x cost model against the runs: (a) measured against estimated CPU of each material's el-ph
    ph.x step (:func:`betenet.qe.summary.ph_cost_check`), with the 1:1 line and a factor-of-two band; (b) CPU
    per archived q point against its k points (:func:`betenet.qe.phcost.fit_cpu_per_unit` rows), one colour per
    material.  Log axes; a panel with nothing to show says so."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    ok = check.dropna(subset=["est_ph_cpu_s", "ph_elph_cpu_s"]) if len(check) else check
    if len(ok):
        lo = 0.5 * float(min(ok.est_ph_cpu_s.min(), ok.ph_elph_cpu_s.min()))
        hi = 2.0 * float(max(ok.est_ph_cpu_s.max(), ok.ph_elph_cpu_s.max()))
        xs = np.array([lo, hi])
        a.plot(xs, xs, color="0.3", lw=1)
        a.fill_between(xs, xs / 2, xs * 2, color="0.9", zorder=0, label="factor of two")
        for n_atoms, grp in ok.groupby("n_atoms"):
            a.scatter(grp.est_ph_cpu_s, grp.ph_elph_cpu_s, s=30, label=f"{n_atoms} atom{'s' if n_atoms > 1 else ''}")
        for row in ok.itertuples():
            a.annotate(_short_name(row.material_id), (row.est_ph_cpu_s, row.ph_elph_cpu_s),
                       fontsize=7, xytext=(3, 2), textcoords="offset points")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlim(lo, hi)
        a.set_ylim(lo, hi)
        a.legend(fontsize=8, loc="upper left")
    else:
        a.text(0.5, 0.5, "no finished run with an estimate", ha="center", va="center", transform=a.transAxes)
    a.set_xlabel("estimated ph.x el-ph CPU (s)")
    a.set_ylabel("measured ph.x el-ph CPU (s)")
    a.set_title("(a) per material", fontsize=10)
    if fit_rows:
        for i, mid in enumerate(dict.fromkeys(r["material_id"] for r in fit_rows)):
            pts = [r for r in fit_rows if r["material_id"] == mid]
            b.scatter([r["n_k"] for r in pts], [r["cpu_s"] for r in pts], s=30, color=f"C{i % 10}",
                      marker="osD^vx"[i % 6], label=_short_name(mid))
        b.set_xscale("log")
        b.set_yscale("log")
        b.legend(fontsize=8)
    else:
        b.text(0.5, 0.5, "no archived q point", ha="center", va="center", transform=b.transAxes)
    b.set_xlabel("k points ph.x runs at the q point")
    b.set_ylabel("ph.x CPU at the q point (s)")
    b.set_title("(b) per archived q point", fontsize=10)
    fig.tight_layout()
    return fig
