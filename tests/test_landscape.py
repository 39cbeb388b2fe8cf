"""Loss landscapes (Li et al. 2018): filter normalisation, orthogonality, an analytic quadratic case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from betenet.landscape import (
    filter_axis,
    filter_normalize,
    landscape_table,
    loss_landscape,
    quadratic_fit,
    random_directions,
)
from betenet.plots.landscape import plot_landscapes


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


class _MLP(torch.nn.Module):
    """torch.nn.Linear layers (filters = rows) and an e3nn FullyConnectedNet (filters = columns)."""

    def __init__(self):
        super().__init__()
        from e3nn.nn import FullyConnectedNet

        self.lin = torch.nn.Linear(4, 6)
        self.fc = FullyConnectedNet([6, 5, 3], torch.nn.functional.silu)
        self.out = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.out(self.fc(torch.tanh(self.lin(x))))


def _regression(seed=1, n=120, k=5):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, k, generator=g, dtype=torch.float64)
    w_true = torch.randn(k, 1, generator=g, dtype=torch.float64)
    y = X @ w_true + 0.7 + 0.05 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, y


def test_filter_axis_rows_for_torch_columns_for_e3nn():
    m = _MLP()
    assert filter_axis(m.lin, "weight", m.lin.weight) == 0
    layer = m.fc[0] if hasattr(m.fc, "__getitem__") else next(mod for mod in m.fc.modules() if type(mod).__name__ == "_Layer")
    assert filter_axis(layer, "weight", layer.weight) == 1
    assert filter_axis(m.lin, "bias", m.lin.bias) is None


def test_filter_normalisation_per_filter_norms():
    m = _MLP()
    raw = {n: torch.randn_like(p) * 37.0 for n, p in m.named_parameters()}
    d = filter_normalize(raw, m)
    # torch Linear: each output row has the norm of the weight's row
    torch.testing.assert_close(d["lin.weight"].norm(dim=1), m.lin.weight.detach().norm(dim=1))
    torch.testing.assert_close(d["out.weight"].norm(dim=1), m.out.weight.detach().norm(dim=1))
    # e3nn FC layer weight (h_in, h_out): each column (output unit)
    fc_names = [n for n in d if n.startswith("fc.")]
    assert fc_names
    params = dict(m.named_parameters())
    for n in fc_names:
        torch.testing.assert_close(d[n].norm(dim=0), params[n].detach().norm(dim=0))
        # and it is *not* row-normalised (the rule matters)
        assert not torch.allclose(d[n].norm(dim=1), params[n].detach().norm(dim=1))
    # biases: zero direction (Li et al. ignore='biasbn')
    assert torch.count_nonzero(d["lin.bias"]) == 0 and torch.count_nonzero(d["out.bias"]) == 0
    # bias="filter": a 1-D parameter is one filter
    d2 = filter_normalize(raw, m, bias="filter")
    torch.testing.assert_close(d2["lin.bias"].norm(), m.lin.bias.detach().norm())


def test_e3nn_flat_weights_are_normalised_not_ignored():
    from e3nn import o3

    lin = o3.Linear("4x0e+2x1o", "3x0e+1x1o")
    (name, p), = list(lin.named_parameters())
    assert p.dim() == 1 and name == "weight"
    d = filter_normalize({name: torch.randn_like(p)}, lin)
    torch.testing.assert_close(d[name].norm(), p.detach().norm())


def test_random_directions_orthogonal_and_deterministic():
    m = _MLP()
    d1, d2 = random_directions(m, seed=5)
    flat1 = torch.cat([v.ravel() for v in d1.values()]).double()
    flat2 = torch.cat([v.ravel() for v in d2.values()]).double()
    cos = float(flat1 @ flat2 / (flat1.norm() * flat2.norm()))
    assert abs(cos) < 0.05
    # filter norms stay exact in the default mode
    torch.testing.assert_close(d2["lin.weight"].norm(dim=1), m.lin.weight.detach().norm(dim=1))
    e1, e2 = random_directions(m, seed=5, orthogonal="exact")
    g1 = torch.cat([v.ravel() for v in e1.values()]).double()
    g2 = torch.cat([v.ravel() for v in e2.values()]).double()
    assert abs(float(g1 @ g2)) < 1e-6 * float(g1.norm() * g2.norm())  # float32 parameters
    again, _ = random_directions(m, seed=5)
    for k in d1:
        assert torch.equal(d1[k], again[k])
    other, _ = random_directions(m, seed=6)
    assert not torch.equal(d1["lin.weight"], other["lin.weight"])


def test_quadratic_fit_exact_on_a_quadratic():
    a = np.linspace(-1, 1, 9)
    b = np.linspace(-1, 1, 9)
    A, B = np.meshgrid(a, b, indexing="ij")
    H = np.array([[3.0, 0.5], [0.5, 1.0]])
    g = np.array([0.2, -0.1])
    L = 2.0 + g[0] * A + g[1] * B + 0.5 * (H[0, 0] * A**2 + 2 * H[0, 1] * A * B + H[1, 1] * B**2)
    Hf, gf, c, rmse, _ = quadratic_fit(a, b, L, (4, 4), 2)
    np.testing.assert_allclose(Hf, H, atol=1e-9)
    np.testing.assert_allclose(gf, g, atol=1e-9)
    assert c == pytest.approx(2.0) and rmse < 1e-9


def test_landscape_of_linear_regression_matches_analytics():
    """For MSE linear regression the slice is an exact quadratic: Hessian DᵀHD, minimum -(DᵀHD)⁻¹Dᵀg."""
    X, y = _regression()
    model = torch.nn.Linear(X.shape[1], 1).double()
    with torch.no_grad():  # near (not at) the least-squares optimum so the minimum is offset from (0, 0)
        sol = torch.linalg.lstsq(torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1), y).solution.ravel()
        model.weight.copy_((sol[:-1] + 0.05 * torch.arange(X.shape[1], dtype=X.dtype))[None])
        model.bias.copy_(sol[-1:])

    def loss_fn(m):
        with torch.no_grad():
            return float(torch.mean((m(X) - y) ** 2))

    d1, d2 = random_directions(model, seed=3, orthogonal="exact")
    ls = loss_landscape(model, loss_fn, n_grid=11, span=0.2, directions=(d1, d2), label="lin")
    D = torch.stack([d1["weight"].ravel(), d2["weight"].ravel()], dim=1)  # biases are zeroed
    H = 2.0 * X.T @ X / len(X)
    g = 2.0 * X.T @ (model(X) - y).detach() / len(X)
    H2 = (D.T @ H @ D).numpy()
    g2 = (D.T @ g).ravel().numpy()
    expected_eigs = np.linalg.eigvalsh(H2)
    np.testing.assert_allclose(ls.curvature_eigs, expected_eigs, rtol=1e-6)
    assert ls.curvature == pytest.approx(np.trace(H2) / 2, rel=1e-6)
    offset = -np.linalg.solve(H2, g2)
    assert np.hypot(*offset) > 0.01  # the test is not trivial
    np.testing.assert_allclose(ls.min_offset, offset, atol=1e-8)
    assert ls.center_loss == pytest.approx(loss_fn(model))
    assert ls.losses.shape == (11, 11) and ls.alphas[0] == -0.2 and ls.betas[-1] == 0.2
    assert ls.losses[5, 5] == pytest.approx(ls.center_loss)  # grid centre = unperturbed weights
    assert ls.fit_rmse < 1e-10


def test_weights_restored_and_grid_shape():
    m = _MLP()
    x = torch.randn(16, 4)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    ls = loss_landscape(m, lambda mod: float(mod(x).pow(2).mean()), n_grid=5, span=0.5, seed=1)
    assert ls.losses.shape == (5, 5)
    for n, p in m.named_parameters():
        assert torch.equal(p.detach(), before[n]), n
    # also after an error inside the loss function
    calls = {"n": 0}

    def failing(mod):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("boom")
        return 1.0

    with pytest.raises(RuntimeError, match="boom"):
        loss_landscape(m, failing, n_grid=3, seed=1)
    for n, p in m.named_parameters():
        assert torch.equal(p.detach(), before[n]), n


def test_bad_grid_and_missing_direction():
    m = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="n_grid"):
        loss_landscape(m, lambda mod: 1.0, n_grid=2)
    with pytest.raises(KeyError, match="bias"):
        loss_landscape(m, lambda mod: 1.0, n_grid=3, directions=({"weight": torch.zeros(1, 2)}, {"weight": torch.zeros(1, 2)}))


def test_table_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    X, y = _regression()
    model = torch.nn.Linear(X.shape[1], 1).double()
    lss = {
        name: loss_landscape(model, lambda m: float(torch.mean((m(X) - y) ** 2)), n_grid=5, span=s, seed=0, label=name)
        for name, s in (("classical", 0.5), ("critical", 1.0))
    }
    table = landscape_table(lss)
    assert list(table.index) == ["classical", "critical"] and "curvature" in table.columns
    fig = plot_landscapes(lss)
    assert len(fig.axes) >= 4
    fig.savefig(tmp_path / "l.png")


def test_center_curvature_is_grid_independent_and_refinement_guarded():
    """The finite-difference Hessian at (0, 0) is the analytic one for a quadratic slice, whatever the grid."""
    X, y = _regression()
    model = torch.nn.Linear(X.shape[1], 1).double()
    d1, d2 = random_directions(model, seed=3, orthogonal="exact")

    def loss_fn(m):
        with torch.no_grad():
            return float(torch.mean((m(X) - y) ** 2))

    D = torch.stack([d1["weight"].ravel(), d2["weight"].ravel()], dim=1)
    expected = np.linalg.eigvalsh((D.T @ (2.0 * X.T @ X / len(X)) @ D).numpy())
    for n_grid, span in [(3, 2.0), (5, 0.5), (9, 0.1)]:
        ls = loss_landscape(model, loss_fn, n_grid=n_grid, span=span, directions=(d1, d2), fd_step=1e-2)
        np.testing.assert_allclose(ls.center_curvature_eigs, expected, rtol=1e-5)
        assert ls.summary()["center_curvature"] == pytest.approx(expected.mean(), rel=1e-5)
        assert 0.0 <= ls.min_loss <= ls.losses.min() + 1e-12
    skipped = loss_landscape(model, loss_fn, n_grid=3, span=0.1, directions=(d1, d2), fd_step=None)
    assert np.isnan(skipped.center_curvature) and np.isnan(skipped.fd_step)
