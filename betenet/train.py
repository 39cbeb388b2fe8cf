"""Training one BETE-NET model with the tempered (double-descent) schedule of Sec. II.2.

The paper trains with AdamW (lr 0.005, no weight decay) on the MSE of the 51-bin α²F and lets the
model train *far past* the first validation minimum: the validation loss first falls (classical
regime), rises to a maximum while the training loss goes to ~0 (critical regime) and falls again
(modern regime, "second descent").  Here that schedule is an explicit policy,
:class:`DoubleDescentPolicy`, driven by a pure function, :func:`detect_regimes`; the training loop
(:func:`train_model`) only feeds it one validation loss per epoch and checkpoints what it says.

The regime detection rules are in :mod:`betenet.regimes`.

The checkpoint of a regime is the model *at* its epoch (the extremum of the smoothed curve).  The
trainer keeps the last ``h + 1`` model states in memory so the model of a newly settled epoch is
still available when the smoothed curve decides it is an extremum.  Separately, ``best.pt`` is the
model with the lowest *raw* validation loss (plain early stopping), kept for comparison.

Stopping: never before ``min_epochs``; never before the modern regime exists (that is what "train far
past the first minimum" means); then after ``patience`` settled epochs without a new modern minimum;
in any case at ``max_epochs``.

Files in ``run_dir``
--------------------
``run.json`` (what is being trained: configs, variant, material ids), ``last.pt`` (resume point:
model, optimizer, policy, history, RNG states, snapshot buffer; written every
``ExecutionConfig.checkpoint_every`` epochs and at the end), ``classical.pt`` / ``critical.pt`` / ``modern.pt`` / ``best.pt``
(self-describing model checkpoints via :func:`betenet.model.save_checkpoint`, with the regime, epoch
and losses in their metadata), ``final.pt`` (the model after the last epoch, once the run completes), ``history.csv`` (epoch, train_loss, val_loss, val_smoothed, seconds)
and ``result.json`` (the detected regimes and stop reason).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import resolve_profile
from .dataset import MaterialDataset
from .graphs import collate
from .jsonio import write_json_atomic
from .model import build_model, save_checkpoint
from .regimes import DoubleDescentPolicy, Regimes
from .seeding import seed_everything, torch_device, torch_dtype
from .splits import make_split

__all__ = [
    "RunMismatchError",
    "run_identity",
    "TrainData",
    "prepare_data",
    "TrainResult",
    "train_model",
    "evaluate_loss",
    "make_loss_fn",
]


# ----------------------------------------------------------------------------- data


class RunMismatchError(ValueError):
    """``run_dir`` holds a run of another configuration or other data; it is never overwritten."""


@dataclass
class TrainData:
    """Graphs and 51-bin targets of the training and validation materials (what the loop consumes).

    ``train_ids`` may repeat a material (bootstrap resamples).  ``n_node_attr``: 0 for CSO.
    """

    train_graphs: list[Any]
    train_targets: np.ndarray
    train_ids: list[str]
    val_graphs: list[Any]
    val_targets: np.ndarray
    val_ids: list[str]
    n_node_attr: int

    def ids_hash(self) -> str:
        h = hashlib.sha256()
        h.update("\n".join(self.train_ids).encode())
        h.update(b"\0")
        h.update("\n".join(self.val_ids).encode())
        return h.hexdigest()[:16]


def _is_record(x: Any) -> bool:
    return hasattr(x, "material_id") and hasattr(x, "structure") and hasattr(x, "a2f")


def _dataset_parts(ds: Any, what: str) -> tuple[list[Any], np.ndarray, list[str]]:
    """Adapter to :class:`betenet.dataset.MaterialDataset`: (graphs, (n, 51) targets, material ids)."""
    if ds.targets is None:
        raise ValueError(f"{what}: the dataset has no α²F targets (built with with_targets=False)")
    return list(ds.graphs), np.asarray(ds.targets, dtype=np.float64), list(ds.material_ids)


def _as_dataset(part: Any, variant: str, r_max_A: float, what: str):
    """A MaterialDataset of ``part`` (a dataset, or records that may repeat: bootstrap resamples use ``subset``)."""
    if isinstance(part, MaterialDataset):
        if part.variant != variant:
            raise ValueError(f"{what}: dataset built for variant {part.variant!r}, training variant {variant!r}")
        if part.r_max_A != float(r_max_A):
            raise ValueError(f"{what}: dataset built with r_max_A={part.r_max_A}, the model uses {r_max_A}")
        return part
    part = list(part)
    if not part:
        raise ValueError(f"{what}: no materials")
    bad = [type(x).__name__ for x in part if not _is_record(x)][:3]
    if bad:
        raise TypeError(f"{what}: expected MaterialRecords or a MaterialDataset, got items of type {bad}")
    unique: dict[str, Any] = {}
    for r in part:
        if r.material_id in unique and unique[r.material_id] is not r:
            other = unique[r.material_id]
            if other.structure != r.structure or not np.array_equal(other.a2f, r.a2f):
                raise ValueError(f"{what}: two different records share material_id {r.material_id!r}")
        unique.setdefault(r.material_id, r)
    ds = MaterialDataset(list(unique.values()), variant, r_max_A)
    if len(unique) == len(part):
        return ds
    return ds.subset(ds.index_of([r.material_id for r in part]))


def prepare_data(data: Any, variant: str, r_max_A: float, *, val_fraction: float = 0.2, seed: int = 0) -> TrainData:
    """Turn what :func:`train_model` accepts into :class:`TrainData`.

    ``data`` is either a sequence of MaterialRecords (the training split: an element-balanced
    ``val_fraction`` of it, :func:`betenet.splits.make_split` with ``seed``, is held out for validation)
    or a pair ``(train, val)`` of MaterialDatasets or record sequences (e.g. a bootstrap resample and its
    out-of-bag materials).
    """
    if isinstance(data, tuple) and len(data) == 2 and not _is_record(data[0]):
        train_part, val_part = data
    else:
        records = list(data)
        if not records or not all(_is_record(r) for r in records):
            raise TypeError("train_model data: expected a sequence of MaterialRecords or a (train, val) pair")
        split = make_split(records, val_fraction, seed, name="validation")
        by_id = {r.material_id: r for r in records}
        train_part = [by_id[m] for m in split.train_ids]
        val_part = [by_id[m] for m in split.test_ids]
    tr = _as_dataset(train_part, variant, r_max_A, "training data")
    va = _as_dataset(val_part, variant, r_max_A, "validation data")
    tg, ty, tid = _dataset_parts(tr, "training data")
    vg, vy, vid = _dataset_parts(va, "validation data")
    widths = {0 if g.node_attr is None else g.node_attr.shape[1] for g in tg + vg}
    if len(widths) != 1:
        raise ValueError(f"graphs disagree on node-attribute width: {sorted(widths)}")
    return TrainData(tg, ty, tid, vg, vy, vid, widths.pop())


# ----------------------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    ``history``: DataFrame ``epoch, train_loss, val_loss, val_smoothed, seconds`` (MSE of the 51-bin
    α²F; ``train_loss`` is the mean loss of the epoch's optimisation steps, ``val_loss`` is measured
    after them; ``val_smoothed`` is the policy's smoothed curve in linear units).
    ``checkpoints``: name -> path for the regimes found plus ``best`` (lowest raw validation loss) and,
    for a completed run, ``final`` (the model after the last epoch).
    """

    run_dir: Path
    variant: str
    history: Any
    regimes: Regimes
    checkpoints: dict[str, Path]
    best_epoch: int
    stop_reason: str
    epochs_trained: int
    resumed_from_epoch: int | None
    train_seconds: float
    train_seconds_total: float
    train_ids: list[str]
    val_ids: list[str]

    @property
    def preferred(self) -> str:
        """``"modern"`` when a double descent was found, else ``"best"`` (lowest raw validation loss)."""
        return "modern" if self.regimes.double_descent and "modern" in self.checkpoints else "best"

    def checkpoint(self, name: str) -> Path:
        try:
            return self.checkpoints[name]
        except KeyError:
            raise KeyError(f"run {self.run_dir}: no {name!r} checkpoint (found: {sorted(self.checkpoints)}); "
                           f"{self.regimes.summary()}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "variant": self.variant,
            "regimes": self.regimes.to_dict(),
            "checkpoints": {k: str(v) for k, v in self.checkpoints.items()},
            "best_epoch": self.best_epoch,
            "preferred": self.preferred,
            "stop_reason": self.stop_reason,
            "epochs_trained": self.epochs_trained,
            "resumed_from_epoch": self.resumed_from_epoch,
            "train_seconds": self.train_seconds,
            "train_seconds_total": self.train_seconds_total,
            "n_train": len(self.train_ids),
            "n_val": len(self.val_ids),
        }


#: The model after the last epoch of a finished run (written when the run completes).
FINAL_FILE = "final.pt"
REGIME_FILES: dict[str, str] = {"classical": "classical.pt", "critical": "critical.pt", "modern": "modern.pt", "best": "best.pt"}


def run_identity(model_cfg, train_cfg, data: TrainData) -> dict[str, Any]:
    """What defines a run (saved in ``run.json``; a resumption must match it): the model config, the train
    config without its stopping limits (:meth:`betenet.config.TrainConfig.identity`) and the data."""
    return {
        "model_config": dataclasses.asdict(model_cfg),
        "train_config": train_cfg.identity(),
        "n_node_attr": data.n_node_attr,
        "n_train": len(data.train_ids),
        "n_val": len(data.val_ids),
        "ids_hash": data.ids_hash(),
    }


def _check_identity(run_dir: Path, identity: dict[str, Any], data: TrainData) -> None:
    path = run_dir / "run.json"
    if not path.exists():
        write_json_atomic(path, {"schema": "betenet.train.run", **identity,
                                 "train_ids": data.train_ids, "val_ids": data.val_ids}, indent=2)
        return
    saved = json.loads(path.read_text())
    saved_identity = {k: saved.get(k) for k in identity}
    if json.loads(json.dumps(saved_identity, default=str)) != json.loads(json.dumps(identity, default=str)):
        diff = []
        for k in identity:
            a, b = saved_identity.get(k), json.loads(json.dumps(identity[k], default=str))
            if isinstance(a, dict) and isinstance(b, dict):
                diff += [f"{k}.{f}: saved {a.get(f)!r}, now {b.get(f)!r}" for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
            elif a != b:
                diff.append(f"{k}: saved {a!r}, now {b!r}")
        raise RunMismatchError(
            f"{run_dir} holds a run with another configuration or other data ({'; '.join(diff[:6])}); "
            "use another run_dir (or move this one away on purpose) — it is never overwritten"
        )


def _mse(pred, target):
    import torch

    return torch.nn.functional.mse_loss(pred, target)


class _Batches:
    """Collated batches of a graph list: one full batch (cached) or shuffled mini-batches."""

    def __init__(self, graphs, targets, batch_size: int, dtype, device=None) -> None:
        self._collate = collate
        self.graphs, self.targets, self.dtype, self.device = graphs, np.asarray(targets), dtype, device
        self.batch_size = int(batch_size) if batch_size and batch_size < len(graphs) else 0
        self._full = self._batch(graphs, self.targets) if self.batch_size == 0 else None

    def _batch(self, graphs, targets):
        b = self._collate(graphs, targets, dtype=self.dtype)
        return b if self.device is None or self.device.type == "cpu" else b.to(device=self.device)

    def __len__(self) -> int:
        return len(self.graphs)

    def iterate(self, generator=None):
        import torch

        if self.batch_size == 0:
            yield self._full
            return
        n = len(self.graphs)
        order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self._batch([self.graphs[i] for i in idx], self.targets[idx])


def evaluate_loss(model, batches: "_Batches") -> float:
    """Mean-squared error of ``model`` over all crystals and bins of ``batches`` (no gradients)."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for b in batches.iterate():
            pred = model(b)
            total += float(torch.sum((pred - b.y) ** 2))
            count += pred.numel()
    model.train(was_training)
    return total / count


def make_loss_fn(graphs, targets, *, dtype=None, batch_size: int = 0):
    """``loss_fn(model) -> float``: the MSE on fixed data (what :mod:`betenet.landscape` evaluates)."""
    import torch

    batches = _Batches(graphs, targets, batch_size, dtype or torch.float32)
    return lambda model: evaluate_loss(model, batches)


def _snapshot(model) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _to_cpu(state: Any) -> Any:
    """A (nested) state dict with every tensor on the CPU: resume files that load on any machine."""
    import torch

    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state


def _rng_state(gen) -> dict[str, Any]:
    import torch

    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "shuffle": gen.get_state()}


def _set_rng_state(state: dict[str, Any], gen) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    gen.set_state(state["shuffle"])


def _history_frame(history: dict[str, list], smoothed: np.ndarray | None):
    import pandas as pd

    df = pd.DataFrame(history)
    df["val_smoothed"] = 10.0 ** smoothed if smoothed is not None and len(smoothed) == len(df) else np.nan
    return df[["epoch", "train_loss", "val_loss", "val_smoothed", "seconds"]]


def train_model(
    data: Any,
    profile: Any,
    run_dir: str | Path,
    *,
    variant: str | None = None,
    max_epochs: int | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """Train (or resume, or just reload) one BETE-NET model with the double-descent policy.

    Parameters
    ----------
    data: MaterialRecords of the training split (validation held out inside, see :func:`prepare_data`)
        or a ``(train, val)`` pair of MaterialDatasets / record sequences.
    profile: profile name or :class:`betenet.config.Profile` (sections ``model``, ``train`` and ``execution``).
    run_dir: where the run lives (module docstring).  If it holds ``last.pt`` of the same configuration
        and data, training continues from it; a finished run whose stopping rule is still satisfied
        returns at once.  Another configuration/data raises :class:`RunMismatchError`.
    variant: ``"CSO" | "CPD" | "FPD"`` (default: ``profile.model.variant``).
    max_epochs: override ``profile.train.max_epochs`` (e.g. to extend a finished run).
    stop_after: stop (as if interrupted, without finishing the run) after this many epochs *of this
        call* — for tests and time-boxed sessions; ``last.pt`` is written so the next call resumes.
    """
    import torch

    prof = resolve_profile(profile)
    model_cfg = prof.model if variant is None else dataclasses.replace(prof.model, variant=variant)
    train_cfg = prof.train if max_epochs is None else dataclasses.replace(prof.train, max_epochs=int(max_epochs))
    if train_cfg.lr <= 0:
        raise ValueError(f"TrainConfig.lr must be > 0, got {train_cfg.lr}")
    if train_cfg.max_epochs < 1:
        raise ValueError(f"TrainConfig.max_epochs must be >= 1, got {train_cfg.max_epochs}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(train_cfg.seed)
    dtype = torch_dtype(train_cfg.dtype)
    execution = prof.execution
    device = torch_device(execution.device)
    td = prepare_data(data, model_cfg.variant, model_cfg.r_max_A, val_fraction=train_cfg.val_fraction, seed=train_cfg.seed)
    _check_identity(run_dir, run_identity(model_cfg, train_cfg, td), td)

    # built on the CPU (same initial weights for a seed on every machine), then moved
    model = build_model(model_cfg, td.n_node_attr, dtype=dtype, seed=train_cfg.seed).to(device)
    scratch = build_model(model_cfg, td.n_node_attr, dtype=dtype)  # CPU: holds candidate weights for saving
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    policy = DoubleDescentPolicy.from_config(train_cfg)
    shuffle = torch.Generator().manual_seed(int(train_cfg.seed) + 1)
    train_batches = _Batches(td.train_graphs, td.train_targets, train_cfg.batch_size, dtype, device)
    val_batches = _Batches(td.val_graphs, td.val_targets, train_cfg.batch_size, dtype, device)
    step_fn = model
    if execution.compile:
        step_fn = torch.compile(model)

    history: dict[str, list] = {"epoch": [], "train_loss": [], "val_loss": [], "seconds": []}
    buffer: dict[int, dict[str, Any]] = {}
    pending: dict[str, tuple[int, dict[str, Any]]] = {}
    saved_meta: dict[str, dict[str, Any]] = {}
    best_epoch, best_val = -1, float("inf")
    seconds_before = 0.0
    resumed_from = None
    last = run_dir / "last.pt"
    if last.exists():
        try:
            state = torch.load(last, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise RunMismatchError(f"{last}: cannot read the resume checkpoint ({exc}); move it away to restart") from exc
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        policy.load_state_dict(state["policy"])
        history = {k: list(v) for k, v in state["history"].items()}
        buffer = {int(k): v for k, v in state["buffer"].items()}
        saved_meta = dict(state["saved"])
        best_epoch, best_val = int(state["best_epoch"]), float(state["best_val"])
        seconds_before = float(state["train_seconds_total"])
        _set_rng_state(state["rng"], shuffle)
        resumed_from = len(history["epoch"])

    def flush(final: bool) -> None:
        for name, (epoch, weights) in pending.items():
            scratch.load_state_dict(weights)
            i = history["epoch"].index(epoch)
            meta = {"regime": name, "epoch": epoch, "train_loss": history["train_loss"][i],
                    "val_loss": history["val_loss"][i], "variant": model_cfg.variant, "profile": prof.name,
                    "train_config": dataclasses.asdict(train_cfg), "n_train": len(td.train_ids),
                    "n_val": len(td.val_ids), "ids_hash": td.ids_hash()}
            save_checkpoint(run_dir / REGIME_FILES[name], scratch, model_cfg, **meta)
            saved_meta[name] = {"epoch": epoch, "val_loss": meta["val_loss"], "train_loss": meta["train_loss"]}
        pending.clear()
        reg = policy.regimes()
        _history_frame(history, reg.smoothed if len(history["epoch"]) else None).to_csv(run_dir / "history.csv", index=False)
        payload = {
            "schema": "betenet.train.last", "model": _to_cpu(model.state_dict()), "optimizer": _to_cpu(opt.state_dict()),
            "policy": policy.state_dict(), "history": history, "buffer": _to_cpu(buffer), "saved": saved_meta,
            "best_epoch": best_epoch, "best_val": best_val, "rng": _rng_state(shuffle),
            "train_seconds_total": seconds_before + (time.perf_counter() - t_call),
        }
        tmp = last.with_name("last.pt.tmp")
        torch.save(payload, tmp)
        tmp.replace(last)

    t_call = time.perf_counter()
    stop, reason = policy.stop_decision()
    n_done = len(history["epoch"])
    total = train_cfg.max_epochs
    bar = None
    if progress and not stop:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=n_done, desc=f"train {model_cfg.variant}", leave=False)
    epochs_this_call = 0
    interrupted = False
    while not stop:
        epoch = len(history["epoch"])
        t0 = time.perf_counter()
        model.train()
        tot, cnt = 0.0, 0
        for b in train_batches.iterate(shuffle):
            opt.zero_grad(set_to_none=True)
            loss = _mse(step_fn(b), b.y)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * b.n_crystals
            cnt += b.n_crystals
        train_loss = tot / cnt
        val_loss = evaluate_loss(model, val_batches)
        if not np.isfinite(val_loss) or not np.isfinite(train_loss):
            flush(final=False)
            raise FloatingPointError(f"{run_dir}: non-finite loss at epoch {epoch} (train {train_loss}, val {val_loss})")
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["seconds"].append(time.perf_counter() - t0)
        snap = _snapshot(model)
        buffer[epoch] = snap
        for old in [e for e in buffer if e < epoch - policy.lag]:
            del buffer[old]
        step = policy.update(val_loss)
        for name, e in step.save.items():
            if e not in buffer:  # cannot happen by construction (decisions lag exactly policy.lag epochs)
                raise RuntimeError(f"policy chose epoch {e} for {name!r} but only {sorted(buffer)} are held")
            pending[name] = (e, buffer[e])
        if val_loss < best_val:
            best_epoch, best_val = epoch, val_loss
            pending["best"] = (epoch, snap)
        stop, reason = step.stop, step.reason
        epochs_this_call += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}", regimes="/".join(step.regimes.found) or "-")
        if stop_after is not None and epochs_this_call >= stop_after and not stop:
            interrupted = True
            break
        if stop or (epoch + 1) % max(1, execution.checkpoint_every) == 0:
            flush(final=stop)
    if bar is not None:
        bar.close()
    if interrupted:
        flush(final=False)
    train_seconds = time.perf_counter() - t_call
    regimes = policy.regimes()
    checkpoints = {name: run_dir / REGIME_FILES[name] for name in REGIME_FILES if (run_dir / REGIME_FILES[name]).exists()
                   and (name == "best" or regimes.epoch(name) is not None)}
    result = TrainResult(
        run_dir=run_dir, variant=model_cfg.variant, history=_history_frame(history, regimes.smoothed),
        regimes=regimes, checkpoints=checkpoints, best_epoch=best_epoch,
        stop_reason=("interrupted (stop_after)" if interrupted else reason), epochs_trained=len(history["epoch"]),
        resumed_from_epoch=resumed_from, train_seconds=train_seconds,
        train_seconds_total=seconds_before + train_seconds, train_ids=td.train_ids, val_ids=td.val_ids,
    )
    if not interrupted:
        final = run_dir / FINAL_FILE
        if history["epoch"] and (epochs_this_call or not final.exists()):
            i = len(history["epoch"]) - 1
            save_checkpoint(final, model, model_cfg, regime="final", epoch=history["epoch"][i],
                            train_loss=history["train_loss"][i], val_loss=history["val_loss"][i],
                            variant=model_cfg.variant, profile=prof.name, train_config=dataclasses.asdict(train_cfg),
                            n_train=len(td.train_ids), n_val=len(td.val_ids), ids_hash=td.ids_hash(),
                            stop_reason=reason)
        if final.exists():
            result.checkpoints["final"] = final
        write_json_atomic(run_dir / "result.json", {"schema": "betenet.train.result", "status": "complete",
                                                    **result.to_dict(), "saved": saved_meta}, indent=2)
    return result
