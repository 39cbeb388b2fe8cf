"""Is an imaginary zone-boundary phonon of a PseudoDojo element real?  ph.x (DFPT) at the check's zone-boundary
point of the reference solid (experimental lattice, k spacing 0.5 Å^-1, ecutrho = 4 ecutwfc) for a list of
cutoffs, and for bcc/fcc references a frozen phonon (:mod:`betenet.qe.pseudo.frozen`, 2- or 4-atom cubic cell,
8^3-class k mesh at 0.25 Å^-1) at the lowest and highest of them.  One core, a few minutes per point for Na:

    OMP_NUM_THREADS=1 .venv/bin/python data/studies/pseudodojo-dfpt-vs-frozen/run.py Na 60 80 100 120 140
"""
import sys
import tempfile
from pathlib import Path

from betenet.qe import pseudodojo as D
from betenet.qe.pseudo.frozen import frozen_phonon


def dfpt(element: str, ecut: float, kspacing: float = 0.5) -> tuple[float, list[float]]:
    """(pressure in kbar, ph.x frequencies in meV) at the zone-boundary point at ``ecut`` / 4 ``ecut`` Ry: the
    phonon stage's own run (:func:`betenet.qe.pseudodojo._phonon_at`) at k spacing ``kspacing``."""
    with tempfile.TemporaryDirectory(prefix=f"dfpt-{element}-") as tmp:
        ph = D._phonon_at(element, ecut, D.DojoSettings(phonon_kspacing_invA=kspacing), Path(tmp))
    return ph["pressure_kbar"], ph["freqs_meV"]


if __name__ == "__main__":
    el, cuts = sys.argv[1], [float(x) for x in sys.argv[2:]]
    label = D.zone_boundary_q(el)[0]
    print(f"| {el} at {label}: ecutwfc / ecutrho (Ry) | pressure (kbar) | DFPT ω (meV) | frozen phonon ω (meV) |")
    print("|---|---|---|---|")
    for c in cuts:
        p, w = dfpt(el, c)
        fz = ""
        if c in (cuts[0], cuts[-1]):
            try:
                with tempfile.TemporaryDirectory(prefix=f"frozen-{el}-") as tmp:
                    fz = f"{frozen_phonon(el, c, tmp, lib=D._raw_library([el]))['omega_meV']:.1f}"
            except D.PseudoError as exc:
                fz = f"– ({exc})"
        print(f"| {c:g} / {4 * c:g} | {p:.2f} | {', '.join(f'{x:.2f}' for x in w)} | {fz} |", flush=True)
