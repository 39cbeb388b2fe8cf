"""One-off repair (2026-11-25 19:40 UTC): the status.json of CuPd-B2 and Tl1-hcp, finished at 18:40,
was overwritten by its stale committed version while undoing a faulty `qe refilter` pass.  Rebuilt
here from what the runs left in data/qe/<id>/ (QE outputs' own WALL clocks, the CuPd record's
provenance, ph_freqs.json) and re-filtered with betenet's own filter."""
import json, re
from pathlib import Path
from betenet.config import get_profile
from betenet.qe.filters import quality_report
from betenet.qe.parsers import min_freq_off_gamma
from betenet.qe.summary import qe_cpu_seconds

NOTE = ("status.json rebuilt on 2026-11-25 19:45 UTC from this directory's QE outputs (WALL clocks), "
        "ph_freqs.json{extra}: the original was overwritten by a stale copy while undoing a faulty "
        "`qe refilter` pass (run of 18:13-18:40 UTC)")

def wall(d, step):
    return round(qe_cpu_seconds(d / f"{step}.out.gz")[1], 2)  # the final (program) clock line

def nk(d, step):
    t = (d / f"{step}.in").read_text()
    return [int(re.search(rf"nk{i}\s*=\s*(\d+)", t).group(1)) for i in (1, 2, 3)]

cfg = get_profile("default").qe
for mid, finished, matdyn_min, extra in [
    ("CuPd-B2", "2026-11-25T18:40:38+00:00", None, " and the record's provenance"),
    ("Tl1-hcp", "2026-11-25T18:40:14+00:00", -2.34, "; matdyn's lowest frequency (-2.34 meV) from `betenet qe status` printed at 18:57 UTC before the loss"),
]:
    d = Path("data/qe") / mid
    st = json.loads((d / "status.json").read_text())
    assert st["state"] == "running" and "ph_elph" not in st["steps"], mid
    ph = json.loads((d / "ph_freqs.json").read_text())
    steps = st["steps"]
    steps["ph_elph"] = {"done": True, "wall_s": wall(d, "ph_elph"), "n_q_irr": len(ph["q_cart_2pi_alat"]),
                        "min_freq_meV": min_freq_off_gamma(ph["q_cart_2pi_alat"], ph["freq_meV"])}
    steps["q2r"] = {"done": True, "wall_s": wall(d, "q2r")}
    if mid == "CuPd-B2":
        rec = json.loads(Path("data/records/CuPd-B2.json").read_text())["provenance"]
        matdyn_min = rec["quality"]["min_freq_matdyn_meV"]
        steps["matdyn"] = {"done": True, "wall_s": wall(d, "matdyn"), "nk": nk(d, "matdyn"), "min_freq_meV": matdyn_min}
        steps["ph_coarse"] = {"done": True, "wall_s": wall(d, "ph_coarse")}
        steps["q2r_coarse"] = {"done": True, "wall_s": wall(d, "q2r_coarse")}
        steps["matdyn_coarse"] = {"done": True, "wall_s": wall(d, "matdyn_coarse"), "nk": nk(d, "matdyn_coarse"),
                                  "dos_method": "tetrahedra"}
        steps["record"] = {"done": True, "wall_s": 0.0}
        for k in steps:
            if k in rec["timings_s"]:
                assert abs(steps[k]["wall_s"] - rec["timings_s"][k]) < 1.0, (k, steps[k]["wall_s"], rec["timings_s"][k])
    else:
        steps["matdyn"] = {"done": True, "wall_s": wall(d, "matdyn"), "nk": nk(d, "matdyn"), "min_freq_meV": matdyn_min}
    (d / "status.json").write_text(json.dumps(st, indent=1, sort_keys=True))
    q = quality_report(d, cfg, stage="phonons")
    st["quality"] = {**(st.get("quality") or {}), **q.checks, "status_reconstructed": NOTE.format(extra=extra)}
    st["state"] = "kept" if q.kept else "rejected"
    st["reason"], st["detail"] = (None, None) if q.kept else (q.reason, q.detail)
    st["finished_at"] = finished
    (d / "status.json").write_text(json.dumps(st, indent=1, sort_keys=True))
    print(mid, st["state"], st["reason"], st["detail"], round(sum(s["wall_s"] for s in steps.values()), 1))
