"""Tables and figures of the QE dataset for notebook 01 (funnel, timings, α²F gallery, Fig. 2).

Everything reads ``data/qe/*/status.json`` and the records; nothing here runs QE.  Moments come
from :mod:`betenet.physics` (λ, ω_log, ω₂ and Allen-Dynes T_c with μ* = 0.1).  The Fig. 2
comparison uses the *same* moment formulas on the coarse phonon DOS F(ω) in place of α²F(ω)
(Allen & Dynes 1975): ω_log[F] = exp(∫ ln ω F/ω dω / ∫ F/ω dω), ω₂[F] = (∫ ω F dω / ∫ F/ω dω)^½.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pymatgen.core import Structure

from .. import physics
from ..config import qe_level
from ..constants import MU_STAR_DEFAULT
from ..jsonio import read_json
from ..metrics import pearson_r2
from ..paths import PSEUDO_DIR, QE_RUNS_DIR
from ..records import load_records
from .dipcheck import DIP_STEP
from .filters import funnel, funnel_table, status_files
from .kgrid import grids_for_config, subdivisions
from .parsers import QEParseError, qe_clock, read_text
from .phcost import ph_cost_estimate, remaining_elph
from .prototypes import build, parse_material_id
from .pseudo import EXPERIMENTAL_LATTICE, PseudoLibrary, load_validation, reference_structure
from .refinement import superseded_runs
from .status import FINAL_STATES, STEPS

__all__ = [
    "material_table",
    "timing_table",
    "timing_summary",
    "record_moments",
    "correlation_data",
    "lattice_check",
    "grid_demo",
    "findings",
    "status_markdown",
    "qe_cpu_seconds",
    "cpu_table",
    "unfinished_table",
    "step_cpu_seconds",
    "ph_cost_check",
    "cost_facts",
    "dip_checks",
]


def _statuses(runs_dir: Path) -> list[dict[str, Any]]:
    return [read_json(p, error=QEParseError) for p in status_files(runs_dir)]


def dip_checks(runs_dir: Path = QE_RUNS_DIR) -> list[dict[str, Any]]:
    """One entry per material whose interpolation-dip check ran (:mod:`betenet.qe.dipcheck`): id, state, DFPT's
    lowest frequency at the dip (meV) and the verdict (``betenet qe status`` prints them)."""
    out = []
    for s in _statuses(runs_dir):
        step = (s.get("steps") or {}).get(DIP_STEP) or {}
        if "min_freq_meV" in step:
            out.append({"material_id": s["material_id"], "state": s.get("state"), "dfpt_min_freq_meV": step["min_freq_meV"],
                        "verdict": (s.get("quality") or {}).get("interpolation_dip")})
    return out


def material_table(runs_dir: Path = QE_RUNS_DIR):
    """One row per material directory: id, formula, prototype, atoms, state, reason, wall time (s)."""
    import pandas as pd

    rows = []
    for s in _statuses(runs_dir):
        steps = s.get("steps") or {}
        rows.append(
            {
                "material_id": s["material_id"],
                "formula": s.get("formula"),
                "prototype": s.get("prototype"),
                "n_atoms": s.get("n_atoms"),
                "state": s.get("state"),
                "reason": s.get("reason"),
                "wall_s": round(sum(float(v.get("wall_s", 0.0)) for v in steps.values()), 1),
                "n_steps_done": sum(1 for v in steps.values() if v.get("done")),
                # lowest phonon frequency at the DFPT q points (ph.x, no interpolation; Gamma excluded)
                # and on the Fourier-interpolated matdyn mesh: tells a true instability from an
                # interpolation artefact of the coarse q mesh
                "min_freq_ph_meV": (s.get("quality") or {}).get("min_freq_ph_meV"),
                "min_freq_matdyn_meV": (s.get("quality") or {}).get("min_freq_matdyn_meV"),
            }
        )
    cols = ["material_id", "formula", "prototype", "n_atoms", "state", "reason", "wall_s", "n_steps_done",
            "min_freq_ph_meV", "min_freq_matdyn_meV"]
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({"min_freq_ph_meV": float, "min_freq_matdyn_meV": float}).round({"min_freq_ph_meV": 2, "min_freq_matdyn_meV": 2})


def unfinished_table(runs_dir: Path = QE_RUNS_DIR):
    """One row per run that is not finished (running, or stopped and resumable): its last step done and
    the el-ph q points kept in ``<id>/ph_elph.q/`` (:mod:`betenet.qe.qpoints`) against ph.x's irreducible
    points, with the wall seconds they took, and what the el-ph step has left: its k points and an estimate
    of the wall hours at the run's own pace (:func:`betenet.qe.phcost.remaining_elph`)."""
    import pandas as pd

    rows = []
    for s in _statuses(runs_dir):
        if s.get("state") in FINAL_STATES:
            continue
        steps = s.get("steps") or {}
        done = [name for name in STEPS if (steps.get(name) or {}).get("done")]
        man_path = Path(runs_dir) / s["material_id"] / "ph_elph.q" / "manifest.json"
        man = read_json(man_path, error=QEParseError) if man_path.exists() else {}
        q_wall = man.get("q_wall_s") or {}
        rows.append({
            "material_id": s["material_id"], "formula": s.get("formula"), "n_atoms": s.get("n_atoms"),
            "state": s.get("state"), "last_step_done": done[-1] if done else None,
            "q_points_kept": f"{len(q_wall)}/{man['n_q']}" if man.get("n_q") else "0/?",
            "q_wall_s": round(sum(float(v) for v in q_wall.values()), 1),
            **_elph_left(Path(runs_dir) / s["material_id"], done),
        })
    cols = ["material_id", "formula", "n_atoms", "state", "last_step_done", "q_points_kept", "q_wall_s",
            "elph_k_left", "elph_eta_h"]
    return pd.DataFrame(rows, columns=cols)


def _elph_left(run_dir: Path, done_steps: Sequence[str]) -> dict[str, Any]:
    if "ph_elph" in done_steps:
        return {"elph_k_left": 0, "elph_eta_h": 0.0}
    left = remaining_elph(run_dir)
    eta = left["eta_s"]
    return {"elph_k_left": left["k_left"], "elph_eta_h": None if eta is None else round(eta / 3600.0, 2)}


def timing_table(runs_dir: Path = QE_RUNS_DIR, *, states: Sequence[str] = ("kept",)):
    """Median / max / mean wall time (s) per step and per material over materials in ``states``."""
    import pandas as pd

    per_step: dict[str, list[float]] = {s: [] for s in STEPS}
    totals = []
    for s in _statuses(runs_dir):
        if s.get("state") not in states:
            continue
        steps = s.get("steps") or {}
        for name, info in steps.items():
            if name in per_step and info.get("done"):
                per_step[name].append(float(info.get("wall_s", 0.0)))
        totals.append(sum(float(v.get("wall_s", 0.0)) for v in steps.values()))
    rows = {}
    for name, vals in [*per_step.items(), ("total per material", totals)]:
        if vals:
            rows[name] = {"n": len(vals), "median_s": float(np.median(vals)), "mean_s": float(np.mean(vals)), "max_s": float(np.max(vals))}
    return pd.DataFrame.from_dict(rows, orient="index").round(1)


def timing_summary(runs_dir: Path = QE_RUNS_DIR) -> dict[str, float]:
    """Median/max minutes per kept material (for glue)."""
    t = timing_table(runs_dir)
    if "total per material" not in t.index:
        return {"n": 0, "median_min": float("nan"), "max_min": float("nan")}
    row = t.loc["total per material"]
    return {"n": int(row["n"]), "median_min": float(row["median_s"]) / 60, "max_min": float(row["max_s"]) / 60}


def record_moments(rec) -> dict[str, float]:
    """λ, ω_log, ω₂, T_c (Allen-Dynes, μ* = 0.1) of a record's α²F, and the same moments of its coarse PhDOS."""
    m = physics.moments(rec.a2f_omega_meV, rec.a2f)
    tc = physics.allen_dynes_tc_K(m.lambda_, m.omega_log_K, m.omega_2_K, MU_STAR_DEFAULT)
    out = {
        "lambda": float(m.lambda_),
        "omega_log_K": float(m.omega_log_K),
        "omega_2_K": float(m.omega_2_K),
        "tc_ad_K": float(tc),
        "edos_ef_per_eV": float(rec.edos_ef_per_eV) if rec.edos_ef_per_eV is not None else float("nan"),
        "phdos_coarse_omega_log_K": float("nan"),
        "phdos_coarse_omega_2_K": float("nan"),
    }
    if rec.phdos_coarse_total is not None:
        w = rec.phdos_coarse_omega_meV
        f = np.where(w > 0, rec.phdos_coarse_total, 0.0)
        pm = physics.moments(w, f)
        out["phdos_coarse_omega_log_K"] = float(pm.omega_log_K)
        out["phdos_coarse_omega_2_K"] = float(pm.omega_2_K)
    return out


def correlation_data(records: Sequence):
    """One row per record with the quantities of Fig. 2 (pandas DataFrame)."""
    import pandas as pd

    rows = [{"material_id": r.material_id, "formula": r.formula, **record_moments(r)} for r in records]
    cols = ["material_id", "formula", "lambda", "omega_log_K", "omega_2_K", "tc_ad_K", "edos_ef_per_eV",
            "phdos_coarse_omega_log_K", "phdos_coarse_omega_2_K"]
    return pd.DataFrame(rows, columns=cols).astype({c: float for c in cols[2:]})


#: Dataset prototypes that match a reference solid of :data:`betenet.qe.pseudo.EXPERIMENTAL_LATTICE`.
_REFERENCE_PROTOTYPE = {"fcc": "fcc", "bcc": "bcc", "hcp": "hcp", "B1": "rocksalt", "AlB2": "AlB2"}


def cutoff_check(runs_dir: Path = QE_RUNS_DIR, pseudo_dir: Path | None = None):
    """The recorded ``betenet pseudo check-cutoffs`` results for the elements of the dataset's
    materials: E and P of each element's reference solid at the library cutoffs (the cutoffs the
    dataset ran at) vs a high-cutoff reference, for every element of a kept material.  Columns: element,
    reference, ecutwfc_Ry, ecutrho_Ry, dE_mRy_per_atom, dP_kbar, converged, n_kept (kept materials with it);
    an element without a recorded check has NaN.  Reads validation.json only (no QE run)."""
    import pandas as pd

    recs = load_validation(pseudo_dir or PSEUDO_DIR)["elements"]
    count: dict[str, int] = {}
    for s in _statuses(runs_dir):
        if s.get("state") != "kept":
            continue
        for el in set(parse_material_id(s["material_id"])[0]):
            count[el] = count.get(el, 0) + 1
    rows = []
    for el in sorted(count):
        c = (recs.get(el) or {}).get("cutoff_check") or {}
        rows.append({
            "element": el, "reference": c.get("reference"), "ecutwfc_Ry": c.get("ecutwfc_Ry"), "ecutrho_Ry": c.get("ecutrho_Ry"),
            "dE_mRy_per_atom": round(c["delta_E_mRy_per_atom"], 2) if c else np.nan,
            "dP_kbar": round(c["delta_P_kbar"], 1) if c else np.nan,
            "converged": c.get("converged"), "n_kept": count[el],
        })
    return pd.DataFrame(rows, columns=["element", "reference", "ecutwfc_Ry", "ecutrho_Ry", "dE_mRy_per_atom", "dP_kbar",
                                       "converged", "n_kept"])


def lattice_check(runs_dir: Path = QE_RUNS_DIR):
    """Relaxed (PBEsol, library cutoffs) vs experimental lattice constants of the dataset's materials
    that are a reference solid of the pseudopotential validation (elemental fcc/bcc/hcp in their
    experimental structure, MgB2, TiN, MgO).

    ``a_calc_A = a_exp_A * (V_relaxed / V_exp)^(1/3)`` per atom (the convention of
    :func:`betenet.qe.pseudo.eos_scan`), so hcp/AlB2 c/a relaxation is folded into one number.
    Columns: material_id, element (the validated one), structure, a_exp_A, a_calc_A, error_pct,
    source.  Reads ``data/qe/*/relaxed.json`` only (no QE run).
    """
    import pandas as pd

    rows = []
    for s in _statuses(runs_dir):
        d = Path(runs_dir) / s["material_id"]
        proto = _REFERENCE_PROTOTYPE.get(str(s.get("prototype")))
        if proto is None or not (d / "relaxed.json").exists():
            continue
        st = Structure.from_dict(json.loads((d / "relaxed.json").read_text()))
        formula = st.composition.reduced_formula
        for el, x in EXPERIMENTAL_LATTICE.items():
            ref_formula = x.formula or el
            if x.structure != proto or ref_formula != formula:
                continue
            ref, _ = reference_structure(el)
            v_exp = ref.volume / len(ref)
            a_calc = x.a_A * (st.volume / len(st) / v_exp) ** (1.0 / 3.0)
            rows.append(
                {
                    "material_id": s["material_id"], "element": el, "structure": f"{ref_formula} {x.structure}",
                    "a_exp_A": x.a_A, "a_calc_A": round(a_calc, 4), "error_pct": round(100 * (a_calc - x.a_A) / x.a_A, 2),
                    "source": x.source + (f" ({x.note})" if x.note else ""),
                }
            )
    cols = ["material_id", "element", "structure", "a_exp_A", "a_calc_A", "error_pct", "source"]
    return pd.DataFrame(rows, columns=cols)


def _mesh(v: Sequence[int]) -> str:
    return "×".join(str(int(x)) for x in v)


def grid_demo(material_ids: Sequence[str], cfg) -> "Any":
    """The commensurate k/q algorithm (:func:`betenet.qe.kgrid.commensurate_grids`) on the *start*
    cells of some candidates (the workflow applies it to the relaxed cells): lattice lengths,
    reciprocal lengths |b_i| (Å⁻¹, no 2π), the raw subdivisions from the densities and the final
    commensurate k, q and scf-k meshes.  ``cfg``: a :class:`~betenet.config.QEConfig`.
    """
    import pandas as pd

    rows = []
    for mid in material_ids:
        s = build(*parse_material_id(mid))
        g = grids_for_config(s, cfg)
        rows.append({
            "material_id": mid, "atoms": len(s),
            "a, b, c (Å)": ", ".join(f"{x:.2f}" for x in s.lattice.abc),
            "|b_i| (1/Å)": ", ".join(f"{x:.3f}" for x in s.lattice.reciprocal_lattice_crystallographic.abc),
            "k from density": _mesh(subdivisions(s, cfg.k_density_per_invA)),
            "q from density": _mesh(subdivisions(s, cfg.q_density_per_invA)),
            "k (dense)": _mesh(g.k), "q": _mesh(g.q), "k (scf)": _mesh(g.k_scf),
            "k % q == 0": all(a % b == 0 for a, b in zip(g.k, g.q)) and all(a % b == 0 for a, b in zip(g.k, g.k_scf)),
        })
    return pd.DataFrame(rows)


def findings(runs_dir: Path = QE_RUNS_DIR, records: Sequence = ()) -> dict[str, Any]:
    """Numbers for notebook 01's prose (glue): funnel counts, rejection reasons, timings, Pearson r² of Fig. 2."""
    f = funnel(runs_dir)
    t = timing_summary(runs_dir)
    out: dict[str, Any] = {k: f[k] for k in ("submitted", "finished", "converged", "metallic", "dynamically_stable", "kept", "in_progress")}
    for reason in ("failed", "not_converged", "band_gap", "imaginary_modes", "nan", "negative_a2f", "pseudopotential"):
        out[f"n_{reason}"] = f["reasons"].get(reason, 0)
    out["n_timed"] = t["n"]
    out["median_min"] = round(t["median_min"], 1) if t["n"] else float("nan")
    out["max_min"] = round(t["max_min"], 1) if t["n"] else float("nan")
    c = cpu_table(runs_dir)
    out["median_cpu_min"] = round(float(c.loc["total per material", "median_cpu_s"]) / 60, 1) if "total per material" in c.index else float("nan")
    out["cpu_share"] = round(float(c.loc["cpu_over_wall (median)", "median_cpu_s"]), 2) if "cpu_over_wall (median)" in c.index else float("nan")
    data = correlation_data(records)
    out["n_records"] = len(data)
    out["r2_lambda_edos"] = round(pearson_r2(data["edos_ef_per_eV"], data["lambda"]), 2)
    out["r2_wlog"] = round(pearson_r2(data["phdos_coarse_omega_log_K"], data["omega_log_K"]), 2)
    out["r2_w2"] = round(pearson_r2(data["phdos_coarse_omega_2_K"], data["omega_2_K"]), 2)
    return out


def _md(df, index: bool = False) -> str:
    """A pandas DataFrame as a GitHub-markdown table (no tabulate dependency)."""
    frame = df.reset_index() if index else df
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in row) + " |")
    return "\n".join(lines)


def status_markdown(runs_dir: Path = QE_RUNS_DIR, records_dir: Path | None = None) -> str:
    """Snapshot of the dataset for ``data/README.md`` (``betenet qe status --markdown``): funnel,
    materials not kept with their reasons, timings per step and per material, lattice check, and
    (with ``records_dir``) the kept materials' λ, ω_log, ω₂, T_c and highest phonon frequency."""
    runs_dir = Path(runs_dir)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    m = material_table(runs_dir)
    out = [f"Snapshot of `{runs_dir.name}/` taken {now} with `betenet qe status --markdown`.", "", "Funnel (§IV.1):", "",
           _md(funnel_table(runs_dir))]
    notkept = m[m.state != "kept"][["material_id", "state", "reason", "wall_s", "n_steps_done", "min_freq_ph_meV",
                                    "min_freq_matdyn_meV"]]
    if len(notkept):
        out += ["", "Not kept (running = still in progress at the snapshot; lowest phonon frequency at the ph.x q points, "
                "Γ excluded, and on the interpolated matdyn mesh):", "", _md(notkept)]
    t = timing_table(runs_dir)
    if len(t):
        out += ["", "Wall time (s) of kept materials, per step and per material (QE at 1 OpenMP thread, 2 materials at a time on 2 cores):",
                "", _md(t.rename_axis("step"), index=True)]
    c = cpu_table(runs_dir)
    if len(c):
        out += ["", "CPU time (s) of the same QE runs from QE's own clocks (what a step costs on an idle core; "
                "the last row is the median share of a core the runs got):", "", _md(c.rename_axis("step"), index=True)]
    lat = lattice_check(runs_dir)
    if len(lat):
        out += ["", "Relaxed vs experimental lattice constants (pseudopotential check):", "",
                _md(lat.drop(columns="source"))]
    if records_dir is not None and Path(records_dir).exists():
        recs = [r for r in load_records(records_dir) if r.source == "betenet-qe"]
        if recs:
            kept = correlation_data(recs)
            kept["max_phonon_meV"] = [float(np.max(r.a2f_omega_meV[np.asarray(r.a2f) > 0], initial=0.0)) for r in recs]
            cols = ["material_id", "lambda", "omega_log_K", "omega_2_K", "tc_ad_K", "edos_ef_per_eV", "max_phonon_meV"]
            out += ["", "Kept materials (records; Allen–Dynes T_c with μ* = 0.1; highest frequency with α²F > 0):", "",
                    _md(kept[cols].sort_values("material_id").round(3))]
    return "\n".join(out) + "\n"


def qe_cpu_seconds(log_gz: Path) -> tuple[float, float] | None:
    """(CPU s, WALL s) of a step from the final clock lines of its compacted log (``<step>.out.gz``):
    :func:`betenet.qe.parsers.qe_clock`, which sums the calls of a step run as several QE calls.  ``None`` if
    the step has no log; a corrupt or cut log raises :class:`QEParseError` naming it (a cost table must not
    silently drop a step it cannot read)."""
    if not Path(log_gz).is_file():
        return None
    return qe_clock(read_text(log_gz))


def step_cpu_seconds(run_dir: Path, step: str, steps: dict[str, Any]) -> tuple[float, float] | None:
    """(CPU s, wall s) of one step of a material from its log (:func:`qe_cpu_seconds`), the CPU multiplied by
    the step's MPI ranks (``mpi_procs`` in its entry of ``steps``, the status's: QE's clock is rank 0's)."""
    t = qe_cpu_seconds(Path(run_dir) / f"{step}.out.gz")
    if t is None:
        return None
    ranks = int((steps.get(step) or {}).get("mpi_procs", 1))
    return t[0] * ranks, t[1]


def cpu_table(runs_dir: Path = QE_RUNS_DIR, *, states: Sequence[str] = ("kept",)):
    """Median / max CPU seconds per step and per material (from QE's own clocks in the logs).

    On a shared machine the wall times of ``status.json`` include waiting for a core; the CPU time
    is what the step costs on an idle core (``cpu_over_wall`` = the share of a core it got).
    """
    import pandas as pd

    per_step: dict[str, list[float]] = {s: [] for s in STEPS}
    totals, ratios = [], []
    for s in _statuses(runs_dir):
        if s.get("state") not in states:
            continue
        d = Path(runs_dir) / s["material_id"]
        cpu_total = wall_total = 0.0
        for step in STEPS:
            t = step_cpu_seconds(d, step, s.get("steps") or {})
            if t is None:
                continue
            per_step[step].append(t[0])
            cpu_total += t[0]
            wall_total += t[1]
        if wall_total > 0:
            totals.append(cpu_total)
            ratios.append(cpu_total / wall_total)
    rows = {}
    for name, vals in [*per_step.items(), ("total per material", totals)]:
        if vals:
            rows[name] = {"n": len(vals), "median_cpu_s": float(np.median(vals)), "max_cpu_s": float(np.max(vals))}
    if ratios:
        rows["cpu_over_wall (median)"] = {"n": len(ratios), "median_cpu_s": float(np.median(ratios)), "max_cpu_s": float(np.max(ratios))}
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def material_cpu_seconds(run_dir: Path, steps: dict | None = None) -> float:
    """CPU seconds of every QE step of one material that left a log (QE's own clocks; 0.0 if none).
    ``steps``: the material's ``status.json`` steps where the caller has them (the file is not read again)."""
    if steps is None:
        path = Path(run_dir) / "status.json"
        steps = (read_json(path, error=QEParseError).get("steps") or {}) if path.exists() else {}
    total = 0.0
    for step in STEPS:
        t = step_cpu_seconds(run_dir, step, steps)
        if t is not None:
            total += t[0]
    return total


def cpu_by_material(runs_dir: Path = QE_RUNS_DIR):
    """One row per finished material (kept, rejected, failed): atoms in the cell, state, QE CPU seconds in all
    and in ``ph.x``'s el-ph step, sorted by atoms then CPU: the cost of a label by cell size (the validated
    level's goal is a two-atom cell in at most 2,500 CPU-s)."""
    import pandas as pd

    rows = []
    for s in _statuses(runs_dir):
        if s.get("state") not in ("kept", "rejected", "failed"):
            continue
        d, steps = Path(runs_dir) / s["material_id"], s.get("steps") or {}
        ph = step_cpu_seconds(d, "ph_elph", steps)
        rows.append({"material_id": s["material_id"], "n_atoms": s.get("n_atoms"), "state": s["state"],
                     "cpu_s": material_cpu_seconds(d, steps), "ph_elph_cpu_s": ph[0] if ph else float("nan")})
    cols = ["material_id", "n_atoms", "state", "cpu_s", "ph_elph_cpu_s"]
    return pd.DataFrame(rows, columns=cols).sort_values(["n_atoms", "cpu_s"], ignore_index=True)


def _elph_whole(step: dict[str, Any]) -> bool:
    """Whether an el-ph step ran all its irreducible q points: not stopped at an imaginary mode, or stopped at
    the last one (``stopped_at_q`` with a time for each of its ``n_q_irr`` points); a step logged before
    these fields counts as whole."""
    n_q, times = step.get("n_q_irr"), step.get("q_wall_s")
    return step.get("stopped_at_q") is None or n_q is None or times is None or len(times) >= int(n_q)


def ph_cost_check(runs_dir: Path = QE_RUNS_DIR, lib: Any = None):
    """The ph.x cost model against the runs: one row per finished material of ``runs_dir`` with the log of a
    whole el-ph step (a run ph.x stopped at an imaginary mode before its last q point, ``QEConfig.ph_stop_at_imaginary``,
    measured part of what is estimated and is left out: rocksalt NbN's 2 of 8 points gave 0.17), its ph.x k points (:func:`~betenet.qe.phcost.ph_kpoint_counts` on the relaxed cell and the run's
    meshes), the estimated and the measured CPU seconds of its el-ph ph.x step and their ratio.  ``lib``:
    the pseudopotential library to estimate with (default: each run's own, the library of the accuracy
    level its ``status.json`` names, :meth:`~betenet.qe.pseudo.PseudoLibrary.for_level`).  Materials whose elements the
    library no longer offers have no estimate (NaN).  Runs a refinement moved aside are measurements too: a row
    each, named by their directory (``up0732-NbC.bak-<time>``), state ``superseded``."""
    import pandas as pd

    libraries: dict[str, Any] = {}  # one per accuracy level: loading a library checks every UPF's digest
    rows = []
    runs = [(Path(runs_dir) / s["material_id"], s) for s in _statuses(runs_dir) if s.get("state") in FINAL_STATES]
    for old in superseded_runs(runs_dir):
        st = read_json(old / "status.json")  # None without one
        if st is not None and st.get("state") in FINAL_STATES:
            runs.append((old, {**st, "material_id": old.name, "state": "superseded"}))
    for d, s in runs:
        measured = step_cpu_seconds(d, "ph_elph", s.get("steps") or {})
        if measured is None or not (d / "relaxed.json").exists() or not (d / "grids.json").exists():
            continue
        if not _elph_whole((s.get("steps") or {}).get("ph_elph") or {}):
            continue
        level = s.get("accuracy") or "screening"  # statuses from before the levels: the screening runs
        if lib is None and level not in libraries:
            libraries[level] = PseudoLibrary.for_level(qe_level(level))
        structure = Structure.from_dict(read_json(d / "relaxed.json", error=QEParseError))
        est = ph_cost_estimate(structure, read_json(d / "grids.json", error=QEParseError),
                               libraries[level] if lib is None else lib)
        rows.append({"material_id": s["material_id"], "n_atoms": len(structure), "state": s["state"],
                     "ph_k_points": est["ph_k_points"], "est_ph_cpu_s": est["est_ph_cpu_s"],
                     "ph_elph_cpu_s": measured[0]})
    cols = ["material_id", "n_atoms", "state", "ph_k_points", "est_ph_cpu_s", "ph_elph_cpu_s"]
    df = pd.DataFrame(rows, columns=cols)
    df["measured_over_estimate"] = df["ph_elph_cpu_s"] / df["est_ph_cpu_s"]
    return df.sort_values(["n_atoms", "ph_elph_cpu_s"], ignore_index=True)


def cost_facts(per_material, outcome, check) -> dict[str, Any]:
    """Numbers for the text about what a label costs, from :func:`cpu_by_material`, :func:`cpu_by_outcome`
    and :func:`ph_cost_check` of one runs directory: kept labels and their median CPU seconds, the cheapest
    kept two-atom label ("none" without one), the share of CPU spent on rejected and failed materials and on
    superseded runs (%),
    and the range of measured / estimated ph.x CPU over the materials with an estimate."""
    kept = per_material[per_material.state == "kept"]
    two = kept[kept.n_atoms == 2]
    ratio = check["measured_over_estimate"].dropna() if len(check) else check
    lost = sum(float(outcome.loc[k, "cpu_s"]) for k in ("rejected", "failed", "superseded") if k in outcome.index)
    total = float(outcome.loc["all", "cpu_s"]) if "all" in outcome.index else 0.0
    return {
        "n_kept": len(kept),
        "kept_median_cpu_s": round(float(kept.cpu_s.median())) if len(kept) else "none",
        "two_atom_min_cpu_s": round(float(two.cpu_s.min())) if len(two) else "none",
        "lost_share_pct": round(100 * lost / total, 1) if total else "none",
        "n_cost_checked": len(ratio),
        "cost_ratio_min": round(float(ratio.min()), 2) if len(ratio) else "none",
        "cost_ratio_max": round(float(ratio.max()), 2) if len(ratio) else "none",
    }


def cpu_by_outcome(runs_dir: Path = QE_RUNS_DIR, per_material=None):
    """Where the CPU went: total QE CPU seconds of the kept, rejected and failed materials of ``runs_dir``,
    their share of all CPU spent, and the CPU per kept label (all CPU / kept materials).  ``per_material``:
    :func:`cpu_by_material` of ``runs_dir`` when the caller has it already (the logs are not read again).

    Materials still running are left out (their cost is not final).  Runs that a refinement or a forced
    rerun moved aside (:func:`betenet.qe.refinement.superseded_runs`) were paid for too: they are a row
    ``superseded`` of their own, in the total and in the CPU per kept label.  The issue's goal for the
    validated level is a share of at most 20 % on rejected + failed materials.
    """
    import pandas as pd

    per_material = cpu_by_material(runs_dir) if per_material is None else per_material
    spent: dict[str, list[float]] = {}
    for state, cpu in zip(per_material.state, per_material.cpu_s):
        spent.setdefault(state, []).append(float(cpu))
    for old in superseded_runs(runs_dir):
        spent.setdefault("superseded", []).append(material_cpu_seconds(old))
    total = sum(sum(v) for v in spent.values())
    rows = {
        state: {"materials": len(v), "cpu_s": round(sum(v), 1), "share": round(sum(v) / total, 3) if total else float("nan")}
        for state, v in sorted(spent.items())
    }
    n_kept = len(spent.get("kept", []))
    n_materials = sum(len(v) for k, v in spent.items() if k != "superseded")  # a moved-aside run is no material
    rows["all"] = {"materials": n_materials, "cpu_s": round(total, 1), "share": 1.0 if total else float("nan")}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs["cpu_per_kept_label_s"] = round(total / n_kept, 1) if n_kept else float("nan")
    table.attrs["cpu_per_kept_run_s"] = round(sum(spent.get("kept", [])) / n_kept, 1) if n_kept else float("nan")
    return table
