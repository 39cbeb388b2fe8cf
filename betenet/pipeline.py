"""Batch reproduction: execute the numbered notebooks with papermill, then build the Jupyter Book.

``betenet notebooks run --profile default --build-book`` is what ``make book`` runs:

1. every ``notebooks/NN-*.ipynb`` is executed in order by papermill with ``profile`` injected
   into its ``parameters`` cell, and written to ``book/chapters/`` (git-ignored);
2. ``book/chapters/results.md`` is generated from the tables the notebooks saved under
   ``artifacts/<profile>/tables`` (our Table 1 beside the paper's, labelled);
3. ``jupyter-book build book`` renders the executed notebooks with execution off.

A failed notebook stops the run with its name and the papermill error; the executed copy (with
the traceback) is kept for inspection.  Stages cache their own expensive outputs, so a re-run
resumes instead of recomputing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import paths

__all__ = [
    "PAPER_TABLE1",
    "NotebookRun",
    "discover_notebooks",
    "run_notebooks",
    "write_results_page",
    "build_book",
    "cli_main",
]

#: Table 1 of the paper (Gibson, Hire et al., arXiv 2401.16611; 818 materials, 164 in the test set),
#: quoted for side-by-side comparison only.  Keys: model -> metric -> (λ, ω_log K, ω₂ K).
PAPER_TABLE1: dict[str, dict[str, tuple[float, float, float]]] = {
    "Base": {"R2": (0.05, 0.76, 0.82), "MAE": (0.22, 35.0, 35.0), "RMSE": (0.32, 50.0, 56.0)},
    "CSO": {"R2": (0.19, 0.56, 0.75), "MAE": (0.21, 45.0, 43.0), "RMSE": (0.31, 68.0, 63.0)},
    "CPD": {"R2": (0.35, 0.79, 0.87), "MAE": (0.18, 32.0, 30.0), "RMSE": (0.28, 47.0, 45.0)},
    "FPD": {"R2": (0.37, 0.82, 0.89), "MAE": (0.18, 30.0, 28.0), "RMSE": (0.28, 43.0, 42.0)},
}
#: T_c MAE (K) quoted in the paper's text (Base 2.84 K, CSO 2.5 K, CPD 2.1 K; FPD not quoted).
PAPER_TC_MAE_K: dict[str, float] = {"Base": 2.84, "CSO": 2.5, "CPD": 2.1}


@dataclass(frozen=True)
class NotebookRun:
    name: str
    source: Path
    output: Path
    seconds: float
    ok: bool
    error: str = ""


def discover_notebooks(directory: Path = paths.NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN-name.ipynb`` of ``directory``, in order."""
    found = sorted(p for p in Path(directory).glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (NN-name.ipynb) in {directory}")
    return found


def run_notebooks(
    profile: str,
    *,
    output_dir: Path = paths.CHAPTERS_DIR,
    only: list[str] | None = None,
    notebooks_dir: Path = paths.NOTEBOOKS_DIR,
    parameters: dict | None = None,
    progress: bool = True,
) -> list[NotebookRun]:
    """Execute the notebooks in order with papermill (``profile`` injected); stop at the first failure.

    ``only`` restricts to notebooks whose name starts with one of the given prefixes (e.g. ``["01", "03"]``).
    A summary with wall times is written to ``artifacts/<profile>/pipeline.json``.
    """
    import papermill as pm

    from .config import get_profile

    get_profile(profile)  # fail early on an unknown profile
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sources = discover_notebooks(notebooks_dir)
    if only:
        sources = [p for p in sources if any(p.name.startswith(o) for o in only)]
        if not sources:
            raise ValueError(f"no notebook matches {only}")
    runs: list[NotebookRun] = []
    env_backup = os.environ.get("BETENET_PROFILE")
    os.environ["BETENET_PROFILE"] = profile
    try:
        for src in sources:
            dst = output_dir / src.name
            print(f"[betenet] executing {src.name} (profile={profile}) -> {dst}", flush=True)
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(src),
                    str(dst),
                    parameters={"profile": profile, **(parameters or {})},
                    cwd=str(notebooks_dir),
                    progress_bar=progress,
                    kernel_name="python3",
                )
            except Exception as exc:  # papermill raises PapermillExecutionError with the cell traceback
                runs.append(NotebookRun(src.stem, src, dst, time.perf_counter() - t0, False, str(exc)[-4000:]))
                _write_summary(profile, runs)
                raise RuntimeError(f"notebook {src.name} failed (executed copy with traceback: {dst}):\n{exc}") from exc
            runs.append(NotebookRun(src.stem, src, dst, time.perf_counter() - t0, True))
            print(f"[betenet] {src.name} done in {runs[-1].seconds:.1f} s", flush=True)
    finally:
        if env_backup is None:
            os.environ.pop("BETENET_PROFILE", None)
        else:
            os.environ["BETENET_PROFILE"] = env_backup
    _write_summary(profile, runs)
    return runs


def _write_summary(profile: str, runs: list[NotebookRun]) -> Path:
    path = paths.artifacts_dir(profile) / "pipeline.json"
    data = {
        "profile": profile,
        "total_seconds": sum(r.seconds for r in runs),
        "notebooks": [
            {"name": r.name, "seconds": round(r.seconds, 2), "ok": r.ok, "output": str(r.output), "error": r.error}
            for r in runs
        ],
    }
    path.write_text(json.dumps(data, indent=2))
    return path


def _fmt(x: float, prop_index: int) -> str:
    return f"{x:.2f}" if prop_index == 0 else f"{x:.0f}"


def write_results_page(profile: str, book_dir: Path = paths.BOOK_DIR) -> Path:
    """Generate ``<book_dir>/chapters/results.md``: our Table 1 (from the run) beside the paper's.

    Reads every ``artifacts/<profile>/tables/table1_*.csv`` (columns ``model, metric, lambda,
    omega_log_K, omega_2_K`` and optionally ``tc_mae_K``, ``n_test``, ``data``) written by notebooks
    02 and 05.  Missing tables are reported on the page, never invented.
    """
    import pandas as pd

    tables_dir = paths.artifacts_dir(profile, "tables")
    frames = []
    for csv in sorted(tables_dir.glob("table1_*.csv")):
        try:
            frame = pd.read_csv(csv)
        except Exception as exc:  # a malformed table must not take the book down silently
            raise ValueError(f"{csv}: cannot read Table 1 CSV ({exc})") from exc
        missing = [c for c in ("model", "metric", "lambda", "omega_log_K", "omega_2_K") if c not in frame.columns]
        if missing:
            raise ValueError(f"{csv}: not a Table 1 CSV: missing column(s) {missing}; "
                             f"expected model, metric, lambda, omega_log_K, omega_2_K[, tc_mae_K, n_test, data]")
        frames.append(frame)
    lines = [
        "# Results: Table 1, ours beside the paper's",
        "",
        f"Generated by `betenet.pipeline.write_results_page` from the **`{profile}`** profile run "
        f"(tables in `artifacts/{profile}/tables/`).",
        "",
        "**Our numbers** are measured on this project's own Quantum ESPRESSO α²F database (see the "
        "dataset chapter for its size, settings and provenance), on our element-balanced test split. "
        "**The paper's numbers** are quoted from Table 1 of Gibson, Hire *et al.* (818 materials, SG15 ONCV, "
        "75 Ry) for comparison only: they were *not* reproduced here, and the datasets differ in size, "
        "chemistry and DFT settings, so the two columns are not directly comparable.",
        "",
    ]
    if not frames:
        lines += ["```{warning}", f"No Table 1 CSVs found in `artifacts/{profile}/tables/`: run notebooks 02 and 05 first.", "```"]
    else:
        ours = pd.concat(frames, ignore_index=True)
        lines += [
            "| model | metric | λ (ours) | λ (paper) | ω_log K (ours) | ω_log K (paper) | ω₂ K (ours) | ω₂ K (paper) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for _, row in ours.iterrows():
            model, metric = str(row["model"]), str(row["metric"])
            paper = PAPER_TABLE1.get(model, {}).get(metric)
            cells = []
            for i, col in enumerate(("lambda", "omega_log_K", "omega_2_K")):
                cells.append(_fmt(float(row[col]), i))
                cells.append(_fmt(paper[i], i) if paper else "–")
            lines.append(f"| {model} | {metric} | " + " | ".join(cells) + " |")
        if "tc_mae_K" in ours.columns:
            lines += ["", "| model | T_c MAE K (ours) | T_c MAE K (paper) | test materials (ours) |", "|---|---|---|---|"]
            for model, grp in ours.groupby("model", sort=False):
                tc = grp["tc_mae_K"].dropna()
                n = grp["n_test"].dropna() if "n_test" in grp.columns else []
                paper_tc = PAPER_TC_MAE_K.get(str(model))
                lines.append(
                    f"| {model} | {tc.iloc[0]:.2f} | {paper_tc if paper_tc is not None else '–'} | "
                    f"{int(n.iloc[0]) if len(n) else '–'} |"
                    if len(tc)
                    else f"| {model} | – | {paper_tc if paper_tc is not None else '–'} | – |"
                )
        if "data" in ours.columns:
            lines += ["", "Data behind our rows: " + "; ".join(sorted({str(d) for d in ours["data"].dropna()})) + "."]
    summary = paths.artifacts_dir(profile) / "pipeline.json"
    if summary.exists():
        info = json.loads(summary.read_text())
        lines += ["", "## Wall time of this run", "", "| notebook | seconds |", "|---|---|"]
        lines += [f"| {n['name']} | {n['seconds']:.0f} |" for n in info["notebooks"]]
        lines += [f"| **total** | **{info['total_seconds']:.0f}** |"]
    out = Path(book_dir) / "chapters" / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def build_book(book_dir: Path = paths.BOOK_DIR, *, strict: bool = False) -> Path:
    """Run ``jupyter-book build <book_dir>`` (execution off, per ``_config.yml``); return the HTML dir."""
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book_dir)]
    if strict:
        cmd.append("-W")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build {book_dir} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return Path(book_dir) / "_build" / "html"


def copy_book_sources(dest: Path, book_dir: Path = paths.BOOK_DIR) -> Path:
    """Copy the book's sources (not builds/chapters) to ``dest`` (used to build a book elsewhere, e.g. in tests)."""
    dest = Path(dest)
    shutil.copytree(book_dir, dest, ignore=shutil.ignore_patterns("_build", "chapters"), symlinks=False)
    return dest


def cli_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="betenet notebooks", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run", help="execute notebooks with papermill (and optionally build the book)")
    r.add_argument("--profile", default="default", help="smoke | default | paper")
    r.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")
    r.add_argument("--build-book", action="store_true", help="then write the results page and run jupyter-book build")
    r.add_argument("--no-progress", action="store_true")
    b = sub.add_parser("book", help="write the results page and build the book from already executed notebooks")
    b.add_argument("--profile", default="default")
    sub.add_parser("list", help="list the notebooks in execution order")
    args = p.parse_args(argv)
    if args.action == "list":
        for nb in discover_notebooks():
            print(nb.name)
        return 0
    if args.action == "run":
        t0 = time.perf_counter()
        run_notebooks(args.profile, only=args.only, progress=not args.no_progress)
        print(f"[betenet] notebooks done in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.action == "book" or getattr(args, "build_book", False):
        write_results_page(args.profile)
        html = build_book()
        print(f"[betenet] book: {html / 'index.html'}")
    return 0
