"""Timing of training at paper size (``betenet train --benchmark``): epochs of a bootstrap member of N
materials, optionally on supercells of the records (the paper's cells have up to 8 atoms)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from betenet.config import resolve_profile
from betenet.dataset import MaterialDataset
from betenet.seeding import torch_device
from betenet.train import train_model

__all__ = ["supercell_record", "benchmark_training"]


def supercell_record(record: Any, scaling: Sequence[int]) -> Any:
    """``record`` with its structure replaced by a ``scaling`` supercell and the per-site arrays repeated to
    match (pymatgen lists the images of each site together).  Same material, more atoms per cell: used to
    time the network at the paper's cell sizes (up to 8 atoms); α²F and total DOS are unchanged."""
    scaling = tuple(int(x) for x in scaling)
    if len(scaling) != 3 or min(scaling) < 1:
        raise ValueError(f"supercell scaling must be three positive integers, got {scaling!r}")
    n = int(np.prod(scaling))
    if n == 1:
        return record
    changes: dict[str, Any] = {"structure": record.structure * scaling}
    for f in ("phdos_site", "phdos_coarse_site", "edos_site"):
        v = getattr(record, f, None)
        if v is not None:
            changes[f] = np.repeat(np.asarray(v), n, axis=0) / n  # per-cell totals unchanged
    return dataclasses.replace(record, **changes)


def benchmark_training(
    records: Sequence[Any],
    profile: Any,
    run_root: str | Path,
    *,
    n_train: int,
    n_val: int,
    epochs: int = 10,
    warmup: int = 2,
    variant: str | None = None,
    device: str | None = None,
    supercell: Sequence[int] = (1, 1, 1),
    rattle_A: float = 0.03,
    seed: int = 0,
) -> dict[str, Any]:
    """Seconds per epoch of :func:`train_model` for a bootstrap member of ``n_train`` samples validated on
    ``n_val`` (the paper: 654 = 80 % of 818, and the ~38 % out of bag), drawn with replacement from
    ``records`` — real graphs, real model and optimiser; only the sample counts are scaled up.

    ``rattle_A`` > 0 displaces every site of every drawn sample by a Gaussian vector (σ per Cartesian
    component, Å), so each sample is its own crystal with its own graph: the network dedups equal edge
    lengths within a crystal (:func:`betenet.graphs.collate`), which the symmetric cells of our dataset
    would favour over a database of distinct, lower-symmetry materials.  0 times the symmetric cells.

    Runs ``warmup + epochs`` epochs in a fresh directory under ``run_root`` (never an existing one) and
    reports the median of the last ``epochs`` epoch times, with the sizes that set the cost.
    """

    prof = resolve_profile(profile)
    if device is not None:
        prof = prof.with_overrides(execution={"device": device})
    if epochs < 1 or warmup < 0 or n_train < 1 or n_val < 1:
        raise ValueError(f"benchmark_training: need epochs >= 1, warmup >= 0, n_train, n_val >= 1 "
                         f"(got {epochs}, {warmup}, {n_train}, {n_val})")
    dev = torch_device(prof.execution.device)  # before the graphs are built: a missing GPU fails at once
    records = [supercell_record(r, supercell) for r in records]
    var = variant or prof.model.variant
    rng = np.random.default_rng(seed)
    draws = {"train": rng.integers(0, len(records), n_train), "val": rng.integers(0, len(records), n_val)}
    if rattle_A > 0:
        parts = []
        for name, idx in draws.items():
            recs = []
            for k, i in enumerate(idx):
                st = records[i].structure.copy()
                shifts = rng.normal(0.0, rattle_A, (len(st), 3))
                for j in range(len(st)):
                    st.translate_sites([j], shifts[j], frac_coords=False, to_unit_cell=True)
                recs.append(dataclasses.replace(records[i], material_id=f"{records[i].material_id}~{name}{k}", structure=st))
            parts.append(MaterialDataset(recs, var, prof.model.r_max_A))
        tr, va = parts
    else:
        ds = MaterialDataset(records, var, prof.model.r_max_A)
        tr, va = ds.subset(draws["train"].tolist()), ds.subset(draws["val"].tolist())
    stem = f"bench-{prof.name}-{var}-{n_train}x{n_val}-sc{'x'.join(map(str, supercell))}-{time.strftime('%Y%m%dT%H%M%S')}-"
    Path(run_root).mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=stem, dir=run_root))  # a new directory, never an existing one
    res = train_model((tr, va), prof, run_dir, variant=var, progress=False, stop_after=warmup + epochs)
    sec = res.history["seconds"].to_numpy()[warmup:]
    return {
        "profile": prof.name, "variant": var, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{torch.get_num_threads()} threads",
        "n_train": n_train, "n_val": n_val, "supercell": "x".join(map(str, supercell)),
        "rattle_A": float(rattle_A), "atoms_per_crystal": float(np.mean([g.n_atoms for g in tr.graphs])),
        "edges_per_crystal": float(np.mean([g.n_edges for g in tr.graphs])),
        "batch_size": prof.train.batch_size, "dtype": prof.train.dtype, "epochs_timed": int(len(sec)),
        "s_per_epoch": float(np.median(sec)), "s_per_epoch_min": float(np.min(sec)), "s_per_epoch_max": float(np.max(sec)),
        "run_dir": str(run_dir),
    }
