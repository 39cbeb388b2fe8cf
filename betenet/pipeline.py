"""Batch reproduction: execute the numbered notebooks with papermill, then build the Jupyter Book.

``betenet notebooks run --profile default --build-book`` is what ``make book`` runs:

1. every ``notebooks/NN-*.ipynb`` is executed in order by papermill with ``profile`` injected
   into its ``parameters`` cell, and written to the book's ``chapters/``; the executed copy is then tidied
   for reading (:func:`tidy_executed_notebook`: the two parameter cells are tagged ``remove-cell``,
   progress-bar outputs, widget state and duplicate figure formats are dropped, PNGs get a 256-colour palette)
   and stamped with the run's identity (:func:`run_identity`: run id, profile, data source, the
   :func:`data_snapshot` of the record files the run read, commit) in ``metadata.betenet``; the same
   identity, with the per-file digests, is ``chapters/run.json``, and the files each notebook wrote
   under ``artifacts/<profile>/{figures,tables}`` are recorded in ``pipeline.json``;
2. ``chapters/results.md`` is generated from the tables the notebooks saved under
   ``artifacts/<profile>/tables`` (our Table 1 beside the paper's, labelled);
3. ``jupyter-book build`` renders the executed notebooks with execution off; the book's
   ``data-snapshot`` directive (``book/_ext/betenet_book.py``, :func:`snapshot_report`) compares, at
   build time, the snapshot in ``run.json`` with the records in the tree and says whether the data
   have moved on since the chapters were executed.

Where: the **committed** book is ``book/`` and only a complete run of the ``default`` profile on our data
(:data:`COMMITTED_RUN`) writes its chapters; any other run (``smoke``, ``paper``, ``data="upstream"``, or
``only`` a few notebooks) writes a book of its own under ``artifacts[/upstream]/<profile>/book/``
(:func:`book_dir_for`), so the committed chapters always come from one default run
(:func:`check_one_run`).

A failed notebook stops the run with its name and the papermill error; the executed copy (with
the traceback) is kept for inspection.  Stages cache their own expensive outputs, so a re-run
resumes instead of recomputing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import datasource, paths
from .config import get_profile

__all__ = [
    "PAPER_TABLE1",
    "NotebookRun",
    "discover_notebooks",
    "run_notebooks",
    "tidy_executed_notebook",
    "format_metric",
    "data_snapshot",
    "describe_data_snapshot",
    "write_results_page",
    "build_book",
    "copy_book_sources",
    "COMMITTED_RUN",
    "book_dir_for",
    "run_identity",
    "read_run_identity",
    "check_one_run",
    "snapshot_report",
    "chapters_size_bytes",
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
    #: Files the notebook wrote, relative to ``artifacts/<profile>`` (e.g. ``figures/01-timings.png``).
    outputs: tuple[str, ...] = ()


def discover_notebooks(directory: Path = paths.NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks ``NN-name.ipynb`` of ``directory``, in order."""
    found = sorted(p for p in Path(directory).glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (NN-name.ipynb) in {directory}")
    return found


def run_notebooks(
    profile: str,
    *,
    data: str = "ours",
    output_dir: Path | None = None,
    only: list[str] | None = None,
    notebooks_dir: Path = paths.NOTEBOOKS_DIR,
    parameters: dict | None = None,
    progress: bool = True,
) -> list[NotebookRun]:
    """Execute the notebooks in order with papermill (``profile`` and ``data`` injected); stop at the first failure.

    ``data``: ``"ours"`` (this project's QE records) or ``"upstream"`` (the authors' published
    ``database.json``, converted first into ``data/upstream/records``; the paper's split and bootstrap
    resamples; artifacts under ``artifacts/upstream/<profile>/``): :mod:`betenet.datasource`.
    ``only`` restricts to notebooks whose name starts with one of the given prefixes (e.g. ``["01", "03"]``).
    ``output_dir``: where the executed notebooks go; by default the ``chapters/`` of :func:`book_dir_for`
    (the committed ``book/chapters`` only for a complete default run on our data).
    A summary with wall times is written to ``artifacts[/upstream]/<profile>/pipeline.json``, the run's
    identity to ``<output_dir>/run.json`` and to every executed notebook's ``metadata.betenet``.
    """
    cfg = get_profile(profile, data={"source": data})  # fail early on an unknown profile or data source
    if output_dir is None:
        output_dir = book_dir_for(profile, data, only=only) / "chapters"
    with _data_source_env(data):
        if datasource.source_of(cfg) == "upstream":
            datasource.ensure_upstream_records(progress=progress)  # once, before any kernel starts
        return _run_notebooks(profile, output_dir=output_dir, only=only, notebooks_dir=notebooks_dir,
                              parameters={"data": data, **(parameters or {})}, progress=progress,
                              snapshot_dirs=_records_dirs(cfg), data=data)


#: The one run whose chapters are committed (``book/chapters``): a complete run of this profile on this data.
COMMITTED_RUN: tuple[str, str] = ("default", "ours")


def book_dir_for(profile: str, data: str = "ours", *, only: list[str] | None = None, prepare: bool = True) -> Path:
    """The book a run writes: ``book/`` (committed chapters) for a complete run of :data:`COMMITTED_RUN`;
    otherwise a book of its own, ``artifacts[/upstream]/<profile>/book/``, whose sources are refreshed
    from ``book/`` (``prepare``), so that smoke, paper, upstream or partial runs never overwrite the
    committed chapters."""
    if (profile, data) == COMMITTED_RUN and not only:
        return paths.BOOK_DIR
    with _data_source_env(data):
        dest = paths.artifacts_dir(profile, "book", create=prepare)
    if prepare:
        copy_book_sources(dest)
    return dest


def _records_dirs(cfg) -> list[Path]:
    """The record directories a run of ``cfg`` reads: the labels it trains on and, on our data, the
    validated-level records that chapter 00 compares with the literature (whatever the labels)."""
    dirs = [datasource.records_dir(cfg)]
    validated = datasource.level_records_dir("validated")
    if datasource.source_of(cfg) == "ours" and Path(validated).resolve() not in {Path(d).resolve() for d in dirs}:
        dirs.append(validated)
    return dirs


def data_snapshot(directories) -> dict:
    """Identity of the record files in ``directories``: count, one digest over names and contents, and
    a digest per file (so a later snapshot can say what was added, removed or changed)."""
    files = {}
    for d in map(Path, directories):
        for p in sorted(d.glob("*.json")) if d.is_dir() else []:
            files[f"{d.name}/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    total = hashlib.sha256("".join(f"{k}={v};" for k, v in sorted(files.items())).encode()).hexdigest()[:16]
    return {"directories": [_display_path(d) for d in directories], "n_records": len(files), "digest": total,
            "files": files}


def _display_path(d) -> str:
    d = Path(d).resolve()
    return d.relative_to(paths.REPO_ROOT).as_posix() if d.is_relative_to(paths.REPO_ROOT) else str(d)


def _snapshot_dirs(snapshot: dict) -> list[Path]:
    return [p if p.is_absolute() else paths.REPO_ROOT / p for p in map(Path, snapshot["directories"])]


def describe_data_snapshot(recorded: dict, current: dict | None = None) -> list[str]:
    """Markdown lines: the records a run read, and whether the directories have moved on since."""
    where = ", ".join(f"`{d}`" for d in recorded["directories"])
    lines = [f"This run read **{recorded['n_records']} records** from {where} (data digest `{recorded['digest']}`)."]
    if recorded.get("digest_at_end") not in (None, recorded["digest"]):
        lines.append("The records changed **while the notebooks ran**, so chapters may disagree with each other.")
    if current is None:
        return lines
    if current["digest"] == recorded["digest"]:
        lines.append("The record directories are unchanged since: the book is up to date with the data.")
    else:
        old, new = recorded["files"], current["files"]
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
        lines.append(f"**The data have moved on since this run**: they now hold {current['n_records']} records "
                     f"(digest `{current['digest']}`; {len(added)} added, {len(removed)} removed, {len(changed)} "
                     f"changed). Run `make book` again to bring the book up to date.")
    return lines


@contextlib.contextmanager
def _data_source_env(data: str):
    """``$BETENET_DATA_SOURCE`` set to ``data`` for the block (kernels inherit it), restored afterwards."""
    backup = os.environ.get(paths.DATA_SOURCE_ENV)
    if data == "ours":
        os.environ.pop(paths.DATA_SOURCE_ENV, None)
    else:
        os.environ[paths.DATA_SOURCE_ENV] = data
    try:
        yield
    finally:
        if backup is None:
            os.environ.pop(paths.DATA_SOURCE_ENV, None)
        else:
            os.environ[paths.DATA_SOURCE_ENV] = backup


def _run_notebooks(
    profile: str,
    *,
    output_dir: Path,
    only: list[str] | None = None,
    notebooks_dir: Path = paths.NOTEBOOKS_DIR,
    parameters: dict | None = None,
    progress: bool = True,
    snapshot_dirs: list[Path] | None = None,
    data: str = "ours",
) -> list[NotebookRun]:
    """Execute the notebooks in order with papermill (``profile`` injected); stop at the first failure.

    ``only`` restricts to notebooks whose name starts with one of the given prefixes (e.g. ``["01", "03"]``).
    A summary with wall times is written to ``artifacts/<profile>/pipeline.json``.
    """
    import papermill as pm

    get_profile(profile)  # fail early on an unknown profile
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sources = discover_notebooks(notebooks_dir)
    if only:
        sources = [p for p in sources if any(p.name.startswith(o) for o in only)]
        if not sources:
            raise ValueError(f"no notebook matches {only}")
    runs: list[NotebookRun] = []
    snapshot = data_snapshot(snapshot_dirs) if snapshot_dirs else None
    identity = run_identity(profile, data, snapshot)
    # this run's chapters replace the directory's: executed notebooks of an earlier run are removed
    for old in [*output_dir.glob("[0-9][0-9]-*.ipynb"), output_dir / RESULTS_PAGE]:
        old.unlink(missing_ok=True)
    _write_run_record(output_dir, identity, snapshot, [], complete=False)
    env_backup = os.environ.get("BETENET_PROFILE")
    os.environ["BETENET_PROFILE"] = profile
    try:
        for src in sources:
            dst = output_dir / src.name
            print(f"[betenet] executing {src.name} (profile={profile}) -> {dst}", flush=True)
            t0 = time.perf_counter()
            wall0 = time.time()
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
                _write_summary(profile, runs, snapshot)
                _write_run_record(output_dir, identity, snapshot, runs, complete=False)
                raise RuntimeError(f"notebook {src.name} failed (executed copy with traceback: {dst}):\n{exc}") from exc
            seconds = time.perf_counter() - t0
            tidy_executed_notebook(dst, run=identity)
            runs.append(NotebookRun(src.stem, src, dst, seconds, True, outputs=_written_since(profile, wall0)))
            _write_run_record(output_dir, identity, snapshot, runs, complete=False)
            print(f"[betenet] {src.name} done in {runs[-1].seconds:.1f} s", flush=True)
    finally:
        if env_backup is None:
            os.environ.pop("BETENET_PROFILE", None)
        else:
            os.environ["BETENET_PROFILE"] = env_backup
    if snapshot is not None:
        snapshot["digest_at_end"] = data_snapshot(snapshot_dirs)["digest"]
    _write_summary(profile, runs, snapshot)
    _write_run_record(output_dir, identity, snapshot, runs, complete=True)
    return runs


#: The run record of a book's chapters (``<book>/chapters/run.json``) and the generated results page.
RUN_RECORD = "run.json"
RESULTS_PAGE = "results.md"


def _git_commit() -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the repository's checkout (dirty: tracked files modified), or None."""
    try:
        sha = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(dirty)} if sha else None


def run_identity(profile: str, data: str, snapshot: dict | None) -> dict:
    """The identity every chapter of one run carries (``metadata.betenet`` of each executed notebook, the
    results page's front matter, ``chapters/run.json``): a fresh run id, profile, data source, the data
    snapshot's digest and record count, and the package's commit."""
    started = datetime.datetime.now(datetime.timezone.utc)
    return {
        "run_id": f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        "profile": profile,
        "data_source": data,
        "data_snapshot": ({k: snapshot[k] for k in ("digest", "n_records", "directories")} if snapshot else None),
        "git": _git_commit(),
    }


def _write_run_record(output_dir: Path, identity: dict, snapshot: dict | None, runs: list[NotebookRun], *,
                      complete: bool) -> Path:
    record = {**identity, "complete": complete, "notebooks": [r.name for r in runs if r.ok],
              "data_snapshot": snapshot}
    path = Path(output_dir) / RUN_RECORD
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def read_run_identity(path: Path) -> dict | None:
    """The run identity of one chapter: ``metadata.betenet`` of a notebook, the ``betenet`` key of a
    Markdown page's front matter, or ``run.json``; None when it carries none."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".ipynb":
        return json.loads(path.read_text()).get("metadata", {}).get("betenet")
    text = path.read_text()
    if text.startswith("---\n") and "\n---\n" in text[4:]:
        front = yaml.safe_load(text[4:text.index("\n---\n", 4)]) or {}
        return front.get("betenet") if isinstance(front, dict) else None
    return None


def check_one_run(chapters_dir: Path, *, profile: str | None = None) -> list[str]:
    """Problems that keep the chapters in ``chapters_dir`` from being one complete run (of ``profile``): a
    missing or unfinished run record, an executed notebook or results page from another run (or with no
    identity), one the run did not list, or one it listed that is missing.  ``[]``: one run."""
    chapters_dir = Path(chapters_dir)
    record = read_run_identity(chapters_dir / RUN_RECORD)
    if record is None:
        return [f"{chapters_dir / RUN_RECORD}: no run record"]
    problems = []
    run_id = record.get("run_id")
    if not record.get("complete"):
        problems.append(f"{RUN_RECORD}: run {run_id} did not finish")
    if profile is not None and record.get("profile") != profile:
        problems.append(f"{RUN_RECORD}: run {run_id} is of profile {record.get('profile')!r}, not {profile!r}")
    notebooks = sorted(p.stem for p in chapters_dir.glob("[0-9][0-9]-*.ipynb"))
    listed = sorted(record.get("notebooks", []))
    problems += [f"{n}.ipynb: not written by run {run_id}" for n in sorted(set(notebooks) - set(listed))]
    problems += [f"{n}.ipynb: written by run {run_id} but missing" for n in sorted(set(listed) - set(notebooks))]
    for page in [*(chapters_dir / f"{n}.ipynb" for n in notebooks), chapters_dir / RESULTS_PAGE]:
        if not page.exists():
            problems.append(f"{page.name}: missing")
            continue
        ident = read_run_identity(page) or {}
        if ident.get("run_id") != run_id:
            problems.append(f"{page.name}: from run {ident.get('run_id')}, not {run_id}")
        elif ident.get("profile") != record.get("profile") or ident.get("data_source") != record.get("data_source"):
            problems.append(f"{page.name}: profile/data {ident.get('profile')}/{ident.get('data_source')} differ from the run's")
    return problems


def chapters_size_bytes(chapters_dir: Path) -> int:
    """Total size of the files in ``chapters_dir`` (the committed chapters' size budget)."""
    return sum(p.stat().st_size for p in Path(chapters_dir).rglob("*") if p.is_file())


def snapshot_report(chapters_dir: Path) -> tuple[str, str, list[str]]:
    """What the book says, at build time, about the data its chapters were executed on: ``(kind, title,
    markdown lines)`` with ``kind`` ``"note"`` (the records in the tree are the ones the run read) or
    ``"warning"`` (no run record, an unfinished run, records changed during the run, or data that have
    moved on since: each said, never hidden)."""
    record = read_run_identity(Path(chapters_dir) / RUN_RECORD)
    if record is None:
        return ("warning", "These chapters carry no run record",
                [f"`{RUN_RECORD}` is missing beside the chapters, so the data they were executed on is unknown. "
                 "`make book` executes them again and records it."])
    git = record.get("git") or {}
    commit = f", commit `{git['commit'][:10]}`" + (" with uncommitted changes" if git.get("dirty") else "") if git else ""
    source = {"ours": "this project's QE records", "upstream": "the authors' published data"}.get(
        record.get("data_source"), str(record.get("data_source")))
    lines = [f"The chapters were executed by run `{record.get('run_id')}` (profile `{record.get('profile')}`, "
             f"{source}{commit})."]
    ok = True
    if not record.get("complete"):
        ok = False
        lines.append("**That run did not finish**: some chapters are missing or come from an earlier run.")
    snap = record.get("data_snapshot")
    if not snap:
        ok = False
        lines.append("The run recorded no data snapshot.")
    else:
        current = data_snapshot(_snapshot_dirs(snap))
        lines += describe_data_snapshot(snap, current)
        ok = ok and current["digest"] == snap["digest"] and snap.get("digest_at_end") in (None, snap["digest"])
    if ok:
        return "note", "Data snapshot: the book is up to date with the data", lines
    moved = snap and data_snapshot(_snapshot_dirs(snap))["digest"] != snap["digest"]
    title = ("The data have moved on since these chapters were executed" if moved
             else "These chapters may not describe the current data")
    return "warning", title, lines


def _write_summary(profile: str, runs: list[NotebookRun], snapshot: dict | None = None) -> Path:
    path = paths.artifacts_dir(profile) / "pipeline.json"
    data = {
        "profile": profile,
        "data": snapshot,
        "total_seconds": sum(r.seconds for r in runs),
        "notebooks": [
            {"name": r.name, "seconds": round(r.seconds, 2), "ok": r.ok, "output": str(r.output), "error": r.error,
             "outputs": list(r.outputs)}
            for r in runs
        ],
    }
    path.write_text(json.dumps(data, indent=2))
    return path


def _written_since(profile: str, since: float) -> tuple[str, ...]:
    """Files under ``artifacts/<profile>/{figures,tables}`` modified at or after ``since`` (epoch seconds)."""
    root = paths.artifacts_dir(profile)
    found = []
    for sub in ("figures", "tables"):
        d = root / sub
        if d.is_dir():
            found += [p for p in d.rglob("*") if p.is_file() and p.stat().st_mtime >= since]
    return tuple(sorted(p.relative_to(root).as_posix() for p in found))


#: Cells whose source the rendered page hides: the notebook's own parameter cell and papermill's injected one.
HIDDEN_CELL_TAGS: tuple[str, ...] = ("parameters", "injected-parameters")
#: tqdm's "[elapsed<remaining, rate]" bracket, e.g. ``[00:01<00:02, 3.1it/s]`` or ``[00:00<?, ?it/s]``.
_PROGRESS_RE = re.compile(r"\[(?:\d+:)?\d{2}:\d{2}(?:<[^,\]]*)?,\s*[^\]]*\]")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _is_progress_text(text: str) -> bool:
    return bool(_PROGRESS_RE.search(text))


def _strip_progress_stream(text: str) -> str:
    """``text`` of a stream output without its progress-bar segments (tqdm redraws with ``\\r``)."""
    pieces = re.split(r"(\r|\n)", text)
    kept = [p for p in pieces if not (p not in ("\r", "\n") and _is_progress_text(p))]
    return "".join(kept)


#: Figure formats dropped when the same output also carries a PNG (the page shows the PNG).
_DUPLICATE_FIGURE_MIME: tuple[str, ...] = ("image/svg+xml", "application/pdf", "image/jpeg")


def _compress_png(b64: str) -> str:
    """``b64`` (a base64 PNG) as a 256-colour palette PNG (no dithering; alpha kept), if that is smaller.

    Matplotlib's figures (lines, markers, text, colour maps of ≤ 256 entries) look the same with a
    256-colour palette and shrink 2–4×; an image that already has a palette is left as it is, so
    tidying twice changes nothing."""
    from PIL import Image

    raw = base64.b64decode(b64)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            if im.format != "PNG" or im.mode in ("P", "PA", "1", "L", "LA"):
                return b64
            small = im.convert("RGBA").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            buf = io.BytesIO()
            small.save(buf, format="PNG", optimize=True)
    except Exception:  # not a PNG Pillow can read: keep it as it is
        return b64
    out = buf.getvalue()
    return base64.b64encode(out).decode() + "\n" if len(out) < len(raw) else b64


def tidy_executed_notebook(path: Path, *, run: dict | None = None) -> dict[str, int]:
    """Make a papermill-executed notebook read as a book page, and keep it small; rewrite ``path`` in place.

    * cells tagged ``parameters`` or ``injected-parameters`` get the ``remove-cell`` tag (the page
      states the profile itself; the cells stay in the file);
    * progress-bar outputs are dropped: tqdm's stderr redraws, the bare newline it writes when it
      closes, and ``tqdm.auto`` widget views; any other widget output keeps only its text, and the
      notebook's widget state (``metadata.widgets``) goes;
    * a figure shown as PNG loses its SVG/PDF/JPEG copies, and PNGs become 256-colour palette PNGs
      (:func:`_compress_png`);
    * papermill's absolute input/output paths become repository-relative;
    * ``run`` (:func:`run_identity`), when given, is stored as ``metadata.betenet``.
    Every other output is kept as it is.

    Returns counts ``{"hidden_cells", "progress_outputs", "dropped_mime", "png_bytes_saved"}``.  Idempotent.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    hidden = removed = dropped = saved = 0
    for cell in nb.cells:
        tags = list(cell.get("metadata", {}).get("tags", []))
        if any(t in HIDDEN_CELL_TAGS for t in tags) and "remove-cell" not in tags:
            cell.setdefault("metadata", {})["tags"] = tags + ["remove-cell"]
            hidden += 1
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr" and not out.get("text", "").strip():
                removed += 1  # what tqdm leaves when it closes: a bare newline, shown as an empty box
                continue
            if out.get("output_type") == "stream" and _is_progress_text(out.get("text", "")):
                text = _strip_progress_stream(out["text"])
                if not text.strip():
                    removed += 1
                    continue
                out["text"] = text
            data = out.get("data")
            if data is not None:
                if _WIDGET_VIEW in data:
                    plain = data.get("text/plain", "")
                    plain = "".join(plain) if isinstance(plain, list) else plain
                    if _is_progress_text(plain) or not plain.strip():
                        removed += 1
                        continue
                for mime in [m for m in data if m.startswith("application/vnd.jupyter.widget")]:
                    del data[mime]
                    dropped += 1
                if "image/png" in data:
                    for mime in [m for m in _DUPLICATE_FIGURE_MIME if m in data]:
                        del data[mime]
                        dropped += 1
                    png = data["image/png"]
                    png = "".join(png) if isinstance(png, list) else png
                    small = _compress_png(png)
                    saved += len(png) - len(small)
                    data["image/png"] = small
                if not data:
                    continue
            outputs.append(out)
        cell.outputs = outputs
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        dropped += 1
    pm_meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if isinstance(pm_meta.get(key), str) and Path(pm_meta[key]).is_absolute():
            pm_meta[key] = _display_path(pm_meta[key])
    if run is not None:
        nb.metadata["betenet"] = run
    nbformat.write(nb, path)
    return {"hidden_cells": hidden, "progress_outputs": removed, "dropped_mime": dropped, "png_bytes_saved": saved}


#: Decimals shown on the results page: R² is dimensionless (2 decimals for every property);
#: MAE and RMSE carry the property's unit (λ: 2 decimals; ω_log, ω₂ in K: whole kelvin).
_DECIMALS: dict[str, tuple[int, int, int]] = {"R2": (2, 2, 2), "MAE": (2, 0, 0), "RMSE": (2, 0, 0)}


def format_metric(x: float | None, metric: str, prop_index: int) -> str:
    """One cell of the results page: ``x`` of ``metric`` (R2, MAE, RMSE) for property ``prop_index``
    (0 λ, 1 ω_log, 2 ω₂) with that metric's decimals; ``–`` for a missing or non-finite value."""
    if x is None or not math.isfinite(float(x)):
        return "–"
    decimals = _DECIMALS.get(metric, (3, 1, 1))[prop_index]
    text = f"{float(x):.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def write_results_page(profile: str, book_dir: Path | None = None, *, data: str = "ours") -> Path:
    """Generate ``<book_dir>/chapters/results.md``: our Table 1 (from the run) beside the paper's.

    Reads every ``artifacts/<profile>/tables/table1_*.csv`` (columns ``model, metric, lambda,
    omega_log_K, omega_2_K`` and optionally ``tc_mae_K``, ``n_test``, ``data``) written by notebooks
    02 and 05.  Missing tables are reported on the page, never invented.  ``data="upstream"``: the
    tables of the run on the authors' published data (``artifacts/upstream/<profile>/``), computed the
    paper's way, each metric shown beside the paper's with the difference (ours − paper).
    """
    if book_dir is None:
        book_dir = book_dir_for(profile, data)
    with _data_source_env(data):
        return _write_results_page(profile, book_dir, upstream=data == "upstream")


def _write_results_page(profile: str, book_dir: Path, *, upstream: bool) -> Path:
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
    where = _display_path(tables_dir) + "/"
    lines = [
        "# Results: Table 1, ours beside the paper's",
        "",
        f"Generated by `betenet.pipeline.write_results_page` from the **`{profile}`** profile run "
        f"(tables in `{where}`).",
        "",
    ]
    if upstream:
        lines += [
            "**Data: the authors' published `database.json`** (`make book DATA=upstream`), converted by "
            "`betenet.upstream`, with **the paper's own train/test split** (`data/upstream/indices/idx_*_full.txt`) "
            "and, for the ensembles, **the paper's bootstrap resamples** (member k trained on `idx_train_V2_k`, "
            "validated on `idx_valid_V2_k`). Table 1 is therefore computed the paper's way; the remaining "
            "differences are the profile's training budget and ensemble size, rows without a structure file, "
            "and the test set (the paper describes 818 materials split 80/20; its published index files list 824 "
            "rows, 173 of them in the test set). "
            "Δ = ours − paper.",
            "",
        ]
    lines += [
        "**Our numbers** are measured on this project's own Quantum ESPRESSO α²F database (see the "
        "dataset chapter for its size, settings and provenance), on our element-balanced test split. "
        "**The paper's numbers** are quoted from Table 1 of Gibson, Hire *et al.* (818 materials, SG15 ONCV, "
        "75 Ry) for comparison only: they were *not* reproduced here, and the datasets differ in size, "
        "chemistry and DFT settings, so the two columns are not directly comparable.",
        "",
    ] if not upstream else []
    if not frames:
        lines += ["```{warning}", f"No Table 1 CSVs found in `{where}`: run notebooks 02 and 05 first.", "```"]
    else:
        ours = pd.concat(frames, ignore_index=True)
        heads = [f"{p} (ours) | {p} (paper)" + (f" | {p} Δ" if upstream else "") for p in ("λ", "ω_log K", "ω₂ K")]
        lines += [
            "| model | metric | " + " | ".join(heads) + " |",
            "|---|---|" + "---|" * (9 if upstream else 6),
        ]
        for _, row in ours.iterrows():
            model, metric = str(row["model"]), str(row["metric"])
            paper = PAPER_TABLE1.get(model, {}).get(metric)
            cells = []
            for i, col in enumerate(("lambda", "omega_log_K", "omega_2_K")):
                cells.append(format_metric(float(row[col]), metric, i))
                cells.append(format_metric(paper[i], metric, i) if paper else "–")
                if upstream:
                    cells.append(format_metric(float(row[col]) - paper[i], metric, i) if paper else "–")
            lines.append(f"| {model} | {metric} | " + " | ".join(cells) + " |")
        if "tc_mae_K" in ours.columns:
            lines += ["", "| model | T_c MAE K (ours) | T_c MAE K (paper) | test materials (ours) |", "|---|---|---|---|"]
            for model, grp in ours.groupby("model", sort=False):
                tc = grp["tc_mae_K"].dropna()
                n = grp["n_test"].dropna() if "n_test" in grp.columns else []
                paper_tc = PAPER_TC_MAE_K.get(str(model))
                lines.append(
                    f"| {model} | {tc.iloc[0]:.2f} | {format_metric(paper_tc, 'MAE', 0)} | "
                    f"{int(n.iloc[0]) if len(n) else '–'} |"
                    if len(tc)
                    else f"| {model} | – | {format_metric(paper_tc, 'MAE', 0)} | – |"
                )
        if "data" in ours.columns:
            lines += ["", "Data behind our rows: " + "; ".join(sorted({str(d) for d in ours["data"].dropna()})) + "."]
    lines += ["", "## Data snapshot", "",
              "Checked when the book is built: the records the run read, and whether the data have moved on since.",
              "", "```{data-snapshot}", "```"]
    summary = paths.artifacts_dir(profile) / "pipeline.json"
    if summary.exists():
        info = json.loads(summary.read_text())
        lines += ["", "## Wall time of this run", "", "| notebook | seconds |", "|---|---|"]
        lines += [f"| {n['name']} | {n['seconds']:.0f} |" for n in info["notebooks"]]
        lines += [f"| **total** | **{info['total_seconds']:.0f}** |"]
    out = Path(book_dir) / "chapters" / RESULTS_PAGE
    out.parent.mkdir(parents=True, exist_ok=True)
    identity = read_run_identity(out.parent / RUN_RECORD)
    if identity is not None:  # the page belongs to the run whose chapters it sits beside
        identity = {k: identity[k] for k in ("run_id", "profile", "data_source", "git") if k in identity}
        lines = ["---", "betenet: " + json.dumps(identity, sort_keys=True), "---", ""] + lines
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
    """Copy the book's sources (not builds/chapters) to ``dest``, replacing older copies there (used to
    build a book elsewhere: a non-committed run's own book, tests)."""
    dest = Path(dest)
    shutil.copytree(book_dir, dest, ignore=shutil.ignore_patterns("_build", "chapters", "__pycache__"),
                    symlinks=False, dirs_exist_ok=True)
    return dest
