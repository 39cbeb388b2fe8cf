"""Print the frequencies (meV) of every single-q ph.x run of this study (parsed with betenet's own parser).

    .venv/bin/python data/studies/2026-11-25-scf-k-convergence/table.py
"""
import gzip
import re
import tempfile
from pathlib import Path

from betenet.qe.parsers import parse_ph_output

here = Path(__file__).resolve().parent
for out in sorted(here.glob("*/*/ph.out.gz")):
    scf = (out.parent / "scf.in").read_text()
    k = re.search(r"K_POINTS automatic\s*\n\s*(\d+)", scf).group(1)
    ecut = re.search(r"ecutwfc = ([\d.]+)", scf).group(1)
    degauss = re.search(r"degauss = ([\d.]+)", scf).group(1)
    with tempfile.NamedTemporaryFile("w", suffix=".out") as tmp:
        tmp.write(gzip.open(out, "rt").read())
        tmp.flush()
        ph = parse_ph_output(tmp.name)
    q = " ".join(f"{x:.3f}" for x in ph.q_cart_2pi_alat[-1])
    freqs = " ".join(f"{f:7.2f}" for f in ph.freq_meV[-1])
    print(f"{out.parent.parent.name:8s} {out.parent.name:16s} k={k:>2s}^3 ecutwfc={ecut:>4s} degauss={degauss:>4s}  q=({q})  {freqs} meV")
