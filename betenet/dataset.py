"""Material records -> periodic graphs + 51-bin α²F targets, for the CSO / CPD / FPD variants.

* **Targets**: the raw α²F of each record, smoothed and binned by
  :func:`betenet.spectra.smooth_and_bin` onto the 51-point grid (0.25 ... 100.25 meV).
* **Node attributes** (CPD / FPD only): each site's projected phonon DOS, the coarse one
  (``phdos_coarse_omega_meV`` / ``phdos_coarse_site``, force constants on a 2x2x2 q grid) for CPD and
  the fine one (``phdos_omega_meV`` / ``phdos_site``) for FPD, passed through the *same*
  ``smooth_and_bin`` as the targets (Methods IV.2: "this same process was applied to the embedding
  of the site-projected PhDOS") and then **divided by the largest binned value over all sites of
  the material**, so attributes lie in [0, 1] (as Chen et al. scaled PhDOS by its maximum) while
  the relative heights of different sites are kept.  A material whose binned PhDOS is zero
  everywhere is an error.  CSO has no per-site attributes (the model uses the element, see
  :mod:`betenet.model`).
* **Graphs** are built once per ``(material_id, r_max, structure hash, self_edges)`` and kept in a
  :class:`GraphCache` (in memory; optionally mirrored to ``.npz`` files in a directory, e.g.
  ``artifacts_dir(profile, "graphs")``).  Building is fast (~0.1 ms per crystal), so the disk
  mirror only matters for very large structure sets.

A record that lacks the PhDOS a variant needs raises :class:`DatasetError` naming the material and
the field.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .config import VARIANTS
from .constants import N_TARGET_BINS
from .graphs import CrystalGraph, GraphBatch, build_graph, collate, structure_hash
from .spectra import smooth_and_bin

__all__ = [
    "VARIANTS",
    "DatasetError",
    "GraphCache",
    "default_graph_cache",
    "target_a2f",
    "stack_targets",
    "site_phdos_attributes",
    "check_records_for_variant",
    "graphs_for",
    "MaterialDataset",
    "graphs_for_structures",
    "mean_num_neighbors",
]

#: Record fields holding the site-projected PhDOS used as node attributes, per variant.
PHDOS_FIELDS = {
    "CPD": ("phdos_coarse_omega_meV", "phdos_coarse_site"),
    "FPD": ("phdos_omega_meV", "phdos_site"),
}


class DatasetError(ValueError):
    """A record cannot be turned into a training example; the message names the material and field."""


class GraphCache:
    """Graphs keyed by ``(material_id, r_max_A, structure_hash, self_edges)``; thread-safe.

    ``directory``: if given, graphs are also written there as ``<material_id>-<r_max>-<hash>.npz``
    and read back on a miss (never overwritten: the key includes the structure hash).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._graphs: dict[tuple, CrystalGraph] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._graphs)

    def clear(self) -> None:
        with self._lock:
            self._graphs.clear()

    def _file(self, key: tuple) -> Path:
        mid, r_max, h, self_edges = key
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in mid)
        return self.directory / f"{safe}-r{r_max:g}-{h}{'' if self_edges else '-noself'}.npz"

    def get(self, structure: Any, r_max_A: float, material_id: str, *, self_edges: bool = True) -> CrystalGraph:
        key = (material_id, float(r_max_A), structure_hash(structure), bool(self_edges))
        with self._lock:
            graph = self._graphs.get(key)
        if graph is not None:
            self.hits += 1
            return graph
        self.misses += 1
        graph = None
        if self.directory is not None and self._file(key).exists():
            with np.load(self._file(key)) as f:
                graph = CrystalGraph(material_id, f["positions_A"], f["lattice_A"], f["atomic_numbers"], f["edge_src"],
                                     f["edge_dst"], f["edge_shift"], float(r_max_A))
        if graph is None:
            graph = build_graph(structure, r_max_A, material_id=material_id, self_edges=self_edges)
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
                tmp = self._file(key).with_suffix(".tmp.npz")
                np.savez(tmp, positions_A=graph.positions_A, lattice_A=graph.lattice_A,
                         atomic_numbers=graph.atomic_numbers, edge_src=graph.edge_src, edge_dst=graph.edge_dst,
                         edge_shift=graph.edge_shift)
                tmp.replace(self._file(key))
        with self._lock:
            self._graphs[key] = graph
        return graph


_DEFAULT_CACHE: GraphCache | None = None


def default_graph_cache() -> GraphCache:
    """The process-wide in-memory :class:`GraphCache` used when none is passed."""
    global _DEFAULT_CACHE
    if _DEFAULT_CACHE is None:
        _DEFAULT_CACHE = GraphCache()
    return _DEFAULT_CACHE


def target_a2f(record: Any) -> np.ndarray:
    """The learning target of a record: its α²F smoothed and binned to 51 points (dimensionless)."""
    mid = getattr(record, "material_id", "<unknown>")
    for name in ("a2f_omega_meV", "a2f"):
        if getattr(record, name, None) is None:
            raise DatasetError(f"material {mid!r}: field {name!r} is missing (needed for the α²F target)")
    try:
        out = smooth_and_bin(record.a2f_omega_meV, record.a2f)
    except ValueError as exc:
        raise DatasetError(f"material {mid!r}: fields 'a2f_omega_meV'/'a2f': {exc}") from exc
    if out.shape != (N_TARGET_BINS,):
        raise DatasetError(f"material {mid!r}: field 'a2f' must be 1-D, binned shape is {out.shape}")
    return out


def site_phdos_attributes(record: Any, variant: str) -> np.ndarray:
    """(n_sites, 51) node attributes of a CPD/FPD record: binned site PhDOS / its maximum over sites and bins."""
    if variant not in PHDOS_FIELDS:
        raise ValueError(f"variant {variant!r} has no PhDOS node attributes; expected one of {sorted(PHDOS_FIELDS)}")
    mid = getattr(record, "material_id", "<unknown>")
    f_omega, f_site = PHDOS_FIELDS[variant]
    omega, site = getattr(record, f_omega, None), getattr(record, f_site, None)
    for name, value in ((f_omega, omega), (f_site, site)):
        if value is None:
            raise DatasetError(f"material {mid!r}: field {name!r} is missing; variant {variant} needs the "
                               f"site-projected {'coarse' if variant == 'CPD' else 'fine'} PhDOS")
    site = np.asarray(site, dtype=float)
    n_sites = len(record.structure)
    if site.ndim != 2 or site.shape[0] != n_sites:
        raise DatasetError(f"material {mid!r}: field {f_site!r} must have shape (n_sites={n_sites}, n_omega), "
                           f"got {site.shape}")
    try:
        binned = smooth_and_bin(omega, site)
    except ValueError as exc:
        raise DatasetError(f"material {mid!r}: fields {f_omega!r}/{f_site!r}: {exc}") from exc
    peak = float(binned.max())
    if not peak > 0:
        raise DatasetError(f"material {mid!r}: field {f_site!r} is zero on the 0.25-100.25 meV grid after binning")
    return binned / peak


def stack_targets(records: Sequence[Any]) -> np.ndarray:
    """(n, 51) learning targets (:func:`target_a2f`) of ``records``; (0, 51) for none."""
    return np.stack([target_a2f(r) for r in records]) if records else np.zeros((0, N_TARGET_BINS))


def check_records_for_variant(records: Sequence[Any], variant: str) -> None:
    """:class:`DatasetError` naming the first material that lacks what ``variant`` needs (fast: no graphs)."""
    for rec in records:
        for name in ("a2f_omega_meV", "a2f"):
            if getattr(rec, name, None) is None:
                raise DatasetError(f"material {rec.material_id!r}: field {name!r} is missing (needed for the α²F target)")
        for name in PHDOS_FIELDS.get(variant, ()):
            if getattr(rec, name, None) is None:
                raise DatasetError(
                    f"material {rec.material_id!r}: field {name!r} is missing; variant {variant} needs the "
                    f"site-projected {'coarse' if variant == 'CPD' else 'fine'} PhDOS"
                )


def graphs_for(items: Sequence[Any], variant: str, r_max_A: float) -> list[CrystalGraph]:
    """Graphs (with the variant's node attributes) for records and/or pymatgen structures (bare structures
    only for CSO), from the process-wide :class:`GraphCache`."""
    cache = default_graph_cache()
    out = []
    for i, item in enumerate(items):
        if hasattr(item, "material_id") and hasattr(item, "structure"):
            g = cache.get(item.structure, r_max_A, item.material_id)
            if variant != "CSO":
                g = g.with_node_attr(site_phdos_attributes(item, variant))
        elif hasattr(item, "lattice") and hasattr(item, "species"):
            if variant != "CSO":
                raise ValueError(
                    f"item {i} ({item.composition.reduced_formula}) is a bare structure, but {variant} members need "
                    f"records with the site-projected {'coarse' if variant == 'CPD' else 'fine'} PhDOS"
                )
            [g] = graphs_for_structures([item], r_max_A, [f"s{i:06d}-{item.composition.reduced_formula}"], cache=cache)
        else:
            raise TypeError(f"item {i}: expected a MaterialRecord or a pymatgen Structure, got {type(item).__name__}")
        out.append(g)
    return out


def mean_num_neighbors(graphs: Sequence[CrystalGraph]) -> float:
    """Mean number of incoming edges per atom (incl. self edges): Chen et al.'s ``num_neighbors``."""
    n_edges = sum(g.n_edges for g in graphs)
    n_atoms = sum(g.n_atoms for g in graphs)
    return float(n_edges) / float(n_atoms)


def graphs_for_structures(
    structures: Sequence[Any],
    r_max_A: float,
    material_ids: Sequence[str] | None = None,
    *,
    cache: GraphCache | None = None,
    self_edges: bool = True,
) -> list[CrystalGraph]:
    """Graphs (no node attributes) for bare structures, e.g. screening candidates for a CSO model."""
    cache = default_graph_cache() if cache is None else cache
    if material_ids is None:
        material_ids = [f"s{i:06d}-{s.composition.reduced_formula}" for i, s in enumerate(structures)]
    if len(material_ids) != len(structures):
        raise ValueError(f"{len(material_ids)} material_ids for {len(structures)} structures")
    return [cache.get(s, r_max_A, m, self_edges=self_edges) for s, m in zip(structures, material_ids)]


class MaterialDataset:
    """Records of one variant as graphs + targets.

    Parameters
    ----------
    records: :class:`betenet.records.MaterialRecord` objects.
    variant: ``"CSO"``, ``"CPD"`` or ``"FPD"``.
    r_max_A: neighbour cut-off (Å).
    cache: graph cache (default: the process-wide in-memory one).
    with_targets: build the α²F targets (set False to predict for records without usable α²F).

    Attributes: ``graphs`` (list of :class:`CrystalGraph`, with node attributes for CPD/FPD),
    ``targets`` ((n, 51) array or None), ``material_ids``, ``n_node_attr`` (0 for CSO, 51 otherwise).
    ``ds[i]`` is ``(graph, target)``; :meth:`batch` collates (a subset) into a :class:`GraphBatch`.
    """

    def __init__(
        self,
        records: Sequence[Any],
        variant: str,
        r_max_A: float = 4.0,
        *,
        cache: GraphCache | None = None,
        self_edges: bool = True,
        with_targets: bool = True,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.records = list(records)
        self.variant = variant
        self.r_max_A = float(r_max_A)
        cache = default_graph_cache() if cache is None else cache
        ids = [r.material_id for r in self.records]
        dup = sorted({m for m in ids if ids.count(m) > 1}) if len(set(ids)) != len(ids) else []
        if dup:
            raise DatasetError(f"duplicate material_id(s) in records: {dup[:5]}")
        self.material_ids = ids
        graphs = []
        for rec in self.records:
            g = cache.get(rec.structure, self.r_max_A, rec.material_id, self_edges=self_edges)
            if variant != "CSO":
                g = g.with_node_attr(site_phdos_attributes(rec, variant))
            graphs.append(g)
        self.graphs: list[CrystalGraph] = graphs
        self.targets: np.ndarray | None = (
            np.stack([target_a2f(r) for r in self.records]) if with_targets and self.records else None
        )

    @property
    def n_node_attr(self) -> int:
        return 0 if self.variant == "CSO" else N_TARGET_BINS

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int) -> tuple[CrystalGraph, np.ndarray | None]:
        return self.graphs[i], None if self.targets is None else self.targets[i]

    def index_of(self, material_ids: Sequence[str]) -> np.ndarray:
        """Positions of ``material_ids`` in this dataset (KeyError naming the first unknown id)."""
        pos = {m: i for i, m in enumerate(self.material_ids)}
        try:
            return np.array([pos[m] for m in material_ids], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"material_id {exc.args[0]!r} is not in this {self.variant} dataset") from None

    def subset(self, indices: Sequence[int]) -> "MaterialDataset":
        """A dataset view of ``indices`` (may repeat, e.g. a bootstrap resample), sharing graphs."""
        idx = np.asarray(indices, dtype=np.int64)
        sub = object.__new__(MaterialDataset)
        sub.records = [self.records[i] for i in idx]
        sub.variant, sub.r_max_A = self.variant, self.r_max_A
        sub.material_ids = [self.material_ids[i] for i in idx]
        sub.graphs = [self.graphs[i] for i in idx]
        sub.targets = None if self.targets is None else self.targets[idx]
        return sub

    def batch(self, indices: Sequence[int] | None = None, *, dtype=None) -> GraphBatch:
        """Collate ``indices`` (default: all, in order) into one :class:`GraphBatch` with ``y`` = targets."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        graphs = [self.graphs[i] for i in idx]
        targets = None if self.targets is None else self.targets[idx]
        return collate(graphs, targets, dtype=dtype)

    def batches(self, batch_size: int, *, shuffle: bool = False, rng: np.random.Generator | None = None,
                dtype=None) -> Iterator[GraphBatch]:
        """Mini-batches of ``batch_size`` crystals (``batch_size <= 0``: one full batch)."""
        order = np.arange(len(self))
        if shuffle:
            if rng is None:
                raise ValueError("batches(shuffle=True) needs an explicit rng (np.random.Generator)")
            order = rng.permutation(order)
        size = len(self) if batch_size <= 0 else int(batch_size)
        for start in range(0, len(self), size):
            yield self.batch(order[start : start + size], dtype=dtype)
