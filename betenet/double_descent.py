"""Notebook 03/04 helpers: one single-model double-descent study on the project's training split.

* :func:`regime_run` trains (or resumes, or reloads) the profile's model with
  :func:`betenet.train.train_model` in ``artifacts/<profile>/train/<label>-<variant>-<key>``, where
  ``key`` hashes everything that defines the run (model/train configs and the training ids).  Re-running
  a notebook therefore resumes or reloads the same run; more data or another config starts a new one.
  Notebook 04 calls it with the same arguments to get the regime checkpoints of notebook 03 (training
  them if they are missing).
* :func:`sweep` runs the "what we tried" variations of :attr:`betenet.config.StudyConfig.dd_sweep`
  (longer training, other width, less data) and tabulates what each curve showed.
* :func:`regime_checkpoints` lists the models compared: the three regimes that were *found* plus
  ``best`` (lowest raw validation loss, i.e. early stopping) and ``final`` (last epoch).
* :func:`regime_predictions` / :func:`regime_rows` score them on the test split with
  :mod:`betenet.metrics` (moments of the predicted 51-bin α²F vs the raw DFT α²F).
* :func:`findings` (Markdown generated from the measured numbers: nothing in it is a hard-coded claim);
  the figures (Fig. 3a, 3b–d, 3e–g) are drawn by :mod:`betenet.plots.training`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig, resolve_profile
from .dataset import MaterialDataset
from .landscape import loss_landscape
from .metrics import ALL_PROPERTIES, derived_properties, reference_properties, table1_rows
from .paths import artifacts_dir
from .model import load_checkpoint, n_parameters, predict
from .regimes import REGIMES
from .train import TrainResult, make_loss_fn, prepare_data, train_model

__all__ = [
    "MIN_TRAIN_RECORDS",
    "run_key",
    "regime_run",
    "apply_overrides",
    "sweep",
    "regime_checkpoints",
    "regime_predictions",
    "reference",
    "regime_rows",
    "loss_fn_for",
    "regime_landscapes",
    "landscape_findings",
    "findings",
]

#: Fewest training-split records a study accepts (1 to train on and 1 held out for validation).
MIN_TRAIN_RECORDS = 2

def run_key(profile: Any, train_ids: Sequence[str], variant: str | None = None) -> str:
    """Short hash of what defines a run: model config, train config (without resumable limits) and ids."""
    prof = resolve_profile(profile)
    model_cfg = prof.model if variant is None else dataclasses.replace(prof.model, variant=variant)
    blob = json.dumps({"model": dataclasses.asdict(model_cfg), "train": prof.train.identity(), "ids": sorted(train_ids)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _train_records(records: Sequence[Any], train_ids: Sequence[str]) -> list[Any]:
    by_id = {r.material_id: r for r in records}
    missing = [m for m in train_ids if m not in by_id]
    if missing:
        raise KeyError(f"training ids not among the records: {missing[:5]} (split made on other data?)")
    recs = [by_id[m] for m in train_ids]
    if len(recs) < MIN_TRAIN_RECORDS:
        raise ValueError(
            f"a double-descent study needs at least {MIN_TRAIN_RECORDS} training-split records "
            f"(1 to train on, 1 for validation); the split has {len(recs)}: add records to data/records"
        )
    return recs


def regime_run(records: Sequence[Any], train_ids: Sequence[str], profile: Any, *, label: str = "main",
               variant: str | None = None, progress: bool = True, root: str | Path | None = None,
               max_epochs: int | None = None) -> TrainResult:
    """Train/resume/reload the single model of ``profile`` on ``train_ids`` (validation held out inside).

    Run directory: ``root / f"{label}-{variant}-{run_key}"`` with ``root`` defaulting to
    ``artifacts/<profile>/train`` (``betenet train`` without ``--run-dir`` uses the same directory, so a
    run started from the command line is the one notebook 03 reloads).  ``max_epochs`` extends a run.
    """
    prof = resolve_profile(profile)
    var = variant or prof.model.variant
    recs = _train_records(records, train_ids)
    base = Path(root) if root is not None else artifacts_dir(prof.name, "train")
    run_dir = base / f"{label}-{var}-{run_key(prof, [r.material_id for r in recs], var)}"
    return train_model(recs, prof, run_dir, variant=var, progress=progress, max_epochs=max_epochs)


def apply_overrides(profile: Any, overrides: Sequence[tuple[str, Any]]) -> tuple[Any, float]:
    """Apply ``("section.field", value)`` overrides -> ``(profile, data_fraction)``.

    ``"data.fraction"`` is not a config field: it is the share of the training split used (first
    ``ceil(fraction * n)`` ids of a seeded permutation, see :func:`sweep`).
    """
    prof = resolve_profile(profile)
    sections: dict[str, dict[str, Any]] = {}
    fraction = 1.0
    for key, value in overrides:
        section, _, name = str(key).partition(".")
        if section == "data" and name == "fraction":
            fraction = float(value)
            if not 0 < fraction <= 1:
                raise ValueError(f"dd_sweep: data.fraction must be in (0, 1], got {value!r}")
            continue
        if not name:
            raise ValueError(f"dd_sweep override {key!r}: expected 'section.field' (e.g. 'train.max_epochs')")
        sections.setdefault(section, {})[name] = value
    return (prof.with_overrides(**sections) if sections else prof), fraction


def sweep(records: Sequence[Any], train_ids: Sequence[str], profile: Any, main: TrainResult | None = None, *,
          progress: bool = True):
    """Run the profile's :attr:`~betenet.config.StudyConfig.dd_sweep` variations; one table row per run.

    ``main`` (the result of :func:`regime_run`) is listed first as ``"main"``.  Columns: ``run, changes,
    n_train, n_val, n_params, epochs, stop_reason, classical_epoch, critical_epoch, modern_epoch,
    second_descent_ratio, double_descent, best_val_loss, final_train_loss, summary``.
    """
    import pandas as pd

    prof = resolve_profile(profile)
    ids = [r.material_id for r in _train_records(records, train_ids)]
    runs: list[tuple[str, str, TrainResult]] = []
    if main is not None:
        runs.append(("main", "profile as is", main))
    for label, overrides in prof.study.dd_sweep:
        sub, fraction = apply_overrides(prof, overrides)
        sub_ids = ids
        if fraction < 1.0:
            order = np.random.default_rng(prof.train.seed).permutation(len(ids))
            sub_ids = [ids[i] for i in sorted(order[: max(MIN_TRAIN_RECORDS, int(np.ceil(fraction * len(ids))))])]
        if main is not None and fraction == 1.0 and _only_limits(overrides):
            # continue a copy of the main run (same identity: only limits or execution settings change)
            target = main.run_dir.parent / main.run_dir.name.replace("main-", f"{_slug(label)}-", 1)
            if not target.exists():
                tmp = target.with_name(target.name + ".copying")
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(main.run_dir, tmp)
                (tmp / "result.json").unlink(missing_ok=True)
                tmp.rename(target)
            res = train_model(_train_records(records, ids), sub, target, variant=main.variant, progress=progress)
        else:
            res = regime_run(records, sub_ids, sub, label=_slug(label), progress=progress,
                             variant=None if main is None else main.variant,
                             root=None if main is None else main.run_dir.parent)
        runs.append((label, ", ".join(f"{k}={v}" for k, v in overrides), res))
    rows = []
    for label, changes, res in runs:
        reg = res.regimes
        model, _, _ = load_checkpoint(res.checkpoint("best"))
        h = res.history
        rows.append({
            "run": label, "changes": changes, "n_train": len(res.train_ids), "n_val": len(res.val_ids),
            "n_params": n_parameters(model), "epochs": res.epochs_trained, "stop_reason": res.stop_reason,
            "classical_epoch": reg.classical_epoch, "critical_epoch": reg.critical_epoch,
            "modern_epoch": reg.modern_epoch, "second_descent_ratio": reg.second_descent_ratio,
            "double_descent": reg.double_descent, "best_val_loss": float(h["val_loss"].min()),
            "final_train_loss": float(h["train_loss"].iloc[-1]), "summary": reg.summary(),
        })
    table = pd.DataFrame(rows)
    for col in ("classical_epoch", "critical_epoch", "modern_epoch"):
        table[col] = table[col].astype("Int64")
    return table


def _only_limits(overrides: Sequence[tuple[str, Any]]) -> bool:
    """True when ``overrides`` leave a run's identity alone: stopping limits and execution settings only."""
    def keeps_identity(key: str) -> bool:
        section, _, name = key.partition(".")
        return (section == "train" and name in TrainConfig.LIMITS) or section == "execution"

    return bool(overrides) and all(keeps_identity(str(k)) for k, _ in overrides)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", text).strip("-").lower() or "run"


def regime_checkpoints(result: TrainResult) -> dict[str, Path]:
    """Models to compare, in order: the found regimes, ``best`` (lowest raw val loss), ``final`` (last epoch)."""
    out = {r: result.checkpoints[r] for r in REGIMES if r in result.checkpoints}
    for extra in ("best", "final"):
        if extra in result.checkpoints:
            out[extra] = result.checkpoints[extra]
    return out


def regime_predictions(checkpoints: Mapping[str, Path], records: Sequence[Any], ids: Sequence[str], *,
                       mu_star: float = 0.1) -> dict[str, dict[str, Any]]:
    """For each checkpoint: ``{"a2f": (n, 51) predicted α²F, "properties": DataFrame (λ, ω_log, ω₂, T_c) by id,
    "epoch": int}`` on the materials ``ids`` (in that order)."""
    import pandas as pd

    by_id = {r.material_id: r for r in records}
    missing = [m for m in ids if m not in by_id]
    if missing:
        raise KeyError(f"ids not among the records: {missing[:5]}")
    recs = [by_id[m] for m in ids]
    datasets: dict[tuple, Any] = {}
    out = {}
    for name, path in checkpoints.items():
        model, cfg, meta = load_checkpoint(path)
        key = (cfg.variant, cfg.r_max_A)
        if key not in datasets:
            datasets[key] = MaterialDataset(recs, cfg.variant, cfg.r_max_A, with_targets=False)
        a2f = predict(model, datasets[key])
        props = derived_properties(a2f, mu_star=mu_star)
        frame = pd.DataFrame({p: np.asarray(props[p], dtype=float) for p in ALL_PROPERTIES}, index=list(ids))
        frame.index.name = "material_id"
        out[name] = {"a2f": a2f, "properties": frame, "epoch": meta.get("epoch")}
    return out


def reference(records: Sequence[Any], ids: Sequence[str], *, mu_star: float = 0.1):
    """DFT reference properties (moments of the raw α²F, :func:`betenet.metrics.reference_properties`) of ``ids``."""
    by_id = {r.material_id: r for r in records}
    return reference_properties([by_id[m] for m in ids], "raw", mu_star=mu_star)


def regime_rows(predictions: Mapping[str, Mapping[str, Any]], reference: Any, *, variant: str,
                n_train: int | None = None, data: str | None = None) -> list[dict[str, Any]]:
    """Table 1 rows (R², MAE, RMSE of λ, ω_log, ω₂; T_c MAE) per checkpoint, model ``"<variant> <name>"``."""
    rows = []
    for name, pred in predictions.items():
        ref = reference.loc[list(pred["properties"].index)]
        rows += table1_rows(f"{variant} {name}", ref, pred["properties"], n_train=n_train, data=data)
    return rows


def loss_fn_for(result: TrainResult, records: Sequence[Any], *, which: str = "train"):
    """``loss_fn(model) -> float``: the MSE on the run's training (or validation) materials, as trained."""
    import torch


    cfg = _checkpoint_config(result)
    by_id = {r.material_id: r for r in records}
    train = [by_id[m] for m in result.train_ids]
    val = [by_id[m] for m in result.val_ids]
    td = prepare_data((train, val), cfg.variant, cfg.r_max_A)
    graphs, targets = (td.train_graphs, td.train_targets) if which == "train" else (td.val_graphs, td.val_targets)
    return make_loss_fn(graphs, targets, dtype=torch.float32)


def regime_landscapes(checkpoints: Mapping[str, Path], loss_fn: Any, landscape_cfg: Any, *, progress: bool = True,
                      out_dir: str | Path | None = None) -> dict[str, Any]:
    """Li et al. loss landscapes (:func:`betenet.landscape.loss_landscape`) around each checkpoint.

    The same two random directions seed (:attr:`LandscapeConfig.seed`) is used for every checkpoint
    (directions are filter-normalised to each checkpoint's own weights).  With ``out_dir`` each grid
    is also saved as ``landscape-<name>.npz``.
    """
    out = {}
    for name, path in checkpoints.items():
        model = load_checkpoint(path)[0]
        ls = loss_landscape(model, loss_fn, n_grid=landscape_cfg.n_grid, span=landscape_cfg.span,
                            seed=landscape_cfg.seed, fd_step=landscape_cfg.fd_step, label=name, progress=progress)
        ls.meta["epoch"] = load_checkpoint(path)[2].get("epoch")
        if out_dir is not None:
            ls.to_npz(Path(out_dir) / f"landscape-{name}.npz")
        out[name] = ls
    return out


def landscape_findings(landscapes: Mapping[str, Any]) -> str:
    """Markdown sentences comparing the landscapes (minimum offset, curvatures), from the measured values."""
    if not landscapes:
        return "No checkpoints to compare."
    items = list(landscapes.items())
    lines = []
    for name, ls in items:
        lines.append(
            f"- **{name}** (epoch {ls.meta.get('epoch')}): training loss {ls.center_loss:.3g} at the weights, lowest "
            f"{ls.min_loss:.3g} at offset (α, β) = ({ls.min_offset[0]:.3f}, {ls.min_offset[1]:.3f}), distance "
            f"{ls.min_distance:.3f}; curvature at the weights {ls.center_curvature:.3g} (eigenvalues "
            f"{ls.center_curvature_eigs[0]:.3g}, {ls.center_curvature_eigs[1]:.3g}), quadratic fit around the "
            f"grid minimum {ls.curvature:.3g}."
        )
    flattest = min(items, key=lambda kv: kv[1].center_curvature)[0]
    sharpest = max(items, key=lambda kv: kv[1].center_curvature)[0]
    closest = min(items, key=lambda kv: kv[1].min_distance)[0]
    lines += ["", f"Flattest at the trained weights: **{flattest}**; sharpest: **{sharpest}**; minimum closest to "
              f"the trained weights: **{closest}**."]
    return "\n".join(lines)


def _checkpoint_config(result: TrainResult):
    return load_checkpoint(result.checkpoint("best"))[1]


# ----------------------------------------------------------------------------- plots


# ----------------------------------------------------------------------------- prose from numbers


def findings(result: TrainResult, rows: Sequence[Mapping[str, Any]], sweep_table: Any | None = None) -> str:
    """Markdown paragraph(s) describing what the curve and the test metrics showed, from measured values only."""
    reg = result.regimes
    h = result.history
    lines = [
        f"**Run:** {len(result.train_ids)} training and {len(result.val_ids)} validation materials, "
        f"{result.epochs_trained} epochs ({result.stop_reason or 'stopped'}). "
        f"Training loss went from {h['train_loss'].iloc[0]:.3g} to {h['train_loss'].iloc[-1]:.3g}; "
        f"the lowest validation loss, {h['val_loss'].min():.3g}, was reached at epoch {result.best_epoch}.",
        "",
        f"**Regimes:** {reg.summary()}",
    ]
    if not reg.double_descent:
        lines += ["", "**No double descent on this run.** The paper's curve (Fig. 3a) is *not* reproduced here; "
                  "the regime rows below are only those the detector actually found."]
    by = {(r["model"], r["metric"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    if models:
        parts = []
        for m in models:
            r2, mae = by.get((m, "R2")), by.get((m, "MAE"))
            if r2 and mae:
                parts.append(f"{m}: λ R² {r2['lambda']:.2f}, MAE {mae['lambda']:.3f}; ω_log MAE {mae['omega_log_K']:.1f} K")
        best_m = min(models, key=lambda m: by[(m, "MAE")]["lambda"])
        n_test = int(rows[0]["n_test"])
        lines += ["", f"**Test split ({n_test} material{'s' if n_test != 1 else ''}):** " + "; ".join(parts) +
                  f". Lowest λ MAE: {best_m}."]
        if n_test < 5:
            lines += ["", f"With only {n_test} test material{'s' if n_test != 1 else ''} these scores (R² above all) "
                      "say little; they are reported because they were measured, not as evidence."]
    if sweep_table is not None and len(sweep_table) > 1:
        n_dd = int(sweep_table["double_descent"].sum())
        tried = ", ".join(f"{r.run} ({r.changes}; {r.epochs} epochs, {r.n_train} train)" for r in sweep_table.itertuples()
                          if r.run != "main")
        lines += ["", f"**What else was tried:** {tried}. Double descent (by the rule above) appeared in {n_dd} of "
                  f"{len(sweep_table)} runs."]
    return "\n".join(lines)
