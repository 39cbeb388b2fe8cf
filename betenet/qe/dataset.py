"""Run the QE workflow over many materials through Dask, resumably.

:func:`run_dataset` submits one task per material (:func:`betenet.qe.workflow.run_material`) to a
``dask.distributed`` client from :func:`betenet.cluster.dask_client` (a ``LocalCluster`` by default;
``DaskConfig.scheduler_address`` or ``jobqueue`` for a real cluster), collects them with
``as_completed`` behind a tqdm bar, and returns one summary row per material.  Each task is
resume-safe: a finished material is skipped in the worker in milliseconds, a killed one resumes at
its first unfinished step.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Sequence

from pymatgen.core import Structure

from ..cluster import dask_client
from ..config import Profile, QEConfig
from ..locks import LockBusyError
from ..paths import QE_RUNS_DIR, RECORDS_DIR
from . import prototypes
from .filters import BACKUP_MARK, status_files
from .inputs import QEInputError
from .kgrid import grids_for_config, mesh_density
from .phcost import ph_cost_estimate, remaining_elph
from .pseudo import PseudoLibrary
from .refinement import load_refinement, refined_config
from .status import load_status, material_dir
from .upstream_candidates import (
    UpstreamCandidateList, explain_unknown_upstream_id, matching_upstream_row, upstream_candidates, upstream_index_of,
)
from .workflow import check_settings, run_material

#: seconds between checks for new Dask workers while every task in flight is still running
WINDOW_POLL_S = 30.0

__all__ = [
    "Candidate", "CandidateList", "dataset_dirs", "run_dataset", "run_one", "default_candidates", "select_candidates",
    "scf_mesh_estimate", "plan_candidates", "rows_computed", "run_under_another_id", "computed_elsewhere", "refuse_computed_elsewhere", "crystals_computed", "finished_runs", "started_runs", "begun", "explain_unknown_id", "candidate_source", "CANDIDATE_SOURCES",
]

#: ``(material_id, structure, prototype)`` as produced by :func:`betenet.qe.prototypes.candidate_structures`.
Candidate = tuple[str, Structure, str]


def dataset_dirs(cfg: QEConfig) -> tuple[Path, Path]:
    """``(runs_dir, records_dir)`` of an accuracy level: ``data/qe`` + ``data/records`` for the
    project's ``screening`` dataset, ``data/qe-<level>`` + ``data/records-<level>`` for any other
    (so a ``paper``-level run never mistakes a finished screening material for its own)."""
    if cfg.accuracy == "screening":
        return QE_RUNS_DIR, RECORDS_DIR
    return QE_RUNS_DIR.parent / f"qe-{cfg.accuracy}", RECORDS_DIR.parent / f"records-{cfg.accuracy}"


class CandidateList(Sequence):
    """Lazy, priority-ordered candidates: ids are known up front, a structure is built on first access.

    Behaves like ``list[Candidate]`` (indexing, iteration, ``len``); :attr:`ids` never builds
    anything, so selecting a few materials among thousands costs milliseconds
    (:func:`select_candidates` builds only what it returns).
    """

    def __init__(self, entries: Iterable[tuple[str, Sequence[str], str]]):
        self._entries = [(str(m), tuple(els), str(p)) for m, els, p in entries]
        self._built: dict[int, Structure] = {}

    @property
    def ids(self) -> list[str]:
        return [m for m, _, _ in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return CandidateList(self._entries[i])
        i = range(len(self._entries))[i]
        mid, els, proto = self._entries[i]
        if i not in self._built:
            self._built[i] = prototypes.build(els, proto)
        return (mid, self._built[i], proto)

    def __repr__(self) -> str:
        head = ", ".join(self.ids[:4])
        return f"CandidateList({len(self)} candidates: {head}{', ...' if len(self) > 4 else ''})"


def default_candidates(max_atoms: int = 8, cfg: QEConfig | None = None) -> CandidateList:
    """Priority-ordered candidates from :mod:`betenet.qe.prototypes` over the elements of the pseudopotential
    library of ``cfg``'s accuracy level (:meth:`~betenet.qe.pseudo.PseudoLibrary.for_level`; the project's set when
    ``cfg`` is ``None``), as a lazy :class:`CandidateList` (structures are built only when accessed)."""
    lib = PseudoLibrary.for_level(cfg or QEConfig())
    return CandidateList(prototypes.candidate_ids(elements=lib.elements, max_atoms=max_atoms))


#: Where ``qe run`` / ``qe plan`` take candidates from (``--candidates``).
CANDIDATE_SOURCES = ("prototypes", "upstream")


def candidate_source(name: str, cfg: QEConfig):
    """The candidates of a source for ``cfg``'s accuracy level: ``"prototypes"`` (:func:`default_candidates`:
    decorations of fcc/bcc/hcp/B2/B1/L1_2/... prototypes) or ``"upstream"`` (the paper's own 806 structures,
    :mod:`betenet.qe.upstream_candidates`, those whose every element the level's library covers, in the
    order of their estimated el-ph ph.x CPU, :func:`~betenet.qe.phcost.ph_cost_estimate`).  Both are lazy lists of ``(material_id, structure, prototype)`` with ``.ids``."""
    if name == "prototypes":
        return default_candidates(cfg.max_atoms, cfg)
    if name == "upstream":
        lib = PseudoLibrary.for_level(cfg)

        def est_ph_cpu_s(structure: Structure) -> float:
            grids = grids_for_config(structure, cfg)
            return ph_cost_estimate(structure, {"k_scf": grids.k_scf, "q": grids.q}, lib)["est_ph_cpu_s"]

        return UpstreamCandidateList(upstream_candidates(lib, max_atoms=cfg.max_atoms, only_covered=True,
                                                         cost=est_ph_cpu_s))
    raise ValueError(f"unknown candidate source {name!r}; expected one of {CANDIDATE_SOURCES}")


def scf_mesh_estimate(structure: Structure, cfg: QEConfig) -> dict[str, Any]:
    """The grids :func:`betenet.qe.kgrid.grids_for_config` gives ``structure`` (an *unrelaxed*
    candidate: the workflow recomputes them on the relaxed cell), the number of irreducible q points
    of the q mesh (spglib, the count ph.x runs), the lowest density the scf mesh reaches and its
    fraction of the requested scf density; ``too_coarse`` when that fraction is below
    ``cfg.candidate_min_scf_k_fraction``."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer  # heavy (spglib, ~0.5 s): only for the q count

    g = grids_for_config(structure, cfg)
    requested = cfg.scf_k_density_per_invA
    dens = mesh_density(structure, g.k_scf)
    if requested is None:  # half the dense mesh
        requested = cfg.k_density_per_invA / 2
    fraction = min(dens) / requested
    n_q_irr = len(SpacegroupAnalyzer(structure).get_ir_reciprocal_mesh(tuple(g.q)))
    lim = cfg.candidate_min_scf_k_fraction
    return {
        "n_atoms": len(structure), "k": g.k, "k_scf": g.k_scf, "q": g.q, "n_q_irr": n_q_irr,
        "scf_density_min_per_invA": round(min(dens), 2), "scf_fraction": round(fraction, 3),
        "too_coarse": bool(lim is not None and fraction < lim),
    }


def plan_candidates(
    candidates: Sequence[Candidate], cfg: QEConfig, *, ids: Iterable[str] | None = None, limit: int = 10,
    runs_dir: Path | None = None,
):
    """What ``betenet qe run`` would do next: the first ``limit`` unfinished candidates in priority
    order (or ``ids``; begun runs first, :func:`select_candidates`), one row each with :func:`scf_mesh_estimate`,
    :func:`~betenet.qe.phcost.ph_cost_estimate`, ``ph_k_left`` / ``est_left_cpu_h`` (a begun run's el-ph k points
    not yet archived, :func:`~betenet.qe.phcost.remaining_elph`, and their share of the estimate; the whole run
    otherwise) and ``action`` (``run``, ``resume`` for a begun run, ``skip: scf mesh too coarse``, or
    ``skip: the crystal of ID`` for an explicit id that another run has computed, :func:`computed_elsewhere`,
    which ``qe run`` refuses; explicit ids are not skipped for a coarse mesh).  A pandas DataFrame."""
    import pandas as pd

    explicit = ids is not None
    elsewhere = computed_elsewhere(list(dict.fromkeys(ids)), runs_dir) if explicit else {}
    mine = [m for m in ids if m not in elsewhere] if explicit else []
    source = (select_candidates(candidates, ids=mine, runs_dir=runs_dir, include_finished=False,
                                elsewhere_checked=True) if mine
              else [] if explicit else _unfinished(candidates, runs_dir))
    if elsewhere:  # shown, with the run that has the crystal (`qe run --ids` refuses them)
        position = {mid: i for i, mid in enumerate(_candidate_ids(candidates))}
        source = [*source, *(candidates[position[m]] for m in elsewhere)]
    lib = PseudoLibrary.for_level(cfg)
    rows = []
    n_run = 0
    for mid, structure, proto in source:
        mcfg = refined_config(cfg, material_dir(mid, runs_dir))  # a refined material's own meshes
        est = scf_mesh_estimate(structure, mcfg)
        action = "skip: scf mesh too coarse" if est["too_coarse"] and not explicit else ("resume" if begun(mid, runs_dir) else "run")
        action = f"skip: the crystal of {elsewhere[mid]}" if mid in elsewhere else action
        cost = ph_cost_estimate(structure, est, lib)
        # a begun run's el-ph points already archived are paid for: what is left, at the same cost per k point
        k_left = remaining_elph(material_dir(mid, runs_dir))["k_left"] if action == "resume" else None
        k_left = cost["ph_k_points"] if k_left is None else k_left
        rows.append({"material_id": mid, "prototype": proto, **est, "ph_k_points": cost["ph_k_points"],
                     "est_ph_cpu_h": round(cost["est_ph_cpu_s"] / 3600, 2), "ph_k_left": k_left,
                     "est_left_cpu_h": round(cost["est_ph_cpu_s"] * k_left / max(cost["ph_k_points"], 1) / 3600, 2),
                     "action": action})
        n_run += action in ("run", "resume")
        if not explicit and n_run >= limit:
            break
    return pd.DataFrame(rows)


def _candidate_ids(candidates: Sequence[Candidate]) -> list[str]:
    """The ids of ``candidates`` without building a :class:`CandidateList`'s structures."""
    ids = getattr(candidates, "ids", None)  # a lazy candidate list (CandidateList, UpstreamCandidateList)
    return list(ids) if ids is not None else [c[0] for c in candidates]


def begun(material_id: str, runs_dir: Path | None = None) -> bool:
    """True when a run of ``material_id`` has begun and not finished: it has a ``status.json`` that is not
    final (running, interrupted, reopened), or a refinement waiting to run (``betenet qe refine``)."""
    d = material_dir(material_id, runs_dir)
    if (d / "status.json").exists():
        return not load_status(material_id, runs_dir).final
    return load_refinement(d) is not None


def _begun_first(ids: Sequence[str], runs_dir: Path | None) -> list[int]:
    """Indices of ``ids``: the begun runs (:func:`begun`) first, each group in the given order."""
    started = [begun(mid, runs_dir) for mid in ids]
    return [i for i, b in enumerate(started) if b] + [i for i, b in enumerate(started) if not b]


def _unfinished(candidates: Sequence[Candidate], runs_dir: Path | None) -> Iterable[Candidate]:
    ids = _candidate_ids(candidates)
    elsewhere = _run_under_another_id(ids, runs_dir)
    for i in _begun_first(ids, runs_dir):
        mid = ids[i]
        if not load_status(mid, runs_dir).final and mid not in elsewhere:
            yield candidates[i]


def _run_under_another_id(ids: Sequence[str], runs_dir: Path | None) -> set[str]:
    """The candidates among ``ids`` that :func:`run_under_another_id` finds."""
    return set(run_under_another_id(ids, runs_dir))


def run_under_another_id(ids: Sequence[str], runs_dir: Path | None) -> dict[str, str]:
    """``{candidate: other id}`` for the candidates among ``ids`` whose structure a run in ``runs_dir``, finished
    or begun (:func:`started_runs`), computes under another id: an upstream row (:func:`rows_computed`), or a
    prototype decoration (``AlPd-B2``) that is the crystal of a run of the same formula (``up0256-AlPd``;
    :func:`crystals_computed`)."""
    rows = {mid: upstream_index_of(mid) for mid in ids}
    out: dict[str, str] = {}
    protos = [mid for mid, r in rows.items() if r is None]
    runs = started_runs(runs_dir) if ids else []  # a crystal being computed (a refined rerun) counts too
    if any(r is not None for r in rows.values()):
        done = rows_computed(runs_dir, runs)
        out |= {mid: done[r] for mid, r in rows.items() if r is not None and done.get(r, mid) != mid}
    finished = crystals_computed(runs_dir, runs) if protos else {}
    for mid in protos:
        formula = prototypes.id_formula(mid)
        others = [(rid, st) for rid, st in finished.get(formula or "", ()) if rid != mid]
        if not others:
            continue
        try:
            mine = prototypes.build(*prototypes.parse_material_id(mid))
        except prototypes.PrototypeError:
            continue
        same = [rid for rid, st in others if prototypes.same_crystal(mine, st)]
        if same:
            out[mid] = same[0]
    return out


def computed_elsewhere(ids: Sequence[str], runs_dir: Path | None) -> dict[str, str]:
    """:func:`run_under_another_id` for the ``ids`` that have no run of their own (no ``status.json``, no
    refinement waiting to run under that id)."""
    return {mid: rid for mid, rid in run_under_another_id(ids, runs_dir).items()
            if not (material_dir(mid, runs_dir) / "status.json").exists()
            and load_refinement(material_dir(mid, runs_dir)) is None}


def refuse_computed_elsewhere(ids: Sequence[str], runs_dir: Path | None) -> None:
    """Raise :class:`~betenet.qe.inputs.QEInputError` naming each of the explicit ``ids`` that has no run of
    its own but whose crystal a run under another id has computed or is computing (:func:`run_under_another_id`),
    with that run's state: a second label of one crystal would sit in the dataset twice (and could fall on both
    sides of a split), and a rejected crystal would be rejected again at full cost (bcc ``V1-bcc`` is upstream row
    503's crystal, ``up0503-V``, rejected for an interpolation dip).  A run of the id itself resumes as before."""
    other = computed_elsewhere(ids, runs_dir)
    if other:
        lines = [f"{mid}: the crystal of {rid} ({load_status(rid, runs_dir).state or 'begun'}, "
                 f"{material_dir(rid, runs_dir)})" for mid, rid in other.items()]
        raise QEInputError("not run, computed under another id (run that id instead: `betenet qe run --ids ID` "
                           "resumes it, `betenet qe refine ID` or `betenet qe dip-check ID` reopen it):\n  "
                           + "\n  ".join(lines))


def _run_dirs(base: Path) -> list[Path]:
    """The material directories under ``base`` in name order, without the moved-aside runs (``BACKUP_MARK``),
    with or without a ``status.json`` (a refinement not yet run has none)."""
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and BACKUP_MARK not in p.name)


def finished_runs(runs_dir: Path | None = None) -> list[tuple[str, Structure | None]]:
    """``(id, relaxed structure or None)`` of every finished run (kept, rejected or failed) in ``runs_dir``,
    in id order: the one pass over the run directories that :func:`crystals_computed` and
    :func:`rows_computed` share (``relaxed.json`` is read once)."""
    base = material_dir("-", runs_dir).parent
    out: list[tuple[str, Structure | None]] = []
    for d in (p.parent for p in status_files(base)):  # not moved-aside runs
        if not load_status(d.name, base).final:
            continue
        relaxed = d / "relaxed.json"
        out.append((d.name, Structure.from_dict(json.loads(relaxed.read_text())) if relaxed.exists() else None))
    return out


def started_runs(runs_dir: Path | None = None) -> list[tuple[str, Structure | None]]:
    """:func:`finished_runs` and the runs begun but not finished (running, interrupted, or refined and not yet
    run: ``betenet qe refine``), in id order: what a candidate is compared with before it runs, so that a crystal
    being computed under one id is not started under another.  The cell of an unfinished run is its
    ``relaxed.json``, else that of the run its refinement superseded, else ``None``."""
    base = material_dir("-", runs_dir).parent
    out = dict(finished_runs(runs_dir))
    for d in _run_dirs(base):
        if d.name in out:
            continue
        ref = load_refinement(d)
        if not (d / "status.json").exists() and ref is None:
            continue
        cells = [d / "relaxed.json"] + [base / x["run_dir"] / "relaxed.json" for x in (ref or {}).get("supersedes", [])]
        cell = next((c for c in cells if c.exists()), None)
        out[d.name] = Structure.from_dict(json.loads(cell.read_text())) if cell is not None else None
    return sorted(out.items())


def crystals_computed(runs_dir: Path | None = None, finished: list[tuple[str, Structure | None]] | None = None,
                      ) -> dict[str, list[tuple[str, Structure]]]:
    """Reduced formula -> ``(id, relaxed structure)`` of every finished run (kept, rejected or failed) in
    ``runs_dir`` that has a relaxed cell; what a prototype candidate is compared with before it runs.
    ``finished``: :func:`finished_runs` of ``runs_dir``, where the caller already has it."""
    out: dict[str, list[tuple[str, Structure]]] = {}
    for mid, st in finished_runs(runs_dir) if finished is None else finished:
        if st is not None:
            out.setdefault(st.composition.reduced_formula, []).append((mid, st))
    return out


def rows_computed(runs_dir: Path | None = None, finished: list[tuple[str, Structure | None]] | None = None,
                  ) -> dict[int, str]:
    """Upstream row -> id of the finished run (kept, rejected or failed) in ``runs_dir`` that computed the
    paper's structure of that row: an ``upNNNN-`` id directly, any other id (``Nb1-bcc``) when its relaxed
    cell matches the row's structure up to scale (:func:`~betenet.qe.upstream_candidates.matching_upstream_row`).
    So that the upstream candidate source does not run a structure again that a prototype run already did.
    ``finished``: :func:`finished_runs` of ``runs_dir``, where the caller already has it."""
    out: dict[int, str] = {}
    for mid, st in finished_runs(runs_dir) if finished is None else finished:
        row = upstream_index_of(mid)
        if row is None and st is not None:
            try:
                row = matching_upstream_row(st)
            except FileNotFoundError:  # no vendored structures: nothing to match against
                return out
        if row is not None:
            out.setdefault(row, mid)
    return out


def explain_unknown_id(mid: str, elements: Iterable[str], source: str = "prototypes", cfg: QEConfig | None = None) -> str:
    """Why ``mid`` is not a candidate of the candidate ``source``: a malformed id, an element without a usable
    pseudopotential (``elements``: the library's usable ones), a non-canonical spelling, a combination the
    prototypes' role filters leave out, or the other source's id; for ``source="upstream"``,
    :func:`~betenet.qe.upstream_candidates.explain_unknown_upstream_id` (``cfg``: its ``max_atoms``)."""
    if source == "upstream":
        return explain_unknown_upstream_id(mid, set(elements), max_atoms=getattr(cfg, "max_atoms", None))
    if upstream_index_of(mid) is not None:
        return (f"material id {mid!r} names a row of the paper's structures, not a prototype decoration: "
                "choose that candidate source (`--candidates upstream`)")
    try:
        els, proto = prototypes.parse_material_id(mid)
    except prototypes.PrototypeError as exc:
        return str(exc)
    usable = set(elements)
    missing = [e for e in els if e not in usable]
    if missing:
        return f"{mid}: no usable pseudopotential for {', '.join(missing)} (absent from the library or failed review; data/pseudo/README.md)"
    canonical = prototypes.material_id(els, proto)
    if canonical != mid:
        return f"{mid}: the project writes this material {canonical!r}"
    return f"{mid}: not generated by betenet.qe.prototypes.candidate_ids (the {proto} prototype's role filters or max_atoms)"


def select_candidates(
    candidates: Sequence[Candidate], *, ids: Iterable[str] | None = None, limit: int | None = None,
    runs_dir: Path | None = None, include_finished: bool = True, qe: QEConfig | None = None,
    elsewhere_checked: bool = False,
) -> list[Candidate]:
    """Filter by ``ids``; keep finished ones (cheap no-ops) and cap the *unfinished* ones at ``limit``.

    Order: the order of ``ids`` when given (the user's priority), else the candidates' priority order with the
    runs already begun (:func:`begun`: a ``status.json`` or a pending refinement, not finished) first, so that
    a batch finishes the materials whose relaxation and archived q points it has paid for before it starts new
    ones (a cheaper new candidate would otherwise overtake a half-done one at every restart).
    With ``qe`` and no ``ids``, an unfinished candidate whose scf mesh is too coarse
    (:func:`scf_mesh_estimate`, ``QEConfig.candidate_min_scf_k_fraction``) is passed over; explicit
    ``ids`` always run, unless a run under another id has their crystal (:func:`refuse_computed_elsewhere`).
    With a :class:`CandidateList` only the candidates returned or checked are built.
    ``elsewhere_checked``: the caller has already set apart the ``ids`` computed under another id
    (:func:`plan_candidates`), so the runs directory is not walked a second time.
    Raises ``KeyError`` naming the ids that are not candidates, and ``QEInputError`` for such a crystal.
    """
    all_ids = _candidate_ids(candidates)
    ids = list(ids) if ids is not None else None
    wanted = set(ids) if ids else None
    if wanted is not None:
        missing = wanted - set(all_ids)
        if missing:
            raise KeyError(f"unknown material id(s) {sorted(missing)}")
    out: list[Candidate] = []
    n_new = 0
    position = {mid: i for i, mid in enumerate(all_ids)}
    order = [position[m] for m in dict.fromkeys(ids)] if ids else _begun_first(all_ids, runs_dir)
    if ids and not elsewhere_checked:
        refuse_computed_elsewhere(list(dict.fromkeys(ids)), runs_dir)
    elsewhere = set() if ids else _run_under_another_id(all_ids, runs_dir)
    for i in order:
        mid = all_ids[i]
        finished = load_status(mid, runs_dir).final
        if finished:
            if include_finished:
                out.append(candidates[i])
            continue
        if mid in elsewhere:
            continue
        if limit is not None and limit >= 0 and n_new >= limit:
            continue
        if qe is not None and not ids and qe.candidate_min_scf_k_fraction is not None:
            if scf_mesh_estimate(candidates[i][1], qe)["too_coarse"]:
                continue
        out.append(candidates[i])
        n_new += 1
    return out


def run_one(
    material_id: str,
    structure: dict[str, Any] | Structure,
    prototype: str | None,
    cfg: QEConfig,
    runs_dir: str | None = None,
    records_dir: str | None = None,
    library_dir: str | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> dict[str, Any]:
    """Dask task: run/resume one material; returns a JSON-able summary (never raises for QE failures)."""
    s = structure if isinstance(structure, Structure) else Structure.from_dict(structure)
    library: Any = None
    if library_dir:
        library = PseudoLibrary.from_index(library_dir) if (Path(library_dir) / "validation.json").exists() else library_dir
    t0 = time.perf_counter()
    try:
        st = run_material(
            material_id, s, cfg, library=library, runs_dir=runs_dir, records_dir=records_dir,
            prototype=prototype, force=force, retry_failed=retry_failed,
        )
    except QEInputError as exc:
        return {"material_id": material_id, "state": "invalid", "reason": "QEInputError", "detail": str(exc), "wall_s": 0.0}
    except LockBusyError as exc:  # another qe run is working on this material right now
        return {"material_id": material_id, "state": "busy", "reason": "LockBusyError", "detail": str(exc), "wall_s": 0.0}
    return {
        "material_id": material_id,
        "formula": st.formula,
        "prototype": st.prototype,
        "n_atoms": st.n_atoms,
        "state": st.state,
        "reason": st.reason,
        "wall_s": round(st.wall_s, 1),
        "task_s": round(time.perf_counter() - t0, 1),
    }


def run_dataset(
    candidates: Sequence[Candidate],
    profile: Profile,
    client: Any = None,
    *,
    runs_dir: Path | None = None,
    records_dir: Path | None = None,
    library_dir: Path | None = None,
    force: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    log_path: Path | None = None,
) -> list[dict[str, Any]]:
    """Run every candidate (one Dask task each); returns the summaries in completion order.

    ``client``: an existing ``distributed.Client``; ``None`` opens ``dask_client(profile.dask)``.
    ``log_path``: append one JSON line per finished material (for long background runs).
    """
    from tqdm.auto import tqdm  # optional progress bar, loaded with the batch

    check_settings(profile.qe)
    runs_dir = Path(runs_dir or QE_RUNS_DIR)
    records_dir = Path(records_dir or RECORDS_DIR)
    if not candidates:
        return []

    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)

    def _go(cl: Any) -> list[dict[str, Any]]:
        # Independent Dask tasks are not run in submission order (a task the scheduler hands to a busy
        # worker waits in that worker's queue, and these tasks belong to no common task group, so the
        # scheduler's own queuing never applies), so only as many tasks as there are worker threads are
        # in flight: the next candidate goes in when one finishes, or when workers join (dask-jobqueue
        # workers arrive as their jobs start).  The dataset grows in priority order, no material waits
        # behind another's long run while a thread is free, and a lazy candidate's structure is built
        # only when it is submitted.
        from dask.distributed import wait

        def submit(i: int):
            mid, s, proto = candidates[i]
            return cl.submit(
                run_one, mid, s.as_dict(), proto, profile.qe, str(runs_dir), str(records_dir),
                str(library_dir) if library_dir else None, force, retry_failed,
                key=f"qe-{mid}", pure=False, priority=len(candidates) - i,
            )

        def window() -> int:
            try:
                return max(1, sum(cl.nthreads().values()))
            except Exception:  # noqa: BLE001 (a client without worker info: one task at a time)
                return 1

        results = []
        bar = tqdm(total=len(candidates), desc="QE materials", unit="mat", disable=not progress)
        counts: dict[str, int] = {}
        order: dict[Any, int] = {}  # task key -> index in candidates
        in_flight: set[Any] = set()
        next_i = 0
        while next_i < len(candidates) or in_flight:
            n_threads = window()
            while next_i < len(candidates) and len(in_flight) < n_threads:
                fut = submit(next_i)
                order[fut.key] = next_i
                in_flight.add(fut)
                next_i += 1
            # wake up at the latest every WINDOW_POLL_S to top up the window when workers have joined
            try:
                wait(list(in_flight), timeout=WINDOW_POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            for fut in sorted((f for f in in_flight if f.done()), key=lambda f: order[f.key]):
                in_flight.discard(fut)
                try:
                    res = fut.result()
                except Exception as exc:  # a bug or lost worker on one material must not end the batch
                    tail = "".join(traceback.format_exception(exc))[-3000:]
                    res = {"material_id": candidates[order[fut.key]][0], "state": "error",
                           "reason": type(exc).__name__, "detail": tail, "wall_s": 0.0}
                    print(f"[betenet qe] {res['material_id']}: unexpected {res['reason']} (left resumable): {exc}",
                          flush=True)
                results.append(res)
                counts[res["state"]] = counts.get(res["state"], 0) + 1
                bar.set_postfix(counts)
                bar.update(1)
                if log_path is not None:
                    with open(log_path, "a") as fh:
                        fh.write(json.dumps({**res, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
        bar.close()
        return results

    if client is not None:
        return _go(client)
    with dask_client(profile.dask) as cl:
        return _go(cl)
