"""The on-disk layout of an ensemble: schemas, directories, the recipe fingerprint, each member's state
and files, loading finished members, and what a run left (:class:`EnsembleRun`, :func:`oob_summary`)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..config import VARIANTS, resolve_profile
from ..datasource import source_of
from ..jsonio import read_json, sha256_file
from ..paths import artifacts_dir

__all__ = ["ENSEMBLE_SCHEMA", "MEMBER_SCHEMA", "PREDICTIONS_SCHEMA", "SCHEMA_VERSION", "VARIANTS", "EnsembleError", "StaleMemberError", "ensemble_directory", "member_directory", "recipe_fingerprint", "member_train_config", "MemberState", "member_status", "member_lock_path", "EnsembleMember", "load_ensemble", "EnsembleRun", "oob_summary"]


ENSEMBLE_SCHEMA = "betenet.ensemble"


MEMBER_SCHEMA = "betenet.ensemble.member"


PREDICTIONS_SCHEMA = "betenet.ensemble.predictions"


SCHEMA_VERSION = 1


class EnsembleError(RuntimeError):
    """An ensemble could not be trained or loaded; the message names the member and its directory."""


class StaleMemberError(EnsembleError):
    """A member on disk was trained with another recipe (training data or config) than the one asked for."""


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant


def ensemble_directory(profile: str, variant: str, *, create: bool = True) -> Path:
    """``artifacts/<profile>/ensembles/<variant>`` (``profile``: the profile's name)."""
    return artifacts_dir(profile, "ensembles", check_variant(variant), create=create)


def member_directory(profile: str, variant: str, index: int, *, create: bool = False) -> Path:
    """``artifacts/<profile>/ensembles/<variant>/member-XXX`` (``profile``: the profile's name)."""
    d = ensemble_directory(profile, variant, create=create) / f"member-{int(index):03d}"
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


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
    model config, the members' train config and ensemble seed.  Not ``n_members``, not how members
    execute (``profile.execution``, ``profile.dask``).

    Returns ``(hex digest, the recipe dict it hashes)``.
    """
    prof = resolve_profile(profile)
    train_cfg = dataclasses.asdict(member_train_config(prof))
    # members draw their seeds from the bootstrap (``ensemble_seed`` below) and validate out of bag: the
    # single model's ``seed`` and ``val_fraction`` do not apply to them
    del train_cfg["seed"], train_cfg["val_fraction"]
    # ``dd_sweep`` (now StudyConfig) was a TrainConfig field, always empty for members: kept in the recipe so
    # that the fingerprints of existing ensembles do not change
    train_cfg["dd_sweep"] = ()
    model_cfg = dataclasses.asdict(dataclasses.replace(prof.model, variant=variant))
    recipe = {
        "variant": variant,
        "train_ids": sorted(r.material_id for r in train_records),
        "records_hash": _records_hash(train_records, variant),
        "model": model_cfg,
        "train": train_cfg,
        "ensemble_seed": prof.ensemble.seed,
    }

    if source_of(prof) == "upstream":  # member k = the paper's resample k (absent for ours: fingerprints unchanged)
        recipe["bootstrap"] = "paper: data/upstream/indices/idx_{train,valid}_V2_<k>.txt"
    payload = json.dumps(recipe, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest(), recipe


def member_train_config(profile: Any, seed: int | None = None):
    """The :class:`betenet.config.TrainConfig` of ensemble members: ``profile.train`` with
    ``profile.ensemble.train_overrides`` applied (and ``seed`` set, when given)."""
    prof = resolve_profile(profile)
    overrides = dict(prof.ensemble.train_overrides)
    known = {f.name for f in dataclasses.fields(prof.train)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"EnsembleConfig.train_overrides: unknown TrainConfig field(s) {unknown}; known: {sorted(known)}")
    if seed is not None:
        overrides["seed"] = int(seed)
    return dataclasses.replace(prof.train, **overrides)



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
    meta = read_json(d / "member.json")
    if meta is not None and meta.get("schema") == MEMBER_SCHEMA and meta.get("status") == "complete":
        if fingerprint is not None and meta.get("fingerprint") != fingerprint:
            return "stale"
        ckpt = d / meta.get("checkpoint", {}).get("path", "model.pt")
        if not ckpt.exists():
            return "corrupt"
        if verify_checksum and sha256_file(ckpt) != meta["checkpoint"].get("sha256"):
            return "corrupt"
        return "complete"
    boot = read_json(d / "bootstrap.json")
    if fingerprint is not None and boot is not None and boot.get("fingerprint") != fingerprint:
        return "stale"
    return "partial"


def archive_member(directory: Path, fingerprint: str | None) -> Path:
    """Move a stale/corrupt member directory to ``<ensemble>/stale/<fp>/`` (never delete)."""
    d = Path(directory)
    tag = (fingerprint or "unknown")[:12]
    dest = d.parent / "stale" / tag / d.name
    if dest.exists():
        dest = dest.with_name(f"{d.name}-{_dt.datetime.now().strftime('%Y%m%dT%H%M%S%f')}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(d), str(dest))
    return dest


def member_lock_path(directory: Path | str) -> Path:
    """The lock file of a member directory (beside it, so an empty member directory stays ``missing``)."""
    d = Path(directory)
    return d.parent / f".{d.name}.lock"


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
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"ensemble directory {d} does not exist")
    info = read_json(d / "ensemble.json") or {}
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
        # torch is imported only when members are loaded: ``betenet ensemble status`` and the readers of saved
        # predictions stay light
        from ..model import load_model

        model, cfg, _ = load_model(md / meta["checkpoint"]["path"], template=members[0].model if members else None)
        meta = {**meta, "r_max_A": float(cfg.r_max_A)}
        members.append(EnsembleMember(int(meta["member"]), model, meta, md))
    if not members:
        raise EnsembleError(f"no finished members in {d} (expected member-XXX/member.json with status 'complete')")
    variants = {m.variant for m in members}
    if len(variants) != 1:
        raise EnsembleError(f"{d}: members of several variants {sorted(variants)}")
    return members


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
