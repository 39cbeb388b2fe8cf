"""Regimes of a double-descent validation curve (Sec. II.2): the pure detection rules and the policy the
training loop follows (:mod:`betenet.train` feeds :class:`DoubleDescentPolicy` one validation loss per
epoch and checkpoints what it says).

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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["REGIMES", "Regimes", "PolicyStep", "DoubleDescentPolicy", "smooth_val_curve", "detect_regimes"]


#: The three regimes of the double-descent curve, in the order they occur.
REGIMES: tuple[str, ...] = ("classical", "critical", "modern")


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
