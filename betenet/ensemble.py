"""Bootstrapped ensembles of BETE-NET models (Sec. II.2, Methods IV.2).

Recipe (as the paper)
---------------------
* Member ``k`` of an ensemble of ``N`` is trained on a **bootstrap resample** of the training split:
  ``n`` draws *with replacement* from the ``n`` training materials (equal size).  About
  ``1 - (1 - 1/n)^n -> 1 - 1/e = 63.2 %`` of the materials are drawn at least once; the remaining
  **out-of-bag** (OOB) materials, ``(1 - 1/n)^n -> 36.8 %`` (the paper's "38 %"), validate member ``k``.
  The actual OOB fraction of each member is recorded in its ``member.json``.
* The resample is a pure function of ``(EnsembleConfig.seed, k, sorted training ids)``
  (:func:`bootstrap_sample`), so it does not depend on the order of the records, on which worker
  trains the member, or on ``N`` (growing an ensemble from 8 to 20 members keeps the first 8).
* Each member is trained by :func:`betenet.train.train_model` with the double-descent policy, to the
  **modern regime** (second descent).  When no modern regime is detected within the epoch budget the
  member falls back to its **best-validation** checkpoint; which one was used, and why, is recorded
  per member (``checkpoint.used``) and summarised by :func:`oob_summary`.
* Ensemble prediction = **mean** of the members' 51-bin α²F; spread = **standard deviation** over
  members, per bin and per derived property.

Which numbers the tables use
----------------------------
:func:`summarise` returns both

* ``moments_of_mean`` / ``tc_of_mean_K``: λ, ω_log, ω₂ and Allen-Dynes T_c of the **ensemble-mean
  α²F** — the paper's "final prediction is the mean of the predicted α²F" (Methods IV.2).  **Table 1
  rows and parity-plot points use these.**
* ``moments_mean``/``moments_std`` and ``tc_mean_K``/``tc_std_K``: the property computed for every
  member, then averaged / spread over members.  **Error bars (parity plots) and the screening
  lower confidence bound use the per-member std.**  (λ is linear in α²F, so ``moments_mean.lambda_``
  equals ``moments_of_mean.lambda_``; ω_log, ω₂ and T_c are not linear and differ slightly.)

Standard deviations are population std over members (``ddof=0``) unless asked otherwise.

On disk (``artifacts/<profile>/ensembles/<variant>/``)
-----------------------------------------------------
::

    ensemble.json          recipe: schema, variant, profile, model/train/ensemble config, train-id hash,
                           data hash, recipe fingerprint, betenet version
    member-000/
        bootstrap.json     written first: seed, sample ids (with repeats, draw order), OOB ids, fingerprint
        attempts.jsonl     one line per (re)start: time, host, pid
        train/             the trainer's directory (history, last.pt for resume, regime checkpoints)
        model.pt           the chosen checkpoint (self-describing: weights + config + version + member meta)
        oob.npz            OOB ids, predicted and target 51-bin α²F of the chosen checkpoint
        member.json        written LAST, atomically: the member is finished iff this file is valid, says
                           "complete", matches the recipe fingerprint and model.pt has the recorded SHA-256
    stale/<fp>/member-XXX  members of an older recipe (other training data/config), moved here, never deleted

``member.json`` schema (``betenet.ensemble.member``, version 1)::

    schema, schema_version, status="complete", variant, profile, member, fingerprint, betenet_version,
    seed (int: member seed), bootstrap {n_train, n_sample, n_unique, n_oob, oob_fraction, unique_fraction,
    redraws, sample_ids, oob_ids}, regimes {classical_epoch, critical_epoch, modern_epoch, modern_detected,
    epochs_trained, stopped_reason, ...}, checkpoint {used: "modern" | "best_val", epoch, reason, path,
    sha256}, oob {n, mse, mae_lambda, mae_omega_log_K, mae_omega_2_K}, timings {wall_s, train_s, oob_s,
    started, finished, attempts, host, pid, torch_threads}

Predictions (``artifacts/<profile>/predictions/<variant>.npz``, schema ``betenet.ensemble.predictions``)::

    schema, schema_version, variant, profile, split ("test"), mu_star: 0-d arrays
    ids (n,) str; omega_meV (51,); member_index (n_members,) int
    pred_a2f (n_members, n, 51)   every member's 51-bin α²F
    target_a2f (n, 51)            smoothed/binned DFT α²F (the networks' target)
    true_lambda, true_omega_log_K, true_omega_2_K, true_tc_K (n,)   raw-DFT reference (betenet.metrics)

Parallelism and resume
----------------------
Members run as Dask tasks (:func:`betenet.cluster.dask_client` with ``profile.dask``: a LocalCluster of
1-thread worker processes by default, a scheduler address or a jobqueue cluster from config),
collected with ``as_completed`` under a tqdm bar.  :func:`run_ensembles` puts the members of all
variants on one cluster (worker start-up, i.e. importing torch/e3nn, is paid once); no cluster is
started when every member is already finished.  A finished member is detected from its files and
never resubmitted; an interrupted one resumes inside the trainer from its ``train/last.pt``.

Typical use (notebook 05)::

    runs = run_ensembles(records, profile, train_ids)                 # {variant: EnsembleRun}
    sets = predict_runs(runs, records, test_ids, profile=profile)     # saved predictions/<variant>.npz
    rows = table1_ensemble_rows(sets.values(), n_train=len(train_ids))
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
import socket
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .constants import MU_STAR_DEFAULT, TARGET_GRID_MEV

__all__ = [
    "ENSEMBLE_SCHEMA",
    "MEMBER_SCHEMA",
    "PREDICTIONS_SCHEMA",
    "EnsembleError",
    "StaleMemberError",
    "Bootstrap",
    "expected_oob_fraction",
    "member_seed",
    "bootstrap_sample",
    "bootstrap_samples",
    "ensemble_directory",
    "member_directory",
    "recipe_fingerprint",
    "member_train_config",
    "member_status",
    "MemberSpec",
    "train_member",
    "EnsembleRun",
    "run_ensemble",
    "run_ensembles",
    "ensemble_status",
    "EnsembleMember",
    "load_ensemble",
    "predict_ensemble",
    "EnsemblePrediction",
    "summarise",
    "PredictionSet",
    "predictions_path",
    "predict_split",
    "save_predictions",
    "load_predictions",
    "table1_ensemble_rows",
    "predict_runs",
    "spread_calibration",
    "findings_markdown",
    "oob_summary",
    "oob_ensemble_properties",
]

ENSEMBLE_SCHEMA = "betenet.ensemble"
MEMBER_SCHEMA = "betenet.ensemble.member"
PREDICTIONS_SCHEMA = "betenet.ensemble.predictions"
SCHEMA_VERSION = 1
VARIANTS = ("CSO", "CPD", "FPD")
#: Train-config fields that do not change what a member learns (excluded from the fingerprint).
_FINGERPRINT_IGNORED_TRAIN_FIELDS = ("checkpoint_every", "compile", "seed", "val_fraction", "device")
#: Train-config fields that belong to single-model studies (notebook 03), reset to empty for members.
_MEMBER_CLEARED_TRAIN_FIELDS = ("dd_sweep",)


class EnsembleError(RuntimeError):
    """An ensemble could not be trained or loaded; the message names the member and its directory."""


class StaleMemberError(EnsembleError):
    """A member on disk was trained with another recipe (training data or config) than the one asked for."""


# ============================================================================ bootstrap resamples


def expected_oob_fraction(n: int) -> float:
    """Expected out-of-bag fraction ``(1 - 1/n)^n`` of a size-``n`` bootstrap (-> 1/e ≈ 0.368)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return float((1.0 - 1.0 / n) ** n)


def member_seed(ensemble_seed: int, index: int) -> int:
    """Seed of member ``index`` (weights initialisation, training shuffles): a 31-bit integer derived
    from ``(ensemble_seed, index)`` by NumPy's ``SeedSequence`` (independent streams per member)."""
    if index < 0:
        raise ValueError(f"member index must be >= 0, got {index}")
    return int(np.random.SeedSequence([int(ensemble_seed), int(index), 0xB00]).generate_state(1)[0] >> 1)


@dataclass(frozen=True)
class Bootstrap:
    """One bootstrap resample of the training split.

    ``sample_ids``: the ``n`` draws with replacement (draw order, repeats kept) -> training set;
    ``oob_ids``: the training materials never drawn (sorted) -> validation set.
    """

    index: int
    seed: int
    sample_ids: tuple[str, ...]
    oob_ids: tuple[str, ...]
    n_train: int
    redraws: int = 0

    @property
    def unique_ids(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.sample_ids)))

    @property
    def oob_fraction(self) -> float:
        return len(self.oob_ids) / self.n_train

    @property
    def unique_fraction(self) -> float:
        return len(set(self.sample_ids)) / self.n_train

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.index,
            "seed": self.seed,
            "n_train": self.n_train,
            "n_sample": len(self.sample_ids),
            "n_unique": len(set(self.sample_ids)),
            "n_oob": len(self.oob_ids),
            "oob_fraction": self.oob_fraction,
            "unique_fraction": self.unique_fraction,
            "redraws": self.redraws,
            "sample_ids": list(self.sample_ids),
            "oob_ids": list(self.oob_ids),
        }


def bootstrap_sample(train_ids: Iterable[str], index: int, seed: int) -> Bootstrap:
    """Bootstrap resample number ``index`` of ``train_ids`` for ensemble seed ``seed``.

    Draws ``n = len(train_ids)`` ids with replacement (uniformly) from the *sorted* ids with the NumPy
    generator seeded by ``(seed, index)``.  The rare draw that leaves no OOB material (probability
    ``n!/n^n``: 1/2 for n = 2, 4e-4 for n = 10) cannot be validated; it is redrawn from the next
    stream ``(seed, index, r)`` and ``redraws`` counts how often.  Needs at least 2 distinct ids.
    """
    given = [str(m) for m in train_ids]  # materialised once (generators allowed)
    ids = sorted(set(given))
    if len(ids) != len(given):
        raise ValueError(f"train_ids contains duplicates ({len(given) - len(ids)} repeated ids)")
    n = len(ids)
    if n < 2:
        raise ValueError(f"a bootstrap needs at least 2 training materials, got {n}")
    for redraw in range(1000):
        key = [int(seed), int(index)] + ([redraw] if redraw else [])
        rng = np.random.default_rng(key)
        draw = rng.integers(0, n, size=n)
        drawn = np.zeros(n, dtype=bool)
        drawn[draw] = True
        if not drawn.all():
            sample = tuple(ids[i] for i in draw)
            oob = tuple(ids[i] for i in np.flatnonzero(~drawn))
            return Bootstrap(int(index), member_seed(seed, index), sample, oob, n, redraw)
    raise AssertionError("no bootstrap with an out-of-bag material in 1000 draws")  # pragma: no cover


def bootstrap_samples(train_ids: Iterable[str], n_members: int, seed: int) -> list[Bootstrap]:
    """The first ``n_members`` bootstrap resamples (members ``0 .. n_members-1``)."""
    ids = list(train_ids)
    return [bootstrap_sample(ids, k, seed) for k in range(int(n_members))]


# ============================================================================ files and fingerprints


def _profile(profile: Any):
    from .config import resolve_profile

    return resolve_profile(profile)


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant


def ensemble_directory(profile: Any, variant: str, *, create: bool = True) -> Path:
    """``artifacts/<profile>/ensembles/<variant>``."""
    from .paths import artifacts_dir

    name = profile if isinstance(profile, str) else _profile(profile).name
    return artifacts_dir(name, "ensembles", _check_variant(variant), create=create)


def member_directory(profile: Any, variant: str, index: int, *, create: bool = False) -> Path:
    """``artifacts/<profile>/ensembles/<variant>/member-XXX``."""
    d = ensemble_directory(profile, variant, create=create) / f"member-{int(index):03d}"
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(obj: Any):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _variant_arrays(rec: Any, variant: str) -> list[Any]:
    arrays = [rec.a2f_omega_meV, rec.a2f]
    if variant == "CPD":
        arrays += [rec.phdos_coarse_omega_meV, rec.phdos_coarse_site]
    elif variant == "FPD":
        arrays += [rec.phdos_omega_meV, rec.phdos_site]
    return arrays


def _records_hash(records: Sequence[Any], variant: str) -> str:
    """SHA-256 over what a member learns from: structures, α²F and the variant's site PhDOS."""
    h = hashlib.sha256()
    for rec in sorted(records, key=lambda r: r.material_id):
        h.update(rec.material_id.encode())
        h.update(json.dumps(rec.structure.as_dict(), sort_keys=True, default=str).encode())
        for arr in _variant_arrays(rec, variant):
            h.update(b"-" if arr is None else np.ascontiguousarray(np.asarray(arr, dtype=np.float64)).tobytes())
    return h.hexdigest()


def recipe_fingerprint(profile: Any, variant: str, train_records: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """Fingerprint of what determines every member: variant, training materials and their data,
    model config, train config (minus bookkeeping fields) and ensemble seed.  Not ``n_members``.

    Returns ``(hex digest, the recipe dict it hashes)``.
    """
    prof = _profile(profile)
    train_cfg = {k: v for k, v in dataclasses.asdict(member_train_config(prof)).items() if k not in _FINGERPRINT_IGNORED_TRAIN_FIELDS}
    model_cfg = dataclasses.asdict(dataclasses.replace(prof.model, variant=variant))
    recipe = {
        "variant": variant,
        "train_ids": sorted(r.material_id for r in train_records),
        "records_hash": _records_hash(train_records, variant),
        "model": model_cfg,
        "train": train_cfg,
        "ensemble_seed": prof.ensemble.seed,
    }
    from .datasource import source_of

    if source_of(prof) == "upstream":  # member k = the paper's resample k (absent for ours: fingerprints unchanged)
        recipe["bootstrap"] = "paper: data/upstream/indices/idx_{train,valid}_V2_<k>.txt"
    payload = json.dumps(recipe, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest(), recipe


def member_train_config(profile: Any, seed: int | None = None):
    """The :class:`betenet.config.TrainConfig` of ensemble members: ``profile.train`` with
    ``profile.ensemble.train_overrides`` applied (and ``seed`` set, when given)."""
    prof = _profile(profile)
    overrides = dict(prof.ensemble.train_overrides)
    known = {f.name for f in dataclasses.fields(prof.train)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"EnsembleConfig.train_overrides: unknown TrainConfig field(s) {unknown}; known: {sorted(known)}")
    if seed is not None:
        overrides["seed"] = int(seed)
    # notebook-03 study settings (e.g. ``dd_sweep``) do not concern members: cleared, so editing them
    # neither makes finished members stale nor blocks the trainer's resume check
    for name in _MEMBER_CLEARED_TRAIN_FIELDS:
        if name in known and name not in overrides:
            overrides[name] = type(getattr(prof.train, name))()
    return dataclasses.replace(prof.train, **overrides)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


MemberState = Literal["complete", "partial", "missing", "stale", "corrupt"]


def member_status(directory: Path, fingerprint: str | None = None, *, verify_checksum: bool = True) -> MemberState:
    """State of a member directory.

    ``complete``: valid ``member.json`` (status complete), matching ``fingerprint`` (when given), and
    ``model.pt`` present with the recorded SHA-256.  ``stale``: files of another recipe.
    ``corrupt``: ``member.json`` says complete but the checkpoint is missing or altered.
    ``partial``: started (bootstrap.json / trainer files) but not finished.  ``missing``: nothing.
    """
    d = Path(directory)
    if not d.exists() or not any(d.iterdir()):
        return "missing"
    meta = _read_json(d / "member.json")
    if meta is not None and meta.get("schema") == MEMBER_SCHEMA and meta.get("status") == "complete":
        if fingerprint is not None and meta.get("fingerprint") != fingerprint:
            return "stale"
        ckpt = d / meta.get("checkpoint", {}).get("path", "model.pt")
        if not ckpt.exists():
            return "corrupt"
        if verify_checksum and _sha256_file(ckpt) != meta["checkpoint"].get("sha256"):
            return "corrupt"
        return "complete"
    boot = _read_json(d / "bootstrap.json")
    if fingerprint is not None and boot is not None and boot.get("fingerprint") != fingerprint:
        return "stale"
    return "partial"


def _archive(directory: Path, fingerprint: str | None) -> Path:
    """Move a stale/corrupt member directory to ``<ensemble>/stale/<fp>/`` (never delete)."""
    d = Path(directory)
    tag = (fingerprint or "unknown")[:12]
    dest = d.parent / "stale" / tag / d.name
    if dest.exists():
        dest = dest.with_name(f"{d.name}-{_dt.datetime.now().strftime('%Y%m%dT%H%M%S%f')}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(d), str(dest))
    return dest


# ============================================================================ one member (runs on a worker)


@dataclass(frozen=True)
class MemberSpec:
    """Everything a worker needs to train one member (picklable)."""

    profile: Any  # betenet.config.Profile
    variant: str
    bootstrap: Bootstrap
    directory: str
    fingerprint: str
    torch_threads: int = 1


def _set_threads(n: int) -> None:
    import torch

    if n and n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(int(n))


def _append_attempt(directory: Path) -> list[dict[str, Any]]:
    path = directory / "attempts.jsonl"
    entry = {"started": _now(), "host": socket.gethostname(), "pid": os.getpid()}
    with open(path, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def member_lock_path(directory: Path | str) -> Path:
    """The lock file of a member directory (beside it, so an empty member directory stays ``missing``)."""
    d = Path(directory)
    return d.parent / f".{d.name}.lock"


def train_member(spec: MemberSpec, records: Sequence[Any]) -> dict[str, Any]:
    """Train (or resume) one ensemble member and write its files; returns its ``member.json`` dict.

    ``records`` must contain every material of the bootstrap (sample and OOB).  Safe to call again
    after an interruption: the trainer resumes from ``train/last.pt``; a complete member is returned
    as is without training.  Two runs into one ensemble directory never train the same member twice:
    the member is locked (:func:`betenet.locks.exclusive`) while it trains; the second run waits for
    the lock and then finds the member complete.  A crashed holder's lock is released by the kernel.
    """
    from .locks import exclusive

    d = Path(spec.directory)
    with exclusive(member_lock_path(d), f"ensemble member {spec.bootstrap.index} ({spec.variant})", wait=True):
        return _train_member_locked(spec, records)


def _train_member_locked(spec: MemberSpec, records: Sequence[Any]) -> dict[str, Any]:
    from . import _ensemble_backend as backend

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
    saved = _read_json(boot_file)
    if saved is None:
        _write_json_atomic(boot_file, {"schema": "betenet.ensemble.bootstrap", "fingerprint": spec.fingerprint,
                                       "variant": spec.variant, **boot.to_dict()})
    elif saved.get("sample_ids") != list(boot.sample_ids) or saved.get("fingerprint") != spec.fingerprint:
        raise StaleMemberError(f"{boot_file}: saved bootstrap differs from the requested one (member {boot.index})")
    attempts = _append_attempt(d)

    by_id = {r.material_id: r for r in records}
    missing = sorted((set(boot.sample_ids) | set(boot.oob_ids)) - set(by_id))
    if missing:
        raise EnsembleError(f"member {boot.index} ({d}): {len(missing)} bootstrap material(s) not in records, e.g. {missing[:5]}")
    prof = _profile(spec.profile)
    model_cfg = dataclasses.replace(prof.model, variant=spec.variant)
    train_cfg = member_train_config(prof, seed=boot.seed)

    t0 = time.perf_counter()
    outcome = backend.train(
        sample=[by_id[m] for m in boot.sample_ids],
        validation=[by_id[m] for m in boot.oob_ids],
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        out_dir=d / "train",
        seed=boot.seed,
        profile=prof,
    )
    train_s = time.perf_counter() - t0

    ckpt_meta = {"ensemble_member": boot.index, "ensemble_variant": spec.variant, "ensemble_fingerprint": spec.fingerprint,
                 "bootstrap_seed": boot.seed, "checkpoint_used": outcome.used, "checkpoint_epoch": outcome.epoch}
    model_path = d / "model.pt"
    backend.export_checkpoint(outcome.checkpoint_path, model_path, **ckpt_meta)

    t1 = time.perf_counter()
    model, _ = backend.load_model(model_path)
    oob_records = [by_id[m] for m in boot.oob_ids]
    oob_pred = backend.predict(model, oob_records, variant=spec.variant, r_max_A=model_cfg.r_max_A)
    oob_target = backend.targets(oob_records)
    np.savez_compressed(d / "oob.npz", ids=np.array(boot.oob_ids), pred_a2f=oob_pred, target_a2f=oob_target,
                        omega_meV=np.asarray(TARGET_GRID_MEV))
    oob_stats = _oob_stats(oob_pred, oob_records, mu_star=prof.screening.mu_star)
    oob_s = time.perf_counter() - t1

    from . import __version__

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
                       "path": model_path.name, "sha256": _sha256_file(model_path)},
        "oob": {"n": len(boot.oob_ids), **oob_stats},
        "timings": {
            "wall_s": time.perf_counter() - t_start,
            "train_s": train_s,
            "train_s_all_attempts": outcome.train_seconds_total,
            "oob_s": oob_s,
            "started": attempts[-1]["started"],
            "finished": _now(),
            "attempts": len(attempts),
            "resumed_from_epoch": outcome.resumed_from_epoch,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "torch_threads": _torch_threads(),
        },
    }
    _write_json_atomic(d / "member.json", meta)
    if not prof.ensemble.keep_resume_checkpoint:
        # the member is complete (member.json written first): its resume point is no longer needed
        (d / "train" / "last.pt").unlink(missing_ok=True)
    return meta


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _oob_stats(pred: np.ndarray, records: Sequence[Any], *, mu_star: float = MU_STAR_DEFAULT) -> dict[str, float]:
    """OOB MSE on the 51-bin α²F target and MAE of the derived properties against the raw-DFT ones."""
    from . import _ensemble_backend as backend
    from .metrics import derived_properties, reference_properties

    target = backend.targets(records)
    ref = reference_properties(records, "raw", mu_star=mu_star)
    got = derived_properties(pred, mu_star=mu_star)
    out = {"mse": float(np.mean((pred - target) ** 2))}
    for p in ("lambda", "omega_log_K", "omega_2_K", "tc_K"):
        out[f"mae_{p}"] = float(np.mean(np.abs(got[p] - ref[p].to_numpy())))
    return out


# ============================================================================ the ensemble (Dask)


@dataclass
class EnsembleRun:
    """Outcome of :func:`run_ensemble`: every member's ``member.json`` (by index) and what happened."""

    variant: str
    profile: str
    directory: Path
    members: list[dict[str, Any]]
    trained: list[int]
    reused: list[int]
    archived: list[str]
    wall_s: float
    fingerprint: str

    @property
    def n_members(self) -> int:
        return len(self.members)

    def timings(self):
        """DataFrame: member, wall_s, train_s, epochs, checkpoint used, OOB fraction (one row per member)."""
        return oob_summary(self.members)


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
    _check_variant(variant)
    if n < 1:
        raise ValueError(f"n_members must be >= 1, got {n}")
    if on_stale not in ("archive", "error"):
        raise ValueError(f"on_stale must be 'archive' or 'error', got {on_stale!r}")
    by_id = {r.material_id: r for r in records}
    missing = sorted(set(train_ids) - set(by_id))
    if missing:
        raise KeyError(f"{len(missing)} training id(s) are not among the records, e.g. {missing[:5]}")
    train_records = [by_id[m] for m in sorted(set(train_ids))]
    from . import _ensemble_backend as backend

    backend.check_records_for_variant(train_records, variant)
    fingerprint, recipe = recipe_fingerprint(prof, variant, train_records)
    edir = ensemble_directory(prof.name, variant)
    from .datasource import bootstraps as source_bootstraps

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
            old_fp = ((_read_json(d / "member.json") or {}).get("fingerprint")
                      or (_read_json(d / "bootstrap.json") or {}).get("fingerprint"))
            dest = _archive(d, old_fp)
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
    prof = _profile(profile)
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
    from . import __version__

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
        "ensemble": dataclasses.asdict(prof.ensemble),
        "dask": dataclasses.asdict(prof.dask),
        "betenet_version": __version__,
        "updated": _now(),
    }
    _write_json_atomic(edir / "ensemble.json", data)


@contextlib.contextmanager
def _quiet_dask_shutdown():
    """Silence the nanny's "worker process still alive after 4 s, killing" warnings when a local cluster
    closes while its workers are still unloading torch (harmless; noise in the book).  Errors still show;
    member failures are reported by :func:`_run_specs` itself."""
    import logging

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

    from .cluster import dask_client

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
    prof = _profile(profile)
    edir = ensemble_directory(prof.name, variant, create=False)
    info = _read_json(edir / "ensemble.json") or {}
    fp = info.get("fingerprint")
    n = n_members or max(prof.ensemble.n_members, info.get("n_members_requested", 0))
    rows = []
    for k in range(n):
        d = edir / f"member-{k:03d}"
        state = member_status(d, fp)
        meta = _read_json(d / "member.json") if state == "complete" else None
        rows.append({
            "member": k, "state": state,
            "checkpoint": meta["checkpoint"]["used"] if meta else None,
            "epochs": meta["regimes"].get("epochs_trained") if meta else None,
            "wall_s": meta["timings"]["wall_s"] if meta else None,
            "oob_fraction": meta["bootstrap"]["oob_fraction"] if meta else None,
        })
    return rows


# ============================================================================ loading and prediction


@dataclass
class EnsembleMember:
    """A loaded member: the torch model, its ``member.json`` and its directory."""

    index: int
    model: Any
    metadata: dict[str, Any]
    directory: Path

    @property
    def variant(self) -> str:
        return self.metadata["variant"]

    @property
    def r_max_A(self) -> float:
        return float(self.metadata.get("r_max_A", 4.0))

    @property
    def checkpoint_path(self) -> Path:
        """The member's exported checkpoint (``model.pt``), as recorded in its ``member.json``."""
        return Path(self.directory) / self.metadata["checkpoint"]["path"]


def load_ensemble(directory: Path | str, *, n_members: int | None = None, verify_checksum: bool = True) -> list[EnsembleMember]:
    """The finished members under ``directory`` (an ensemble directory with ``member-XXX/``), by index;
    with ``n_members`` only members ``0 .. n_members-1`` (e.g. :attr:`EnsembleRun.n_members`).

    Members of another recipe than the directory's ``ensemble.json`` are skipped with a warning;
    ``EnsembleError`` if none is finished.
    """
    from . import _ensemble_backend as backend

    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"ensemble directory {d} does not exist")
    info = _read_json(d / "ensemble.json") or {}
    fp = info.get("fingerprint")
    members = []
    for md in sorted(d.glob("member-[0-9][0-9][0-9]")):
        if n_members is not None and int(md.name.split("-")[1]) >= n_members:
            continue
        state = member_status(md, fp, verify_checksum=verify_checksum)
        if state != "complete":
            if state in ("stale", "corrupt"):
                warnings.warn(f"{md}: member is {state}; skipped", stacklevel=2)
            continue
        meta = json.loads((md / "member.json").read_text())
        model, ck = backend.load_model(md / meta["checkpoint"]["path"], template=members[0].model if members else None)
        meta = {**meta, "r_max_A": backend.r_max_of(ck, model)}
        members.append(EnsembleMember(int(meta["member"]), model, meta, md))
    if not members:
        raise EnsembleError(f"no finished members in {d} (expected member-XXX/member.json with status 'complete')")
    variants = {m.variant for m in members}
    if len(variants) != 1:
        raise EnsembleError(f"{d}: members of several variants {sorted(variants)}")
    return members


def _predict_member_files(paths: Sequence[str], graphs: Sequence[Any], batch_size: int) -> np.ndarray:
    """Dask task: load each member's ``model.pt`` (into one template model) and predict ``graphs``."""
    from . import _ensemble_backend as backend

    out, template = [], None
    for path in paths:
        model, _ = backend.load_model(Path(path), template=template)
        template = template if template is not None else model
        out.append(backend.predict_graphs(model, graphs, batch_size=batch_size))
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
    from . import _ensemble_backend as backend

    if not members:
        raise ValueError("predict_ensemble() needs at least one member")
    variants = {m.variant for m in members}
    if len(variants) != 1:
        raise ValueError(f"members of several variants {sorted(variants)}")
    variant = variants.pop()
    r_max = {m.r_max_A for m in members}
    if len(r_max) != 1:
        raise ValueError(f"members with different r_max_A {sorted(r_max)}")
    graphs = backend.graphs_for(list(records_or_structures), variant, r_max.pop())
    n_workers = len(client.scheduler_info().get("workers", {})) if client is not None else 0
    if n_workers >= 2 and len(members) >= 2 and graphs:
        paths = [str(m.checkpoint_path) for m in members]
        chunks = [c for c in np.array_split(np.arange(len(members)), min(n_workers, len(members))) if c.size]
        shared = client.scatter(list(graphs), broadcast=True)
        futures = [client.submit(_predict_member_files, [paths[i] for i in c], shared, batch_size, pure=False) for c in chunks]
        return np.concatenate([f.result() for f in futures])
    return np.stack([backend.predict_graphs(m.model, graphs, batch_size=batch_size) for m in members])


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
    from .metrics import derived_properties
    from .physics import Moments

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


# ============================================================================ saved predictions


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


def predictions_path(profile: Any, variant: str) -> Path:
    from .paths import artifacts_dir

    name = profile if isinstance(profile, str) else _profile(profile).name
    return artifacts_dir(name, "predictions") / f"{_check_variant(variant)}.npz"


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
    from . import _ensemble_backend as backend
    from .metrics import reference_properties

    by_id = {r.material_id: r for r in records}
    missing = sorted(set(ids) - set(by_id))
    if missing:
        raise KeyError(f"{len(missing)} id(s) to predict are not among the records, e.g. {missing[:5]}")
    recs = [by_id[m] for m in ids]
    pred = predict_ensemble(members, recs)
    ps = PredictionSet(
        variant=members[0].variant, profile=profile if isinstance(profile, str) else _profile(profile).name,
        split=split, ids=list(ids), omega_meV=np.asarray(TARGET_GRID_MEV, dtype=float),
        member_index=np.array([m.index for m in members]), pred_a2f=pred, target_a2f=backend.targets(recs),
        reference=reference_properties(recs, "raw", mu_star=mu_star), mu_star=mu_star,
        ddof=int(_profile(profile).ensemble.ddof),
    )
    if save:
        save_predictions(predictions_path(ps.profile, ps.variant), ps)
    return ps


# ============================================================================ tables and OOB summaries


def table1_ensemble_rows(prediction_sets: Iterable[PredictionSet], *, n_train: int | None = None, data: str | None = None) -> list[dict[str, Any]]:
    """Table 1 rows (R2/MAE/RMSE of λ, ω_log, ω₂, T_c) per variant, model name = variant.

    Predicted properties are those of the ensemble-mean α²F (see the module docstring).
    """
    from .metrics import table1_rows

    rows: list[dict[str, Any]] = []
    for ps in prediction_sets:
        rows += table1_rows(ps.variant, ps.reference, ps.predicted("of_mean"), n_train=n_train, data=data)
    return rows


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


def spread_calibration(prediction_sets: Iterable[PredictionSet], properties: Sequence[str] | None = None):
    """How informative the ensemble spread is on a prediction set (beyond the paper).

    One row per (variant, property): ``mean_std`` (mean over materials of the std over members),
    ``MAE`` (of the ensemble-mean α²F's property), ``within_1std`` (fraction of materials whose error
    is at most one std — 0.68 for a calibrated Gaussian spread), ``spearman_std_error`` (rank
    correlation of std and |error|; NaN below 3 materials or for a constant column) and ``n``.
    """
    import pandas as pd
    from scipy.stats import spearmanr

    from .metrics import ALL_PROPERTIES

    props = tuple(ALL_PROPERTIES if properties is None else properties)
    rows = []
    for ps in prediction_sets:
        pred, std = ps.predicted("of_mean"), ps.predicted("member_std")
        for p in props:
            err = np.abs(pred[p].to_numpy() - ps.reference[p].to_numpy())
            sd = std[p].to_numpy()
            rho = float("nan")
            if err.size >= 3 and np.ptp(err) > 0 and np.ptp(sd) > 0:
                rho = float(spearmanr(sd, err).statistic)
            rows.append({"model": ps.variant, "property": p, "mean_std": float(sd.mean()), "MAE": float(err.mean()),
                         "within_1std": float(np.mean(err <= sd)), "spearman_std_error": rho, "n": int(err.size)})
    return pd.DataFrame(rows)


def findings_markdown(rows: Iterable[Mapping[str, Any]], calibration: Any = None, *,
                      references: Sequence[str] = ("Base", "Mean")) -> str:
    """Markdown bullet points generated from measured Table 1 rows (ensembles next to ``references``)
    and, optionally, :func:`spread_calibration` — for the notebook text, so no number is typed by hand."""
    from .metrics import PROPERTY_LABELS

    rows = list(rows)
    table: dict[tuple[str, str], Mapping[str, Any]] = {(str(r["model"]), str(r["metric"])): r for r in rows}
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    ens = [m for m in models if m in VARIANTS]
    refs = [m for m in references if m in models]
    if not ens:
        return "- no ensemble rows to describe"
    n_test = {m: table[(m, "MAE")].get("n_test") for m in models}
    lines = []
    for p in ("lambda", "omega_log_K", "omega_2_K"):
        fmt = ".2f" if p == "lambda" else ".0f"
        best = max(ens, key=lambda m: float(table[(m, "R2")][p]))
        parts = [f"{m} {float(table[(m, 'R2')][p]):.2f}" for m in ens + refs]
        maes = [f"{m} {float(table[(m, 'MAE')][p]):{fmt}}" for m in ens + refs]
        lines.append(f"- {PROPERTY_LABELS[p]}: R² {', '.join(parts)}; MAE {', '.join(maes)}. Best ensemble by R²: {best}.")
    tc = [f"{m} {float(table[(m, 'MAE')]['tc_mae_K']):.2f} K" for m in ens + refs]
    lines.append(f"- T_c (Allen–Dynes) MAE: {', '.join(tc)}.")
    sizes = sorted({int(v) for v in n_test.values() if v is not None and v == v})
    if sizes:
        lines.append(f"- Test materials scored: {', '.join(str(x) for x in sizes)} (the baseline leaves out materials "
                     "without its features, so its count can differ).")
    if calibration is not None and len(calibration):
        for m, grp in calibration.groupby("model", sort=False):
            g = grp.set_index("property")
            parts = [f"{PROPERTY_LABELS[p].split(' ')[0]} {100 * float(g.loc[p, 'within_1std']):.0f} %"
                     for p in g.index if p in PROPERTY_LABELS]
            rho = g["spearman_std_error"].dropna()
            rho_txt = (f"; rank correlation of spread and error {rho.min():.2f} to {rho.max():.2f}" if len(rho)
                       else "; too few materials for a rank correlation")
            lines.append(f"- {m} spread: test materials with |error| ≤ one std: {', '.join(parts)} "
                         f"(68 % for a calibrated Gaussian){rho_txt}.")
    return "\n".join(lines)


def _metas(source: Any) -> list[dict[str, Any]]:
    if isinstance(source, EnsembleRun):
        return source.members
    if isinstance(source, (str, Path)):
        d = Path(source)
        return [json.loads(p.read_text()) for p in sorted(d.glob("member-[0-9][0-9][0-9]/member.json"))]
    out = []
    for m in source:
        out.append(m.metadata if isinstance(m, EnsembleMember) else m)
    return out


def oob_summary(source: Any):
    """One row per member: OOB size/fraction, OOB MSE and MAEs, regime epochs, checkpoint used, timings.

    ``source``: an :class:`EnsembleRun`, an ensemble directory, loaded members or ``member.json`` dicts.
    """
    import pandas as pd

    rows = []
    for m in _metas(source):
        b, r, t, o = m["bootstrap"], m["regimes"], m["timings"], m["oob"]
        rows.append({
            "variant": m["variant"], "member": m["member"], "seed": m["seed"],
            "n_train": b["n_train"], "n_unique": b["n_unique"], "n_oob": b["n_oob"], "oob_fraction": b["oob_fraction"],
            "checkpoint": m["checkpoint"]["used"], "checkpoint_epoch": m["checkpoint"]["epoch"],
            "classical_epoch": r.get("classical_epoch"), "critical_epoch": r.get("critical_epoch"),
            "modern_epoch": r.get("modern_epoch"), "epochs_trained": r.get("epochs_trained"),
            "oob_mse": o["mse"], "oob_mae_lambda": o["mae_lambda"], "oob_mae_omega_log_K": o["mae_omega_log_K"],
            "oob_mae_omega_2_K": o["mae_omega_2_K"],
            "wall_s": t["wall_s"], "train_s": t["train_s"], "attempts": t["attempts"],
        })
    return pd.DataFrame(rows)


def oob_ensemble_properties(directory: Path | str, records: Sequence[Any], *, mu_star: float = MU_STAR_DEFAULT):
    """The bootstrap OOB estimate: for each training material, the mean α²F over the members for which
    it was out of bag, and its derived properties next to the raw-DFT reference.

    Returns ``(reference, predicted, n_members_oob)`` — two DataFrames indexed by material id (materials
    never out of bag are left out) and a Series of how many members predicted each.
    """
    import pandas as pd

    from .metrics import derived_properties, reference_properties

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
