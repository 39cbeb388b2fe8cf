"""BETE-NET: a periodic E(3)-equivariant graph network predicting the 51-bin α²F (Methods IV.2).

The architecture is Chen et al. (2021)'s e3nn PhDOS network (itself e3nn's ``gate_points_2101``
``Network``), re-implemented here on plain PyTorch + e3nn 0.6.0 building blocks, without
torch_geometric / torch-scatter:

* **node input**: the mass-weighted one-hot element vector (118 entries, atomic mass in amu at
  index Z - 1), embedded by ``Linear(118, embedding_dim)`` + ReLU -> ``64x0e``;
* **node attributes** (enter every self-interaction as the second operand of a fully connected
  tensor product):

  - **CSO** (``cso_node_attr="element"``, default, as Chen et al.): the element one-hot vector,
    embedded by a second ``Linear(118, embedding_dim)`` + ReLU -> ``64x0e``;
    ``cso_node_attr="constant"`` uses the constant scalar ``1x0e`` instead (a much smaller model);
  - **CPD / FPD**: the site-projected (coarse / fine) phonon DOS binned on the 51-point target grid
    (see :mod:`betenet.dataset`), embedded by ``Linear(51, embedding_dim)`` + ReLU -> ``64x0e``
    ("embedding the site-projected PhDOS in the node attributes", Sec. II.2);

* **edges**: spherical harmonics ``Y^l(r̂)`` for l <= ``lmax`` ('component' normalisation) times a
  smooth cut-off ``(1 - cos(π u))/2`` with ``u = 2 (r / r_max - 1)`` clipped (e3nn's
  ``smooth_cutoff``), and ``n_radial_basis`` Gaussians on [0, r_max] (scaled by √n) feeding a radial
  MLP ``[n_basis, radial_neurons x radial_layers, n_weights]`` (SiLU) that gives the per-edge
  tensor-product weights;
* **layers**: ``n_layers`` gated convolutions (hidden irreps ``mul x (0e + 0o + 1e + 1o)`` up to
  ``lmax``, SiLU/tanh scalars, sigmoid/tanh gates) and a final convolution to ``51x0e``;
  each convolution is ``sc(x, z) + lin2(Σ_neighbours tp(lin1(x, z), Y, w(r)) / √num_neighbors, z)``
  with e3nn's sin/cos(π/8) mixing;
* **output**: ReLU per atom (Chen et al.; ``output_activation="softplus"`` is the smooth
  alternative), then the **mean over the atoms** of each crystal -> ``(n_crystals, 51)`` α²F bins,
  non-negative.  Unlike Chen et al. there is no division by the maximum: α²F's magnitude is the
  physics (λ).

Performance (see ``benchmarks/``): the self-interactions ``FullyConnectedTensorProduct(x, z)`` with
``64x0e`` attributes hold 97 % of the 2.46 M parameters and cost ``N x 64 x mul_in x mul_out``
per node.  Because ``z`` enters linearly, ``Σ_uv W_uvw x_u z_v = Σ_u x_u M_uw(z)`` with
``M(z) = z·W``; :class:`AttrLinear` computes ``M`` once per *distinct* attribute row (for CSO, one
per element present in the batch) and then applies a per-node ``mul_in x mul_out`` matrix, which is
numerically the same function as e3nn's ``FullyConnectedTensorProduct`` (a test checks it) at a
fraction of the cost.  For CSO the atoms are, inside ``forward``, relabelled so that they are grouped
by species; every self-interaction is then one ``(n_species_atoms, mul_in) @ (mul_in, mul_out)``
product per species instead of a gathered per-atom matrix (about 2x faster training steps; exact;
eager mode only, ``torch.compile`` traces the gather path).  The radial MLP depends only on the edge length; with
``dedup_edge_lengths`` it is evaluated once per distinct length (per crystal) — exact in value, and
automatically switched off when positions require gradients.  The per-edge tensor product itself is
:class:`EdgeTensorProduct` (the same function as e3nn's ``TensorProduct``, checked to 1e-12 in values
and gradients): batched matrix products instead of broadcasting multiplies, and the gather of node
features / scatter of messages done per input block and per output path, so that no edge-sized tensor
is concatenated or split; together about 2x faster training steps than e3nn's product on CPU.

Nothing happens at import; dtypes are explicit (``dtype`` argument; never ``set_default_dtype``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from . import __version__
from .config import VARIANTS, ModelConfig
from .constants import N_TARGET_BINS
from .graphs import N_ELEMENTS, GraphBatch, atomic_masses_amu, collate

__all__ = [
    "BeteNet",
    "AttrLinear",
    "EdgeTensorProduct",
    "CheckpointError",
    "build_model",
    "predict",
    "n_parameters",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
]

CHECKPOINT_FORMAT = "betenet.model"
CHECKPOINT_VERSION = 1


def _o3():
    from e3nn import o3

    return o3


class AttrLinear(nn.Module):
    """``FullyConnectedTensorProduct(irreps_in, f"{n_attr}x0e", irreps_out)`` for scalar attributes.

    Same parameters (one flat ``weight`` in e3nn's layout and ``randn`` initialisation), same
    path normalisation ('element'/'component') and same outputs as the e3nn module; the
    contraction is reordered: ``M = z @ W`` per attribute row, then ``out = x · M[attr_index]``.

    ``forward(x, z, attr_index=None, segments=None)``: ``x`` (N, irreps_in.dim); ``z`` (K, n_attr)
    attribute rows; ``attr_index`` (N,) long maps each of the N rows of ``x`` to a row of ``z``
    (``None``: K == N).  ``segments``: instead of ``attr_index``, a list of K row counts when the rows
    of ``x`` are grouped by attribute row (the first ``segments[0]`` rows use ``z[0]``, ...): then each
    group is one ``(n_k, mul_in) @ (mul_in, mul_out)`` matrix product and no per-row matrix is
    gathered (the fast path for species-valued attributes).
    """

    def __init__(self, irreps_in, n_attr: int, irreps_out) -> None:
        super().__init__()
        o3 = _o3()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.n_attr = int(n_attr)
        # e3nn FullyConnectedTensorProduct instructions with in2 = n_attr x 0e: (i_in, i_out) with equal irreps
        self.instructions: list[tuple[int, int]] = [
            (i_in, i_out)
            for i_in, (_, ir_in) in enumerate(self.irreps_in)
            for i_out, (_, ir_out) in enumerate(self.irreps_out)
            if ir_in == ir_out
        ]
        shapes = [(self.irreps_in[i].mul, self.n_attr, self.irreps_out[o].mul) for i, o in self.instructions]
        self.weight_numel = sum(a * b * c for a, b, c in shapes)
        self.weight = nn.Parameter(torch.randn(self.weight_numel))
        # group instructions by output block; 'element' path normalisation: alpha = 1/sqrt(sum fan_in)
        # blocks: (out slice start, stop, mul_out, ir dim, paths [(in start, in stop, weight offset, mul_in)], alpha)
        self._blocks: list[tuple[int, int, int, int, list[tuple[int, int, int, int]], float]] = []
        offset = 0
        offsets = []
        for (i, o), (a, b, c) in zip(self.instructions, shapes):
            offsets.append(offset)
            offset += a * b * c
        in_slices = [(s.start, s.stop) for s in self.irreps_in.slices()]
        out_slices = [(s.start, s.stop) for s in self.irreps_out.slices()]
        for o, (mul_out, ir_out) in enumerate(self.irreps_out):
            paths = [
                (in_slices[i][0], in_slices[i][1], offsets[k], self.irreps_in[i].mul)
                for k, (i, oo) in enumerate(self.instructions)
                if oo == o
            ]
            if paths:
                fan_in = sum(mul * self.n_attr for *_, mul in paths)
                self._blocks.append((out_slices[o][0], out_slices[o][1], mul_out, ir_out.dim, paths, 1.0 / math.sqrt(fan_in)))
        self._dim_out = self.irreps_out.dim
        mask = torch.zeros(self.irreps_out.dim)
        for start, stop, *_ in self._blocks:
            mask[start:stop] = 1.0
        self.register_buffer("output_mask", mask)

    def forward(self, x: torch.Tensor, z: torch.Tensor, attr_index: torch.Tensor | None = None,
                segments: list[int] | None = None) -> torch.Tensor:
        if segments is not None:
            return self._forward_segments(x, z, segments)
        n = x.shape[0]
        ys: list[tuple[int, int, torch.Tensor]] = []
        for start, stop, mul_out, d, paths, alpha in self._blocks:
            w = self._block_weight(paths, mul_out)
            u_tot = w.shape[0]
            m = (z @ w.transpose(0, 1).reshape(self.n_attr, u_tot * mul_out)) * alpha  # (K, U*mul_out)
            if attr_index is not None:
                m = m.index_select(0, attr_index)
            m = m.view(n, u_tot, mul_out)
            xin = self._block_input(x, paths, d)
            if d == 1:
                y = torch.bmm(xin.transpose(1, 2), m)  # (N, 1, mul_out)
            else:
                y = torch.bmm(xin.transpose(1, 2), m).transpose(1, 2)  # (N, mul_out, d)
            ys.append((start, stop, y.reshape(n, mul_out * d)))
        return self._join(x, ys)

    def _forward_segments(self, x: torch.Tensor, z: torch.Tensor, segments: list[int]) -> torch.Tensor:
        n = x.shape[0]
        if len(segments) != z.shape[0] or sum(segments) != n:
            raise ValueError(f"AttrLinear: segments {len(segments)} groups / {sum(segments)} rows do not match "
                             f"z {tuple(z.shape)} / x {tuple(x.shape)}")
        ys: list[tuple[int, int, torch.Tensor]] = []
        for start, stop, mul_out, d, paths, alpha in self._blocks:
            w = self._block_weight(paths, mul_out)
            u_tot = w.shape[0]
            m = ((z @ w.transpose(0, 1).reshape(self.n_attr, u_tot * mul_out)) * alpha).view(-1, u_tot, mul_out)
            xin = self._block_input(x, paths, d)
            # rows (atom, component) grouped by attribute row: (N * d, U)
            rows = xin.reshape(n, u_tot) if d == 1 else xin.transpose(1, 2).reshape(n * d, u_tot)
            parts = rows.split([c * d for c in segments])
            ms = m.unbind(0)  # (unbind: one backward op; m[k] would zero-fill a full gradient per species)
            y = torch.cat([p @ ms[k] for k, p in enumerate(parts) if p.shape[0] > 0])  # (N * d, mul_out)
            if d > 1:
                y = y.view(n, d, mul_out).transpose(1, 2)
            ys.append((start, stop, y.reshape(n, mul_out * d)))
        return self._join(x, ys)

    def _block_weight(self, paths: list[tuple[int, int, int, int]], mul_out: int) -> torch.Tensor:
        """The stacked weights of every input block feeding one output block: (U, n_attr, mul_out)."""
        ws = [self.weight[off : off + mul * self.n_attr * mul_out].view(mul, self.n_attr, mul_out) for _, _, off, mul in paths]
        return torch.cat(ws, dim=0) if len(ws) > 1 else ws[0]

    @staticmethod
    def _block_input(x: torch.Tensor, paths: list[tuple[int, int, int, int]], d: int) -> torch.Tensor:
        """The input blocks feeding one output block, side by side: (N, U, d)."""
        xs = [x[:, a:b].view(x.shape[0], mul, d) for a, b, _, mul in paths]
        return torch.cat(xs, dim=1) if len(xs) > 1 else xs[0]

    def _join(self, x: torch.Tensor, ys: list[tuple[int, int, torch.Tensor]]) -> torch.Tensor:
        """The output blocks ``(start, stop, (N, stop - start))`` in order, with zero columns where no input feeds
        the output: (N, irreps_out.dim)."""
        n = x.shape[0]
        outs: list[torch.Tensor] = []
        done = 0
        for start, stop, y in ys:
            if start > done:
                outs.append(x.new_zeros(n, start - done))
            outs.append(y)
            done = stop
        if done < self._dim_out:
            outs.append(x.new_zeros(n, self._dim_out - done))
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]


class _EdgePath(NamedTuple):
    """One ``uvu`` instruction of :class:`EdgeTensorProduct`."""

    i_in1: int  #: input block of x1
    mul: int  #: its multiplicity u (= the path's number of weights)
    d1: int  #: dimension of its irrep
    x2_start: int  #: first column of the x2 irrep
    d2: int
    d_out: int
    i_out: int  #: output block (one path per block)
    weight: float  #: e3nn's path weight (times C when x2 is a scalar)


class EdgeTensorProduct(nn.Module):
    """The per-edge ``uvu`` tensor product of a convolution, specialised for ``l <= 1`` inputs.

    Computes exactly what e3nn's ``TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions,
    shared_weights=False)`` computes when every instruction is ``uvu`` with ``irreps_in2`` of
    multiplicity 1 (the edge spherical harmonics) and each output block has one instruction:
    ``out_k[z, u, :] = path_weight * w[z, u] * Σ_ij C_ijk x1[z, u, i] x2[z, j]`` with C e3nn's
    ``wigner_3j`` (or the delta-like contraction of e3nn's specialised code for paths with an l = 0
    operand).  Instead of e3nn's einsum code, a scalar x2 scales x1; otherwise x2 is first contracted
    with C into a per-edge ``(d1, d_out)`` matrix that is applied to the ``u`` channels with a batched
    matrix product (a broadcasting multiply's backward reduces over the broadcast axis, ~4x slower
    here).  :meth:`aggregate` also gathers node features and scatters messages per input block and
    output path, so no edge-sized tensor is concatenated or split.  No parameters and no persistent
    buffers (checkpoints are unchanged); :meth:`supports` says whether a given e3nn product can be
    replaced, and tests check values and gradients against e3nn.
    """

    def __init__(self, tp) -> None:
        super().__init__()
        if not self.supports(tp):
            raise ValueError(f"EdgeTensorProduct cannot replace {tp}")
        o3 = _o3()
        in2_starts = [s.start for s in tp.irreps_in2.slices()]
        paths: list[_EdgePath] = []
        for k, ins in enumerate(tp.instructions):
            m1, m2, mo = tp.irreps_in1[ins.i_in1], tp.irreps_in2[ins.i_in2], tp.irreps_out[ins.i_out]
            weight = float(ins.path_weight)
            if m2.ir.l == 0:
                # x2 scalar: C is a constant times the identity (e3nn: 1, or 1/sqrt(d_out) for l1 > 0),
                # folded into the path weight; no matrix needed
                weight /= 1.0 if m1.ir.l == 0 else math.sqrt(mo.ir.dim)
            else:
                if m1.ir.l == 0:  # e3nn's specialised x1-scalar code: x2 itself / sqrt(d_out)
                    c = torch.eye(m2.ir.dim, dtype=torch.float64)[None] / math.sqrt(mo.ir.dim)
                elif mo.ir.l == 0:  # specialised dot product / sqrt(d1)
                    c = torch.eye(m1.ir.dim, dtype=torch.float64)[:, :, None] / math.sqrt(m1.ir.dim)
                else:  # general path: e3nn's wigner_3j
                    c = o3.wigner_3j(m1.ir.l, m2.ir.l, mo.ir.l).to(torch.float64)
                self.register_buffer(f"_c{k}", c, persistent=False)  # (d1, d2, d_out)
            paths.append(_EdgePath(ins.i_in1, m1.mul, m1.ir.dim, in2_starts[ins.i_in2], m2.ir.dim, mo.ir.dim,
                                   ins.i_out, weight))
        self._paths = paths
        self._order = sorted(range(len(paths)), key=lambda k: paths[k].i_out)
        # inputs are split once (one backward op each) rather than sliced per path: a slice's backward
        # zero-fills a gradient of the whole edge-sized tensor for every path
        self._in1_sizes = [s.stop - s.start for s in tp.irreps_in1.slices()]
        self._w_sizes = [p.mul for p in paths]
        if sum(self._w_sizes) != tp.weight_numel or sum(self._in1_sizes) != tp.irreps_in1.dim:
            raise ValueError(f"EdgeTensorProduct: unexpected weight/input layout of {tp}")

    @staticmethod
    def supports(tp) -> bool:
        ins = list(tp.instructions)
        return (
            bool(ins)
            and all(i.connection_mode == "uvu" and i.has_weight for i in ins)
            and all(m.mul == 1 for m in tp.irreps_in2)
            and max(ir.l for _, ir in tp.irreps_in1) <= 1
            and max(ir.l for _, ir in tp.irreps_in2) <= 1
            and sorted(i.i_out for i in ins) == list(range(len(tp.irreps_out)))
            and not tp.shared_weights
        )

    def _path(self, k: int, x: torch.Tensor, x2: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Output of path ``k`` (z, mul * d_out) from its input block ``x`` (z, mul * d1) and weights ``w`` (z, mul)."""
        p = self._paths[k]
        z = x.shape[0]
        x = x.reshape(z, p.mul, p.d1)
        x2 = x2[:, p.x2_start : p.x2_start + p.d2]
        if p.d2 == 1:  # x2 scalar: out = (weight x2) w x (d1 == d_out here)
            y = x * (x2 * p.weight * w).unsqueeze(-1)
        elif p.d1 == 1:  # x1 scalar: out = (x w) ⊗ (weight x2 C), an outer product per edge
            t = (x2 @ getattr(self, f"_c{k}").to(x.dtype)[0]) * p.weight  # (z, d_out)
            y = torch.bmm((x[:, :, 0] * w).unsqueeze(-1), t.unsqueeze(1))
        else:  # l1 = l2 = 1: contract x2 with C into a per-edge (d1, d_out) matrix, apply it with bmm
            c = getattr(self, f"_c{k}").to(x.dtype)
            t = (x2 @ c.transpose(0, 1).reshape(p.d2, p.d1 * p.d_out)).view(z, p.d1, p.d_out)
            y = torch.bmm(x, t) * (w * p.weight).unsqueeze(-1)
        return y.reshape(z, p.mul * p.d_out)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``tp(x1, x2, weight)`` with per-edge ``x1`` (z, irreps_in1.dim) and ``weight`` (z, weight_numel)."""
        blocks = x1.split(self._in1_sizes, dim=1) if len(self._in1_sizes) > 1 else (x1,)
        weights = weight.split(self._w_sizes, dim=1) if len(self._w_sizes) > 1 else (weight,)
        outs = [self._path(k, blocks[self._paths[k].i_in1], x2, weights[k]) for k in self._order]
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]

    def aggregate(self, h: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor, x2: torch.Tensor,
                  weight: torch.Tensor, weight_index: torch.Tensor | None, n_nodes: int) -> torch.Tensor:
        """``Σ_{edges -> node} tp(h[src], x2, weight[weight_index])`` as (n_nodes, irreps_out.dim), path by path.

        Same sums as gathering ``h`` per edge, calling :meth:`forward` and ``index_add``-ing the result,
        but every gather/scatter is done per input block / output path, so no edge-sized tensor is
        ever concatenated or split (forward or backward); ``weight`` may hold one row per distinct edge
        length with ``weight_index`` mapping edges to rows (the radial-MLP de-duplication).
        """
        blocks = h.split(self._in1_sizes, dim=1) if len(self._in1_sizes) > 1 else (h,)
        weights = weight.split(self._w_sizes, dim=1) if len(self._w_sizes) > 1 else (weight,)
        gathered: dict[int, torch.Tensor] = {}
        outs = []
        for k in self._order:
            i1 = self._paths[k].i_in1
            if i1 not in gathered:
                gathered[i1] = blocks[i1].index_select(0, edge_src)
            w = weights[k] if weight_index is None else weights[k].index_select(0, weight_index)
            y = self._path(k, gathered[i1], x2, w)
            outs.append(y.new_zeros(n_nodes, y.shape[1]).index_add_(0, edge_dst, y))
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]


def _smooth_cutoff(u: torch.Tensor) -> torch.Tensor:
    """e3nn's ``smooth_cutoff(r / r_max)``: 1 for r <= r_max/2, 0 for r >= r_max, cosine between."""
    v = 2.0 * (u - 1.0)
    y = (1.0 - torch.cos(math.pi * v)) / 2.0
    y = torch.where(v > 0, torch.zeros_like(y), y)
    return torch.where(v < -1, torch.ones_like(y), y)


class _Convolution(nn.Module):
    """Chen et al./e3nn ``gate_points_2101.Convolution`` with :class:`AttrLinear` self-interactions."""

    def __init__(self, irreps_in, n_attr: int, irreps_edge_attr, irreps_out, n_basis: int,
                 radial_layers: int, radial_neurons: int, num_neighbors: float) -> None:
        super().__init__()
        o3 = _o3()
        from e3nn.nn import FullyConnectedNet

        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_edge_attr = o3.Irreps(irreps_edge_attr)
        self.irreps_out = o3.Irreps(irreps_out)
        self.num_neighbors = float(num_neighbors)
        self.sc = AttrLinear(self.irreps_in, n_attr, self.irreps_out)
        self.lin1 = AttrLinear(self.irreps_in, n_attr, self.irreps_in)
        irreps_mid = []
        instructions = []
        for i, (mul, ir_in) in enumerate(self.irreps_in):
            for j, (_, ir_edge) in enumerate(self.irreps_edge_attr):
                for ir_out in ir_in * ir_edge:
                    if ir_out in self.irreps_out:
                        k = len(irreps_mid)
                        irreps_mid.append((mul, ir_out))
                        instructions.append((i, j, k, "uvu", True))
        irreps_mid = o3.Irreps(irreps_mid)
        irreps_mid, p, _ = irreps_mid.sort()
        instructions = [(i1, i2, p[io], mode, train) for i1, i2, io, mode, train in instructions]
        self.tp = o3.TensorProduct(
            self.irreps_in, self.irreps_edge_attr, irreps_mid, instructions,
            internal_weights=False, shared_weights=False,
        )
        #: fast path for the per-edge product (same function as ``self.tp``; see EdgeTensorProduct)
        self.tp_fast = EdgeTensorProduct(self.tp) if EdgeTensorProduct.supports(self.tp) else None
        self.fc = FullyConnectedNet(
            [n_basis] + radial_layers * [radial_neurons] + [self.tp.weight_numel], torch.nn.functional.silu
        )
        self.lin2 = AttrLinear(irreps_mid, n_attr, self.irreps_out)
        c_s, c_x = math.sin(math.pi / 8), math.cos(math.pi / 8)
        # built in float64 so that the model's dtype cast rounds cos(π/8) once (a float32 buffer cast to
        # float64 would carry a 3e-8 relative error into every float64 forward pass)
        mask = self.sc.output_mask.to(torch.float64)
        self.register_buffer("mix_x", (1 - mask) + c_x * mask)
        self.c_s = c_s

    def forward(self, x, z, attr_index, edge_src, edge_dst, edge_attr, edge_basis, edge_length_index,
                node_index=None, segments=None):
        """``node_index``: if given, ``x`` and ``z`` are rows per *species* and ``node_index`` maps atoms to them.
        ``segments``: atoms are grouped by attribute row, with these counts (see :class:`AttrLinear`)."""
        weight = self.fc(edge_basis)
        if edge_length_index is not None and self.tp_fast is None:
            weight = weight.index_select(0, edge_length_index)
        if node_index is not None:
            s = self.sc(x, z).index_select(0, node_index)
            h = self.lin1(x, z).index_select(0, node_index)
            n_nodes = node_index.shape[0]
        else:
            s = self.sc(x, z, attr_index, segments)
            h = self.lin1(x, z, attr_index, segments)
            n_nodes = x.shape[0]
        if self.tp_fast is not None:
            agg = self.tp_fast.aggregate(h, edge_src, edge_dst, edge_attr, weight, edge_length_index, n_nodes)
        else:
            edge_features = self.tp(h.index_select(0, edge_src), edge_attr, weight)
            agg = edge_features.new_zeros(n_nodes, edge_features.shape[1]).index_add_(0, edge_dst, edge_features)
        agg = agg / math.sqrt(self.num_neighbors)
        if segments is not None:
            out = self.lin2(agg, z, None, segments)
        elif node_index is not None:
            out = self.lin2(agg, z, node_index)
        else:
            out = self.lin2(agg, z, attr_index)
        return self.c_s * s + self.mix_x * out


class BeteNet(nn.Module):
    """The BETE-NET network (CSO / CPD / FPD are options of this one class).

    Parameters
    ----------
    cfg: :class:`betenet.config.ModelConfig`.
    n_node_attr: width of the per-site node attributes in the batches it will see: ``0`` for CSO
        (attributes from the element), the number of PhDOS bins (51) for CPD/FPD.  ``None``: from
        ``cfg.variant``.
    dtype: parameter dtype (``torch.float32`` default, or ``torch.float64``).

    ``forward(batch: GraphBatch) -> Tensor (n_crystals, cfg.n_out_bins)``, non-negative.
    """

    def __init__(self, cfg: ModelConfig, n_node_attr: int | None = None, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        o3 = _o3()
        from e3nn.nn import Gate

        if cfg.variant not in VARIANTS:
            raise ValueError(f"ModelConfig.variant must be one of {VARIANTS}, got {cfg.variant!r}")
        if n_node_attr is None:
            n_node_attr = 0 if cfg.variant == "CSO" else N_TARGET_BINS
        if cfg.variant == "CSO" and n_node_attr != 0:
            raise ValueError(f"variant 'CSO' takes no per-site node attributes; got n_node_attr={n_node_attr}")
        if cfg.variant != "CSO" and n_node_attr <= 0:
            raise ValueError(f"variant {cfg.variant!r} needs per-site PhDOS node attributes (n_node_attr > 0)")
        if cfg.output_activation not in ("relu", "softplus"):
            raise ValueError(f"ModelConfig.output_activation must be 'relu' or 'softplus', got {cfg.output_activation!r}")
        if cfg.cso_node_attr not in ("element", "constant"):
            raise ValueError(f"ModelConfig.cso_node_attr must be 'element' or 'constant', got {cfg.cso_node_attr!r}")
        self.cfg = cfg
        self.n_node_attr = int(n_node_attr)
        self.lmax = int(cfg.lmax)
        self.r_max = float(cfg.r_max_A)
        self.n_basis = int(cfg.n_radial_basis)
        self.radial_basis = cfg.radial_basis
        self.dedup_edge_lengths = bool(cfg.dedup_edge_lengths)
        #: CSO: group atoms by species inside forward (eager, CPU only; see :class:`AttrLinear` ``segments``).
        #: On a GPU the per-species loop is one small kernel per species plus a host sync, slower than the
        #: gathered product (measured on an H100: CSO 0.042 s per 654-crystal epoch grouped; see
        #: benchmarks/README.md), so CUDA tensors always take the gathered path.
        self.group_by_species = True
        emb = int(cfg.embedding_dim)
        self.embed_input = nn.Linear(N_ELEMENTS, emb)
        # node attributes
        self.attr_from_species = self.n_node_attr == 0
        if self.attr_from_species and cfg.cso_node_attr == "constant":
            self.embed_attr = None
            n_attr = 1
        else:
            self.embed_attr = nn.Linear(N_ELEMENTS if self.attr_from_species else self.n_node_attr, emb)
            n_attr = emb
        self.n_attr = n_attr
        irreps_edge_attr = o3.Irreps.spherical_harmonics(self.lmax)
        self._sh_ls = list(range(self.lmax + 1))  # plain list of l's: torch.compile-friendly
        mul = int(cfg.irreps_multiplicity)
        irreps_hidden = o3.Irreps([(mul, (l, p)) for l in range(self.lmax + 1) for p in (-1, 1)])
        act = {1: torch.nn.functional.silu, -1: torch.tanh}
        act_gates = {1: torch.sigmoid, -1: torch.tanh}

        def path_exists(irreps_in1, irreps_in2, ir_out) -> bool:
            ir_out = o3.Irrep(ir_out)
            return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in1.simplify() for _, ir2 in irreps_in2.simplify())

        irreps = o3.Irreps(f"{emb}x0e")
        self.convs = nn.ModuleList()
        self.gates = nn.ModuleList()
        for _ in range(cfg.n_layers):
            scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0 and path_exists(irreps, irreps_edge_attr, ir)])
            gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0 and path_exists(irreps, irreps_edge_attr, ir)])
            ir = "0e" if path_exists(irreps, irreps_edge_attr, "0e") else "0o"
            gates = o3.Irreps([(m, ir) for m, _ in gated])
            gate = Gate(scalars, [act[ir.p] for _, ir in scalars], gates, [act_gates[ir.p] for _, ir in gates], gated)
            conv = _Convolution(irreps, n_attr, irreps_edge_attr, gate.irreps_in, self.n_basis,
                                cfg.radial_layers, cfg.radial_neurons, cfg.num_neighbors)
            self.convs.append(conv)
            self.gates.append(gate)
            irreps = gate.irreps_out
        self.convs.append(
            _Convolution(irreps, n_attr, irreps_edge_attr, o3.Irreps(f"{cfg.n_out_bins}x0e"), self.n_basis,
                         cfg.radial_layers, cfg.radial_neurons, cfg.num_neighbors)
        )
        self.register_buffer("masses_amu", torch.tensor(atomic_masses_amu()), persistent=False)
        self.to(dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_input.weight.dtype

    def _edge_features(self, batch: GraphBatch):
        o3 = _o3()
        from e3nn.math import soft_one_hot_linspace

        vec = batch.edge_vectors()
        # exact 0 for the self edges; torch's norm backward gives a zero (not NaN) gradient there
        length = torch.linalg.vector_norm(vec, dim=1)
        sh = o3.spherical_harmonics(self._sh_ls, vec, True, normalization="component")
        edge_attr = _smooth_cutoff(length / self.r_max)[:, None] * sh
        length_index = None
        radial_in = length
        if self.dedup_edge_lengths and batch.edge_length_index is not None and not vec.requires_grad:
            # one radial-MLP evaluation per distinct (crystal, |edge|), precomputed by collate()
            length_index = batch.edge_length_index
            radial_in = length.index_select(0, batch.edge_length_rep)
            if not torch.compiler.is_compiling():
                err = (radial_in.index_select(0, length_index) - length).abs().max()
                if err > 1e-3:
                    raise ValueError(f"batch.edge_length_index is stale (edge lengths changed by up to {float(err):.3g} Å "
                                     "since collate()); re-collate the graphs or set dedup_edge_lengths=False")
        basis = soft_one_hot_linspace(radial_in, 0.0, self.r_max, self.n_basis, basis=self.radial_basis, cutoff=False)
        return edge_attr, basis.mul(self.n_basis**0.5), length_index

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        if self.attr_from_species != (batch.node_attr is None):
            need = "no node attributes (CSO)" if self.attr_from_species else f"node_attr of width {self.n_node_attr}"
            raise ValueError(f"BeteNet({self.cfg.variant}) expects a batch with {need}; the batch has "
                             f"{'none' if batch.node_attr is None else tuple(batch.node_attr.shape)}")
        if batch.node_attr is not None and batch.node_attr.shape[1] != self.n_node_attr:
            raise ValueError(f"batch node_attr width {batch.node_attr.shape[1]} != model n_node_attr {self.n_node_attr}")
        edge_attr, basis, length_index = self._edge_features(batch)
        # species present in the batch: node features of the first layer depend only on the element
        species, node_species = batch.species, batch.node_species
        if species is None or node_species is None:
            species, node_species = torch.unique(batch.atomic_numbers, return_inverse=True)
        onehot = torch.nn.functional.one_hot(species - 1, N_ELEMENTS).to(self.dtype)
        masses = self.masses_amu.index_select(0, species - 1)
        x = torch.relu(self.embed_input(onehot * masses[:, None]))  # (K, emb) per species
        edge_src, edge_dst, crystal = batch.edge_src, batch.edge_dst, batch.batch
        attr_index: torch.Tensor | None
        segments: list[int] | None = None
        if self.attr_from_species:
            if self.embed_attr is None:
                z = onehot.new_ones(species.shape[0], 1)
            else:
                z = torch.relu(self.embed_attr(onehot))
            if self.group_by_species and x.device.type == "cpu" and not torch.compiler.is_compiling():
                # relabel atoms so that they are grouped by species: every self-interaction then is one
                # small matrix product per species (exactly the same sums, in another order)
                order = torch.argsort(node_species, stable=True)
                new_label = torch.empty_like(order)
                new_label[order] = torch.arange(order.shape[0], device=order.device)
                edge_src, edge_dst = new_label.index_select(0, edge_src), new_label.index_select(0, edge_dst)
                node_species, crystal = node_species.index_select(0, order), crystal.index_select(0, order)
                segments = torch.bincount(node_species, minlength=species.shape[0]).tolist()
            attr_index = node_species
            # first layer entirely per species (x and z both per species)
            h = self.convs[0](x, z, None, edge_src, edge_dst, edge_attr, basis, length_index,
                              node_index=node_species, segments=segments)
        else:
            z = torch.relu(self.embed_attr(batch.node_attr))
            attr_index = None
            h = self.convs[0](x.index_select(0, node_species), z, None, edge_src, edge_dst, edge_attr, basis,
                              length_index)
        layers = list(self.convs[1:])
        h = self.gates[0](h) if len(self.gates) else h
        for k, conv in enumerate(layers):
            h = conv(h, z, attr_index, edge_src, edge_dst, edge_attr, basis, length_index, segments=segments)
            if k + 1 < len(self.gates):
                h = self.gates[k + 1](h)
        if self.cfg.output_activation == "relu":
            h = torch.relu(h)
        else:
            h = torch.nn.functional.softplus(h)
        out = h.new_zeros(batch.n_crystals, h.shape[1]).index_add_(0, crystal, h)
        return out / batch.n_atoms.to(h.dtype)[:, None]


def build_model(cfg: ModelConfig, n_node_attr: int | None = None, *, dtype: torch.dtype = torch.float32,
                seed: int | None = None) -> BeteNet:
    """:class:`BeteNet` with its parameters drawn from ``torch.Generator`` seeded by ``seed`` (if given)."""
    if seed is None:
        return BeteNet(cfg, n_node_attr, dtype=dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BeteNet(cfg, n_node_attr, dtype=dtype)


def predict(model: BeteNet, data: Any, *, batch_size: int = 0) -> "np.ndarray":
    """α²F predictions (n, 51) as NumPy for a :class:`GraphBatch`, a list of ``CrystalGraph`` or a
    :class:`betenet.dataset.MaterialDataset`, in ``batch_size`` chunks (0: all at once), without gradients.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if isinstance(data, GraphBatch):
                return model(data.to(dtype=model.dtype)).cpu().numpy()
            graphs = list(getattr(data, "graphs", data))
            if not graphs:
                return np.zeros((0, model.cfg.n_out_bins))
            size = len(graphs) if batch_size <= 0 else int(batch_size)
            outs = [
                model(collate(graphs[i : i + size], dtype=model.dtype)).cpu().numpy()
                for i in range(0, len(graphs), size)
            ]
            return np.concatenate(outs)
    finally:
        model.train(was_training)


def n_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be loaded into this betenet (format, version or config mismatch)."""


def _versions() -> dict[str, str]:
    import e3nn

    return {"betenet": __version__, "torch": torch.__version__, "e3nn": e3nn.__version__}


def save_checkpoint(path: str | Path, model: BeteNet, model_cfg: ModelConfig | None = None, **meta: Any) -> Path:
    """Write a self-describing checkpoint: weights + the ModelConfig that built them + versions + ``meta``.

    The file is written to a temporary name and renamed, so an interrupted save never leaves a
    truncated checkpoint behind.
    """
    cfg = model.cfg if model_cfg is None else model_cfg
    if dataclasses.asdict(cfg) != dataclasses.asdict(model.cfg):
        raise ValueError("save_checkpoint: model_cfg differs from the config the model was built with")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model_config": dataclasses.asdict(cfg),
        "n_node_attr": model.n_node_attr,
        "dtype": str(model.dtype).replace("torch.", ""),
        "versions": _versions(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, *, dtype: torch.dtype | None = None, map_location: str = "cpu",
                    model: BeteNet | None = None):
    """Rebuild a model from :func:`save_checkpoint` output -> ``(model, cfg, meta)``.

    ``model``: an existing :class:`BeteNet` to load the weights *into* instead of building a new one
    (building costs ~0.5-2 s of e3nn code generation; loading 100 ensemble members into one model
    costs ~20 ms each).  Its config, node-attribute width (and ``dtype`` if given) must match the
    checkpoint's, else :class:`CheckpointError`.

    Raises :class:`CheckpointError` naming the file when it is not a betenet model checkpoint, was
    written by an incompatible format version, or its config/weights do not fit this betenet's
    ``ModelConfig``/``BeteNet``.  A different torch/e3nn version only warns.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a betenet model checkpoint (field 'format' is "
                              f"{payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})")
    if payload.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format_version {payload.get('format_version')!r}, "
                              f"this betenet reads {CHECKPOINT_VERSION}")
    raw_cfg = dict(payload["model_config"])
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(raw_cfg) - known)
    if unknown:
        raise CheckpointError(f"{path}: model_config has field(s) {unknown} unknown to this betenet's ModelConfig "
                              f"(written by betenet {payload.get('versions', {}).get('betenet')})")
    cfg = ModelConfig(**raw_cfg)
    now = _versions()
    then = payload.get("versions", {})
    for lib in ("torch", "e3nn", "betenet"):
        if then.get(lib) != now[lib]:
            warnings.warn(f"{path}: written with {lib} {then.get(lib)}, loading with {now[lib]}", stacklevel=2)
    want = dtype if dtype is not None else getattr(torch, payload.get("dtype", "float32"))
    if model is not None:
        if dataclasses.asdict(model.cfg) != dataclasses.asdict(cfg) or model.n_node_attr != payload["n_node_attr"]:
            raise CheckpointError(f"{path}: checkpoint config {cfg} (n_node_attr {payload['n_node_attr']}) differs "
                                  f"from the model to load into ({model.cfg}, n_node_attr {model.n_node_attr})")
        if dtype is not None and model.dtype != dtype:
            raise CheckpointError(f"{path}: model to load into is {model.dtype}, dtype={dtype} was requested")
    else:
        model = BeteNet(cfg, payload["n_node_attr"], dtype=want)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit BeteNet({cfg}): {exc}") from exc
    return model, cfg, dict(payload.get("meta", {}))


def load_model(path: str | Path, template: BeteNet | None = None):
    """``(model in eval mode, cfg, meta)`` from a checkpoint (:func:`load_checkpoint`).

    ``template``: an already built model of the same architecture; its deep copy receives the weights
    (``load_checkpoint(model=...)``), which skips e3nn's code generation (~3x faster per ensemble member).
    Falls back to building when the checkpoint does not fit the template.
    """
    if template is not None:
        try:
            model, cfg, meta = load_checkpoint(path, model=copy.deepcopy(template))
            model.eval()
            return model, cfg, meta
        except CheckpointError:
            pass
    model, cfg, meta = load_checkpoint(path)
    model.eval()
    return model, cfg, meta
