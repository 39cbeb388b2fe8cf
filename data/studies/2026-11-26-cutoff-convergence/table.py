"""Print this study's tables: the relaxed volume at 60/480 Ry against the dataset's (check-relax), and the
single-q frequencies at 60/480 Ry against the dataset's ph_freqs.json (check-q), each with the element's
pressure error from ``betenet pseudo check-cutoffs`` (data/pseudo/validation.json).

    .venv/bin/python data/studies/2026-11-26-cutoff-convergence/table.py
"""
import json
import re
from pathlib import Path

import numpy as np

from betenet.paths import PSEUDO_DIR, QE_RUNS_DIR

here = Path(__file__).resolve().parent
checks = json.loads((PSEUDO_DIR / "validation.json").read_text())["elements"]

print("| material | library cutoffs (Ry) | dP at library cutoffs (kbar) | V dataset (Å³/atom) | V at 60/480 Ry | Δa (%) |")
print("|---|---|---|---|---|---|")
for res in sorted(here.glob("relax/*/result.json")):
    r = json.loads(res.read_text())
    el = re.match(r"[A-Z][a-z]?", r["material_id"]).group(0)
    inp = (res.parent / "relax.in").read_text()
    c = checks[el].get("cutoff_check") or {}
    dataset = re.search(r"ecutwfc = ([\d.]+)", (QE_RUNS_DIR / r["material_id"] / "relax.in").read_text()).group(1)
    rho = re.search(r"ecutrho = ([\d.]+)", (QE_RUNS_DIR / r["material_id"] / "relax.in").read_text()).group(1)
    assert "ecutwfc = 60.0" in inp, res
    print(f"| {r['material_id']} | {float(dataset):g} / {float(rho):g} | {c.get('delta_P_kbar', float('nan')):+.1f} | "
          f"{r['dataset_volume_A3_per_atom']:.3f} | {r['volume_A3_per_atom']:.3f} | {r['delta_a_pct']:+.2f} |")

rows = sorted(here.glob("phonon/*/result.json"))
if rows:
    print()
    print("| material | q (2π/alat) | scf k rerun / dataset | dataset (ph_freqs.json): ω (meV) | rerun cutoffs (Ry) | rerun, same cell: ω (meV) | change (%) |")
    print("|---|---|---|---|---|---|---|")
for res in rows:
    r = json.loads(res.read_text())
    ph = json.loads((QE_RUNS_DIR / r["material_id"] / "ph_freqs.json").read_text())
    q = np.asarray(ph["q_cart_2pi_alat"])
    i = int(np.argmin(np.linalg.norm(q - np.asarray(r["q_cart_2pi_alat"]), axis=1)))
    old, new = np.asarray(ph["freq_meV"][i]), np.asarray(r["freq_meV"])
    qs = " ".join(f"{x:.3f}" for x in r["q_cart_2pi_alat"])
    k_data = json.loads((QE_RUNS_DIR / r["material_id"] / "grids.json").read_text())["k_scf"]
    ks = f"{r['k_scf'][0]}³ / {k_data[0]}³" + ("" if list(r["k_scf"]) == list(k_data) else " (not comparable)")
    print(f"| {r['material_id']} | ({qs}) | {ks} | {' '.join(f'{x:.2f}' for x in old)} | {r['ecutwfc_Ry']:g} / {r['ecutrho_Ry']:g} | "
          f"{' '.join(f'{x:.2f}' for x in new)} | "
          f"{' '.join(f'{100 * (b / a - 1):+.1f}' for a, b in zip(old, new))} |")
