"""Adapters between :mod:`betenet.ensemble` and the model/dataset/training modules (private).

Kept in one place so the ensemble logic (resamples, files, Dask, statistics) does not depend on the
details of :mod:`betenet.train`, :mod:`betenet.dataset` and :mod:`betenet.model`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from betenet.dataset import (
    DatasetError, PHDOS_FIELDS, default_graph_cache, graphs_for_structures, site_phdos_attributes, target_a2f,
)
from betenet.graphs import collate

__all__: list[str] = []


@dataclass
class TrainOutcome:
    """What the ensemble records about one member's training run."""

    checkpoint_path: Path
    used: str  # "modern" | "best_val"
    epoch: int
    reason: str
    regimes: dict[str, Any]
    train_seconds_total: float
    resumed_from_epoch: int | None


def check_records_for_variant(records: Sequence[Any], variant: str) -> None:
    """``DatasetError`` naming the first material that lacks what ``variant`` needs (fast: no graphs)."""
    for rec in records:
        for name in ("a2f_omega_meV", "a2f"):
            if getattr(rec, name, None) is None:
                raise DatasetError(f"material {rec.material_id!r}: field {name!r} is missing (needed for the α²F target)")
        if variant in PHDOS_FIELDS:
            for name in PHDOS_FIELDS[variant]:
                if getattr(rec, name, None) is None:
                    raise DatasetError(
                        f"material {rec.material_id!r}: field {name!r} is missing; variant {variant} needs the "
                        f"site-projected {'coarse' if variant == 'CPD' else 'fine'} PhDOS"
                    )


def train(*, sample: Sequence[Any], validation: Sequence[Any], model_cfg: Any, train_cfg: Any, out_dir: Path,
          seed: int, profile: Any) -> TrainOutcome:
    """Train/resume one member with :func:`betenet.train.train_model` on ``(sample, validation)``."""
    from .train import train_model

    prof = dataclasses.replace(profile, model=model_cfg, train=train_cfg)
    res = train_model((list(sample), list(validation)), prof, out_dir, variant=model_cfg.variant, progress=False)
    reg = res.regimes
    regimes = {
        "classical_epoch": reg.classical_epoch,
        "critical_epoch": reg.critical_epoch,
        "modern_epoch": reg.modern_epoch,
        "modern_detected": reg.modern_epoch is not None,
        "double_descent": bool(reg.double_descent),
        "second_descent_ratio": reg.second_descent_ratio,
        "best_val_epoch": res.best_epoch,
        "epochs_trained": res.epochs_trained,
        "stopped_reason": res.stop_reason,
        "summary": reg.summary(),
    }
    if res.preferred == "modern":
        used, epoch = "modern", int(reg.modern_epoch)
        reason = "double descent found: modern-regime (second-descent) minimum"
    else:
        used, epoch = "best_val", int(res.best_epoch)
        reason = ("no modern regime detected within the epoch budget; fell back to the lowest validation loss"
                  if reg.modern_epoch is None else
                  "second descent stayed above the classical minimum (no double descent); fell back to the lowest "
                  "validation loss")
    return TrainOutcome(res.checkpoint("modern" if used == "modern" else "best"), used, epoch, reason, regimes,
                        float(res.train_seconds_total), res.resumed_from_epoch)


def export_checkpoint(src: Path, dst: Path, **meta: Any) -> None:
    """Copy a trainer checkpoint to ``dst`` as a self-describing model file with ``meta`` added."""
    from .model import load_checkpoint, save_checkpoint

    model, cfg, old = load_checkpoint(src)
    save_checkpoint(dst, model, cfg, **{**old, **meta, "source_checkpoint": Path(src).name})


def load_model(path: Path, template: Any = None):
    """``(model in eval mode, (cfg, meta))`` from a member's ``model.pt``.

    ``template``: an already built member of the same architecture; its deep copy receives the weights
    (:func:`betenet.model.load_checkpoint` with ``model=``), which skips e3nn's code generation
    (~3x faster per member).  Falls back to building when the checkpoint does not fit the template.
    """
    import copy

    from .model import CheckpointError, load_checkpoint

    if template is not None:
        try:
            model, cfg, meta = load_checkpoint(path, model=copy.deepcopy(template))
            model.eval()
            return model, (cfg, meta)
        except CheckpointError:
            pass
    model, cfg, meta = load_checkpoint(path)
    model.eval()
    return model, (cfg, meta)


def r_max_of(ck: Any, model: Any) -> float:
    cfg, _ = ck
    return float(cfg.r_max_A)


def targets(records: Sequence[Any]) -> np.ndarray:
    """(n, 51) smoothed/binned DFT α²F of ``records``."""
    return np.stack([target_a2f(r) for r in records]) if records else np.zeros((0, 51))


def graphs_for(items: Sequence[Any], variant: str, r_max_A: float) -> list[Any]:
    """Graphs (with the variant's node attributes) for records and/or pymatgen structures."""
    cache = default_graph_cache()
    out = []
    for i, item in enumerate(items):
        if hasattr(item, "material_id") and hasattr(item, "structure"):
            g = cache.get(item.structure, r_max_A, item.material_id)
            if variant != "CSO":
                g = g.with_node_attr(site_phdos_attributes(item, variant))
        elif hasattr(item, "lattice") and hasattr(item, "species"):
            if variant != "CSO":
                raise ValueError(
                    f"item {i} ({item.composition.reduced_formula}) is a bare structure, but {variant} members need "
                    f"records with the site-projected {'coarse' if variant == 'CPD' else 'fine'} PhDOS"
                )
            [g] = graphs_for_structures([item], r_max_A, [f"s{i:06d}-{item.composition.reduced_formula}"], cache=cache)
        else:
            raise TypeError(f"item {i}: expected a MaterialRecord or a pymatgen Structure, got {type(item).__name__}")
        out.append(g)
    return out


def predict_graphs(model: Any, graphs: Sequence[Any], *, batch_size: int = 256) -> np.ndarray:
    """(n, 51) predictions of one model for ``graphs`` (no gradients, batches of ``batch_size`` crystals)."""
    import torch


    if not graphs:
        return np.zeros((0, model.cfg.n_out_bins))
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(graphs), max(1, int(batch_size))):
            b = collate(list(graphs[start : start + batch_size]), dtype=model.dtype)
            outs.append(model(b).detach().cpu().numpy().astype(np.float64))
    return np.concatenate(outs)


def predict(model: Any, records: Sequence[Any], *, variant: str, r_max_A: float) -> np.ndarray:
    return predict_graphs(model, graphs_for(records, variant, r_max_A))
