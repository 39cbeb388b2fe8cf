"""The project's ld1.x pseudopotential set as data: one typed generation recipe per element (:data:`SPECS`).

The numbers are the published generation parameters of A. Dal Corso's *pslibrary* (US collection),
typed in here; no pslibrary file is copied.  Also the set's naming scheme and its one functional.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .errors import PseudoError

__all__ = ["FUNCTIONAL", "PSEUDO_SUFFIX", "LD1_FUNCTIONALS", "Channel", "GenerationSpec", "SPECS", "pseudo_filename"]

#: The single exchange-correlation functional of the project's set (ld1.x / UPF spelling).
FUNCTIONAL = "PBESOL"
#: File-name scheme of generated pseudopotentials: ``<El>.pbesol-betenet.UPF``.
PSEUDO_SUFFIX = ".pbesol-betenet"
#: The functionals a :class:`GenerationSpec` may name -> ld1.x's ``dft`` spelling.
LD1_FUNCTIONALS = {"pbesol": "PBESOL", "pbe": "PBE", "pz": "PZ"}


@dataclass(frozen=True)
class Channel:
    """One pseudisation card of ld1.x (radii in bohr, energies in Ry).

    ``energy_Ry = 0`` means "use the bound eigenvalue"; a non-zero value is the reference energy
    of an extra (unbound) projector.  ``occupation < 0`` marks a channel used only for the
    projectors/local potential, not occupied in the reference configuration.
    """

    label: str
    n: int
    l: int
    occupation: float
    energy_Ry: float
    rcut_au: float
    rcutus_au: float

    def card(self) -> str:
        return (
            f"{self.label:<3s}{self.n:3d}{self.l:3d}{self.occupation:7.2f}{self.energy_Ry:7.2f}"
            f"{self.rcut_au:7.2f}{self.rcutus_au:7.2f}  0.0"
        )


@dataclass(frozen=True)
class GenerationSpec:
    """Typed per-element ld1.x generation recipe.

    ``pseudotype``: 1 = norm-conserving single projector, 2 = norm-conserving (may have >1
    projector per l), 3 = ultrasoft.  ``tm`` selects Troullier-Martins (else RRKJ) pseudisation.
    ``lloc`` = -1/-2: local potential from a smoothed AE potential matched at ``rcloc_au``;
    ``lloc`` >= 0: that angular-momentum channel is local.  ``semicore`` lists the semicore states
    treated as valence.  ``source`` says where the numbers come from.
    """

    element: str
    configuration: str
    channels: tuple[Channel, ...]
    pseudotype: Literal[1, 2, 3] = 3
    functional: str = "pbesol"
    rel: int = 1
    lloc: int = -1
    rcloc_au: float | None = None
    nlcc: bool = True
    new_core_ps: bool = False
    rcore_au: float | None = None
    tm: bool = True
    which_augfun: str | None = "PSQ"
    rmatch_augfun_au: float | None = None
    semicore: tuple[str, ...] = ()
    source: str = "pslibrary (A. Dal Corso) US collection, published generation parameters"

    def __post_init__(self) -> None:
        if self.functional.lower() not in LD1_FUNCTIONALS:
            raise PseudoError(
                f"GenerationSpec({self.element}).functional={self.functional!r}: expected one of {sorted(LD1_FUNCTIONALS)}"
            )
        if self.pseudotype not in (1, 2, 3):
            raise PseudoError(f"GenerationSpec({self.element}).pseudotype={self.pseudotype!r}: expected 1, 2 or 3")
        if self.lloc < 0 and self.rcloc_au is None:
            raise PseudoError(f"GenerationSpec({self.element}): lloc={self.lloc} needs rcloc_au")
        if not self.channels:
            raise PseudoError(f"GenerationSpec({self.element}): no pseudisation channels")

    @property
    def kind(self) -> str:
        return {1: "NC", 2: "NC", 3: "US"}[self.pseudotype]

    @property
    def ld1_dft(self) -> str:
        """The functional in ld1.x's ``dft`` spelling."""
        return LD1_FUNCTIONALS[self.functional.lower()]


def _channels(text: str) -> tuple[Channel, ...]:
    out = []
    for line in text.strip().splitlines():
        lab, n, l, occ, e, rc, rcus = line.split()[:7]
        out.append(Channel(lab, int(n), int(l), float(occ), float(e), float(rc), float(rcus)))
    return tuple(out)


def _spec(el: str, config: str, cards: str, **kw: Any) -> GenerationSpec:
    return GenerationSpec(element=el, configuration=config, channels=_channels(cards), **kw)


_PSL = dict(which_augfun="PSQ", tm=True)

#: Generation recipes (pslibrary US parameters, scalar-relativistic, PBEsol).  Magnetic 3d metals
#: (Cr, Mn, Fe, Co, Ni) are left out on purpose: spin-polarised el-ph is outside this dataset.
SPECS: dict[str, GenerationSpec] = {
    s.element: s
    for s in [
        _spec("H", "1s1 2p-1", """
1S 1 0 1.00 0.00 0.90 1.00
1S 1 0 0.00 0.05 0.90 1.00
2P 2 1 -1.00 0.05 0.75 0.75""", lloc=1, nlcc=False, rmatch_augfun_au=0.8, **_PSL),
        _spec("Li", "1s2 2s1 2p0 3d-2", """
1S 1 0 2.00 0.00 0.70 1.70
2S 2 0 1.00 0.00 0.70 1.70
2P 2 1 0.00 0.30 2.00 2.20
2P 2 1 0.00 1.70 2.00 2.20""", lloc=-1, rcloc_au=1.2, nlcc=False, rmatch_augfun_au=0.8, semicore=("1s",), **_PSL),
        _spec("Be", "1s2 2s2.0 2p0.0 3d-2", """
2S 1 0 2.00 0.00 1.40 2.00
2S 2 0 0.00 6.50 1.40 2.00
2P 2 1 0.00 0.00 1.80 2.00
2P 2 1 0.00 6.30 1.80 2.00
3D 3 2 -2.00 0.30 1.40 1.40""", lloc=2, rcloc_au=1.2, new_core_ps=True, rcore_au=1.3, rmatch_augfun_au=1.3, **_PSL),
        _spec("B", "1s2.0 2s2.0 2p1.0 3d-2.0", """
2S 1 0 2.00 0.00 1.30 1.40
2S 1 0 0.00 0.05 1.30 1.40
2P 2 1 1.00 0.00 1.20 1.30
2P 2 1 0.00 1.50 0.80 1.30
3D 3 2 -2.00 0.15 1.20 1.20""", lloc=2, rmatch_augfun_au=1.1, **_PSL),
        _spec("C", "[He] 2s2 2p2 3d-2", """
2S 1 0 2.00 0.00 1.00 1.30
2S 1 0 0.00 0.05 1.00 1.30
2P 2 1 2.00 0.00 1.00 1.45
2P 2 1 0.00 0.05 1.00 1.45
3D 3 2 -2.00 0.10 1.10 1.10""", lloc=2, new_core_ps=True, rcore_au=0.8, rmatch_augfun_au=0.9, **_PSL),
        _spec("N", "[He] 2s2 2p3 3d-2", """
2S 1 0 2.00 0.00 1.00 1.30
2S 1 0 0.00 0.05 1.00 1.30
2P 2 1 3.00 0.00 1.00 1.45
2P 2 1 0.00 0.05 1.00 1.45
3D 3 2 -2.00 0.15 1.10 1.10""", lloc=2, new_core_ps=True, rcore_au=0.8, rmatch_augfun_au=1.0, **_PSL),
        _spec("O", "[He] 2s2 2p4 3d-2", """
2S 1 0 2.00 0.00 1.00 1.35
2S 1 0 0.00 0.05 1.00 1.35
2P 2 1 4.00 0.00 1.00 1.35
2P 2 1 0.00 0.05 1.00 1.35
3D 3 2 -2.00 0.15 1.30 1.30""", lloc=2, new_core_ps=True, rcore_au=0.5, rmatch_augfun_au=0.9, **_PSL),
        _spec("Na", "[Ne] 3s0.5 3p0 3d-2", """
2S 1 0 2.00 0.00 1.50 1.80
3S 2 0 0.50 0.00 1.50 1.80
2P 2 1 6.00 0.00 1.50 2.00
3P 3 1 0.00 0.00 1.50 2.00
3D 3 2 -2.00 0.30 2.00 2.00""", lloc=2, nlcc=False, rmatch_augfun_au=1.6, semicore=("2s", "2p"), **_PSL),
        _spec("Mg", "[Ne] 3s2.0 3p0 3d-2", """
3S 1 0 2.00 0.00 2.30 2.50
3S 2 0 0.00 6.50 1.40 2.50
3P 2 1 0.00 0.00 2.40 2.60
3P 3 1 0.00 6.30 1.40 2.60
3D 3 2 -2.00 0.30 2.30 2.30""", lloc=2, new_core_ps=True, rcore_au=2.1, rmatch_augfun_au=2.0, **_PSL),
        _spec("Al", "[Ne] 3s2 3p1 3d-2.0 4f-2.0", """
3S 1 0 2.00 0.00 2.00 2.10
3S 1 0 0.00 6.00 1.40 2.10
3P 2 1 1.00 0.00 2.00 2.10
3P 2 1 0.00 6.00 1.40 2.10
3D 3 2 -2.00 -0.30 1.90 1.90""", lloc=2, rmatch_augfun_au=1.8, **_PSL),
        _spec("Si", "[Ne] 3s2 3p2 3d-2.0 4f-2.0", """
3S 1 0 2.00 0.00 2.00 2.10
3S 1 0 0.00 6.00 1.40 2.10
3P 2 1 2.00 0.00 2.00 2.10
3P 2 1 0.00 6.00 1.40 2.10
3D 3 2 -2.00 -0.30 2.00 2.00""", lloc=2, new_core_ps=True, rcore_au=1.3, rmatch_augfun_au=1.8, **_PSL),
        _spec("P", "[Ne] 3s2 3p3 3d-2", """
3S 1 0 2.00 0.00 2.00 2.10
3S 1 0 0.00 6.00 2.00 2.10
3P 2 1 3.00 0.00 2.00 2.10
3P 2 1 0.00 6.00 2.00 2.10
3D 3 2 -2.00 -0.30 1.90 1.90""", lloc=2, new_core_ps=True, rcore_au=1.3, rmatch_augfun_au=1.9, **_PSL),
        _spec("K", "[Ar] 3d-2 4s1 4p0", """
3S 1 0 2.00 0.00 1.50 1.70
4S 2 0 1.00 0.00 1.00 1.70
4S 2 0 0.00 6.00 1.00 1.70
3P 2 1 6.00 0.00 1.50 1.80
4P 3 1 0.00 6.00 1.50 1.80
3D 3 2 -2.00 0.10 1.70 2.10
3D 3 2 -2.00 1.30 1.70 2.10""", lloc=-1, rcloc_au=2.2, new_core_ps=True, rcore_au=0.9, rmatch_augfun_au=1.0,
              semicore=("3s", "3p"), **_PSL),
        _spec("Ca", "[Ar] 3d0.0 4s2.0 4p0", """
3S 1 0 2.00 0.00 1.50 1.70
4S 2 0 2.00 0.00 1.50 1.70
3P 2 1 6.00 0.00 1.50 1.80
4P 3 1 0.00 3.30 2.80 3.00
3D 3 2 -2.00 0.10 2.00 2.30
3D 3 2 -2.00 0.30 2.00 2.30""", lloc=-1, rcloc_au=2.4, new_core_ps=True, rcore_au=0.8, rmatch_augfun_au=1.5,
              semicore=("3s", "3p"), **_PSL),
        _spec("Sc", "[Ar] 3d1.0 4s2 4p0", """
3S 1 0 2.00 0.00 1.10 1.30
4S 2 0 2.00 0.00 1.10 1.30
3P 2 1 6.00 0.00 1.40 1.50
4P 3 1 0.00 3.30 0.90 1.80
3D 3 2 1.00 0.00 1.40 1.60
3D 3 2 -2.00 0.30 1.40 1.60""", lloc=-1, rcloc_au=2.0, new_core_ps=True, rcore_au=0.8, rmatch_augfun_au=0.88,
              semicore=("3s", "3p"), **_PSL),
        _spec("Ti", "[Ar] 3d2.0 4s2 4p0", """
3S 1 0 2.00 0.00 1.10 1.50
4S 2 0 2.00 0.00 1.10 1.50
3P 2 1 6.00 0.00 1.40 1.50
4P 3 1 0.00 3.30 0.90 1.80
3D 3 2 2.00 0.00 1.40 1.70
3D 3 2 -2.00 0.30 1.40 1.70""", lloc=-1, rcloc_au=2.0, rcore_au=1.5, rmatch_augfun_au=0.8, semicore=("3s", "3p"), **_PSL),
        _spec("V", "[Ar] 3d3.0 4s2 4p0", """
3S 1 0 2.00 0.00 1.10 1.50
4S 2 0 2.00 0.00 1.10 1.50
3P 2 1 6.00 0.00 1.40 1.50
4P 3 1 0.00 3.30 0.90 1.80
3D 3 2 3.00 0.00 1.40 1.70
3D 3 2 -2.00 0.30 1.40 1.70""", lloc=-1, rcloc_au=2.0, new_core_ps=True, rcore_au=0.7, rmatch_augfun_au=0.7,
              semicore=("3s", "3p"), **_PSL),
        _spec("Cu", "[Ar] 3d9.5 4s1.5 4p0.0", """
4S 1 0 1.50 0.00 2.20 2.30
4S 1 0 0.00 6.10 1.40 2.30
4P 2 1 0.00 0.00 2.20 2.30
4P 2 1 0.00 6.30 1.40 2.30
3D 3 2 9.50 0.00 1.50 1.90
3D 3 2 0.00 2.30 1.50 1.90""", lloc=-1, rcloc_au=1.9, rcore_au=0.7, rmatch_augfun_au=1.7, **_PSL),
        _spec("Zn", "[Ar] 3d10. 4s2. 4p0.0", """
4S 1 0 2.00 0.00 2.10 2.20
4S 1 0 0.00 6.10 1.40 2.20
4P 2 1 0.00 0.00 2.20 2.30
4P 2 1 0.00 6.30 1.40 2.30
3D 3 2 10.00 0.00 1.50 1.80
3D 3 2 0.00 -0.60 1.50 1.80""", lloc=-1, rcloc_au=1.7, rcore_au=0.7, rmatch_augfun_au=1.3, **_PSL),
        _spec("Ga", "[Ar] 3d10.0 4s2.0 4p1.0", """
4S 1 0 2.00 0.00 1.80 2.00
4S 1 0 0.00 3.10 1.80 2.00
4P 2 1 1.00 0.00 2.30 2.50
4P 2 1 0.00 6.30 2.30 2.50
3D 3 2 10.00 0.00 1.60 1.90
3D 3 2 0.00 1.30 1.60 1.90""", lloc=-1, rcloc_au=2.0, new_core_ps=True, rcore_au=1.0, rmatch_augfun_au=1.5,
              semicore=("3d",), **_PSL),
        _spec("Ge", "[Ar] 3d10.0 4s2.0 4p2.0", """
4S 1 0 2.00 0.00 1.80 2.10
4S 1 0 0.00 3.10 1.40 2.10
4P 2 1 2.00 0.00 2.10 2.20
4P 2 1 0.00 6.30 1.40 2.20
3D 3 2 10.00 0.00 1.50 1.80
3D 3 2 0.00 -0.50 1.50 1.80""", lloc=-1, rcloc_au=2.2, new_core_ps=True, rcore_au=0.9, rmatch_augfun_au=1.3,
              semicore=("3d",), **_PSL),
        _spec("As", "[Ar] 3d10.0 4s2.0 4p3.0 4d-2.0", """
4S 1 0 2.00 0.00 1.70 1.80
4S 1 0 0.00 0.40 1.70 1.80
4P 2 1 3.00 0.00 1.90 2.00
4P 2 1 0.00 0.40 1.90 2.00
4D 3 2 -2.00 0.50 2.00 2.00""", lloc=2, new_core_ps=True, rcore_au=1.6, rmatch_augfun_au=1.6, **_PSL),
        _spec("Sr", "[Kr] 4d0.0 5s2 5p0", """
4S 1 0 2.00 0.00 1.50 1.70
5S 2 0 2.00 0.00 1.10 1.70
4P 2 1 6.00 0.00 1.50 1.80
5P 3 1 0.00 0.00 1.50 1.80
4D 3 2 -2.00 0.10 2.00 2.10
4D 3 2 -2.00 0.30 2.00 2.10""", lloc=-1, rcloc_au=2.3, new_core_ps=True, rcore_au=1.2, rmatch_augfun_au=1.0,
              semicore=("4s", "4p"), **_PSL),
        _spec("Y", "[Kr] 4d1.0 5s2 5p0", """
4S 1 0 2.00 0.00 1.50 1.60
5S 2 0 2.00 0.00 1.10 1.60
4P 2 1 6.00 0.00 1.50 1.70
5P 3 1 0.00 0.00 1.50 1.70
4D 3 2 1.00 0.00 1.70 1.90
4D 3 2 -2.00 0.30 1.70 1.90""", lloc=-1, rcloc_au=2.4, rcore_au=0.9, rmatch_augfun_au=1.2, semicore=("4s", "4p"), **_PSL),
        _spec("Zr", "[Kr] 4d2.0 5s2 5p0", """
4S 1 0 2.00 0.00 1.50 1.60
5S 2 0 2.00 0.00 1.10 1.60
4P 2 1 6.00 0.00 1.50 1.70
5P 3 1 0.00 0.00 1.30 1.70
4D 3 2 2.00 0.00 1.70 1.90
4D 3 2 -2.00 0.30 1.70 1.90""", lloc=-1, rcloc_au=2.4, new_core_ps=True, rcore_au=1.1, rmatch_augfun_au=1.1,
              semicore=("4s", "4p"), **_PSL),
        _spec("Nb", "[Kr] 4d4.0 5s1 5p0", """
4S 1 0 2.00 0.00 1.30 1.40
5S 2 0 1.00 0.00 1.10 1.40
4P 2 1 6.00 0.00 1.50 1.70
5P 3 1 0.00 -0.50 1.30 1.70
4D 3 2 4.00 0.00 1.60 1.90
4D 3 2 -2.00 6.30 1.00 1.90""", lloc=-1, rcloc_au=2.2, new_core_ps=True, rcore_au=1.0, rmatch_augfun_au=1.0,
              semicore=("4s", "4p"), **_PSL),
        _spec("Mo", "[Kr] 4d5.0 5s1 5p0", """
4S 1 0 2.00 0.00 1.30 1.70
5S 2 0 1.00 0.00 1.00 1.70
4P 2 1 6.00 0.00 1.40 1.70
5P 3 1 0.00 0.00 1.20 1.70
4D 3 2 5.00 0.00 1.40 1.90
4D 3 2 -2.00 6.30 1.00 1.90""", lloc=-1, rcloc_au=2.4, new_core_ps=True, rcore_au=1.0, rmatch_augfun_au=0.95,
              semicore=("4s", "4p"), **_PSL),
        _spec("Ru", "[Kr] 4d6.0 5s2.0 5p0.0", """
4S 1 0 2.00 0.00 1.30 1.70
5S 2 0 2.00 0.00 0.90 1.70
4P 2 1 6.00 0.00 1.50 1.80
5P 3 1 0.00 0.00 1.10 1.90
4D 3 2 6.00 0.00 1.70 1.90
4D 3 2 -2.00 0.30 1.70 1.90""", lloc=-1, rcloc_au=2.4, new_core_ps=True, rcore_au=0.9, rmatch_augfun_au=0.9,
              semicore=("4s", "4p"), **_PSL),
        _spec("Rh", "[Kr] 4d7. 5s2.0 5p0.0", """
4S 1 0 2.00 0.00 1.30 1.70
5S 2 0 2.00 0.00 1.10 1.70
5S 2 0 0.00 6.00 1.10 1.70
4P 2 1 6.00 0.00 1.50 1.70
5P 3 1 0.00 0.00 1.10 2.10
4D 3 2 7.00 0.00 1.70 1.90
4D 3 2 -2.00 0.30 1.00 1.90""", lloc=-1, rcloc_au=2.3, new_core_ps=True, rcore_au=0.9, rmatch_augfun_au=0.9,
              semicore=("4s", "4p"), **_PSL),
        _spec("Pd", "[Kr] 4d9.5 5s0.5 5p0.0", """
5S 1 0 0.50 0.00 2.10 2.30
5S 1 0 0.00 2.00 2.10 2.30
5P 2 1 0.00 0.00 2.20 2.60
5P 2 1 0.00 6.30 2.20 2.60
4D 3 2 9.50 0.00 1.70 1.90
4D 3 2 0.00 4.30 1.70 1.90""", lloc=-1, rcloc_au=2.2, rmatch_augfun_au=1.75, **_PSL),
        _spec("Ag", "[Kr] 4d9.5 5s1.5 5p0.0", """
5S 1 0 1.50 0.00 2.20 2.30
5S 1 0 0.00 6.50 2.20 2.30
5P 2 1 0.00 0.00 2.20 2.30
5P 2 1 0.00 6.00 2.20 2.30
4D 3 2 9.50 0.00 1.70 1.90
4D 3 2 0.00 4.30 1.70 1.90""", lloc=-1, rcloc_au=2.4, rmatch_augfun_au=1.6, **_PSL),
        _spec("Cd", "[Kr] 4d9.5 5s2.0 5p0.5", """
5S 1 0 2.00 0.00 2.00 2.10
5S 1 0 0.00 2.30 1.70 2.10
5P 2 1 0.50 0.00 2.10 2.30
5P 2 1 0.00 8.00 1.80 2.30
4D 3 2 9.50 0.00 1.80 2.20
4D 3 2 0.00 4.30 1.80 2.20""", lloc=-1, rcloc_au=1.9, new_core_ps=True, rcore_au=1.3, rmatch_augfun_au=1.6, **_PSL),
        _spec("In", "[Kr] 4d10.0 5s2.0 5p1.0", """
5S 1 0 2.00 0.00 1.80 2.00
5S 1 0 0.00 3.10 1.80 2.00
5P 2 1 1.00 0.00 2.30 2.50
5P 2 1 0.00 6.30 2.30 2.50
4D 3 2 10.00 0.00 1.60 2.00
4D 3 2 0.00 -0.60 1.60 2.00""", lloc=-1, rcloc_au=1.9, new_core_ps=True, rcore_au=1.2, rmatch_augfun_au=1.9,
              semicore=("4d",), **_PSL),
        _spec("Sn", "[Kr] 4d10.0 5s2.0 5p2.0", """
5S 1 0 2.00 0.00 2.00 2.20
5S 1 0 0.00 3.10 2.00 2.20
5P 2 1 2.00 0.00 2.30 2.50
5P 2 1 0.00 6.30 2.30 2.50
4D 3 2 10.00 0.00 1.70 2.40
4D 3 2 0.00 4.30 1.70 2.40""", lloc=-1, rcloc_au=2.3, rcore_au=1.2, rmatch_augfun_au=1.8, semicore=("4d",), **_PSL),
        _spec("Sb", "[Kr] 4d10.0 5s2.0 5p3.0 5d-2.0", """
5S 1 0 2.00 0.00 1.90 2.10
5S 1 0 0.00 6.50 1.90 2.10
5P 2 1 3.00 0.00 2.40 2.50
5P 2 1 0.00 5.50 2.40 2.50
4D 3 2 10.00 0.00 1.60 1.90
4D 3 2 0.00 0.30 1.60 1.90""", lloc=-1, rcloc_au=2.2, rmatch_augfun_au=1.7, semicore=("4d",), **_PSL),
        _spec("Ba", "[Xe] 5d0.0 6s2 6p0", """
5S 1 0 2.00 0.00 1.50 1.80
6S 2 0 2.00 0.00 1.50 1.80
5P 2 1 6.00 0.00 1.50 1.70
6P 3 1 0.00 0.00 1.50 1.70
5D 3 2 -2.00 0.10 2.00 2.30
5D 3 2 -2.00 0.30 2.00 2.30""", lloc=-1, rcloc_au=2.6, rcore_au=1.5, rmatch_augfun_au=1.5, semicore=("5s", "5p"), **_PSL),
        _spec("Hf", "[Xe] 4f14 5d2.0 6s2 6p0", """
5S 1 0 2.00 0.00 1.50 1.60
6S 2 0 2.00 0.00 1.10 1.60
5P 2 1 6.00 0.00 1.50 1.60
6P 3 1 0.00 0.00 1.30 1.60
5D 3 2 2.00 0.00 1.60 1.70
5D 3 2 -2.00 0.30 1.60 1.70""", lloc=-1, rcloc_au=2.5, rcore_au=1.2, rmatch_augfun_au=1.1, semicore=("5s", "5p"), **_PSL),
        _spec("Ta", "[Xe] 4f14 5d3.0 6s2 6p0", """
5S 1 0 2.00 0.00 1.40 1.60
6S 2 0 2.00 0.00 1.10 1.60
5P 2 1 6.00 0.00 1.50 1.60
6P 3 1 0.00 0.00 1.30 1.60
5D 3 2 3.00 0.00 1.70 1.90
5D 3 2 -2.00 0.30 1.70 1.90""", lloc=-1, rcloc_au=2.3, new_core_ps=True, rcore_au=1.1, rmatch_augfun_au=1.0,
              semicore=("5s", "5p"), **_PSL),
        _spec("W", "[Xe] 4f14 5d4.0 6s2 6p0", """
5S 1 0 2.00 0.00 1.40 1.50
6S 2 0 2.00 0.00 1.10 1.50
5P 2 1 6.00 0.00 1.50 1.70
6P 3 1 0.00 0.00 1.30 1.70
5D 3 2 4.00 0.00 1.70 1.90
5D 3 2 -2.00 0.30 1.70 1.90""", lloc=-1, rcloc_au=2.4, new_core_ps=True, rcore_au=1.2, rmatch_augfun_au=1.03,
              semicore=("5s", "5p"), **_PSL),
        _spec("Re", "[Xe] 4f14 5d5.0 6s2 6p0", """
5S 1 0 2.00 0.00 1.30 1.60
6S 2 0 2.00 0.00 0.90 1.60
5P 2 1 6.00 0.00 1.50 1.70
6P 3 1 0.00 0.00 1.10 1.70
5D 3 2 5.00 0.00 1.70 1.90
5D 3 2 -2.00 0.30 1.70 1.90""", lloc=-1, rcloc_au=2.3, new_core_ps=True, rcore_au=1.1, rmatch_augfun_au=1.0,
              semicore=("5s", "5p"), **_PSL),
        _spec("Os", "[Xe] 4f14.0 5d6.0 6s2.0 6p0.0", """
6P 2 1 0.00 0.00 2.60 2.60
5D 3 2 6.00 0.00 1.90 2.30
5D 3 2 0.00 -0.20 1.90 2.30
6S 1 0 2.00 0.00 2.50 2.50""", lloc=0, rcore_au=0.9, tm=False, which_augfun=None),
        _spec("Ir", "[Xe] 4f14.0 5d7.0 6s2.0 6p0.0", """
6S 1 0 2.00 0.00 2.20 2.50
6S 1 0 0.00 0.40 2.20 2.50
6S 1 0 0.00 6.40 2.20 2.50
6P 2 1 0.00 0.00 2.40 2.50
6P 2 1 0.00 6.40 2.40 2.50
5D 3 2 7.00 0.00 1.80 2.10
5D 3 2 0.00 4.30 1.80 2.10""", lloc=-1, rcloc_au=2.3, new_core_ps=True, rcore_au=1.6, rmatch_augfun_au=1.9, **_PSL),
        _spec("Pt", "[Xe] 4f14 5d9.5 6s0.5 6p0.0", """
6S 1 0 0.50 0.00 2.00 2.40
6S 1 0 0.00 2.50 1.60 2.40
6S 1 0 0.00 6.50 1.60 2.40
6P 2 1 0.00 0.00 2.40 2.50
6P 2 1 0.00 6.50 1.80 2.50
5D 3 2 9.50 0.00 1.80 2.10
5D 3 2 0.00 4.30 1.30 2.10""", lloc=-1, rcloc_au=2.4, new_core_ps=True, rcore_au=1.6, rmatch_augfun_au=1.9, **_PSL),
        _spec("Au", "[Xe] 4f14 5d10.0 6s1.0 6p0.0", """
6S 1 0 1.00 0.00 1.90 2.30
6S 1 0 0.00 2.30 1.70 2.30
6S 1 0 0.00 6.30 1.70 2.30
6P 2 1 0.00 0.00 2.30 2.40
6P 2 1 0.00 6.50 1.80 2.40
5D 3 2 10.00 0.00 1.80 2.10
5D 3 2 0.00 4.30 1.10 2.10""", lloc=-1, rcloc_au=2.4, new_core_ps=True, rcore_au=1.6, rmatch_augfun_au=1.9, **_PSL),
        _spec("Tl", "[Xe] 4f14.0 5d10.0 6s2.0 6p1.0", """
6S 1 0 2.00 0.00 1.90 2.00
6S 1 0 0.00 5.50 1.60 2.00
6P 2 1 1.00 0.00 2.40 2.60
6P 2 1 0.00 6.50 1.80 2.60
5D 3 2 10.00 0.00 1.60 2.00
5D 3 2 0.00 -0.60 1.60 2.00""", lloc=-1, rcloc_au=2.2, new_core_ps=True, rcore_au=1.5, rmatch_augfun_au=1.86,
              semicore=("5d",), **_PSL),
        _spec("Pb", "[Xe] 4f14 5d10 6s2 6p2", """
6S 1 0 2.00 0.00 2.00 2.20
6S 1 0 0.00 5.00 2.00 2.20
6P 2 1 2.00 0.00 2.40 2.60
6P 2 1 0.00 6.50 2.40 2.60
5D 3 2 10.00 0.00 1.60 2.10
5D 3 2 0.00 -0.90 1.60 2.10""", lloc=-1, rcloc_au=2.2, new_core_ps=True, rcore_au=1.4, rmatch_augfun_au=1.75,
              semicore=("5d",), **_PSL),
        _spec("Bi", "[Xe] 4f14.0 5d10.0 6s2.0 6p3.0 6d-2.0", """
6S 1 0 2.00 0.00 1.70 1.80
6S 1 0 0.00 5.40 1.70 1.80
6P 2 1 3.00 0.00 2.40 2.60
6P 2 1 0.00 0.80 1.70 2.60
6P 2 1 0.00 6.50 1.70 2.60
5D 3 2 10.00 0.00 1.60 2.00
5D 3 2 0.00 -1.30 1.60 2.00""", lloc=-1, rcloc_au=2.2, new_core_ps=True, rcore_au=1.4, rmatch_augfun_au=1.7,
              semicore=("5d",), **_PSL),
    ]
}


def pseudo_filename(element: str) -> str:
    """``<El>.pbesol-betenet.UPF`` — the project's naming scheme."""
    return f"{element}{PSEUDO_SUFFIX}.UPF"
