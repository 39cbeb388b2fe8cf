"""Training an ensemble: one member on a worker (:func:`train_member`, resumable, locked) and all members
of one or more variants on a Dask cluster (:func:`run_ensembles`), skipping finished ones."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .. import __version__
from ..bootstrap import Bootstrap, bootstrap_samples
from ..cluster import dask_client
from ..config import resolve_profile
from ..constants import MU_STAR_DEFAULT, TARGET_GRID_MEV
from ..dataset import check_records_for_variant, graphs_for, stack_targets
from ..datasource import bootstraps as source_bootstraps
from ..jsonio import read_json, sha256_file, utc_now, write_json_atomic
from ..locks import exclusive
from ..metrics import derived_properties, reference_properties
from .store import (
    ENSEMBLE_SCHEMA, EnsembleError, EnsembleRun, MEMBER_SCHEMA, SCHEMA_VERSION, StaleMemberError, archive_member,
    check_variant, ensemble_directory, member_lock_path, member_status, member_train_config, recipe_fingerprint,
)

__all__ = ["MemberSpec", "TrainOutcome", "train_member", "run_ensembles", "run_ensemble", "ensemble_status"]

#: Prediction batch size (crystals) of the out-of-bag predictions, as :func:`betenet.ensemble.predict_ensemble`'s.
_OOB_BATCH_SIZE = 256


@dataclass(frozen=True)
class MemberSpec:
    """Everything a worker needs to train one member (picklable)."""

    profile: Any  # betenet.config.Profile
    variant: str
    bootstrap: Bootstrap
    directory: str
    fingerprint: str
    torch_threads: int = 1


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


def _train(sample: Sequence[Any], validation: Sequence[Any], prof: Any, out_dir: Path) -> TrainOutcome:
    """Train/resume one member with :func:`betenet.train.train_model` on ``(sample, validation)``; which
    checkpoint it uses (modern regime, else lowest validation loss) and why."""
    # torch is imported only when a member trains: ``import betenet.ensemble`` stays light
    from ..train import train_model

    res = train_model((list(sample), list(validation)), prof, out_dir, variant=prof.model.variant, progress=False)
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


def _set_threads(n: int) -> None:
    import torch

    if n and n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(int(n))


def _append_attempt(directory: Path) -> list[dict[str, Any]]:
    path = directory / "attempts.jsonl"
    entry = {"started": utc_now(), "host": socket.gethostname(), "pid": os.getpid()}
    with open(path, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_member(spec: MemberSpec, records: Sequence[Any]) -> dict[str, Any]:
    """Train (or resume) one ensemble member and write its files; returns its ``member.json`` dict.

    ``records`` must contain every material of the bootstrap (sample and OOB).  Safe to call again
    after an interruption: the trainer resumes from ``train/last.pt``; a complete member is returned
    as is without training.  Two runs into one ensemble directory never train the same member twice:
    the member is locked (:func:`betenet.locks.exclusive`) while it trains; the second run waits for
    the lock and then finds the member complete.  A crashed holder's lock is released by the kernel.
    """
    d = Path(spec.directory)
    with exclusive(member_lock_path(d), f"ensemble member {spec.bootstrap.index} ({spec.variant})", wait=True):
        return _train_member_locked(spec, records)


def _train_member_locked(spec: MemberSpec, records: Sequence[Any]) -> dict[str, Any]:
    t_start = time.perf_counter()
    d = Path(spec.directory)
    d.mkdir(parents=True, exist_ok=True)
    state = member_status(d, spec.fingerprint)
    if state == "complete":
        return json.loads((d / "member.json").read_text())
    if state == "stale":
        raise StaleMemberError(f"member directory {d} holds a member of another recipe; archive it first")
    _set_threads(spec.torch_threads)
    boot = spec.bootstrap
    boot_file = d / "bootstrap.json"
    saved = read_json(boot_file)
    if saved is None:
        write_json_atomic(boot_file, {"schema": "betenet.ensemble.bootstrap", "fingerprint": spec.fingerprint,
                                       "variant": spec.variant, **boot.to_dict()})
    elif saved.get("sample_ids") != list(boot.sample_ids) or saved.get("fingerprint") != spec.fingerprint:
        raise StaleMemberError(f"{boot_file}: saved bootstrap differs from the requested one (member {boot.index})")
    attempts = _append_attempt(d)

    by_id = {r.material_id: r for r in records}
    missing = sorted((set(boot.sample_ids) | set(boot.oob_ids)) - set(by_id))
    if missing:
        raise EnsembleError(f"member {boot.index} ({d}): {len(missing)} bootstrap material(s) not in records, e.g. {missing[:5]}")
    prof = resolve_profile(spec.profile)
    model_cfg = dataclasses.replace(prof.model, variant=spec.variant)
    train_cfg = member_train_config(prof, seed=boot.seed)

    t0 = time.perf_counter()
    outcome = _train([by_id[m] for m in boot.sample_ids], [by_id[m] for m in boot.oob_ids],
                     dataclasses.replace(prof, model=model_cfg, train=train_cfg), d / "train")
    train_s = time.perf_counter() - t0

    ckpt_meta = {"ensemble_member": boot.index, "ensemble_variant": spec.variant, "ensemble_fingerprint": spec.fingerprint,
                 "bootstrap_seed": boot.seed, "checkpoint_used": outcome.used, "checkpoint_epoch": outcome.epoch}
    model_path = d / "model.pt"
    # the trainer's checkpoint, copied as a self-describing model file with the member's metadata added (torch is
    # imported only here and in _train: ``import betenet.ensemble`` stays light)
    from ..model import load_checkpoint, load_model, predict, save_checkpoint

    model, cfg, old = load_checkpoint(outcome.checkpoint_path)
    save_checkpoint(model_path, model, cfg, **{**old, **ckpt_meta, "source_checkpoint": Path(outcome.checkpoint_path).name})

    t1 = time.perf_counter()
    model, _, _ = load_model(model_path)
    oob_records = [by_id[m] for m in boot.oob_ids]
    oob_graphs = graphs_for(oob_records, spec.variant, model_cfg.r_max_A)
    oob_pred = predict(model, oob_graphs, batch_size=_OOB_BATCH_SIZE).astype(np.float64)
    oob_target = stack_targets(oob_records)
    np.savez_compressed(d / "oob.npz", ids=np.array(boot.oob_ids), pred_a2f=oob_pred, target_a2f=oob_target,
                        omega_meV=np.asarray(TARGET_GRID_MEV))
    oob_stats = _oob_stats(oob_pred, oob_records)
    oob_s = time.perf_counter() - t1


    meta = {
        "schema": MEMBER_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "status": "complete",
        "variant": spec.variant,
        "profile": prof.name,
        "member": boot.index,
        "fingerprint": spec.fingerprint,
        "betenet_version": __version__,
        "seed": boot.seed,
        "bootstrap": boot.to_dict(),
        "regimes": outcome.regimes,
        "checkpoint": {"used": outcome.used, "epoch": outcome.epoch, "reason": outcome.reason,
                       "source": str(Path(outcome.checkpoint_path).relative_to(d)) if Path(outcome.checkpoint_path).is_relative_to(d) else str(outcome.checkpoint_path),
                       "path": model_path.name, "sha256": sha256_file(model_path)},
        "oob": {"n": len(boot.oob_ids), **oob_stats},
        "timings": {
            "wall_s": time.perf_counter() - t_start,
            "train_s": train_s,
            "train_s_all_attempts": outcome.train_seconds_total,
            "oob_s": oob_s,
            "started": attempts[-1]["started"],
            "finished": utc_now(),
            "attempts": len(attempts),
            "resumed_from_epoch": outcome.resumed_from_epoch,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "torch_threads": _torch_threads(),
        },
    }
    write_json_atomic(d / "member.json", meta)
    if not prof.ensemble.keep_resume_checkpoint:
        # the member is complete (member.json written first): its resume point is no longer needed
        (d / "train" / "last.pt").unlink(missing_ok=True)
    return meta


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _oob_stats(pred: np.ndarray, records: Sequence[Any], *, mu_star: float = MU_STAR_DEFAULT) -> dict[str, float]:
    """OOB MSE on the 51-bin α²F target and MAE of the derived properties against the raw-DFT ones."""
    target = stack_targets(records)
    ref = reference_properties(records, "raw", mu_star=mu_star)
    got = derived_properties(pred, mu_star=mu_star)
    out = {"mse": float(np.mean((pred - target) ** 2))}
    for p in ("lambda", "omega_log_K", "omega_2_K", "tc_K"):
        out[f"mae_{p}"] = float(np.mean(np.abs(got[p] - ref[p].to_numpy())))
    return out


def _load_member_metas(directory: Path, indices: Iterable[int]) -> list[dict[str, Any]]:
    return [json.loads((Path(directory) / f"member-{k:03d}" / "member.json").read_text()) for k in indices]


@dataclass
class _Plan:
    """What :func:`run_ensembles` must do for one variant (members to train, reused, archived)."""

    variant: str
    directory: Path
    fingerprint: str
    n_members: int
    train_records: list[Any]
    todo: list[Bootstrap]
    reused: list[int]
    archived: list[str]


def _plan_variant(records: Sequence[Any], prof: Any, variant: str, train_ids: Sequence[str], n: int,
                  on_stale: str) -> _Plan:
    check_variant(variant)
    if n < 1:
        raise ValueError(f"n_members must be >= 1, got {n}")
    if on_stale not in ("archive", "error"):
        raise ValueError(f"on_stale must be 'archive' or 'error', got {on_stale!r}")
    by_id = {r.material_id: r for r in records}
    missing = sorted(set(train_ids) - set(by_id))
    if missing:
        raise KeyError(f"{len(missing)} training id(s) are not among the records, e.g. {missing[:5]}")
    train_records = [by_id[m] for m in sorted(set(train_ids))]

    check_records_for_variant(train_records, variant)
    fingerprint, recipe = recipe_fingerprint(prof, variant, train_records)
    edir = ensemble_directory(prof.name, variant)

    # the published data: the paper's resamples; ours: seeded resamples of the training ids
    boots = source_bootstraps(prof, recipe["train_ids"], n) or bootstrap_samples(recipe["train_ids"], n, prof.ensemble.seed)
    todo, reused, archived = [], [], []
    for b in boots:
        d = edir / f"member-{b.index:03d}"
        state = member_status(d, fingerprint)
        if state == "complete":
            reused.append(b.index)
            continue
        if state in ("stale", "corrupt"):
            if on_stale == "error":
                raise StaleMemberError(
                    f"{d}: member {b.index} is {state} (trained with another recipe or its checkpoint changed); "
                    f"move it away or call with on_stale='archive'"
                )
            old_fp = ((read_json(d / "member.json") or {}).get("fingerprint")
                      or (read_json(d / "bootstrap.json") or {}).get("fingerprint"))
            dest = archive_member(d, old_fp)
            warnings.warn(f"ensemble {variant}: member {b.index} was {state}; moved to {dest} and retrained", stacklevel=3)
            archived.append(str(dest))
        todo.append(b)
    _write_ensemble_json(edir, prof, variant, fingerprint, recipe, n)
    return _Plan(variant, edir, fingerprint, n, train_records, todo, reused, archived)


def run_ensembles(
    records: Sequence[Any],
    profile: Any,
    train_ids: Sequence[str],
    variants: Sequence[str] | None = None,
    *,
    n_members: int | None = None,
    client: Any = None,
    progress: bool = True,
    on_stale: Literal["archive", "error"] = "archive",
) -> dict[str, EnsembleRun]:
    """Train (or resume) the ensembles of several ``variants`` (default ``profile.ensemble.variants``)
    on bootstrap resamples of ``train_ids``, all members of all variants on **one** Dask client.

    Parameters
    ----------
    records: at least every material of ``train_ids`` (others are ignored).
    profile: a :class:`betenet.config.Profile` or a profile name; ``profile.ensemble.n_members`` members
        per variant (or ``n_members``) with ``profile.model``/``profile.train`` settings.
    client: an existing ``dask.distributed.Client``; by default one is made from ``profile.dask``
        (:func:`betenet.cluster.dask_client`, closed afterwards) only if some member needs training.
        Workers write the member directories themselves: on a remote/jobqueue cluster the artifacts
        directory (``BETENET_ARTIFACTS``) must be on a filesystem shared with the workers.
    on_stale: members trained with another recipe (e.g. the split grew, the config changed) are moved to
        ``stale/<fingerprint>/`` with a warning (``"archive"``) or raise :class:`StaleMemberError`.

    Returns ``{variant: EnsembleRun}``.  Members that fail are reported together in an
    :class:`EnsembleError` after the others have finished (finished members' files are kept).
    """
    t0 = time.perf_counter()
    prof = resolve_profile(profile)
    variants = tuple(prof.ensemble.variants if variants is None else variants)
    if not variants:
        raise ValueError("no variants to train (EnsembleConfig.variants is empty)")
    n = int(prof.ensemble.n_members if n_members is None else n_members)
    plans = [_plan_variant(records, prof, v, train_ids, n, on_stale) for v in variants]
    threads = max(1, int(prof.dask.threads_per_worker))
    specs, spec_records = [], []
    for pl in plans:
        for b in pl.todo:
            specs.append(MemberSpec(prof, pl.variant, b, str(pl.directory / f"member-{b.index:03d}"), pl.fingerprint, threads))
            spec_records.append(pl.train_records)
    if specs:
        _run_specs(specs, spec_records, prof, client, progress)
    wall = time.perf_counter() - t0
    return {
        pl.variant: EnsembleRun(pl.variant, prof.name, pl.directory, _load_member_metas(pl.directory, range(pl.n_members)),
                                [b.index for b in pl.todo], pl.reused, pl.archived, wall, pl.fingerprint)
        for pl in plans
    }


def run_ensemble(
    records: Sequence[Any],
    profile: Any,
    variant: str,
    train_ids: Sequence[str],
    *,
    n_members: int | None = None,
    client: Any = None,
    progress: bool = True,
    on_stale: Literal["archive", "error"] = "archive",
) -> EnsembleRun:
    """Train (or resume) the ``variant`` ensemble of ``profile``: :func:`run_ensembles` for one variant.

    A finished member (valid ``member.json`` of the same recipe fingerprint and an unaltered
    ``model.pt``) is never retrained; a partial one resumes from its ``train/last.pt``.
    """
    return run_ensembles(records, profile, train_ids, (variant,), n_members=n_members, client=client,
                         progress=progress, on_stale=on_stale)[variant]


def _write_ensemble_json(edir: Path, prof: Any, variant: str, fingerprint: str, recipe: dict[str, Any], n: int) -> None:
    data = {
        "schema": ENSEMBLE_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "variant": variant,
        "profile": prof.name,
        "fingerprint": fingerprint,
        "n_members_requested": n,
        "n_train": len(recipe["train_ids"]),
        "train_ids": recipe["train_ids"],
        "records_hash": recipe["records_hash"],
        "model": recipe["model"],
        "train": dataclasses.asdict(member_train_config(prof)),
        "execution": dataclasses.asdict(prof.execution),
        "ensemble": dataclasses.asdict(prof.ensemble),
        "dask": dataclasses.asdict(prof.dask),
        "betenet_version": __version__,
        "updated": utc_now(),
    }
    write_json_atomic(edir / "ensemble.json", data)


@contextlib.contextmanager
def _quiet_dask_shutdown():
    """Silence the nanny's "worker process still alive after 4 s, killing" warnings when a local cluster
    closes while its workers are still unloading torch (harmless; noise in the book).  Errors still show;
    member failures are reported by :func:`_run_specs` itself."""
    names = ("distributed.nanny", "distributed.process")
    old = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, lvl in old.items():
            logging.getLogger(n).setLevel(lvl)


def _run_specs(specs: list[MemberSpec], spec_records: list[list[Any]], prof: Any, client: Any, progress: bool) -> None:
    """Submit every member as a Dask task (records scattered once per distinct training set) and
    collect them with ``as_completed`` under a tqdm bar; failures are gathered into one error."""
    # plain-text bar (stderr): its final state is kept in an executed notebook, unlike a widget's
    from tqdm.std import tqdm


    errors: list[str] = []
    variants = sorted({s.variant for s in specs})
    with warnings.catch_warnings(), _quiet_dask_shutdown():
        # a local cluster falls back to a free dashboard port when 8787 is taken (e.g. by the QE runner)
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
        ctx = contextlib.nullcontext(client) if client is not None else dask_client(prof.dask)
        with ctx as cl:
            _submit_and_collect(cl, specs, spec_records, variants, progress, errors, tqdm)
    if errors:
        raise EnsembleError(f"{len(errors)} of {len(specs)} ensemble member(s) failed (finished ones are kept):\n" + "\n".join(errors))


def _submit_and_collect(cl: Any, specs: list[MemberSpec], spec_records: list[list[Any]], variants: list[str],
                        progress: bool, errors: list[str], tqdm: Any) -> None:
    """Scatter each distinct training set once, submit one task per member, collect as they finish."""
    from dask.distributed import as_completed

    scattered: dict[int, Any] = {}
    futures = {}
    for spec, recs in zip(specs, spec_records):
        if id(recs) not in scattered:
            [scattered[id(recs)]] = cl.scatter([recs], broadcast=True, hash=False)
        key = f"betenet-{spec.variant}-member-{spec.bootstrap.index:03d}-{spec.fingerprint[:8]}-{time.time_ns()}"
        futures[cl.submit(train_member, spec, scattered[id(recs)], key=key, pure=False)] = spec
    bar = tqdm(total=len(specs), desc=f"{'/'.join(variants)} ensemble members", unit="member", disable=not progress)
    for fut in as_completed(futures):
        spec = futures[fut]
        if fut.status == "error":
            exc = fut.exception()
            errors.append(f"{spec.variant} member {spec.bootstrap.index} ({spec.directory}): {type(exc).__name__}: {exc}")
        else:
            meta = fut.result()
            bar.set_postfix_str(f"{spec.variant} #{meta['member']} {meta['timings']['wall_s']:.0f}s {meta['checkpoint']['used']}", refresh=False)
        bar.update(1)
    bar.close()


def ensemble_status(profile: Any, variant: str, n_members: int | None = None) -> list[dict[str, Any]]:
    """Per member: index, state (complete/partial/missing/stale/corrupt w.r.t. the saved recipe), epochs, wall time."""
    prof = resolve_profile(profile)
    edir = ensemble_directory(prof.name, variant, create=False)
    info = read_json(edir / "ensemble.json") or {}
    fp = info.get("fingerprint")
    n = n_members or max(prof.ensemble.n_members, info.get("n_members_requested", 0))
    rows = []
    for k in range(n):
        d = edir / f"member-{k:03d}"
        state = member_status(d, fp)
        meta = read_json(d / "member.json") if state == "complete" else None
        rows.append({
            "member": k, "state": state,
            "checkpoint": meta["checkpoint"]["used"] if meta else None,
            "epochs": meta["regimes"].get("epochs_trained") if meta else None,
            "wall_s": meta["timings"]["wall_s"] if meta else None,
            "oob_fraction": meta["bootstrap"]["oob_fraction"] if meta else None,
        })
    return rows
