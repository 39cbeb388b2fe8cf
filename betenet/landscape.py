"""Loss landscapes after Li, Xu, Taylor, Studer & Goldstein (2018), "Visualizing the loss landscape of neural nets".

The training loss is evaluated on a 2-D slice of weight space through the trained weights θ:

    L(α, β) = loss(θ + α δ + β η),     (α, β) on an n x n grid over [-span, span]²     (LandscapeConfig)

Directions
----------
* ``δ`` and ``η`` start as independent standard Gaussian vectors with the shapes of the parameters
  (a seeded ``torch.Generator``, :attr:`LandscapeConfig.seed`).
* **Filter normalisation** (Li et al. Sec. 4): every *filter* of the direction is rescaled to the
  norm of the corresponding filter of θ, ``d_f <- d_f / ||d_f|| * ||θ_f||``, which removes the
  scale invariance of ReLU-like networks from the picture.  A filter is one output unit:
  row ``i`` (dim 0) of a ``torch.nn.Linear``/convolution weight, but **column** ``j`` (dim 1) of an
  e3nn ``FullyConnectedNet`` layer weight, which is stored ``(h_in, h_out)`` and applied as ``x @ W``.
* **1-D parameters.** Parameters whose name ends in ``bias`` get a zero direction (Li et al.'s
  ``ignore='biasbn'``, their default for the figures).  e3nn stores the weights of ``o3.Linear`` and
  of tensor products as flat 1-D vectors — they are the bulk of an equivariant network, so they are
  *not* ignored: each such vector is normalised as one filter (``||d|| = ||θ||``).  0-d parameters
  likewise.
* **Orthogonalisation.** Li et al. rely on two random high-dimensional vectors being nearly
  orthogonal; we make it exact: ``η <- η - (η·δ / δ·δ) δ`` (one Gram–Schmidt step over the full
  concatenated vector), then re-apply the filter normalisation to ``η`` and repeat the two steps a
  few times.  The two constraints (per-filter norms and exact orthogonality) cannot in general hold
  together exactly; we keep **filter normalisation exact** and report the remaining cosine
  (:attr:`Landscape.cosine`, typically ~1e-3 or less for a real network).  Use ``orthogonal="exact"``
  to end with the Gram–Schmidt step instead (exactly orthogonal, filter norms then off by that much).

Summary numbers
---------------
* **Minimum offset**: the grid point of lowest loss, refined by the minimiser of the quadratic fit
  below when that minimiser lies inside the fitted patch; reported as ``(α, β)`` and its length.
  The paper reads its distance from (0, 0) as a proxy for the model's *bias*.
* **Curvature**: a least-squares fit of ``L ≈ c + g·x + ½ xᵀ H x`` to the ``(2r+1)²`` grid points
  around the grid minimum (``r = fit_radius``, clipped to the grid; the whole grid if it is smaller).
  We report the eigenvalues of the 2 x 2 Hessian ``H`` (``curvature_eigs``, ascending) and their mean
  (``curvature`` = tr H / 2, the mean second derivative along the two directions).  Units: loss per
  (unit of α)²; since directions are filter-normalised, α = 1 means "moving every filter by its own
  norm", so curvatures are comparable between checkpoints of the same network.  The paper reads the
  curvature as a proxy for the model's *variance*.  The fit describes the basin at the grid's
  resolution (and is only used to refine the minimum when its fitted value is plausible: >= 0 and
  not above the grid minimum).  Because a coarse grid over a wide span sees a far-from-quadratic
  loss, we also report the **curvature at the trained weights** from central finite differences with
  a small step ``fd_step`` (``center_curvature_eigs``, ``center_curvature``), which does not depend
  on the grid.

The loss function is any ``loss_fn(model) -> float`` (for BETE-NET: the MSE on the training set,
:func:`betenet.train.make_loss_fn`).  The model's weights are restored after evaluation, also on error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


__all__ = [
    "Landscape",
    "random_directions",
    "filter_normalize",
    "filter_axis",
    "loss_landscape",
    "quadratic_fit",
    "landscape_table",
]


# ----------------------------------------------------------------------------- directions


def filter_axis(module: Any, param_name: str, param: Any) -> int | None:
    """The axis that indexes *filters* (output units) of ``param`` in ``module``; ``None`` = one filter / ignored.

    ``torch.nn`` weights: dim 0.  e3nn ``FullyConnectedNet`` layers (``e3nn.nn._fc._Layer``, weight
    ``(h_in, h_out)`` applied as ``x @ W``): dim 1.  1-D / 0-d parameters: ``None``.
    """
    if param.dim() <= 1:
        return None
    cls = type(module)
    if cls.__name__ == "_Layer" and cls.__module__.startswith("e3nn.nn"):
        return 1
    return 0


def _named_params_with_modules(model):
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            yield full, module, p_name, p


def filter_normalize(direction: Mapping[str, Any], model, *, bias: Literal["zero", "filter"] = "zero") -> dict[str, Any]:
    """Filter-normalise ``direction`` (name -> tensor, shapes of ``model``'s parameters) to the model's weights.

    Returns a new dict.  See the module docstring for what a filter is and how 1-D parameters are handled
    (``bias="zero"``: parameters named ``*bias`` get a zero direction; ``"filter"``: normalised as one filter).
    """
    import torch

    out: dict[str, Any] = {}
    for name, module, p_name, p in _named_params_with_modules(model):
        if name not in direction:
            raise KeyError(f"direction has no entry for parameter {name!r}")
        d = direction[name].detach().clone()
        if d.shape != p.shape:
            raise ValueError(f"direction for {name!r} has shape {tuple(d.shape)}, parameter {tuple(p.shape)}")
        w = p.detach()
        axis = filter_axis(module, p_name, p)
        if axis is None:
            if p.dim() <= 1 and p_name.endswith("bias") and bias == "zero":
                d.zero_()
            else:
                dn = torch.linalg.vector_norm(d)
                d = d * (torch.linalg.vector_norm(w) / dn) if dn > 0 else d.zero_()
        else:
            dm = d.movedim(axis, 0).reshape(d.shape[axis], -1)
            wm = w.movedim(axis, 0).reshape(w.shape[axis], -1)
            dn = torch.linalg.vector_norm(dm, dim=1, keepdim=True)
            wn = torch.linalg.vector_norm(wm, dim=1, keepdim=True)
            scale = torch.where(dn > 0, wn / torch.where(dn > 0, dn, torch.ones_like(dn)), torch.zeros_like(dn))
            dm = dm * scale
            moved_shape = (d.shape[axis],) + tuple(s for i, s in enumerate(d.shape) if i != axis)
            d = dm.reshape(moved_shape).movedim(0, axis).contiguous()
        out[name] = d
    return out


def _dot(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    return float(sum((a[k].double() * b[k].double()).sum() for k in a))


def _cosine(a, b) -> float:
    na, nb = math.sqrt(_dot(a, a)), math.sqrt(_dot(b, b))
    return _dot(a, b) / (na * nb) if na > 0 and nb > 0 else 0.0


def random_directions(
    model,
    seed: int,
    *,
    bias: Literal["zero", "filter"] = "zero",
    orthogonal: Literal["filter", "exact"] = "filter",
    n_iter: int = 5,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two filter-normalised, (Gram–Schmidt) orthogonalised random Gaussian directions for ``model``.

    Deterministic in ``seed`` (and the parameter shapes).  See the module docstring for the
    ``orthogonal`` choice (``"filter"``: per-filter norms exact, cosine ≈ 0; ``"exact"``: cosine = 0).
    """
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    params = dict(model.named_parameters())
    raw = [
        {n: torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) for n, p in params.items()}
        for _ in range(2)
    ]
    d1 = filter_normalize(raw[0], model, bias=bias)
    d2 = filter_normalize(raw[1], model, bias=bias)
    for i in range(max(1, n_iter)):
        c = _dot(d2, d1) / _dot(d1, d1)
        d2 = {k: d2[k] - c * d1[k] for k in d2}
        if orthogonal == "exact" and i == n_iter - 1:
            break
        d2 = filter_normalize(d2, model, bias=bias)
    return d1, d2


# ----------------------------------------------------------------------------- the landscape


@dataclass
class Landscape:
    """Loss on a 2-D grid around a model's weights.

    ``losses[i, j]`` is the loss at ``(alphas[i], betas[j])`` (α along the first direction).
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    center_loss: float
    min_offset: tuple[float, float]
    min_loss: float
    curvature_eigs: tuple[float, float]
    curvature: float
    cosine: float
    fit_rmse: float
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: Eigenvalues (ascending) of the 2x2 Hessian of the slice *at the trained weights* (0, 0) from central
    #: finite differences with step :attr:`fd_step` (independent of the grid spacing); NaN if not computed.
    center_curvature_eigs: tuple[float, float] = (float("nan"), float("nan"))
    fd_step: float = float("nan")

    @property
    def center_curvature(self) -> float:
        """Mean of :attr:`center_curvature_eigs` (tr H / 2 at (0, 0))."""
        return float(np.mean(self.center_curvature_eigs))

    @property
    def min_distance(self) -> float:
        """Length of :attr:`min_offset` (distance of the minimum from the unperturbed weights)."""
        return float(math.hypot(*self.min_offset))

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "center_loss": self.center_loss,
            "min_loss": self.min_loss,
            "min_alpha": self.min_offset[0],
            "min_beta": self.min_offset[1],
            "min_distance": self.min_distance,
            "curvature": self.curvature,
            "curvature_min": self.curvature_eigs[0],
            "curvature_max": self.curvature_eigs[1],
            "fit_rmse": self.fit_rmse,
            "center_curvature": self.center_curvature,
            "center_curvature_min": self.center_curvature_eigs[0],
            "center_curvature_max": self.center_curvature_eigs[1],
            "fd_step": self.fd_step,
            "direction_cosine": self.cosine,
            "n_grid": int(self.alphas.size),
            "span": float(self.alphas.max()),
        }

    def to_npz(self, path) -> None:
        np.savez(
            path, alphas=self.alphas, betas=self.betas, losses=self.losses,
            summary=np.array(repr(self.summary())), label=np.array(self.label),
        )


def quadratic_fit(alphas: np.ndarray, betas: np.ndarray, losses: np.ndarray, center: tuple[int, int], radius: int):
    """Least-squares ``L ≈ c + g·x + ½ xᵀHx`` on the grid patch of half-width ``radius`` around index ``center``.

    Returns ``(H (2x2), g (2,), c, rmse, (lo_a, hi_a, lo_b, hi_b))`` where the last are the patch bounds in α/β.
    """
    n_a, n_b = losses.shape
    i0, j0 = center
    r = int(radius)
    if n_a < 3 or n_b < 3:
        raise ValueError(f"a quadratic fit needs at least a 3x3 grid, got {losses.shape}")
    ia = np.arange(max(0, min(i0 - r, n_a - 2 * r - 1)), min(n_a, max(i0 + r + 1, 2 * r + 1)))
    jb = np.arange(max(0, min(j0 - r, n_b - 2 * r - 1)), min(n_b, max(j0 + r + 1, 2 * r + 1)))
    A, B = np.meshgrid(alphas[ia], betas[jb], indexing="ij")
    L = losses[np.ix_(ia, jb)]
    a, b, y = A.ravel(), B.ravel(), L.ravel()
    X = np.stack([np.ones_like(a), a, b, 0.5 * a * a, a * b, 0.5 * b * b], axis=1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    c, ga, gb, haa, hab, hbb = coef
    H = np.array([[haa, hab], [hab, hbb]])
    bounds = (alphas[ia].min(), alphas[ia].max(), betas[jb].min(), betas[jb].max())
    return H, np.array([ga, gb]), float(c), float(np.sqrt(np.mean(resid**2))), bounds


def loss_landscape(
    model,
    loss_fn: Callable[[Any], float],
    *,
    n_grid: int = 21,
    span: float = 1.0,
    seed: int = 0,
    directions: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    fit_radius: int = 2,
    bias: Literal["zero", "filter"] = "zero",
    label: str = "",
    progress: bool = False,
    fd_step: float | None = 0.01,
) -> Landscape:
    """Evaluate ``loss_fn(model)`` on ``θ + α δ + β η`` for an ``n_grid`` x ``n_grid`` grid over ``[-span, span]²``.

    ``directions``: ``(δ, η)`` (name -> tensor); default :func:`random_directions` ``(model, seed)``.
    ``loss_fn`` is called under ``torch.no_grad()``.  The original weights are restored afterwards
    (also if ``loss_fn`` raises).  Curvature/minimum rules: module docstring.  ``fd_step``: step of the
    central finite-difference Hessian at (0, 0) (8 extra evaluations; ``None`` skips it).
    """
    import torch

    if n_grid < 3:
        raise ValueError(f"n_grid must be >= 3 for a curvature estimate, got {n_grid}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span}")
    params = dict(model.named_parameters())
    d1, d2 = directions if directions is not None else random_directions(model, seed, bias=bias)
    for d, which in ((d1, "first"), (d2, "second")):
        missing = set(params) - set(d)
        if missing:
            raise KeyError(f"{which} direction misses parameter(s) {sorted(missing)[:5]}")
    alphas = np.linspace(-span, span, n_grid)
    betas = np.linspace(-span, span, n_grid)
    losses = np.empty((n_grid, n_grid))
    saved = {n: p.detach().clone() for n, p in params.items()}
    grid = [(i, j) for i in range(n_grid) for j in range(n_grid)]
    if progress:
        from tqdm.auto import tqdm

        grid = tqdm(grid, desc=f"landscape {label}".strip(), leave=False)
    try:
        with torch.no_grad():
            center = float(loss_fn(model))
            for i, j in grid:
                a, b = float(alphas[i]), float(betas[j])
                for n, p in params.items():
                    p.copy_(saved[n] + a * d1[n].to(p.dtype) + b * d2[n].to(p.dtype))
                losses[i, j] = float(loss_fn(model))
            fd = {}
            if fd_step:
                h = float(fd_step)
                for a, b in [(h, 0), (-h, 0), (0, h), (0, -h), (h, h), (h, -h), (-h, h), (-h, -h)]:
                    for n, p in params.items():
                        p.copy_(saved[n] + a * d1[n].to(p.dtype) + b * d2[n].to(p.dtype))
                    fd[(a, b)] = float(loss_fn(model))
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(saved[n])
    if not np.all(np.isfinite(losses)):
        bad = np.argwhere(~np.isfinite(losses))[:3].tolist()
        raise FloatingPointError(f"landscape {label!r}: non-finite loss at grid point(s) {bad}; reduce span")
    i0, j0 = np.unravel_index(int(np.argmin(losses)), losses.shape)
    H, g, c, rmse, (alo, ahi, blo, bhi) = quadratic_fit(alphas, betas, losses, (i0, j0), fit_radius)
    eigs = np.linalg.eigvalsh(H)
    offset = (float(alphas[i0]), float(betas[j0]))
    min_loss = float(losses[i0, j0])
    if eigs[0] > 0:
        x = -np.linalg.solve(H, g)
        fitted = float(c + g @ x + 0.5 * x @ H @ x)
        # refine only where the fit is trustworthy: inside the patch and not below zero / above the grid minimum
        if alo <= x[0] <= ahi and blo <= x[1] <= bhi and 0.0 <= fitted <= min_loss:
            offset = (float(x[0]), float(x[1]))
            min_loss = fitted
    center_eigs = (float("nan"), float("nan"))
    if fd_step:
        h = float(fd_step)
        haa = (fd[(h, 0)] - 2 * center + fd[(-h, 0)]) / h**2
        hbb = (fd[(0, h)] - 2 * center + fd[(0, -h)]) / h**2
        hab = (fd[(h, h)] - fd[(h, -h)] - fd[(-h, h)] + fd[(-h, -h)]) / (4 * h**2)
        ce = np.linalg.eigvalsh(np.array([[haa, hab], [hab, hbb]]))
        center_eigs = (float(ce[0]), float(ce[1]))
    return Landscape(
        alphas=alphas, betas=betas, losses=losses, center_loss=center, min_offset=offset, min_loss=min_loss,
        curvature_eigs=(float(eigs[0]), float(eigs[1])), curvature=float(np.trace(H) / 2), cosine=_cosine(d1, d2),
        fit_rmse=rmse, label=label, meta={"n_grid": n_grid, "span": span, "seed": seed, "fit_radius": fit_radius},
        center_curvature_eigs=center_eigs, fd_step=float(fd_step) if fd_step else float("nan"),
    )


def landscape_table(landscapes: Mapping[str, Landscape]):
    """DataFrame (one row per landscape) with the minimum offset and curvature numbers."""
    import pandas as pd

    return pd.DataFrame([{"regime": k, **v.summary()} for k, v in landscapes.items()]).set_index("regime")
