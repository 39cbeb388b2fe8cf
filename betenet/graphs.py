"""Periodic crystal graphs and batching by index arithmetic (no torch_geometric / torch-scatter).

A crystal is turned into a directed graph whose edges ``i -> j`` connect atom ``i`` to every periodic
image of atom ``j`` closer than ``r_max`` (Methods IV.2: 4 Å).  An edge carries the integer lattice
shift ``S`` (a row vector of multiples of the lattice vectors), and the edge vector is

    edge_vec = pos[j] + S @ lattice - pos[i]            (Å)

It is *recomputed in torch* from positions, lattice and shifts (:meth:`GraphBatch.edge_vectors`), so
rotating the cell, translating the atoms or differentiating with respect to positions works.

Self edges
----------
Following Chen et al. (2021)'s e3nn PhDOS network, which builds its graphs with ASE
``neighbor_list(..., self_interaction=True)``, every atom has one **zero-length self edge**
``i -> i`` with ``S = 0``.  It lets an atom's own features enter the convolution (its spherical
harmonics are ``Y_0 = 1, Y_1 = 0``, its radial basis is the r = 0 Gaussian).  Periodic self
images (``i -> i`` with ``S != 0``) are ordinary edges whenever a lattice vector is shorter than
``r_max``.  ``build_graph(..., self_edges=False)`` drops the zero-length edge.

Node features
-------------
``node_input`` is the mass-weighted one-hot vector of Chen et al.: a vector of length
:data:`N_ELEMENTS` (= 118) that is zero except for entry ``Z - 1``, which holds the atomic mass in amu
(ASE's IUPAC masses).  ``node_attr`` is optional per-site data (the binned site-projected PhDOS of
the CPD/FPD variants, see :mod:`betenet.dataset`).

The neighbour search is vectorised in NumPy: for fractional differences ``d = f_j - f_i`` the edge
vector has norm ``|v| >= |d_k + S_k| / |b_k|`` (``b_k`` the reciprocal-lattice vectors without 2π), so
only shifts with ``|d_k + S_k| <= r_max |b_k|`` can be neighbours; all pairs x shifts in that box are
tested at once.  Tests compare it with a brute-force loop over shifts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

__all__ = [
    "N_ELEMENTS",
    "LENGTH_DEDUP_A",
    "atomic_masses_amu",
    "periodic_neighbors",
    "structure_hash",
    "CrystalGraph",
    "GraphBatch",
    "build_graph",
    "collate",
]

#: Length of the one-hot element encoding (H ... Og), as Chen et al.
N_ELEMENTS: int = 118
#: Edge lengths equal to this tolerance (Å) share one radial-MLP evaluation (see :class:`GraphBatch`).
LENGTH_DEDUP_A: float = 1e-6


@lru_cache(maxsize=1)
def atomic_masses_amu() -> np.ndarray:
    """Atomic masses (amu) of Z = 1..118, index ``Z - 1`` (ASE's table; read-only)."""
    from ase.data import atomic_masses

    masses = np.array(atomic_masses[1 : N_ELEMENTS + 1], dtype=np.float64)
    masses.setflags(write=False)
    return masses


def periodic_neighbors(
    positions_A: np.ndarray, lattice_A: np.ndarray, r_max_A: float, *, self_edges: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All periodic neighbour pairs closer than ``r_max_A``.

    Parameters
    ----------
    positions_A: (n, 3) Cartesian positions (Å); need not be wrapped into the cell.
    lattice_A: (3, 3) lattice vectors as rows (Å).
    r_max_A: cut-off radius (Å); pairs with distance ``< r_max_A`` are kept.
    self_edges: keep the zero-length ``i -> i, S = 0`` edge of every atom.

    Returns
    -------
    edge_src, edge_dst: (E,) int64; edge_shift: (E, 3) int64 lattice shifts, such that
    ``positions[dst] + shift @ lattice - positions[src]`` has norm ``< r_max_A``.
    Edges are sorted by (src, dst, shift).
    """
    pos = np.asarray(positions_A, dtype=np.float64)
    lat = np.asarray(lattice_A, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] == 0:
        raise ValueError(f"positions_A must have shape (n_atoms >= 1, 3), got {pos.shape}")
    if lat.shape != (3, 3):
        raise ValueError(f"lattice_A must have shape (3, 3), got {lat.shape}")
    if not r_max_A > 0:
        raise ValueError(f"r_max_A must be > 0, got {r_max_A}")
    det = np.linalg.det(lat)
    if abs(det) < 1e-8:
        raise ValueError(f"lattice_A is singular (det = {det:g})")
    inv = np.linalg.inv(lat)  # frac = cart @ inv; column k of inv is reciprocal vector b_k (no 2π)
    frac = pos @ inv
    recip_len = np.linalg.norm(inv, axis=0)
    diff = frac[None, :, :] - frac[:, None, :]  # diff[i, j] = f_j - f_i
    reach = r_max_A * recip_len
    lo = np.floor(-reach - diff.max(axis=(0, 1))).astype(np.int64)
    hi = np.ceil(reach - diff.min(axis=(0, 1))).astype(np.int64)
    axes = [np.arange(lo[k], hi[k] + 1, dtype=np.int64) for k in range(3)]
    shifts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    # Cartesian edge vectors of all (i, j, shift) combinations: (n, n, S, 3)
    vec = (diff @ lat)[:, :, None, :] + (shifts.astype(np.float64) @ lat)[None, None, :, :]
    dist2 = np.einsum("ijsk,ijsk->ijs", vec, vec)
    keep = dist2 < r_max_A * r_max_A
    if not self_edges:
        zero = np.flatnonzero((shifts == 0).all(axis=1))
        n = pos.shape[0]
        keep[np.arange(n), np.arange(n), zero] = False
    src, dst, s = np.nonzero(keep)
    return src.astype(np.int64), dst.astype(np.int64), shifts[s]


def structure_hash(structure: Any) -> str:
    """Short content hash of a pymatgen ``Structure`` (lattice, species, fractional coordinates)."""
    h = hashlib.sha1()
    h.update(np.round(np.asarray(structure.lattice.matrix, dtype=np.float64), 8).tobytes())
    h.update(np.asarray(structure.atomic_numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(structure.frac_coords, dtype=np.float64), 8).tobytes())
    return h.hexdigest()[:16]


@dataclass
class CrystalGraph:
    """One crystal as a periodic graph (NumPy arrays; see the module docstring for conventions).

    Attributes
    ----------
    material_id: identifier of the material.
    positions_A: (n_atoms, 3) Cartesian positions (Å).
    lattice_A: (3, 3) lattice vectors as rows (Å).
    atomic_numbers: (n_atoms,) Z of each site.
    edge_src, edge_dst: (n_edges,) int64 endpoints (message flows src -> dst).
    edge_shift: (n_edges, 3) int64 lattice shifts of the destination image.
    r_max_A: cut-off used to build the edges.
    node_attr: optional (n_atoms, n_node_attr) per-site attributes (e.g. binned site PhDOS).
    """

    material_id: str
    positions_A: np.ndarray
    lattice_A: np.ndarray
    atomic_numbers: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_shift: np.ndarray
    r_max_A: float
    node_attr: np.ndarray | None = None

    @property
    def n_atoms(self) -> int:
        return int(self.positions_A.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def node_input(self) -> np.ndarray:
        """(n_atoms, 118) mass-weighted one-hot encoding (amu at index Z - 1)."""
        out = np.zeros((self.n_atoms, N_ELEMENTS))
        out[np.arange(self.n_atoms), self.atomic_numbers - 1] = atomic_masses_amu()[self.atomic_numbers - 1]
        return out

    def edge_vectors(self) -> np.ndarray:
        """(n_edges, 3) edge vectors ``pos[dst] + shift @ lattice - pos[src]`` (Å), NumPy float64."""
        return self.positions_A[self.edge_dst] + self.edge_shift @ self.lattice_A - self.positions_A[self.edge_src]

    def with_node_attr(self, node_attr: np.ndarray | None) -> "CrystalGraph":
        """A copy sharing the edge arrays, with different node attributes."""
        if node_attr is not None:
            node_attr = np.asarray(node_attr, dtype=np.float64)
            if node_attr.ndim != 2 or node_attr.shape[0] != self.n_atoms:
                raise ValueError(
                    f"material {self.material_id!r}: node_attr must have shape (n_atoms={self.n_atoms}, k), "
                    f"got {node_attr.shape}"
                )
        return CrystalGraph(
            self.material_id, self.positions_A, self.lattice_A, self.atomic_numbers, self.edge_src,
            self.edge_dst, self.edge_shift, self.r_max_A, node_attr,
        )


def build_graph(
    structure: Any,
    r_max_A: float,
    node_attr: np.ndarray | None = None,
    *,
    material_id: str | None = None,
    self_edges: bool = True,
) -> CrystalGraph:
    """Periodic neighbour graph of a pymatgen ``Structure`` within ``r_max_A`` (Å).

    Raises ``ValueError`` naming the material for disordered sites, elements beyond Og or a
    ``node_attr`` whose first dimension is not the number of sites.
    """
    mid = material_id if material_id is not None else structure.composition.reduced_formula
    if not structure.is_ordered:
        raise ValueError(f"material {mid!r}: structure has partially occupied sites; an ordered structure is required")
    z = np.asarray(structure.atomic_numbers, dtype=np.int64)
    if z.min() < 1 or z.max() > N_ELEMENTS:
        raise ValueError(f"material {mid!r}: atomic numbers must be in 1..{N_ELEMENTS}, got {sorted(set(z.tolist()))}")
    lattice = np.array(structure.lattice.matrix, dtype=np.float64)
    positions = np.array(structure.cart_coords, dtype=np.float64)
    src, dst, shift = periodic_neighbors(positions, lattice, r_max_A, self_edges=self_edges)
    graph = CrystalGraph(mid, positions, lattice, z, src, dst, shift, float(r_max_A))
    return graph.with_node_attr(node_attr) if node_attr is not None else graph


@dataclass
class GraphBatch:
    """Many crystals as one disconnected graph (torch tensors); node/edge indices are offset per crystal.

    ``batch[a]`` is the crystal of atom ``a``; ``edge_crystal[e]`` the crystal of edge ``e``.
    ``y`` optionally holds the (n_crystals, n_bins) targets.  Float tensors share one dtype.
    """

    positions: Any  # (N, 3)
    lattice: Any  # (B, 3, 3)
    atomic_numbers: Any  # (N,) long
    node_input: Any  # (N, 118) mass-weighted one-hot
    edge_src: Any  # (E,) long
    edge_dst: Any  # (E,) long
    edge_shift: Any  # (E, 3) float
    edge_crystal: Any  # (E,) long
    batch: Any  # (N,) long
    n_atoms: Any  # (B,) long
    species: Any = None  # (K,) long: distinct atomic numbers in the batch, ascending
    node_species: Any = None  # (N,) long: index of each atom's element in ``species``
    edge_length_rep: Any = None  # (U,) long: one representative edge per distinct (crystal, |edge|)
    edge_length_index: Any = None  # (E,) long: index of each edge's length in ``edge_length_rep``
    material_ids: list[str] = field(default_factory=list)
    node_attr: Any = None  # (N, k) or None
    y: Any = None  # (B, n_bins) or None

    @property
    def n_crystals(self) -> int:
        return int(self.n_atoms.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def dtype(self):
        return self.positions.dtype

    def edge_vectors(self):
        """(E, 3) ``pos[dst] + shift @ lattice[crystal] - pos[src]``, differentiable in torch."""
        import torch

        lattice_e = self.lattice.index_select(0, self.edge_crystal)
        cell_shift = torch.bmm(self.edge_shift.unsqueeze(1), lattice_e).squeeze(1)
        return self.positions.index_select(0, self.edge_dst) - self.positions.index_select(0, self.edge_src) + cell_shift

    def to(self, device=None, dtype=None) -> "GraphBatch":
        """Copy with float tensors cast to ``dtype`` and everything moved to ``device``."""
        import torch

        def conv(t):
            if t is None:
                return None
            if torch.is_floating_point(t):
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)

        return GraphBatch(
            positions=conv(self.positions), lattice=conv(self.lattice), atomic_numbers=conv(self.atomic_numbers),
            node_input=conv(self.node_input), edge_src=conv(self.edge_src), edge_dst=conv(self.edge_dst),
            edge_shift=conv(self.edge_shift), edge_crystal=conv(self.edge_crystal), batch=conv(self.batch),
            n_atoms=conv(self.n_atoms), species=conv(self.species), node_species=conv(self.node_species),
            edge_length_rep=conv(self.edge_length_rep), edge_length_index=conv(self.edge_length_index),
            material_ids=list(self.material_ids), node_attr=conv(self.node_attr), y=conv(self.y),
        )


def collate(graphs: Sequence[CrystalGraph], targets: np.ndarray | None = None, *, dtype=None) -> GraphBatch:
    """Concatenate crystals into one :class:`GraphBatch` (indices offset, ``batch`` vector built).

    ``targets``: optional (n_graphs, n_bins) array stored as ``batch.y``.  ``dtype``: torch float dtype
    (default ``torch.float32``).  All graphs must agree on whether they carry ``node_attr`` (and its width).
    """
    import torch

    if len(graphs) == 0:
        raise ValueError("collate() needs at least one graph")
    dtype = torch.float32 if dtype is None else dtype
    n_atoms = np.array([g.n_atoms for g in graphs], dtype=np.int64)
    n_edges = np.array([g.n_edges for g in graphs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    has_attr = [g.node_attr is not None for g in graphs]
    if any(has_attr) and not all(has_attr):
        missing = [g.material_id for g in graphs if g.node_attr is None][:5]
        raise ValueError(f"collate(): some graphs have node_attr and some do not (without: {missing})")
    node_attr = None
    if all(has_attr):
        widths = {g.node_attr.shape[1] for g in graphs}
        if len(widths) != 1:
            raise ValueError(f"collate(): graphs have node_attr of different widths {sorted(widths)}")
        node_attr = torch.from_numpy(np.concatenate([g.node_attr for g in graphs])).to(dtype)
    z = np.concatenate([g.atomic_numbers for g in graphs])
    node_input = np.zeros((z.shape[0], N_ELEMENTS))
    node_input[np.arange(z.shape[0]), z - 1] = atomic_masses_amu()[z - 1]
    off_e = np.repeat(offsets, n_edges)
    species, node_species = np.unique(z, return_inverse=True)
    # distinct edge lengths per crystal (rounded to LENGTH_DEDUP_A): the radial MLP needs only these
    edge_crystal = np.repeat(np.arange(len(graphs), dtype=np.int64), n_edges)
    lengths = np.concatenate([np.linalg.norm(g.edge_vectors(), axis=1) for g in graphs])
    key = np.stack([edge_crystal, np.round(lengths / LENGTH_DEDUP_A).astype(np.int64)], axis=1)
    _, rep, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    y = None
    if targets is not None:
        targets = np.asarray(targets)
        if targets.shape[0] != len(graphs):
            raise ValueError(f"collate(): {targets.shape[0]} targets for {len(graphs)} graphs")
        y = torch.from_numpy(np.ascontiguousarray(targets)).to(dtype)
    return GraphBatch(
        positions=torch.from_numpy(np.concatenate([g.positions_A for g in graphs])).to(dtype),
        lattice=torch.from_numpy(np.stack([g.lattice_A for g in graphs])).to(dtype),
        atomic_numbers=torch.from_numpy(z),
        node_input=torch.from_numpy(node_input).to(dtype),
        edge_src=torch.from_numpy(np.concatenate([g.edge_src for g in graphs]) + off_e),
        edge_dst=torch.from_numpy(np.concatenate([g.edge_dst for g in graphs]) + off_e),
        edge_shift=torch.from_numpy(np.concatenate([g.edge_shift for g in graphs])).to(dtype),
        edge_crystal=torch.from_numpy(edge_crystal),
        batch=torch.from_numpy(np.repeat(np.arange(len(graphs), dtype=np.int64), n_atoms)),
        n_atoms=torch.from_numpy(n_atoms),
        species=torch.from_numpy(species.astype(np.int64)),
        node_species=torch.from_numpy(node_species.reshape(-1).astype(np.int64)),
        edge_length_rep=torch.from_numpy(rep.astype(np.int64)),
        edge_length_index=torch.from_numpy(inv.reshape(-1).astype(np.int64)),
        material_ids=[g.material_id for g in graphs],
        node_attr=node_attr,
        y=y,
    )
