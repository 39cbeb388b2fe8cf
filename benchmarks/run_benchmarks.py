"""BETE-NET performance benchmarks on this machine (issue 5 "Performance"; not a test).

Measures, for the paper-size model (2.46 M parameters, CSO):

1. graph building (periodic neighbour search, r_max = 4 Å) for 806 structures, and collating them;
2. one full-batch training epoch (forward + backward + AdamW step) over 650 crystals;
3. inference throughput of one model, extrapolated to 11,206 structures and to a 100-model ensemble
   (including loading 100 checkpoints), also with two 1-thread worker processes;
4. eager vs ``torch.compile``, float32 vs float64 (and how far float32 predictions/losses are from float64).

Structures: ``betenet.qe.prototypes`` candidates (a deterministic spread over every prototype, <= 8 atoms),
replicated cyclically to the sizes above; targets are synthetic non-negative α²F-like spectra (timing only).
Numbers are wall-clock medians; the machine load (``os.getloadavg``) is recorded before and after, because
other work on the same cores makes every number pessimistic.

    python benchmarks/run_benchmarks.py                 # full run (several minutes; torch.compile is slow to start)
    python benchmarks/run_benchmarks.py --quick         # smoke run: small sizes, no compile, no worker processes
    python benchmarks/run_benchmarks.py --threads 2 --out artifacts/benchmarks.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Issue 5 targets on 2 CPU cores (seconds).
TARGETS_S = {"graphs_806": 2.0, "train_epoch_650": 0.5, "ensemble_100x11206": 300.0}
N_GRAPHS, N_TRAIN, N_SCREEN, N_MEMBERS = 806, 650, 11_206, 100


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def base_structures(n_base: int) -> list[tuple[str, object]]:
    """``n_base`` prototype structures spread evenly over the candidate list (all prototypes, <= 8 atoms)."""
    from betenet.qe.prototypes import build, candidate_ids

    ids = candidate_ids()
    step = max(1, len(ids) // n_base)
    picked = ids[::step][:n_base]
    return [(mid, build(els, proto)) for mid, els, proto in picked]


def replicate(items: list, n: int) -> list:
    return [items[i % len(items)] for i in range(n)]


def synthetic_targets(n: int, seed: int = 0):
    """(n, 51) non-negative α²F-like spectra (two Gaussian peaks on the 51-bin grid); for timing only."""
    import numpy as np

    from betenet.constants import N_TARGET_BINS

    rng = np.random.default_rng(seed)
    omega = np.linspace(0.25, 100.25, N_TARGET_BINS)
    out = np.zeros((n, N_TARGET_BINS))
    for c, w, h in ((rng.uniform(5, 40, n), rng.uniform(2, 8, n), rng.uniform(0.1, 0.6, n)),
                    (rng.uniform(30, 90, n), rng.uniform(3, 10, n), rng.uniform(0.05, 0.4, n))):
        out += h[:, None] * np.exp(-0.5 * ((omega[None, :] - c[:, None]) / w[:, None]) ** 2)
    return out


def timed(fn, repeats: int, warmup: int = 1) -> dict:
    """Run ``fn`` ``warmup`` + ``repeats`` times: wall-clock seconds of the first call, median/min of the rest,
    and the median process CPU seconds (all threads; on a shared machine wall > CPU / threads)."""
    first = None
    for i in range(warmup):
        t = time.perf_counter()
        fn()
        if i == 0:
            first = time.perf_counter() - t
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"median_s": statistics.median(times), "min_s": min(times), "cpu_median_s": statistics.median(cpu),
            "first_call_s": first, "repeats": repeats}


def bench_graphs(structs, args) -> dict:
    from betenet.dataset import GraphCache, graphs_for_structures
    from betenet.graphs import collate

    sts = replicate(structs, N_GRAPHS if not args.quick else 200)
    ids = [f"{m}-{i}" for i, (m, _) in enumerate(sts)]
    only = [s for _, s in sts]
    holder = {}

    def build():
        holder["g"] = graphs_for_structures(only, 4.0, ids, cache=GraphCache())

    r = timed(build, repeats=3 if not args.quick else 1)
    graphs = holder["g"]
    c = timed(lambda: collate(graphs), repeats=3 if not args.quick else 1)
    return {"n_structures": len(sts), "build": r, "collate": c,
            "atoms": sum(g.n_atoms for g in graphs), "edges_incl_self": sum(g.n_edges for g in graphs)}, graphs


def _paper_model(dtype, seed=0):
    from betenet.config import ModelConfig
    from betenet.model import build_model

    return build_model(ModelConfig(), dtype=dtype, seed=seed)


def bench_train(graphs, args) -> list[dict]:
    import torch

    from betenet.graphs import collate
    from betenet.model import n_parameters

    n = N_TRAIN if not args.quick else 120
    gs = replicate(graphs, n)
    targets = synthetic_targets(n)
    rows = []
    modes = [("eager", torch.float32), ("eager", torch.float64)]
    if args.compile:
        modes.append(("compiled", torch.float32))
    for mode, dtype in modes:
        batch = collate(gs, targets, dtype=dtype)
        model = _paper_model(dtype)
        fwd = torch.compile(model) if mode == "compiled" else model
        opt = torch.optim.AdamW(model.parameters(), lr=0.005, weight_decay=0.0)

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(fwd(batch), batch.y)
            loss.backward()
            opt.step()

        r = timed(step, repeats=5 if not args.quick else 2, warmup=2 if mode == "compiled" else 1)
        rows.append({"mode": mode, "dtype": str(dtype).replace("torch.", ""), "n_crystals": n,
                     "atoms": batch.n_nodes, "edges_incl_self": batch.n_edges,
                     "parameters": n_parameters(model), **r})
        print(f"  train epoch {mode:8s} {rows[-1]['dtype']}: {r['median_s']:.3f} s (first call {r['first_call_s']:.1f} s)",
              flush=True)
    return rows


def bench_inference(graphs, args, tmpdir: Path) -> dict:
    import torch

    from betenet.graphs import collate
    from betenet.model import load_checkpoint, save_checkpoint

    n = N_GRAPHS if not args.quick else 200
    gs = replicate(graphs, n)
    out: dict = {"n_measured": n, "chunk": args.chunk, "modes": []}
    modes = [("eager", torch.float32), ("eager", torch.float64)]
    if args.compile:
        modes.append(("compiled", torch.float32))
    for mode, dtype in modes:
        model = _paper_model(dtype).eval()
        fwd = torch.compile(model) if mode == "compiled" else model
        size = args.chunk if args.chunk > 0 else n
        batches = [collate(gs[i : i + size], dtype=dtype) for i in range(0, n, size)]

        def run():
            with torch.inference_mode():
                for batch in batches:
                    fwd(batch)

        r = timed(run, repeats=3, warmup=2 if mode == "compiled" else 1)
        per = r["median_s"] / n
        out["modes"].append({"mode": mode, "dtype": str(dtype).replace("torch.", ""), **r,
                             "structures_per_s": 1.0 / per, "extrapolated_11206_s": per * N_SCREEN})
        print(f"  inference {mode:8s} {out['modes'][-1]['dtype']}: {r['median_s']:.3f} s for {n} "
              f"-> {per * N_SCREEN:.1f} s per model for {N_SCREEN}", flush=True)
    # loading a member from its checkpoint (100 of them for an ensemble)
    path = save_checkpoint(tmpdir / "member.pt", _paper_model(torch.float32))
    out["checkpoint_load_new_model"] = timed(lambda: load_checkpoint(path), repeats=3 if not args.quick else 1)
    into = _paper_model(torch.float32)
    out["checkpoint_load"] = timed(lambda: load_checkpoint(path, model=into), repeats=5)
    # collate cost per structure (11,206 graphs are collated once per ensemble pass, reused by members)
    out["collate"] = timed(lambda: collate(gs), repeats=2)
    return out


def _worker(payload):
    """Worker process: 1 thread, build a model, time inference of the pickled graphs ``repeats`` times."""
    import torch

    torch.set_num_threads(1)
    graphs, repeats, chunk = payload
    from betenet.graphs import collate

    model = _paper_model(torch.float32).eval()
    size = chunk if chunk > 0 else len(graphs)
    batches = [collate(graphs[i : i + size]) for i in range(0, len(graphs), size)]
    with torch.inference_mode():
        for batch in batches:  # warm-up
            model(batch)
        t = time.perf_counter()
        for _ in range(repeats):
            for batch in batches:
                model(batch)
        return (time.perf_counter() - t) / repeats


def bench_processes(graphs, args) -> dict:
    """Two 1-thread worker processes predicting at the same time (the ensemble runner's layout)."""
    import multiprocessing as mp

    n = N_GRAPHS
    gs = replicate(graphs, n)
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        t = time.perf_counter()
        per_model = pool.map(_worker, [(gs, 3, args.chunk), (gs, 3, args.chunk)])
        wall = time.perf_counter() - t
    # two models in parallel, each per_model seconds per pass -> throughput 2 / max(per_model) passes per second
    per_pass = max(per_model) / 2.0
    return {"n_measured": n, "per_model_pass_s": per_model, "effective_s_per_model_pass": per_pass,
            "extrapolated_11206_s_per_model": per_pass * N_SCREEN / n, "wall_incl_startup_s": wall}


def bench_accuracy(graphs, args) -> dict:
    """float32 vs float64 from identical weights: predictions and 5 AdamW steps (lr 0.005) of MSE loss."""
    import copy

    import numpy as np
    import torch

    from betenet.graphs import collate

    n = 200 if not args.quick else 60
    gs = replicate(graphs, n)
    targets = synthetic_targets(n, seed=1)
    m64 = _paper_model(torch.float64, seed=3)
    m32 = copy.deepcopy(m64).to(torch.float32)
    b64, b32 = collate(gs, targets, dtype=torch.float64), collate(gs, targets, dtype=torch.float32)
    with torch.no_grad():
        p64, p32 = m64(b64), m32(b32).double()
    rel_pred = float((p32 - p64).abs().max() / p64.abs().max())
    losses = {}
    for name, model, batch in (("float64", m64, b64), ("float32", m32, b32)):
        opt = torch.optim.AdamW(model.parameters(), lr=0.005, weight_decay=0.0)
        ls = []
        for _ in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(batch), batch.y)
            loss.backward()
            opt.step()
            ls.append(loss.item())
        losses[name] = ls
    rel_loss = float(np.max(np.abs(np.array(losses["float32"]) / np.array(losses["float64"]) - 1)))
    return {"n_crystals": n, "max_rel_prediction_diff": rel_pred, "losses": losses, "max_rel_loss_diff": rel_loss}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, no torch.compile, no worker processes")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2: the target machine)")
    ap.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmarks.json", help="JSON report path")
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="skip torch.compile (its first call takes minutes on a loaded 2-core machine)")
    ap.add_argument("--no-processes", dest="processes", action="store_false",
                    help="skip the two 1-thread worker processes measurement")
    ap.add_argument("--n-base", type=int, default=160, help="distinct prototype structures (replicated to the sizes)")
    ap.add_argument("--chunk", type=int, default=256,
                    help="inference batch size in structures (0: all measured structures in one batch); "
                         "256 is the ensemble runner's batch size")
    args = ap.parse_args(argv)
    if args.quick:
        args.compile, args.processes, args.n_base = False, False, min(args.n_base, 40)

    import tempfile

    import torch

    sys.path.insert(0, str(REPO))
    torch.set_num_threads(args.threads)
    report: dict = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(), "load_avg_before": _load()},
        "quick": args.quick,
        "targets_s": TARGETS_S,
    }
    t0 = time.perf_counter()
    print(f"building {args.n_base} prototype structures (not timed) ...", flush=True)
    structs = base_structures(args.n_base)
    report["structures"] = {"source": "betenet.qe.prototypes (candidate_ids spread, replicated)",
                            "n_distinct": len(structs)}
    print("graphs ...", flush=True)
    report["graphs"], graphs = bench_graphs(structs, args)
    print(f"  {report['graphs']['n_structures']} graphs: {report['graphs']['build']['median_s']:.3f} s", flush=True)
    print("training epoch ...", flush=True)
    report["train_epoch"] = bench_train(graphs, args)
    print("inference ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        report["inference"] = bench_inference(graphs, args, Path(tmp))
    if args.processes:
        print("two 1-thread worker processes ...", flush=True)
        report["inference"]["two_processes"] = bench_processes(graphs, args)
    print("float32 vs float64 ...", flush=True)
    report["accuracy_f32_vs_f64"] = bench_accuracy(graphs, args)
    report["machine"]["load_avg_after"] = _load()
    report["total_s"] = time.perf_counter() - t0
    report["summary"] = summarise(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print_table(report)
    print(f"\nJSON report: {args.out}")
    return report


def summarise(rep: dict) -> list[dict]:
    """The headline rows: measured/extrapolated seconds against the issue's targets."""
    rows = []
    g = rep["graphs"]
    scale = N_GRAPHS / g["n_structures"]
    rows.append({"what": f"graphs for {N_GRAPHS} structures", "seconds": g["build"]["median_s"] * scale,
                 "target_s": TARGETS_S["graphs_806"], "how": "measured" if scale == 1 else "scaled linearly"})
    for r in rep["train_epoch"]:
        scale = N_TRAIN / r["n_crystals"]
        rows.append({"what": f"training epoch, {N_TRAIN} crystals, {r['mode']} {r['dtype']}",
                     "seconds": r["median_s"] * scale, "target_s": TARGETS_S["train_epoch_650"],
                     "how": "measured (full batch)" if scale == 1 else "scaled linearly"})
    inf = rep["inference"]
    load_s = inf["checkpoint_load"]["median_s"]
    collate_s = inf["collate"]["median_s"] * N_SCREEN / inf["n_measured"]
    graphs_s = g["build"]["median_s"] * N_SCREEN / g["n_structures"]
    for m in inf["modes"]:
        rows.append({"what": f"1 model, {N_SCREEN} structures, {m['mode']} {m['dtype']}",
                     "seconds": m["extrapolated_11206_s"], "target_s": None,
                     "how": f"extrapolated from {inf['n_measured']} structures, batches of "
                            f"{inf.get('chunk') or inf['n_measured']}"})
    best = min((m for m in inf["modes"] if m["dtype"] == "float32"), key=lambda m: m["extrapolated_11206_s"])
    one = graphs_s + collate_s + N_MEMBERS * (load_s + best["extrapolated_11206_s"])
    rows.append({"what": f"{N_MEMBERS}-model ensemble, {N_SCREEN} structures, 1 process ({best['mode']} float32)",
                 "seconds": one, "target_s": TARGETS_S["ensemble_100x11206"],
                 "how": "extrapolated: graphs + collate once, 100 x (load into one model + forward)"})
    if "two_processes" in inf:
        p = inf["two_processes"]
        two = graphs_s + collate_s + N_MEMBERS * (load_s / 2 + p["extrapolated_11206_s_per_model"])
        rows.append({"what": f"{N_MEMBERS}-model ensemble, {N_SCREEN} structures, 2 x 1-thread processes (eager float32)",
                     "seconds": two, "target_s": TARGETS_S["ensemble_100x11206"],
                     "how": "extrapolated from two concurrent workers"})
    for r in rows:
        r["meets_target"] = None if r["target_s"] is None else bool(r["seconds"] <= r["target_s"])
    return rows


def print_table(rep: dict) -> None:
    m = rep["machine"]
    print(f"\nBETE-NET benchmarks  {rep['date_utc']} UTC  torch {m['torch']}  threads {m['threads']}  "
          f"cpus {m['cpu_count']}  load avg before {m['load_avg_before']} after {m.get('load_avg_after')}")
    g = rep["graphs"]
    print(f"graphs: {g['n_structures']} structures, {g['atoms']} atoms, {g['edges_incl_self']} edges (incl. self)")
    t = rep["train_epoch"][0]
    print(f"training batch: {t['n_crystals']} crystals, {t['atoms']} atoms, {t['edges_incl_self']} edges, "
          f"{t['parameters']:,} parameters")
    print(f"\n{'what':78s} {'seconds':>9s} {'target':>8s}  ok   how")
    for r in rep["summary"]:
        tgt = "" if r["target_s"] is None else f"{r['target_s']:.1f}"
        ok = "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
        print(f"{r['what']:78s} {r['seconds']:9.3f} {tgt:>8s}  {ok:4s} {r['how']}")
    inf = rep["inference"]
    print(f"\ncheckpoint load (paper size): {inf['checkpoint_load']['median_s']:.3f} s per member into one model "
          f"(load_checkpoint(path, model=m)); {inf['checkpoint_load_new_model']['median_s']:.2f} s building a new model")
    print("training epoch CPU seconds (process time, all threads): "
          + ", ".join(f"{r['mode']} {r['dtype']} {r['cpu_median_s']:.2f}" for r in rep["train_epoch"]))
    print("inference CPU seconds for the measured structures: "
          + ", ".join(f"{r['mode']} {r['dtype']} {r['cpu_median_s']:.2f}" for r in inf["modes"]))
    for row in rep["train_epoch"] + inf["modes"]:
        if row["mode"] == "compiled":
            print(f"torch.compile first call ({'train' if 'parameters' in row else 'inference'}): "
                  f"{row['first_call_s']:.0f} s")
    a = rep["accuracy_f32_vs_f64"]
    print(f"float32 vs float64 (same weights, {a['n_crystals']} crystals): max rel. prediction diff "
          f"{a['max_rel_prediction_diff']:.1e}; 5 AdamW steps max rel. loss diff {a['max_rel_loss_diff']:.1e}")


if __name__ == "__main__":
    main()
