"""Quantum ESPRESSO el-ph dataset workflow (Methods IV.1), in pipeline order:

* candidates: :mod:`~betenet.qe.prototypes` (decorated prototypes), :mod:`~betenet.qe.upstream_candidates`
  (the paper's own structures); pseudopotentials: :mod:`~betenet.qe.pseudo`, :mod:`~betenet.qe.pseudodojo`;
* inputs and meshes: :mod:`~betenet.qe.inputs` (``PWInput`` and the other programs' namelists),
  :mod:`~betenet.qe.kgrid`; launching: :mod:`~betenet.qe.runner` (``run_qe``, the one way to start QE);
* one material's run: :mod:`~betenet.qe.workflow` (the steps), :mod:`~betenet.qe.status` (its directory
  ``data/qe/<id>``: status, audit logs, review edits), :mod:`~betenet.qe.refinement` (one material rerun
  with denser meshes than its level's), :mod:`~betenet.qe.parsers`, :mod:`~betenet.qe.phonon_dos`;
* filters and labels: :mod:`~betenet.qe.filters`, :mod:`~betenet.qe.broadening` (σ choice), :mod:`~betenet.qe.labels`,
  :mod:`~betenet.qe.record` (the ``MaterialRecord`` from a run directory);
* many materials: :mod:`~betenet.qe.dataset` (Dask), :mod:`~betenet.qe.phcost` (what a ph.x run will cost),
  :mod:`~betenet.qe.summary`, :mod:`~betenet.qe.convergence`.

Submodules are imported explicitly (``from betenet.qe import workflow``); importing this package
does nothing else.
"""

from __future__ import annotations

__all__: list[str] = []
