"""``betenet qe``: run / resume the QE dataset, show the funnel, rebuild one record.

    betenet qe run [--profile P] [--limit N] [--ids ID ...] [--scheduler ADDR] [--workers W --omp T --mpi R]
                   [--force] [--retry-failed] [--log FILE]
    betenet qe plan [--profile P] [--limit N | --ids ID ...]
    betenet qe refilter [--ids ID ...]
    betenet qe dip-check ID [ID ...] --accuracy validated
    betenet qe coarse-check [--reopen ID ...] --accuracy validated
    betenet qe status [--runs-dir DIR] [--json | --markdown]
    betenet qe parse ID [--profile P] [--write]
    betenet qe reject ID --reason R --detail TEXT
    betenet qe refine ID --accuracy validated [--k-density K] [--scf-k-density S] [--q-density Q] --reason TEXT
    betenet qe check-q ID --k 6 8 12x12x7 [--q QX QY QZ] [--ecutwfc E --ecutrho R] [--degauss D] [--accuracy A] [--frozen]
    betenet qe check-relax ID [ID ...] --ecutwfc E --ecutrho R
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from betenet.cli.options import add_profile_arg, add_workers_arg, profile_from_args
from betenet.config import QEConfig, qe_level
from betenet.jsonio import write_json_atomic
from betenet.locks import LockBusyError
from betenet.paths import QE_RUNS_DIR, RECORDS_DIR, artifacts_dir
from betenet.qe import convergence
from betenet.qe.coarse import coarse_stability, reopen_for_coarse
from betenet.qe.convergence import FROZEN_STUDY_DIR, frozen_single_q, lowest_q, relaxed_volume, single_q_phonons
from betenet.qe.dataset import (
    candidate_source, dataset_dirs, explain_unknown_id, plan_candidates, run_dataset, select_candidates,
)
from betenet.qe.filters import funnel, funnel_table, status_files
from betenet.qe.inputs import PWInput, QEInputError
from betenet.qe.pseudo import PseudoLibrary
from betenet.qe.record import build_record, rebuild_record
from betenet.qe.refinement import refine_material, refined_materials
from betenet.qe.status import load_status, refilter, reject_after_review, reopen_for_dip_check
from betenet.qe.summary import (
    cpu_by_material,
    cpu_by_outcome,
    cpu_table,
    dip_checks,
    status_markdown,
    timing_table,
    unfinished_table,
)
from betenet.qe.upstream_candidates import upstream_index_of
from betenet.records import save_record, validate_record

__all__ = ["cli_main", "check_q_main", "check_relax_main"]

#: first paragraph of :mod:`betenet.qe.convergence`: ``betenet qe check-q``'s description
_convergence_doc = convergence.__doc__ or ""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="betenet qe", description="Quantum ESPRESSO el-ph dataset workflow (Methods IV.1).")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run/resume the workflow over the candidate structures (Dask)")
    add_profile_arg(r)
    r.add_argument("--candidates", default="prototypes", choices=("prototypes", "upstream"),
                   help="candidate source: prototype decorations (default) or the paper's own structures (data/upstream)")
    r.add_argument("--accuracy", default=None, choices=("screening", "validated", "paper"),
                   help="QE accuracy level (default: the profile's; each level has its own data/qe-<level>, data/records-<level>)")
    r.add_argument("--limit", type=int, default=None, help="at most N unfinished materials (default: profile's n_new_materials; -1 = all)")
    r.add_argument("--ids", nargs="*", default=None, help="only these material ids, in this order (all of them unless --limit)")
    r.add_argument("--scheduler", default=None, help="address of a running dask scheduler (tcp://host:8786)")
    add_workers_arg(r, "LocalCluster workers (default: profile)", type=int, default=None)
    r.add_argument("--omp", type=int, default=None, help="OMP_NUM_THREADS per QE process (default: profile)")
    r.add_argument("--mpi", type=int, default=None,
                   help="MPI ranks (k-point pools) per pw.x/ph.x call, so one material uses several cores (default: profile, 1)")
    r.add_argument("--force", action="store_true", help="recompute finished materials (old results are backed up)")
    r.add_argument("--retry-failed", action="store_true", help="retry materials whose QE run failed")
    r.add_argument("--log", default=None, help="append one JSON line per finished material to this file")
    r.add_argument("--runs-dir", default=None)
    r.add_argument("--records-dir", default=None)
    n = sub.add_parser("plan", help="the next unfinished candidates `qe run` would take: grids, irreducible q "
                       "points, scf k density, and which are skipped as too coarse")
    add_profile_arg(n)
    n.add_argument("--candidates", default="prototypes", choices=("prototypes", "upstream"),
                   help="candidate source: prototype decorations (default) or the paper's own structures (data/upstream)")
    n.add_argument("--accuracy", default=None, choices=("screening", "validated", "paper"))
    n.add_argument("--limit", type=int, default=10, help="rows to run (skipped ones are listed too)")
    n.add_argument("--ids", nargs="*", default=None, help="these material ids instead (shown whatever their mesh; one whose crystal another run has says so)")
    n.add_argument("--runs-dir", default=None)
    s = sub.add_parser("status", help="funnel table and timings of data/qe")
    s.add_argument("--runs-dir", default=None)
    s.add_argument("--json", action="store_true")
    s.add_argument("--markdown", action="store_true", help="markdown snapshot for data/README.md")
    s.add_argument("--records-dir", default=None, help="records of the kept materials (default: data/records with the default runs dir)")
    q = sub.add_parser("parse", help="rebuild the record of finished materials from data/qe/<ID> and print a summary")
    q.add_argument("material_id", nargs="+", help="material ids; 'all' = every record in data/records")
    add_profile_arg(q)
    q.add_argument("--accuracy", default=None, choices=("screening", "validated", "paper"),
                   help="accuracy level: its data/qe-<level> runs and data/records-<level> records (default: the profile's)")
    q.add_argument("--runs-dir", default=None)
    q.add_argument("--write", action="store_true", help="also write data/records/<ID>.json (refuses to overwrite)")
    q.add_argument("--overwrite", action="store_true",
                   help="with --write: rebuild an existing record in the current format, keeping its σ and the "
                   "provenance of its QE run (betenet.qe.record.rebuild_record); git keeps the old file")
    q.add_argument("--reselect-sigma", action="store_true",
                   help="with --overwrite: choose the el-ph broadening by the level's current rule instead of keeping the record's")
    f = sub.add_parser("refilter", help="re-apply the current phonon filters to finished materials (a rejected one that "
                       "now passes becomes pending; `qe run` then completes it)")
    f.add_argument("--ids", nargs="*", default=None, help="only these material ids (default: all in the runs dir)")
    add_profile_arg(f)
    f.add_argument("--runs-dir", default=None)
    dc = sub.add_parser("dip-check", help="send materials rejected for an interpolation dip alone (every ph.x q point stable) "
                        "back to pending: `qe run --ids ID` then checks the dip by DFPT (betenet.qe.dipcheck), el-ph q points restored")
    dc.add_argument("ids", nargs="+", metavar="ID")
    add_profile_arg(dc)
    dc.add_argument("--accuracy", choices=["screening", "validated", "paper"], default=None,
                    help="accuracy level of the runs (default: the profile's)")
    dc.add_argument("--runs-dir", default=None)
    cc = sub.add_parser("coarse-check", help="the lowest mode at each finished material's own coarse (2x2x2) ph.x points "
                        "(betenet.qe.coarse); --reopen: send kept materials whose coarse points ran on an odd scf mesh back "
                        "to pending, `qe run --ids ID` then redoes them (el-ph q points restored)")
    cc.add_argument("--reopen", nargs="+", metavar="ID", default=None)
    add_profile_arg(cc)
    cc.add_argument("--accuracy", choices=["screening", "validated", "paper"], default=None,
                    help="accuracy level of the runs (default: the profile's)")
    cc.add_argument("--runs-dir", default=None)
    sub.add_parser("check-q", add_help=False,
                   help="rerun one material's scf with other k mesh / cutoff / smearing and ph.x at one q "
                   "(is an imaginary mode physical?); `betenet qe check-q -h`")
    sub.add_parser("check-relax", add_help=False,
                   help="rerun materials' vc-relax with other cutoffs: relaxed volume vs the dataset's; `betenet qe check-relax -h`")
    j = sub.add_parser("reject", help="reject a kept material after review (its record moves into data/qe/<ID>/)")
    j.add_argument("material_id")
    j.add_argument("--reason", required=True, help="funnel reason, e.g. pseudopotential")
    j.add_argument("--detail", required=True, help="what the review found")
    j.add_argument("--runs-dir", default=None)
    j.add_argument("--records-dir", default=None)
    e = sub.add_parser("refine", help="set a material up to run again with denser k/q meshes than its level's (its run "
                       "and record are moved aside, not deleted; `qe run --ids ID` then computes it)")
    e.add_argument("material_id")
    add_profile_arg(e)
    e.add_argument("--accuracy", choices=["screening", "validated", "paper"], default=None,
                   help="accuracy level of the run (default: the profile's)")
    e.add_argument("--k-density", type=float, default=None, help="dense k mesh, points per Å^-1 (at least the level's)")
    e.add_argument("--scf-k-density", type=float, default=None, help="ph.x's scf k mesh, points per Å^-1")
    e.add_argument("--q-density", type=float, default=None, help="q mesh, points per Å^-1")
    e.add_argument("--reason", required=True, help="why the level's meshes are not enough for this material")
    e.add_argument("--runs-dir", default=None)
    e.add_argument("--records-dir", default=None)
    return p


def _unknown_ids(ids: list[str] | None, candidate_ids: list[str], qe=None, source: str = "prototypes") -> bool:
    """Print, for each of ``ids`` that is not among ``candidate_ids`` (of the candidate ``source``), why; True
    when there was one."""
    known = set(candidate_ids)
    unknown = [mid for mid in dict.fromkeys(ids or []) if mid not in known]
    if not unknown:
        return False
    elements = PseudoLibrary.for_level(qe or QEConfig()).elements
    for mid in unknown:
        print(f"betenet qe: error: {explain_unknown_id(mid, elements, source, qe)}", file=sys.stderr)
    print("betenet qe: `betenet qe plan --limit N` lists the candidates in priority order", file=sys.stderr)
    return True


def _level(qe, accuracy: str | None):
    """The profile's QE settings, or those of the named accuracy level (its run counts kept)."""
    if not accuracy:
        return qe
    return dataclasses.replace(qe_level(accuracy), n_new_materials=qe.n_new_materials, omp_threads=qe.omp_threads,
                               mpi_procs=qe.mpi_procs)


def _reopen_each(ids, reopen_one, cmd: str) -> int:
    """``reopen_one(id)`` for each id, printing what was done; a refused one is an error line that names it
    (the others go on).  Exit status 1 if any was refused."""
    bad = 0
    for mid in ids:
        try:
            print(f"{mid}: {reopen_one(mid)}")
        except (ValueError, LockBusyError) as exc:
            bad += 1
            print(f"betenet qe {cmd}: error: {exc}", file=sys.stderr)
    return 1 if bad else 0


def cli_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check-q"]:
        return check_q_main(argv[1:])
    if argv[:1] == ["check-relax"]:
        return check_relax_main(argv[1:])
    args = _parser().parse_args(argv)

    runs_dir = Path(args.runs_dir) if getattr(args, "runs_dir", None) else QE_RUNS_DIR
    if args.cmd == "refilter":
        ids = args.ids if args.ids else [p.parent.name for p in status_files(runs_dir)]
        cfg = profile_from_args(args).qe
        n = 0
        for mid in ids:
            before, after = refilter(mid, cfg, runs_dir=runs_dir)
            if before != after:
                n += 1
                print(f"{mid}: {before[0]} ({before[1]}) -> {after[0]} ({after[1]})")
        print(f"{n} of {len(ids)} materials changed state" + ("; `betenet qe run --ids ...` completes the pending ones" if n else ""))
        return 0
    if args.cmd == "dip-check":
        qe = _level(profile_from_args(args).qe, args.accuracy)
        runs = Path(args.runs_dir) if args.runs_dir else dataset_dirs(qe)[0]
        return _reopen_each(args.ids, lambda mid: reopen_for_dip_check(mid, qe, runs_dir=runs), "dip-check")
    if args.cmd == "coarse-check":
        qe = _level(profile_from_args(args).qe, args.accuracy)
        runs = Path(args.runs_dir) if args.runs_dir else dataset_dirs(qe)[0]
        if not args.reopen:
            print(coarse_stability(runs).to_string(index=False))
            return 0
        return _reopen_each(args.reopen, lambda mid: reopen_for_coarse(mid, qe.coarse_q_grid, runs_dir=runs), "coarse-check")
    if args.cmd == "plan":
        import pandas as pd

        qe = _level(profile_from_args(args).qe, args.accuracy)
        if not args.runs_dir:
            runs_dir = dataset_dirs(qe)[0]
        candidates = candidate_source(args.candidates, qe)
        if _unknown_ids(args.ids, candidates.ids, qe, args.candidates):
            return 2
        table = plan_candidates(candidates, qe, ids=args.ids, limit=args.limit, runs_dir=runs_dir)
        with pd.option_context("display.width", 200, "display.max_columns", None):
            print(table.to_string(index=False) if len(table) else "no unfinished candidates")
        skip = ("none skipped for a coarse scf mesh" if qe.candidate_min_scf_k_fraction is None else
                f"skipped: scf density < {qe.candidate_min_scf_k_fraction} x {qe.scf_k_density_per_invA} per Å^-1")
        print(f"(grids on the unrelaxed candidate cells; {skip}; a crystal run or being run under another id (a paper's row, a prototype) "
              "is left out: `betenet qe plan --ids ...` shows it)")
        return 0
    if args.cmd == "refine":
        qe = _level(profile_from_args(args).qe, args.accuracy)
        runs, records = dataset_dirs(qe)
        overrides = {name: v for name, v in (("k_density_per_invA", args.k_density), ("scf_k_density_per_invA", args.scf_k_density),
                                             ("q_density_per_invA", args.q_density)) if v is not None}
        try:
            ref = refine_material(args.material_id, qe, overrides, args.reason, runs_dir=Path(args.runs_dir) if args.runs_dir else runs,
                                  records_dir=Path(args.records_dir) if args.records_dir else records)
        except (ValueError, LockBusyError) as exc:  # a bad mesh, or a run of it is going on
            print(f"betenet qe refine: error: {exc}", file=sys.stderr)
            return 2
        moved = ", ".join(x["run_dir"] for x in ref["supersedes"]) or "nothing (no run yet)"
        print(f"{args.material_id}: refined at the {qe.accuracy} level with {ref['overrides']}; moved aside: {moved}. "
              f"Run it: betenet qe run --accuracy {qe.accuracy}"
              f"{' --candidates upstream' if upstream_index_of(args.material_id) is not None else ''} --ids {args.material_id}")
        return 0
    if args.cmd == "reject":
        st = reject_after_review(args.material_id, args.reason, args.detail, runs_dir=runs_dir,
                                 records_dir=Path(args.records_dir) if args.records_dir else RECORDS_DIR)
        print(f"{st.material_id}: rejected ({st.reason}): {st.detail}")
        return 0
    if args.cmd == "status":
        if args.json:
            print(json.dumps(funnel(runs_dir), indent=1))
            return 0
        if args.markdown:
            rec_dir = Path(args.records_dir) if args.records_dir else (RECORDS_DIR if not args.runs_dir else None)
            print(status_markdown(runs_dir, rec_dir), end="")
            return 0
        print(funnel_table(runs_dir).to_string(index=False))
        u = unfinished_table(runs_dir)
        if len(u):
            print("\nUnfinished runs (`betenet qe run --ids ...` resumes them, on another machine too: finished el-ph "
                  "q points are kept in <id>/ph_elph.q/):")
            print(u.to_string(index=False))
        refined = refined_materials(runs_dir)
        if refined:
            print("\nRefined at denser meshes than the level's (`betenet qe refine`; the superseded runs are kept):")
            for r in refined:
                print(f"  {r['material_id']} ({r['state']}): {r['overrides']}; supersedes {', '.join(r['supersedes']) or 'nothing'}; {r['reason']}")
        checked = dip_checks(runs_dir)
        if checked:
            print("\nInterpolation dips checked by DFPT at the deepest point (betenet.qe.dipcheck):")
            for r in checked:
                print(f"  {r['material_id']} ({r['state']}): {r['verdict']}")
        t = timing_table(runs_dir)
        if len(t):
            print()
            print(t.to_string())

        c = cpu_table(runs_dir)
        if len(c):
            print("\nCPU seconds from QE's own clocks (last row: median share of a core the runs got):")
            print(c.to_string())

        m = cpu_by_material(runs_dir)
        o = cpu_by_outcome(runs_dir, per_material=m)
        if len(o) > 1:
            print(f"\nWhere the CPU went (QE's clocks): {o.attrs['cpu_per_kept_label_s']:.0f} CPU-s per kept label, "
                  f"{o.attrs['cpu_per_kept_run_s']:.0f} for the kept runs alone")
            print(o.to_string())
            print("\nCPU per material (QE's clocks), by cell size:")
            print(m.round(1).to_string(index=False))
        return 0
    if args.cmd == "parse":
        qe = _level(profile_from_args(args).qe, args.accuracy)
        records_dir = RECORDS_DIR
        if args.accuracy:
            level_runs, records_dir = dataset_dirs(qe)
            runs_dir = runs_dir if args.runs_dir else level_runs
        ids = sorted(p.stem for p in records_dir.glob("*.json")) if args.material_id == ["all"] else args.material_id
        for mid in ids:
            st = load_status(mid, runs_dir)
            rebuild = args.write and args.overwrite and (records_dir / f"{mid}.json").exists()
            rec = (rebuild_record(mid, qe, runs_dir=runs_dir, records_dir=records_dir, reselect_sigma=args.reselect_sigma) if rebuild
                   else build_record(mid, qe, runs_dir=runs_dir, status=st))
            # NaN, negative weight, QE's mode sum: an error naming the field, never a printed number
            validate_record(rec, origin=str(Path(runs_dir) / mid))
            print(
                json.dumps(
                    {
                        "material_id": rec.material_id, "formula": rec.formula, "state": st.state,
                        "lambda": rec.lambda_, "omega_log_K": rec.omega_log_K, "omega_2_K": rec.omega_2_K,
                        "tc_ad_K": rec.tc_ad_K, "edos_ef_per_eV": rec.edos_ef_per_eV,
                        "lambda_qe": rec.provenance.get("lambda_qe"), "lambda_uncertainty": rec.lambda_uncertainty,
                        "flags": rec.flags,
                    },
                    indent=1,
                )
            )
            if args.write:
                print(save_record(rec, records_dir, overwrite=rebuild))
        return 0
    # run
    profile = profile_from_args(args)
    qe = _level(profile.qe, args.accuracy)
    if not args.runs_dir:  # each accuracy level has its own runs/records directories
        runs_dir, default_records = dataset_dirs(qe)
    else:
        default_records = RECORDS_DIR
    if args.omp:
        qe = dataclasses.replace(qe, omp_threads=args.omp)
    if args.mpi:
        qe = dataclasses.replace(qe, mpi_procs=args.mpi)
    dask = profile.dask
    if args.scheduler:
        dask = dataclasses.replace(dask, scheduler_address=args.scheduler)
    if args.workers:
        dask = dataclasses.replace(dask, n_workers=args.workers, threads_per_worker=1)
    profile = dataclasses.replace(profile, qe=qe, dask=dask)
    # explicit ids run, all of them, unless --limit says otherwise; the profile's n_new_materials (0 on the
    # default profile) caps only a batch that picks its own candidates
    limit = args.limit if args.limit is not None else (None if args.ids else qe.n_new_materials)
    candidates = candidate_source(args.candidates, qe)
    if _unknown_ids(args.ids, candidates.ids, qe, args.candidates):
        return 2
    try:
        cands = select_candidates(candidates, ids=args.ids, limit=limit, runs_dir=runs_dir, qe=qe)
    except QEInputError as exc:  # an explicit id whose crystal another id computes
        print(f"betenet qe run: {exc}", file=sys.stderr)
        return 2
    print(f"betenet qe run: profile {profile.name}, {len(cands)} materials, "
          f"{dask.n_workers} worker(s) x OMP {qe.omp_threads}" + (f" x MPI {qe.mpi_procs}" if qe.mpi_procs > 1 else ""), flush=True)
    results = run_dataset(
        cands, profile, runs_dir=runs_dir,
        records_dir=Path(args.records_dir) if args.records_dir else default_records,
        force=args.force, retry_failed=args.retry_failed, log_path=Path(args.log) if args.log else None,
    )
    counts: dict[str, int] = {}
    for r in results:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    print(json.dumps(counts))
    return 0


# ---------------------------------------------------------------------------------------------- check-q, check-relax


def _check_parser(command: str, description: str):
    """The options ``betenet qe check-q`` and ``check-relax`` share: cutoffs, runs dir, work dir, OpenMP."""
    p = argparse.ArgumentParser(prog=f"betenet qe {command}", description=description)
    p.add_argument("--ecutwfc", type=float, default=None)
    p.add_argument("--ecutrho", type=float, default=None)
    p.add_argument("--runs-dir", default=None, help=f"default: {QE_RUNS_DIR} (check-q: the --accuracy level's)")
    p.add_argument("--workdir", default=None, help=f"default: artifacts/{command}/<ID>")
    p.add_argument("--omp", type=int, default=1)
    return p


def check_relax_main(argv: list[str]) -> int:
    """``betenet qe check-relax ID [ID ...] --ecutwfc E --ecutrho R``."""
    p = _check_parser("check-relax", "rerun materials' vc-relax with other cutoffs; relaxed volume vs the dataset's")
    p.add_argument("material_ids", nargs="+")
    args = p.parse_args(argv)
    if args.ecutwfc is None and args.ecutrho is None:
        p.error("give --ecutwfc and/or --ecutrho (what to change)")
    tag = "".join(f"-{n}{v:g}" for n, v in (("e", args.ecutwfc), ("r", args.ecutrho)) if v is not None).lstrip("-")
    for mid in args.material_ids:
        root = Path(args.workdir) / mid if args.workdir else artifacts_dir("check-relax", mid, create=False)
        r = relaxed_volume(Path(args.runs_dir or QE_RUNS_DIR) / mid, workdir=root / tag, ecutwfc_Ry=args.ecutwfc,
                           ecutrho_Ry=args.ecutrho, omp_threads=args.omp)
        print(f"{mid} ecut={r.ecutwfc_Ry:g}/{r.ecutrho_Ry:g} Ry: V={r.volume_A3_per_atom:.3f} Å^3/atom vs dataset "
              f"{r.dataset_volume_A3_per_atom:.3f}: Δa = {r.delta_a_pct:+.2f} %  ({r.wall_s:.0f} s)", flush=True)
    return 0


def _k_mesh(text: str) -> tuple[int, int, int]:
    """An scf k mesh on the command line: ``12`` (12x12x12) or ``12x12x7`` (a hexagonal or tetragonal cell)."""
    parts = text.lower().split("x")
    try:
        k = tuple(int(x) for x in parts)
    except ValueError:
        k = ()
    if len(k) == 1:
        k = k * 3
    if len(k) != 3 or min(k) < 1:
        raise argparse.ArgumentTypeError(f"expected N or NxNxN with positive integers (e.g. 12 or 12x12x7), got {text!r}")
    return k  # type: ignore[return-value]


def check_q_main(argv: list[str]) -> int:
    """``betenet qe check-q``."""
    p = _check_parser("check-q", _convergence_doc.split("\n\n")[0])
    p.add_argument("material_id")
    p.add_argument("--k", type=_k_mesh, nargs="+", required=True,
                   help="scf k meshes to try, each N (N x N x N) or NxNxN (e.g. 12x12x7 for hcp)")
    p.add_argument("--q", type=float, nargs=3, default=None, help="q (2π/alat); default: the lowest-frequency q of ph_freqs.json")
    p.add_argument("--degauss", type=float, default=None)
    p.add_argument("--accuracy", choices=["screening", "validated"], default=None,
                   help="the level whose run this is: its runs dir and pseudopotentials (default: data/qe, data/pseudo)")
    p.add_argument("--frozen", action="store_true",
                   help="also freeze ph.x's highest mode on the same k points (q a zone-boundary point, even k where q has 1/2)")
    p.add_argument("--save", action="store_true", help=f"with --frozen: keep the result in {FROZEN_STUDY_DIR}/runs (chapter 00)")
    args = p.parse_args(argv)
    qe = qe_level(args.accuracy) if args.accuracy else None
    runs = Path(args.runs_dir) if args.runs_dir else (dataset_dirs(qe)[0] if qe else QE_RUNS_DIR)
    lib = PseudoLibrary.for_level(qe) if qe else PseudoLibrary.default()
    mdir = runs / args.material_id
    q = tuple(args.q) if args.q else lowest_q(mdir)
    root = Path(args.workdir) if args.workdir else artifacts_dir("check-q", args.material_id, create=False)
    tag = "".join(f"-{n}{v}" for n, v in (("e", args.ecutwfc), ("r", args.ecutrho), ("d", args.degauss)) if v is not None)
    species = PWInput.from_str((mdir / "scf.in").read_text(), origin=str(mdir / "scf.in")).species
    lib.stage([el for el, _, _ in species], root / "pseudo")  # the level's files, under the names the run used
    for k in args.k:
        k_tag = f"{k[0]}" if len(set(k)) == 1 else "x".join(map(str, k))  # k4 for 4x4x4, as before
        res = single_q_phonons(mdir, q, k_scf=k, workdir=root / f"k{k_tag}{tag}", ecutwfc_Ry=args.ecutwfc,
                               pseudo_dir=root / "pseudo", ecutrho_Ry=args.ecutrho, degauss_Ry=args.degauss,
                               omp_threads=args.omp)
        print(f"{res.material_id} k={'x'.join(map(str, k))} ecut={res.ecutwfc_Ry:g}/{res.ecutrho_Ry:g} Ry degauss={res.degauss_Ry:g} Ry "
              f"q=({' '.join(f'{x:.3f}' for x in q)}): " + " ".join(f"{f:.2f}" for f in res.freq_meV)
              + f" meV  (scf {res.wall_s['scf']:.0f} s, ph {res.wall_s['ph']:.0f} s)", flush=True)
        if args.frozen:
            try:
                fz = frozen_single_q(res, lib)
            except ValueError as exc:
                print(f"betenet qe check-q: error: {exc}", file=sys.stderr)
                return 2
            print(f"  highest mode frozen on the same k points: {fz['frozen_meV']:.2f} meV (ph.x {fz['phx_meV']:.2f}, "
                  f"{fz['diff_pct']:+.2f} %; forces along the pattern {fz['force_alignment']:.5f}; {fz['cpu_s']:.0f} CPU-s)", flush=True)
            if args.save:
                q_tag = "-".join(f"{x:g}" for x in fz["q_frac"])
                out = FROZEN_STUDY_DIR / "runs" / f"{args.material_id}-q{q_tag}-k{k_tag}{tag}.json"
                if out.exists():
                    print(f"betenet qe check-q: error: {out} exists (nothing is overwritten)", file=sys.stderr)
                    return 2
                out.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(out, {**fz, "accuracy": args.accuracy or "screening"})
                print(f"  saved {out}")
    return 0
