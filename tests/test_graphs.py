"""Periodic graphs: brute-force neighbour agreement, self edges, symmetry, batching by index arithmetic."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from betenet.graphs import (
    N_ELEMENTS,
    atomic_masses_amu,
    build_graph,
    collate,
    periodic_neighbors,
    structure_hash,
)
from model_structures import structures

R_MAX = 4.0


def brute_force_edges(structure: Structure, r_max: float) -> set[tuple[int, int, int, int, int]]:
    """(i, j, S1, S2, S3) with |pos_j + S L - pos_i| < r_max by looping over a generous shift box."""
    lat = structure.lattice.matrix
    pos = structure.cart_coords
    # interplanar spacings bound how many images along each axis can be inside r_max
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(lat), axis=0)
    frac = structure.frac_coords
    span = np.ptp(frac, axis=0) if len(structure) > 1 else np.zeros(3)
    n = [int(math.ceil(r_max / spacing[k] + span[k])) + 1 for k in range(3)]
    edges = set()
    for s in itertools.product(*(range(-n[k], n[k] + 1) for k in range(3))):
        shift = np.array(s, dtype=float) @ lat
        for i in range(len(structure)):
            for j in range(len(structure)):
                if np.linalg.norm(pos[j] + shift - pos[i]) < r_max:
                    edges.add((i, j, *s))
    return edges


def as_set(g) -> set[tuple[int, int, int, int, int]]:
    return {(int(i), int(j), *map(int, s)) for i, j, s in zip(g.edge_src, g.edge_dst, g.edge_shift)}


@pytest.mark.parametrize("name", list(structures()))
def test_neighbours_match_brute_force(name):
    st = structures()[name]
    g = build_graph(st, R_MAX, material_id=name)
    ref = brute_force_edges(st, R_MAX)
    assert as_set(g) == ref
    assert g.n_edges == len(ref)  # no duplicates
    d = np.linalg.norm(g.edge_vectors(), axis=1)
    assert d.max() < R_MAX


def test_tiny_cell_has_self_images():
    """a = 1.9 Å < r_max/2: an atom sees its own images out to the second shell and beyond."""
    g = build_graph(structures()["Po-tiny-sc"], R_MAX)
    d = np.linalg.norm(g.edge_vectors(), axis=1)
    # simple cubic shells within 4 Å of a = 1.9: a, a√2, a√3, 2a (=3.8): 6 + 12 + 8 + 6 images, plus self
    assert g.n_edges == 1 + 6 + 12 + 8 + 6
    assert np.isclose(np.sort(d)[1:7], 1.9).all()
    assert (g.edge_src == g.edge_dst).all()


def test_unwrapped_coordinates_give_the_same_edges_up_to_shift():
    """Moving a site by a lattice vector changes shifts, not distances."""
    st = structures()["NbSnC-triclinic"]
    moved = Structure(st.lattice, st.species, st.frac_coords + np.array([[0, 0, 0], [2, -1, 0], [0, 0, -3]]))
    a, b = build_graph(st, R_MAX), build_graph(moved, R_MAX)
    assert a.n_edges == b.n_edges
    key = lambda g: sorted(zip(g.edge_src, g.edge_dst, np.round(np.linalg.norm(g.edge_vectors(), axis=1), 9)))
    assert key(a) == key(b)


def test_self_edges_and_reverse_edges():
    st = structures()["Nb3Sn-A15"]
    g = build_graph(st, R_MAX)
    zero = (g.edge_src == g.edge_dst) & (g.edge_shift == 0).all(axis=1)
    assert zero.sum() == len(st)  # one zero-length self edge per atom (Chen et al.'s self_interaction=True)
    fwd = as_set(g)
    assert all((j, i, -a, -b, -c) in fwd for i, j, a, b, c in fwd)
    g2 = build_graph(st, R_MAX, self_edges=False)
    assert g2.n_edges == g.n_edges - len(st)
    assert np.linalg.norm(g2.edge_vectors(), axis=1).min() > 1.0


def test_agrees_with_ase_neighbor_list():
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    for name in ("Mg-hcp", "NbSnC-triclinic", "CuZr-sheared"):
        st = structures()[name]
        atoms = Atoms(numbers=st.atomic_numbers, positions=st.cart_coords, cell=st.lattice.matrix, pbc=True)
        i, j, s = neighbor_list("ijS", atoms, R_MAX, self_interaction=True)
        ase_set = {(a, b, *map(int, c)) for a, b, c in zip(i.tolist(), j.tolist(), s)}
        assert as_set(build_graph(st, R_MAX)) == ase_set, name


def test_node_input_is_mass_weighted_one_hot():
    g = build_graph(structures()["NbC-rocksalt"], R_MAX)
    x = g.node_input
    assert x.shape == (2, N_ELEMENTS)
    assert x[0, 40] == pytest.approx(92.906, abs=1e-2) and x[1, 5] == pytest.approx(12.011, abs=1e-2)
    assert (x > 0).sum() == 2
    assert atomic_masses_amu()[0] == pytest.approx(1.008)


def test_collate_offsets_and_torch_edge_vectors():
    sts = structures()
    graphs = [build_graph(sts[n], R_MAX, material_id=n) for n in ("Al-fcc", "Nb3Sn-A15", "NbSnC-triclinic")]
    b = collate(graphs, np.arange(3 * 51, dtype=float).reshape(3, 51), dtype=torch.float64)
    assert b.n_crystals == 3 and b.n_nodes == 1 + 8 + 3 and b.n_edges == sum(g.n_edges for g in graphs)
    assert b.batch.tolist() == [0] + [1] * 8 + [2] * 3
    assert b.material_ids == ["Al-fcc", "Nb3Sn-A15", "NbSnC-triclinic"]
    ref = np.concatenate([g.edge_vectors() for g in graphs])
    assert torch.allclose(b.edge_vectors(), torch.from_numpy(ref), atol=1e-12)
    # edges never cross crystals
    assert torch.equal(b.batch[b.edge_src], b.batch[b.edge_dst])
    assert torch.equal(b.batch[b.edge_src], b.edge_crystal)
    assert b.y.shape == (3, 51) and b.y.dtype == torch.float64
    assert b.species.tolist() == [6, 13, 41, 50] and torch.equal(b.species[b.node_species], b.atomic_numbers)
    # distinct-length bookkeeping reproduces every edge length, per crystal
    length = b.edge_vectors().norm(dim=1)
    assert torch.allclose(length[b.edge_length_rep][b.edge_length_index], length, atol=1e-9)
    assert torch.equal(b.edge_crystal[b.edge_length_rep][b.edge_length_index], b.edge_crystal)
    assert b.edge_length_rep.shape[0] < b.n_edges / 2
    b32 = b.to(dtype=torch.float32)
    assert b32.positions.dtype == torch.float32 and b32.edge_src.dtype == torch.long


def test_collate_rejects_mixed_node_attributes():
    sts = structures()
    g1 = build_graph(sts["Al-fcc"], R_MAX).with_node_attr(np.ones((1, 51)))
    g2 = build_graph(sts["Nb-bcc"], R_MAX)
    with pytest.raises(ValueError, match="node_attr"):
        collate([g1, g2])
    with pytest.raises(ValueError, match="shape"):
        g2.with_node_attr(np.ones((3, 51)))


def test_bad_inputs_name_the_problem():
    st = Structure(Lattice.cubic(3.0), [{"Nb": 0.5, "Ti": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="'NbTi'.*partially occupied|partially occupied"):
        build_graph(st, R_MAX, material_id="NbTi")
    with pytest.raises(ValueError, match="singular"):
        periodic_neighbors(np.zeros((1, 3)), np.diag([1.0, 1.0, 0.0]), R_MAX)
    with pytest.raises(ValueError, match="r_max_A"):
        periodic_neighbors(np.zeros((1, 3)), np.eye(3), 0.0)


def test_structure_hash_changes_with_geometry():
    st = structures()["Mg-hcp"]
    h = structure_hash(st)
    assert h == structure_hash(st.copy())
    st2 = st.copy()
    st2.translate_sites([0], [0.01, 0, 0])
    assert structure_hash(st2) != h
