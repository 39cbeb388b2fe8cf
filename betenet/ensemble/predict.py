"""Prediction with a trained ensemble: every member's α²F, their mean and spread, the properties derived
from them, saved test-set predictions (``predictions/<variant>.npz``, :class:`PredictionSet`), and
out-of-bag properties."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..config import resolve_profile
from ..constants import MU_STAR_DEFAULT, TARGET_GRID_MEV
from ..dataset import graphs_for, stack_targets
from ..metrics import derived_properties, reference_properties
from ..paths import artifacts_dir
from ..physics import Moments
from .store import (
    EnsembleError, EnsembleMember, EnsembleRun, PREDICTIONS_SCHEMA, SCHEMA_VERSION, check_variant, load_ensemble,
    member_status,
)

__all__ = ["predict_ensemble", "EnsemblePrediction", "summarise", "predict_split", "predict_runs", "oob_ensemble_properties", "PredictionSet", "predictions_path", "save_predictions", "load_predictions"]


def _predict(model: Any, graphs: Sequence[Any], batch_size: int) -> np.ndarray:
    """(n, 51) float64 predictions of one member (:func:`betenet.model.predict`)."""
    # torch is imported only when members predict: readers of saved predictions (notebook 06) stay light
    from ..model import predict

    return predict(model, graphs, batch_size=batch_size).astype(np.float64)


def _predict_member_files(paths: Sequence[str], graphs: Sequence[Any], batch_size: int) -> np.ndarray:
    """Dask task: load each member's ``model.pt`` (into one template model) and predict ``graphs``."""
    from ..model import load_model

    out, template = [], None
    for path in paths:
        model, _, _ = load_model(Path(path), template=template)
        template = template if template is not None else model
        out.append(_predict(model, graphs, batch_size))
    return np.stack(out)


def predict_ensemble(members: Sequence[EnsembleMember], records_or_structures: Sequence[Any], *, batch_size: int = 256,
                     client: Any = None) -> np.ndarray:
    """Every member's 51-bin α²F for ``records_or_structures``: array ``(n_members, n, 51)``.

    Items are :class:`betenet.records.MaterialRecord` s or pymatgen ``Structure`` s.  CSO members accept
    both; CPD/FPD members need records carrying the coarse/fine site-projected PhDOS (``ValueError``
    naming the material otherwise).  Graphs are built once and shared by all members.

    ``client``: a ``distributed.Client``; the members are then split into one contiguous chunk per
    worker, each worker loads its members' ``model.pt`` and predicts the (scattered) graphs, and the
    results come back in member order.  Two 1-thread workers predict a 100-member ensemble about 1.7x
    faster than one 2-thread process (``benchmarks/README.md``).  ``None``: in this process.
    """
    if not members:
        raise ValueError("predict_ensemble() needs at least one member")
    variants = {m.variant for m in members}
    if len(variants) != 1:
        raise ValueError(f"members of several variants {sorted(variants)}")
    variant = variants.pop()
    r_max = {m.r_max_A for m in members}
    if len(r_max) != 1:
        raise ValueError(f"members with different r_max_A {sorted(r_max)}")
    graphs = graphs_for(list(records_or_structures), variant, r_max.pop())
    n_workers = len(client.scheduler_info().get("workers", {})) if client is not None else 0
    if n_workers >= 2 and len(members) >= 2 and graphs:
        paths = [str(m.checkpoint_path) for m in members]
        chunks = [c for c in np.array_split(np.arange(len(members)), min(n_workers, len(members))) if c.size]
        shared = client.scatter(list(graphs), broadcast=True)
        futures = [client.submit(_predict_member_files, [paths[i] for i in c], shared, batch_size, pure=False) for c in chunks]
        return np.concatenate([f.result() for f in futures])
    return np.stack([_predict(m.model, graphs, batch_size) for m in members])


@dataclass(frozen=True)
class EnsemblePrediction:
    """Ensemble statistics for ``n`` materials (see the module docstring for which the tables use).

    mean, std: (n, 51) mean / std over members of the 51-bin α²F (on ``omega_meV``).
    moments_mean, moments_std: :class:`betenet.physics.Moments` of (n,) arrays: per-member λ, ω_log (K),
        ω₂ (K), then mean / std over members.
    tc_mean_K, tc_std_K: per-member Allen-Dynes T_c (μ*), then mean / std.
    moments_of_mean, tc_of_mean_K: moments and T_c of the ensemble-mean α²F (Table 1, parity points).
    """

    omega_meV: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    moments_mean: Any
    moments_std: Any
    tc_mean_K: np.ndarray
    tc_std_K: np.ndarray
    moments_of_mean: Any
    tc_of_mean_K: np.ndarray
    n_members: int
    mu_star: float
    ddof: int

    def properties(self, which: Literal["of_mean", "member_mean", "member_std"] = "of_mean") -> dict[str, np.ndarray]:
        """``{lambda, omega_log_K, omega_2_K, tc_K}`` (the keys of :mod:`betenet.metrics`)."""
        if which == "of_mean":
            m, tc = self.moments_of_mean, self.tc_of_mean_K
        elif which == "member_mean":
            m, tc = self.moments_mean, self.tc_mean_K
        elif which == "member_std":
            m, tc = self.moments_std, self.tc_std_K
        else:
            raise ValueError(f"which must be 'of_mean', 'member_mean' or 'member_std', got {which!r}")
        return {"lambda": np.asarray(m.lambda_), "omega_log_K": np.asarray(m.omega_log_K),
                "omega_2_K": np.asarray(m.omega_2_K), "tc_K": np.asarray(tc)}


def summarise(
    pred: np.ndarray,
    omega_meV: np.ndarray = TARGET_GRID_MEV,
    *,
    mu_star: float = MU_STAR_DEFAULT,
    ddof: int = 0,
) -> EnsemblePrediction:
    """Mean/std of an ensemble prediction ``pred`` of shape ``(n_members, n, n_bins)``.

    Derived properties use :func:`betenet.metrics.derived_properties` (an all-zero α²F has λ = 0 and
    ω_log = ω₂ = 0 K, T_c = 0 K: counted, not dropped).  ``ddof`` of the std (0: population).
    """
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"pred must have shape (n_members, n_materials, n_bins), got {p.shape}")
    if p.shape[-1] != np.shape(omega_meV)[-1]:
        raise ValueError(f"pred has {p.shape[-1]} bins but omega_meV has {np.shape(omega_meV)[-1]}")
    if p.shape[0] - ddof < 1:
        raise ValueError(f"std with ddof={ddof} needs more than {ddof} members, got {p.shape[0]}")
    mean = p.mean(axis=0)
    std = p.std(axis=0, ddof=ddof)
    per = derived_properties(p, omega_meV, mu_star=mu_star)
    of_mean = derived_properties(mean, omega_meV, mu_star=mu_star)
    keys = ("lambda", "omega_log_K", "omega_2_K")
    return EnsemblePrediction(
        omega_meV=np.asarray(omega_meV, dtype=float),
        mean=mean,
        std=std,
        moments_mean=Moments(*(per[k].mean(axis=0) for k in keys)),
        moments_std=Moments(*(per[k].std(axis=0, ddof=ddof) for k in keys)),
        tc_mean_K=per["tc_K"].mean(axis=0),
        tc_std_K=per["tc_K"].std(axis=0, ddof=ddof),
        moments_of_mean=Moments(*(of_mean[k] for k in keys)),
        tc_of_mean_K=of_mean["tc_K"],
        n_members=int(p.shape[0]),
        mu_star=float(mu_star),
        ddof=int(ddof),
    )


@dataclass
class PredictionSet:
    """The contents of ``predictions/<variant>.npz`` (see the module docstring)."""

    variant: str
    profile: str
    split: str
    ids: list[str]
    omega_meV: np.ndarray
    member_index: np.ndarray
    pred_a2f: np.ndarray
    target_a2f: np.ndarray
    reference: Any  # DataFrame indexed by material_id: lambda, omega_log_K, omega_2_K, tc_K
    mu_star: float = MU_STAR_DEFAULT
    #: Delta degrees of freedom of the spread (``EnsembleConfig.ddof``; 0 = population std over members).
    ddof: int = 0

    def summary(self, ddof: int | None = None) -> EnsemblePrediction:
        return summarise(self.pred_a2f, self.omega_meV, mu_star=self.mu_star, ddof=self.ddof if ddof is None else ddof)

    def predicted(self, which: Literal["of_mean", "member_mean", "member_std"] = "of_mean"):
        """DataFrame of predicted properties (index aligned with :attr:`reference`)."""
        import pandas as pd

        return pd.DataFrame(self.summary().properties(which), index=pd.Index(self.ids, name="material_id"))


def predictions_path(profile: str, variant: str) -> Path:
    """``artifacts/<profile>/predictions/<variant>.npz`` (``profile``: the profile's name)."""
    return artifacts_dir(profile, "predictions") / f"{check_variant(variant)}.npz"


def save_predictions(path: Path, ps: PredictionSet) -> Path:
    """Write a :class:`PredictionSet` (atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = ps.reference.loc[ps.ids]
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp,
        schema=np.array(PREDICTIONS_SCHEMA), schema_version=np.array(SCHEMA_VERSION),
        variant=np.array(ps.variant), profile=np.array(ps.profile), split=np.array(ps.split),
        mu_star=np.array(ps.mu_star), ddof=np.array(int(ps.ddof)),
        ids=np.array(ps.ids, dtype=str), omega_meV=np.asarray(ps.omega_meV, dtype=float),
        member_index=np.asarray(ps.member_index, dtype=int),
        pred_a2f=np.asarray(ps.pred_a2f, dtype=np.float32), target_a2f=np.asarray(ps.target_a2f, dtype=float),
        **{f"true_{k}": ref[k].to_numpy(dtype=float) for k in ("lambda", "omega_log_K", "omega_2_K", "tc_K")},
    )
    tmp.replace(path)
    return path


def load_predictions(path: Path | str) -> PredictionSet:
    """Read ``predictions/<variant>.npz``; ``ValueError`` naming the file and field when malformed."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no saved ensemble predictions (run notebook 05 / `betenet ensemble run`)")
    with np.load(path, allow_pickle=False) as z:
        if "schema" not in z or str(z["schema"]) != PREDICTIONS_SCHEMA:
            raise ValueError(f"{path}: field 'schema' is missing or not {PREDICTIONS_SCHEMA!r}")
        need = ("ids", "pred_a2f", "target_a2f", "omega_meV", "member_index",
                "true_lambda", "true_omega_log_K", "true_omega_2_K", "true_tc_K")
        for k in need:
            if k not in z:
                raise ValueError(f"{path}: missing field {k!r}")
        ids = [str(s) for s in z["ids"]]
        pred = z["pred_a2f"].astype(np.float64)
        if pred.ndim != 3 or pred.shape[1] != len(ids) or pred.shape[2] != z["omega_meV"].shape[0]:
            raise ValueError(f"{path}: field 'pred_a2f' has shape {pred.shape}, expected (n_members, {len(ids)}, {z['omega_meV'].shape[0]})")
        ref = pd.DataFrame({k: z[f"true_{k}"] for k in ("lambda", "omega_log_K", "omega_2_K", "tc_K")},
                           index=pd.Index(ids, name="material_id"))
        return PredictionSet(str(z["variant"]), str(z["profile"]), str(z["split"]), ids, z["omega_meV"].astype(float),
                             z["member_index"].astype(int), pred, z["target_a2f"].astype(float), ref, float(z["mu_star"]),
                             int(z["ddof"]) if "ddof" in z else 0)


def predict_split(
    members: Sequence[EnsembleMember],
    records: Sequence[Any],
    ids: Sequence[str],
    *,
    profile: Any,
    split: str = "test",
    save: bool = True,
    mu_star: float = MU_STAR_DEFAULT,
) -> PredictionSet:
    """Predict ``ids`` with ``members``; reference = raw-DFT properties (:func:`betenet.metrics.reference_properties`);
    saved to ``predictions/<variant>.npz`` when ``save`` (for notebook 06 and the results page)."""
    by_id = {r.material_id: r for r in records}
    missing = sorted(set(ids) - set(by_id))
    if missing:
        raise KeyError(f"{len(missing)} id(s) to predict are not among the records, e.g. {missing[:5]}")
    recs = [by_id[m] for m in ids]
    prof = resolve_profile(profile)
    pred = predict_ensemble(members, recs)
    ps = PredictionSet(
        variant=members[0].variant, profile=prof.name,
        split=split, ids=list(ids), omega_meV=np.asarray(TARGET_GRID_MEV, dtype=float),
        member_index=np.array([m.index for m in members]), pred_a2f=pred, target_a2f=stack_targets(recs),
        reference=reference_properties(recs, "raw", mu_star=mu_star), mu_star=mu_star,
        ddof=int(prof.ensemble.ddof),
    )
    if save:
        save_predictions(predictions_path(ps.profile, ps.variant), ps)
    return ps


def predict_runs(
    runs: Mapping[str, EnsembleRun] | Iterable[EnsembleRun],
    records: Sequence[Any],
    ids: Sequence[str],
    *,
    profile: Any,
    split: str = "test",
    mu_star: float = MU_STAR_DEFAULT,
    save: bool = True,
) -> dict[str, PredictionSet]:
    """:func:`predict_split` of every run's first ``n_members`` members: ``{variant: PredictionSet}``
    (saved to ``predictions/<variant>.npz`` for notebook 06 when ``save``)."""
    runs = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    return {
        r.variant: predict_split(load_ensemble(r.directory, n_members=r.n_members), records, ids, profile=profile,
                                 split=split, save=save, mu_star=mu_star)
        for r in runs
    }


def oob_ensemble_properties(directory: Path | str, records: Sequence[Any], *, mu_star: float = MU_STAR_DEFAULT):
    """The bootstrap OOB estimate: for each training material, the mean α²F over the members for which
    it was out of bag, and its derived properties next to the raw-DFT reference.

    Returns ``(reference, predicted, n_members_oob)`` — two DataFrames indexed by material id (materials
    never out of bag are left out) and a Series of how many members predicted each.
    """
    import pandas as pd


    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    d = Path(directory)
    for f in sorted(d.glob("member-[0-9][0-9][0-9]/oob.npz")):
        if member_status(f.parent, None, verify_checksum=False) != "complete":
            continue
        with np.load(f, allow_pickle=False) as z:
            for mid, a in zip(z["ids"], z["pred_a2f"]):
                mid = str(mid)
                sums[mid] = sums.get(mid, 0.0) + np.asarray(a, dtype=float)
                counts[mid] = counts.get(mid, 0) + 1
    if not sums:
        raise EnsembleError(f"no out-of-bag predictions under {d} (member-XXX/oob.npz of finished members)")
    by_id = {r.material_id: r for r in records}
    ids = sorted(m for m in sums if m in by_id)
    mean = np.stack([sums[m] / counts[m] for m in ids])
    pred = pd.DataFrame(derived_properties(mean, mu_star=mu_star), index=pd.Index(ids, name="material_id"))
    ref = reference_properties([by_id[m] for m in ids], "raw", mu_star=mu_star)
    return ref, pred, pd.Series({m: counts[m] for m in ids}, name="n_members_oob")
