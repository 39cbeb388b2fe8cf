"""Commensurate k/q grids (Methods IV.1) on cells of different shapes and volumes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from betenet.qe.kgrid import GridError, commensurate_grids, commensurate_pair, mesh_density, nearest_divisor, subdivisions

K_DENSITY, Q_DENSITY = 40.0, 15.0  # the paper's densities (points per Å^-1)

CELLS = {
    "fcc-Al-primitive": Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    .get_primitive_structure()
    .lattice,
    "simple-cubic-small": Lattice.cubic(2.5),
    "cubic-large": Lattice.cubic(11.0),
    "hexagonal": Lattice.hexagonal(3.2, 5.2),
    "tetragonal-long": Lattice.tetragonal(3.0, 9.7),
    "orthorhombic": Lattice.orthorhombic(3.1, 4.7, 6.3),
    "triclinic": Lattice.from_parameters(3.3, 4.1, 5.6, 78.0, 95.0, 106.0),
}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_grids_are_commensurate_and_near_requested_density(name):
    lat = CELLS[name]
    g = commensurate_grids(lat, K_DENSITY, Q_DENSITY)
    b = np.array(lat.reciprocal_lattice_crystallographic.abc)
    for i in range(3):
        assert g.k[i] % g.q[i] == 0, (name, g)
        assert g.k[i] % g.k_scf[i] == 0, (name, g)
        # k never drops below the requested density by more than one subdivision
        assert g.k[i] >= math.ceil(K_DENSITY * b[i] - 1e-6) - 1
        # q is at most the requested subdivisions (only ever reduced)
        assert 1 <= g.q[i] <= max(1, math.ceil(Q_DENSITY * b[i] - 1e-6))
    np.testing.assert_allclose(g.k_density_per_invA, np.array(g.k) / b)


def test_subdivisions_follow_reciprocal_lengths_without_2pi():
    # cubic a = 4 Å: |b| = 0.25 Å^-1 -> 40 * 0.25 = 10 subdivisions exactly (not 11: ceil tolerance)
    assert subdivisions(Lattice.cubic(4.0), 40.0) == (10, 10, 10)
    assert subdivisions(Lattice.cubic(4.0), 41.0) == (11, 11, 11)
    # long axis gets fewer points
    assert subdivisions(Lattice.tetragonal(3.0, 9.0), 30.0) == (10, 10, 4)


def test_larger_cells_get_fewer_points():
    small = commensurate_grids(Lattice.cubic(3.0), K_DENSITY, Q_DENSITY)
    large = commensurate_grids(Lattice.cubic(9.0), K_DENSITY, Q_DENSITY)
    assert all(ks > kl for ks, kl in zip(small.k, large.k))
    assert all(qs >= ql for qs, ql in zip(small.q, large.q))


def test_paper_rule_order_increase_then_decrease_then_shrink_q():
    assert commensurate_pair(12, 4) == (12, 4)  # already commensurate
    assert commensurate_pair(11, 4) == (12, 4)  # k + 1 first
    assert commensurate_pair(13, 4) == (12, 4)  # then k - 1
    assert commensurate_pair(10, 4) == (9, 3)  # 10, 11, 9 fail for q=4 -> q=3: 10? no, 11? no, 9 yes
    assert commensurate_pair(7, 5) == (8, 4)  # q=5: 7, 8, 6 fail -> q=4: 7 no, 8 yes
    assert commensurate_pair(5, 1) == (5, 1)


def test_error_when_q_reaches_its_floor():
    with pytest.raises(GridError, match="direction 2.*k=10.*q tried 4..4"):
        commensurate_pair(10, 4, q_min=4, direction=1)
    # a whole lattice: a = 4 Å, k density 40 -> k = 10; q density 16 -> q = 4; floor 4 -> impossible
    with pytest.raises(GridError, match="no commensurate k/q grid along direction 1"):
        commensurate_grids(Lattice.cubic(4.0), 40.0, 16.0, q_min=4)
    # the same with the default floor (1) succeeds
    g = commensurate_grids(Lattice.cubic(4.0), 40.0, 16.0)
    assert g.q == (3, 3, 3) and g.k[0] % 3 == 0


def test_bad_inputs_raise_grid_error():
    with pytest.raises(GridError, match="density"):
        commensurate_grids(Lattice.cubic(4.0), -1.0, 5.0)
    with pytest.raises(GridError, match="singular"):
        commensurate_grids(np.zeros((3, 3)), 10.0, 5.0)
    with pytest.raises(GridError, match="3x3"):
        commensurate_grids(np.ones((2, 3)), 10.0, 5.0)


def test_coarse_scf_mesh_divides_dense_mesh():
    # QE 6.7 needs dense % coarse == 0 (else NaN linewidths at Gamma); k may be raised to allow it
    g = commensurate_grids(Lattice.cubic(3.0), 28.0, 8.0, scf_k_density_per_invA=14.0)
    assert g.q == (3, 3, 3) and g.k == (12, 12, 12) and g.k_scf == (6, 6, 6)
    assert nearest_divisor(12, 5) == 6  # tie 4/6 -> larger
    assert nearest_divisor(7, 3) == 1


def test_scf_mesh_never_coarser_than_asked_with_min_ratio_one():
    """B2 MgTl's relaxed cell (a = 3.618 Å) at 14 per Å^-1: the target of 4 became a 3x3x3 scf mesh (the
    default 2/3 ratio), whose phonons were wrong by 10 meV (data/studies/2026-11-25-scf-k-convergence);
    with scf_min_ratio=1 the dense mesh is raised so that a divisor >= 4 exists."""
    lat = Lattice.cubic(3.618330101)
    old = commensurate_grids(lat, 28.0, 8.0, scf_k_density_per_invA=14.0)
    assert old.k == (9, 9, 9) and old.q == (3, 3, 3) and old.k_scf == (3, 3, 3)
    new = commensurate_grids(lat, 28.0, 8.0, scf_k_density_per_invA=14.0, scf_min_ratio=1.0)
    assert new.q == (3, 3, 3) and new.k == (12, 12, 12) and new.k_scf == (4, 4, 4)
    # the paper level's scf density on fcc Rh (a = 3.773 Å): 8 subdivisions, the mesh the study found stable
    rh = Lattice([[0, 1.886621496, 1.886621496], [1.886621496, 0, 1.886621496], [1.886621496, 1.886621496, 0]])
    assert commensurate_grids(rh, 28.0, 8.0, scf_k_density_per_invA=14.0).k_scf == (6, 6, 6)
    assert min(commensurate_grids(rh, 28.0, 8.0, scf_k_density_per_invA=20.0, scf_min_ratio=1.0).k_scf) >= 8
    with pytest.raises(GridError, match="scf_min_ratio"):
        commensurate_grids(lat, 28.0, 8.0, scf_k_density_per_invA=14.0, scf_min_ratio=1.5)


def test_mesh_density_is_subdivisions_over_reciprocal_length():

    lat = Lattice.cubic(4.0)
    assert mesh_density(lat, (6, 6, 3)) == pytest.approx((24.0, 24.0, 12.0))
    fcc = Lattice([[0, 2, 2], [2, 0, 2], [2, 2, 0]])  # a = 4 Å: |b| = sqrt(3)/4
    assert mesh_density(fcc, (6, 6, 6)) == pytest.approx((6 * 4 / 3**0.5,) * 3)
    with pytest.raises(GridError, match="three positive"):
        mesh_density(lat, (6, 0, 6))
