"""Training one BETE-NET model with the tempered (double-descent) schedule of Sec. II.2.

The paper trains with AdamW (lr 0.005, no weight decay) on the MSE of the 51-bin α²F and lets the
model train *far past* the first validation minimum: the validation loss first falls (classical
regime), rises to a maximum while the training loss goes to ~0 (critical regime) and falls again
(modern regime, "second descent").  Here that schedule is an explicit policy,
:class:`DoubleDescentPolicy`, driven by a pure function, :func:`detect_regimes`; the training loop
(:func:`train_model`) only feeds it one validation loss per epoch and checkpoints what it says.

Regime detection rules (:func:`detect_regimes`)
-----------------------------------------------
Let ``v[t]`` be the validation loss after epoch ``t`` (0-based) and ``h = window // 2``.

1. **Smoothing.** ``s = rolling_median(log10(v), window)``: a centred running median over
   ``window`` epochs (shrunk symmetrically at the two ends of the curve, so it stays centred).  The median removes the isolated spikes
   that Adam at a fixed learning rate produces, and on a smooth monotone stretch it returns the curve
   itself, so extrema are not shifted.  Working in ``log10`` makes the thresholds relative.
2. **Settled part.** Online, ``s[t]`` depends on ``v[t + h]``; only ``s[0 : n - h]`` is final after
   ``n`` epochs.  The policy (and, by default, :func:`detect_regimes`) uses the settled part only, so
   a regime found online is never revised later and every reported epoch has a checkpoint.
3. **Classical minimum** (end of the first descent).  Scan the settled curve keeping its running
   minimum.  The first epoch where ``s`` exceeds the running minimum by ``log10(1 + prominence)``
   (i.e. the smoothed loss has risen by a factor ``1 + prominence``) *closes* the classical regime;
   the classical epoch is the arg-min of ``s`` before it.  Never closed -> no classical minimum is
   reported (a monotone, or not yet turning, curve).
4. **Critical maximum.**  After the classical regime closes, keep the running maximum of ``s``.  The
   first epoch where ``s`` falls below it by ``log10(1 + prominence)`` confirms the peak; the critical
   epoch is that arg-max.  Never confirmed -> no critical regime (the curve kept rising or flattened:
   classical overfitting only).
5. **Modern minimum** (second descent).  Once the peak is confirmed, the modern epoch is the arg-min
   of ``s`` after the peak.  :attr:`Regimes.double_descent` is true only if that minimum comes back
   down *near or below* the classical one: ``s_modern <= s_classical + log10(1 + prominence)``.
   A confirmed peak whose second descent stays higher is reported as such (``double_descent`` false,
   :attr:`Regimes.second_descent_ratio` > 1 + prominence), not as a double descent.

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
model, optimizer, policy, history, RNG states, snapshot buffer; written every ``checkpoint_every``
epochs and at the end), ``classical.pt`` / ``critical.pt`` / ``modern.pt`` / ``best.pt``
(self-describing model checkpoints via :func:`betenet.model.save_checkpoint`, with the regime, epoch
and losses in their metadata), ``final.pt`` (the model after the last epoch, once the run completes), ``history.csv`` (epoch, train_loss, val_loss, val_smoothed, seconds)
and ``result.json`` (the detected regimes and stop reason).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "REGIMES",
    "Regimes",
    "PolicyStep",
    "DoubleDescentPolicy",
    "smooth_val_curve",
    "detect_regimes",
    "RunMismatchError",
    "TrainData",
    "prepare_data",
    "TrainResult",
    "train_model",
    "evaluate_loss",
    "make_loss_fn",
    "benchmark_training",
    "supercell_record",
]

#: The three regimes of the double-descent curve, in the order they occur.
REGIMES: tuple[str, ...] = ("classical", "critical", "modern")


# ----------------------------------------------------------------------------- regime detection


def _check_curve(values: Sequence[float], what: str = "val_losses") -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence of per-epoch losses, got shape {v.shape}")
    bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
    if bad.size:
        raise ValueError(
            f"{what}: losses must be finite and > 0 (log scale); bad value(s) {v[bad[:5]].tolist()} at epoch(s) {bad[:5].tolist()}"
        )
    return v


def _check_window(window: int) -> int:
    if int(window) != window or window < 1 or window % 2 == 0:
        raise ValueError(f"smoothing window must be a positive odd integer, got {window!r}")
    return int(window)


def smooth_val_curve(val_losses: Sequence[float], window: int) -> np.ndarray:
    """``log10`` of the losses, smoothed by a centred running median over ``window`` (odd) epochs.

    Near the two ends the window shrinks *symmetrically* (half-width ``min(window // 2, i, n - 1 - i)``),
    so it stays centred: the first and last values are unsmoothed, and a monotone curve is returned
    unchanged everywhere.  ``window=1`` returns ``log10(val_losses)``.
    """
    v = _check_curve(val_losses)
    w = _check_window(window)
    logv = np.log10(v)
    n = logv.size
    h = w // 2
    if h == 0 or n < 3:
        return logv
    out = logv.copy()
    if n >= w:
        out[h : n - h] = np.median(np.lib.stride_tricks.sliding_window_view(logv, w), axis=1)
    for i in list(range(min(h, n))) + list(range(max(h, n - h), n)):
        k = min(h, i, n - 1 - i)
        out[i] = np.median(logv[i - k : i + k + 1])
    return out


@dataclass(frozen=True)
class Regimes:
    """The regimes found on a validation curve (epochs are 0-based indices into the curve).

    ``classical_epoch``/``critical_epoch``/``modern_epoch`` are ``None`` when that regime was not
    found (see the module docstring for the rules).  ``rise_epoch`` is where the classical regime was
    closed (smoothed loss up by ``1 + prominence``), ``fall_epoch`` where the critical peak was
    confirmed.  ``smoothed`` is the smoothed ``log10`` curve over all epochs; ``n_settled`` how many of
    its leading values were used.
    """

    classical_epoch: int | None
    critical_epoch: int | None
    modern_epoch: int | None
    rise_epoch: int | None
    fall_epoch: int | None
    n_epochs: int
    n_settled: int
    window: int
    prominence: float
    smoothed: np.ndarray = dataclasses.field(repr=False, compare=False)
    candidate: tuple[str, int] | None = None

    def epoch(self, regime: str) -> int | None:
        """The epoch of a *found* regime, else ``None``."""
        if regime not in REGIMES:
            raise ValueError(f"unknown regime {regime!r}; expected one of {REGIMES}")
        return getattr(self, f"{regime}_epoch")

    def tracked(self, regime: str) -> int | None:
        """The found epoch, or the provisional extremum being tracked before it is confirmed (:attr:`candidate`)."""
        e = self.epoch(regime)
        if e is None and self.candidate is not None and self.candidate[0] == regime:
            return self.candidate[1]
        return e

    def smoothed_loss(self, regime: str) -> float | None:
        """Smoothed validation loss (linear scale) at the regime's epoch, or ``None``."""
        e = self.epoch(regime)
        return None if e is None else float(10.0 ** self.smoothed[e])

    @property
    def found(self) -> tuple[str, ...]:
        """Names of the regimes that were found, in order."""
        return tuple(r for r in REGIMES if self.epoch(r) is not None)

    @property
    def second_descent_ratio(self) -> float | None:
        """Smoothed val loss at the modern minimum divided by that at the classical minimum (``None`` if either is missing)."""
        if self.modern_epoch is None or self.classical_epoch is None:
            return None
        return float(10.0 ** (self.smoothed[self.modern_epoch] - self.smoothed[self.classical_epoch]))

    @property
    def double_descent(self) -> bool:
        """All three regimes found and the second descent reaches (near or below) the classical minimum."""
        r = self.second_descent_ratio
        return self.critical_epoch is not None and r is not None and r <= 1.0 + self.prominence

    def summary(self) -> str:
        """One sentence describing what was found, for notebooks and logs."""
        if self.classical_epoch is None:
            return (
                f"No classical minimum: over {self.n_epochs} epochs the smoothed validation loss never rose "
                f"{100 * self.prominence:.0f}% above its running minimum (monotone descent or noise only)."
            )
        if self.critical_epoch is None:
            return (
                f"Classical minimum at epoch {self.classical_epoch}; the validation loss then rose but never fell "
                f"{100 * self.prominence:.0f}% below its maximum again: no critical peak or second descent within "
                f"{self.n_epochs} epochs (classical overfitting only)."
            )
        ratio = self.second_descent_ratio
        kind = "a double descent" if self.double_descent else "a second descent that stays above the classical minimum"
        return (
            f"Classical minimum at epoch {self.classical_epoch}, critical maximum at epoch {self.critical_epoch}, "
            f"modern minimum at epoch {self.modern_epoch} (smoothed val loss {ratio:.2f}x the classical one): {kind}."
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "smoothed"}
        d.update(
            found=list(self.found),
            double_descent=self.double_descent,
            second_descent_ratio=self.second_descent_ratio,
            smoothed_val_loss={r: self.smoothed_loss(r) for r in REGIMES},
            summary=self.summary(),
        )
        return d


def detect_regimes(
    val_losses: Sequence[float],
    *,
    window: int = 21,
    prominence: float = 0.05,
    settled_only: bool = True,
) -> Regimes:
    """Find the classical minimum, critical maximum and modern minimum of a validation-loss curve.

    Pure function of the curve; rules in the module docstring.  ``prominence`` is relative (0.05: a
    5 % rise/fall of the smoothed loss).  With ``settled_only`` (default, what the online policy uses)
    the last ``window // 2`` epochs, whose smoothed values would still change with more epochs, are
    ignored; ``settled_only=False`` uses the whole (end-shrunk) smoothed curve.
    """
    if not prominence > 0:
        raise ValueError(f"prominence must be > 0 (a relative change, e.g. 0.05), got {prominence!r}")
    w = _check_window(window)
    s = smooth_val_curve(val_losses, w)
    n = s.size
    n_settled = max(0, n - w // 2) if settled_only else n
    thr = float(np.log10(1.0 + prominence))
    classical = critical = modern = rise = fall = None
    candidate: tuple[str, int] | None = None
    x = s[:n_settled]
    if x.size:
        run_min = np.minimum.accumulate(x)
        up = np.flatnonzero(x - run_min >= thr)
        if not up.size:
            candidate = ("classical", int(np.argmin(x)))
        else:
            rise = int(up[0])
            classical = int(np.argmin(x[:rise]))
            tail = x[classical:]
            run_max = np.maximum.accumulate(tail)
            down = np.flatnonzero(run_max - tail >= thr)
            down = down[down + classical > rise]
            if not down.size:
                candidate = ("critical", classical + int(np.argmax(tail)))
            else:
                fall = int(down[0]) + classical
                critical = classical + int(np.argmax(tail[: fall - classical]))
                modern = critical + int(np.argmin(x[critical:]))
    return Regimes(classical, critical, modern, rise, fall, n, n_settled, w, float(prominence), s, candidate)


# ----------------------------------------------------------------------------- the online policy


@dataclass(frozen=True)
class PolicyStep:
    """What the policy says after one epoch.

    ``save``: regime name -> epoch whose model must be kept for that regime (found or still a
    candidate, :meth:`Regimes.tracked`; only regimes whose epoch changed this step).  By construction
    that epoch is always ``epoch - lag`` (the newly settled one).  ``stop`` and its ``reason``; the
    current :class:`Regimes` (whose :meth:`Regimes.epoch` says which regimes are confirmed).
    """

    epoch: int
    save: dict[str, int]
    stop: bool
    reason: str
    regimes: Regimes


class DoubleDescentPolicy:
    """The tempered schedule: consume one validation loss per epoch, say what to checkpoint and when to stop.

    Keeps no models (the trainer does): it only reports, after each :meth:`update`, which regime
    checkpoints now point to which epoch.  Because the smoothing window is centred, a decision about
    epoch ``t`` is made at epoch ``t + lag`` (``lag = window // 2``); the trainer therefore holds the
    model states of the last ``lag + 1`` epochs.  State is a plain dict (:meth:`state_dict`) for resume.
    """

    def __init__(
        self,
        *,
        window: int = 21,
        prominence: float = 0.05,
        patience: int = 200,
        min_epochs: int = 0,
        max_epochs: int | None = None,
    ) -> None:
        self.window = _check_window(window)
        if not prominence > 0:
            raise ValueError(f"prominence must be > 0, got {prominence!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {patience!r}")
        self.prominence = float(prominence)
        self.patience = int(patience)
        self.min_epochs = int(min_epochs)
        self.max_epochs = None if max_epochs is None else int(max_epochs)
        self.val_losses: list[float] = []
        self._epochs: dict[str, int | None] = {r: None for r in REGIMES}

    @classmethod
    def from_config(cls, train_cfg: Any) -> "DoubleDescentPolicy":
        """Build from a :class:`betenet.config.TrainConfig`."""
        return cls(
            window=train_cfg.smoothing_window,
            prominence=train_cfg.regime_prominence,
            patience=train_cfg.patience,
            min_epochs=train_cfg.min_epochs,
            max_epochs=train_cfg.max_epochs,
        )

    @property
    def lag(self) -> int:
        """Epochs between an epoch and the decision about it."""
        return self.window // 2

    def regimes(self) -> Regimes:
        return detect_regimes(self.val_losses, window=self.window, prominence=self.prominence, settled_only=True)

    def update(self, val_loss: float) -> PolicyStep:
        """Record the validation loss of the next epoch and decide."""
        v = float(val_loss)
        epoch = len(self.val_losses)
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"validation loss of epoch {epoch} must be finite and > 0, got {val_loss!r}")
        self.val_losses.append(v)
        reg = self.regimes()
        save = {}
        for r in REGIMES:
            e = reg.tracked(r)
            if e is not None and e != self._epochs[r]:
                save[r] = e
            self._epochs[r] = e
        stop, reason = self.stop_decision(reg)
        return PolicyStep(epoch, save, stop, reason, reg)

    def stop_decision(self, regimes: Regimes | None = None) -> tuple[bool, str]:
        """``(stop, reason)`` for the curve seen so far (also used after a resume with new limits)."""
        reg = self.regimes() if regimes is None else regimes
        n = len(self.val_losses)
        if self.max_epochs is not None and n >= self.max_epochs:
            return True, f"max_epochs ({self.max_epochs}) reached"
        if n >= self.min_epochs and reg.modern_epoch is not None:
            since = (reg.n_settled - 1) - reg.modern_epoch
            if since >= self.patience:
                return True, (
                    f"patience: no new modern (second-descent) minimum for {since} settled epochs "
                    f"(patience {self.patience}); modern minimum at epoch {reg.modern_epoch}"
                )
        return False, ""

    def state_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "prominence": self.prominence,
            "patience": self.patience,
            "min_epochs": self.min_epochs,
            "max_epochs": self.max_epochs,
            "val_losses": list(self.val_losses),
            "epochs": dict(self._epochs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the curve and decisions; the rule parameters must match (``max_epochs``/``patience`` may change)."""
        for key in ("window", "prominence"):
            if state[key] != getattr(self, key):
                raise ValueError(f"policy state has {key}={state[key]!r}, this policy {getattr(self, key)!r}")
        self.val_losses = [float(x) for x in state["val_losses"]]
        self._epochs = {r: state["epochs"].get(r) for r in REGIMES}

    def __repr__(self) -> str:
        return (
            f"DoubleDescentPolicy(window={self.window}, prominence={self.prominence}, patience={self.patience}, "
            f"min_epochs={self.min_epochs}, max_epochs={self.max_epochs}, epochs_seen={len(self.val_losses)})"
        )



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
    from .dataset import MaterialDataset

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
        from .splits import make_split

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


#: TrainConfig fields that may change between a run and its resumption (limits, bookkeeping, and the
#: notebook-level ``dd_sweep`` that does not affect a single run).
RESUMABLE_FIELDS: tuple[str, ...] = ("max_epochs", "patience", "min_epochs", "checkpoint_every", "compile", "dd_sweep",
                                     "device")
#: The model after the last epoch of a finished run (written when the run completes).
FINAL_FILE = "final.pt"
REGIME_FILES: dict[str, str] = {"classical": "classical.pt", "critical": "critical.pt", "modern": "modern.pt", "best": "best.pt"}


def _resolve_profile(profile: Any):
    from .config import resolve_profile

    return resolve_profile(profile)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)


def _run_identity(model_cfg, train_cfg, data: TrainData) -> dict[str, Any]:
    tc = {k: v for k, v in dataclasses.asdict(train_cfg).items() if k not in RESUMABLE_FIELDS}
    return {
        "model_config": dataclasses.asdict(model_cfg),
        "train_config": tc,
        "n_node_attr": data.n_node_attr,
        "n_train": len(data.train_ids),
        "n_val": len(data.val_ids),
        "ids_hash": data.ids_hash(),
    }


def _check_identity(run_dir: Path, identity: dict[str, Any], data: TrainData) -> None:
    path = run_dir / "run.json"
    if not path.exists():
        _write_json_atomic(path, {"schema": "betenet.train.run", **identity,
                                  "train_ids": data.train_ids, "val_ids": data.val_ids})
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
        from .graphs import collate

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
    import random

    import torch

    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "shuffle": gen.get_state()}


def _set_rng_state(state: dict[str, Any], gen) -> None:
    import random

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
    profile: profile name or :class:`betenet.config.Profile` (sections ``model`` and ``train``).
    run_dir: where the run lives (module docstring).  If it holds ``last.pt`` of the same configuration
        and data, training continues from it; a finished run whose stopping rule is still satisfied
        returns at once.  Another configuration/data raises :class:`RunMismatchError`.
    variant: ``"CSO" | "CPD" | "FPD"`` (default: ``profile.model.variant``).
    max_epochs: override ``profile.train.max_epochs`` (e.g. to extend a finished run).
    stop_after: stop (as if interrupted, without finishing the run) after this many epochs *of this
        call* — for tests and time-boxed sessions; ``last.pt`` is written so the next call resumes.
    """
    import time

    import torch

    from .model import build_model, save_checkpoint
    from .seeding import seed_everything, torch_device, torch_dtype

    prof = _resolve_profile(profile)
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
    device = torch_device(train_cfg.device)
    td = prepare_data(data, model_cfg.variant, model_cfg.r_max_A, val_fraction=train_cfg.val_fraction, seed=train_cfg.seed)
    _check_identity(run_dir, _run_identity(model_cfg, train_cfg, td), td)

    # built on the CPU (same initial weights for a seed on every machine), then moved
    model = build_model(model_cfg, td.n_node_attr, dtype=dtype, seed=train_cfg.seed).to(device)
    scratch = build_model(model_cfg, td.n_node_attr, dtype=dtype)  # CPU: holds candidate weights for saving
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    policy = DoubleDescentPolicy.from_config(train_cfg)
    shuffle = torch.Generator().manual_seed(int(train_cfg.seed) + 1)
    train_batches = _Batches(td.train_graphs, td.train_targets, train_cfg.batch_size, dtype, device)
    val_batches = _Batches(td.val_graphs, td.val_targets, train_cfg.batch_size, dtype, device)
    step_fn = model
    if train_cfg.compile:
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
        if stop or (epoch + 1) % max(1, train_cfg.checkpoint_every) == 0:
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
        _write_json_atomic(run_dir / "result.json", {"schema": "betenet.train.result", "status": "complete",
                                                     **result.to_dict(), "saved": saved_meta})
    return result


# ----------------------------------------------------------------------------- timing (paper-size estimates)


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
    import tempfile
    import time

    import torch

    from .dataset import MaterialDataset
    from .seeding import torch_device

    prof = _resolve_profile(profile)
    if device is not None:
        prof = prof.with_overrides(train={"device": device})
    if epochs < 1 or warmup < 0 or n_train < 1 or n_val < 1:
        raise ValueError(f"benchmark_training: need epochs >= 1, warmup >= 0, n_train, n_val >= 1 "
                         f"(got {epochs}, {warmup}, {n_train}, {n_val})")
    dev = torch_device(prof.train.device)  # before the graphs are built: a missing GPU fails at once
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
