"""Screening structure files with a saved ensemble (``betenet screen``, :mod:`betenet.cli.screen`): reading
CIF/POSCAR files, guards against unphysical structures, the training domain of an ensemble, the calibration
of its spread on out-of-bag errors, and the ranked table (moved here from :mod:`betenet.screening`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from betenet.constants import MU_STAR_DEFAULT
from betenet.ensemble import predict_ensemble
from betenet.physics import tc_allen_dynes_from_a2f
from betenet.records import load_record
from betenet.screening import ensemble_tc

__all__ = [
    "read_structures", "SCREEN_VOLUME_PER_ATOM_A3", "SCREEN_MAX_ATOMS", "SCREEN_MAX_EDGES",
    "SCREEN_MIN_DISTANCE_FRACTION", "DOMAIN_VOLUME_FACTOR", "DOMAIN_DISTANCE_FACTOR", "DOMAIN_ATOMS_FACTOR",
    "structure_descriptors", "guard_structure", "TrainingDomain", "training_domain", "SpreadCalibration",
    "oob_spread_calibration", "screen_structures",
]


#: Volume per atom (Å³): below the lower bound atoms overlap (the densest solids have ~5 Å³); above the
#: upper one the cell is mostly vacuum (bulk Cs, the largest elemental volume, has ~117 Å³).
SCREEN_VOLUME_PER_ATOM_A3 = (2.0, 200.0)

_STRUCTURE_GLOBS = ("*.cif", "*.CIF", "*.vasp", "POSCAR*", "CONTCAR*", "*.poscar")


def read_structures(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, Any]], list[tuple[Path, str]]]:
    """Read CIF/POSCAR files (directories are searched for ``*.cif``, ``*.vasp``, ``POSCAR*``, ``CONTCAR*``).

    Returns ``(structures, failures)``: ``[(path, pymatgen Structure)]`` and ``[(path, reason)]``.
    Never raises for a bad file.
    """
    from pymatgen.core import Structure

    files: list[Path] = []
    failures: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted({f for g in _STRUCTURE_GLOBS for f in p.glob(g) if f.is_file()})
            if not found:
                failures.append((p, "directory contains no *.cif / *.vasp / POSCAR* / CONTCAR* files"))
            files += found
        elif p.exists():
            files.append(p)
        else:
            failures.append((p, "no such file or directory"))
    out = []
    for f in files:
        try:
            with warnings.catch_warnings():  # pymatgen's CIF warnings; problems are reported per file below
                warnings.simplefilter("ignore")
                st = Structure.from_file(str(f))
        except Exception as exc:  # pymatgen raises many exception types for malformed files
            failures.append((f, f"cannot read a structure ({type(exc).__name__}: {str(exc)[:200]})"))
            continue
        if len(st) == 0:
            failures.append((f, "structure has no sites"))
            continue
        if not st.is_ordered:
            failures.append((f, "disordered structure (partial occupancies) is not supported"))
            continue
        out.append((f, st))
    return out, failures


#: Guards of ``betenet screen``: a structure outside them is refused with a message naming the file.
#: At most this many atoms per cell (the models were trained on cells of a few atoms) ...
SCREEN_MAX_ATOMS = 256


#: ... and this many graph edges within the model's r_max (memory bound: ~1 kB per edge and member).
SCREEN_MAX_EDGES = 200_000


#: Two atoms closer than this fraction of the sum of their atomic radii overlap (a real bond is ≳ 0.8).
SCREEN_MIN_DISTANCE_FRACTION = 0.6


#: Applicability domain: a structure is flagged when its volume per atom lies outside the training range
#: widened by this factor, its nearest-neighbour distance ratio outside the range widened by
#: ``DOMAIN_DISTANCE_FACTOR``, its cell has more than ``DOMAIN_ATOMS_FACTOR`` × the largest training
#: cell's atoms, it contains an element absent from the training set, or an atom has no neighbour within
#: the model's r_max while every training structure had neighbours (no message passing for that atom).
DOMAIN_VOLUME_FACTOR = 1.25


DOMAIN_DISTANCE_FACTOR = 1.15


DOMAIN_ATOMS_FACTOR = 2


def _radius_A(symbol: str) -> float:
    from pymatgen.core import Element

    r = Element(symbol).atomic_radius
    return float(r) if r is not None else 1.5


def structure_descriptors(structure: Any, r_max_A: float = 4.0) -> dict[str, Any]:
    """``n_atoms``, ``volume_per_atom_A3``, ``elements``, and — only when the density is within
    :data:`SCREEN_VOLUME_PER_ATOM_A3` (else the neighbour search could explode or find nothing) —
    ``n_edges`` within ``r_max_A``, ``isolated_sites`` (no neighbour within r_max), ``d_min_A`` and
    ``d_min_ratio`` (smallest distance over the sum of the two atomic radii, periodic images included)."""
    n = len(structure)
    vpa = float(structure.volume) / n if n else float("nan")
    out: dict[str, Any] = {"n_atoms": n, "volume_per_atom_A3": vpa,
                           "elements": sorted({el.symbol for el in structure.composition.elements})}
    lo, hi = SCREEN_VOLUME_PER_ATOM_A3
    if not (n and np.isfinite(vpa) and lo <= vpa <= hi):
        return out
    radii = np.array([_radius_A(site.specie.symbol) for site in structure])
    centre, neigh, _, dist = structure.get_neighbor_list(max(float(r_max_A), 1e-3))
    out["n_edges"] = int(len(centre))
    out["isolated_sites"] = int(n - len(np.unique(centre)))
    # nearest neighbours: search until every site has one (cells larger than r_max need a wider search)
    r = max(float(r_max_A), 2.0 * radii.max())
    while True:
        c, nb, _, d = structure.get_neighbor_list(r)
        if len(c) or r > 4.0 * np.cbrt(vpa) + 10.0:
            break
        r *= 2.0
    if len(c):
        ratio = d / (radii[c] + radii[nb])
        k = int(np.argmin(ratio))
        out.update(d_min_A=float(d.min()), d_min_ratio=float(ratio[k]), d_min_pair=(int(c[k]), int(nb[k])))
    return out


def guard_structure(structure: Any, r_max_A: float = 4.0) -> str | None:
    """Why ``betenet screen`` refuses a structure (``None``: accepted).  See the ``SCREEN_*`` constants."""
    n = len(structure)
    if n > SCREEN_MAX_ATOMS:
        return f"{n} atoms in the cell; at most {SCREEN_MAX_ATOMS} are screened (memory bound)"
    d = structure_descriptors(structure, r_max_A)
    vpa, (lo, hi) = d["volume_per_atom_A3"], SCREEN_VOLUME_PER_ATOM_A3
    if not np.isfinite(vpa) or vpa < lo:
        return f"volume per atom {vpa:.3g} Å^3 < {lo:g} Å^3: atoms overlap (cell too small or wrong units?)"
    if vpa > hi:
        return f"volume per atom {vpa:.3g} Å^3 > {hi:g} Å^3: mostly vacuum (a molecule or slab in a box), not a bulk crystal"
    if d["n_edges"] > SCREEN_MAX_EDGES:
        return f"{d['n_edges']} graph edges within r_max {r_max_A:g} Å; at most {SCREEN_MAX_EDGES} (memory bound)"
    if "d_min_ratio" in d and d["d_min_ratio"] < SCREEN_MIN_DISTANCE_FRACTION:
        i, j = d["d_min_pair"]
        return (f"atoms {i} ({structure[i].specie}) and {j} ({structure[j].specie}) are {d['d_min_A']:.3f} Å apart, "
                f"{d['d_min_ratio']:.2f} of the sum of their atomic radii (< {SCREEN_MIN_DISTANCE_FRACTION}): overlapping atoms")
    return None


@dataclass(frozen=True)
class TrainingDomain:
    """What the ensemble was trained on, for the applicability-domain flag of ``betenet screen``."""

    elements: frozenset
    volume_per_atom_A3: tuple[float, float]
    d_min_ratio: tuple[float, float]
    max_atoms: int
    n_materials: int
    isolated_in_training: bool = False  #: some training structure had an atom without a neighbour within r_max

    @classmethod
    def from_structures(cls, structures: Sequence[Any], r_max_A: float = 4.0) -> "TrainingDomain":
        if not structures:
            raise ValueError("no training structures")
        ds = [structure_descriptors(s, r_max_A) for s in structures]
        v = [d["volume_per_atom_A3"] for d in ds]
        r = [d["d_min_ratio"] for d in ds if "d_min_ratio" in d]
        return cls(frozenset(e for d in ds for e in d["elements"]), (min(v), max(v)),
                   (min(r), max(r)) if r else (0.0, float("inf")), max(d["n_atoms"] for d in ds), len(ds),
                   any(d.get("isolated_sites") for d in ds))

    def flags(self, structure: Any, r_max_A: float = 4.0) -> list[str]:
        """Reasons the structure is outside the training domain (empty: inside)."""
        d = structure_descriptors(structure, r_max_A)
        out = []
        unknown = sorted(set(d["elements"]) - self.elements)
        if unknown:
            out.append(f"element(s) {' '.join(unknown)} not in the {self.n_materials} training materials")
        v, (vlo, vhi) = d["volume_per_atom_A3"], self.volume_per_atom_A3
        if not (vlo / DOMAIN_VOLUME_FACTOR <= v <= vhi * DOMAIN_VOLUME_FACTOR):
            out.append(f"volume per atom {v:.1f} Å^3 outside the training range {vlo:.1f}–{vhi:.1f} Å^3")
        rlo, rhi = self.d_min_ratio
        if "d_min_ratio" in d and not (rlo / DOMAIN_DISTANCE_FACTOR <= d["d_min_ratio"] <= rhi * DOMAIN_DISTANCE_FACTOR):
            out.append(f"nearest-neighbour distance {d['d_min_ratio']:.2f}× the atomic radii, training {rlo:.2f}–{rhi:.2f}×")
        if d["n_atoms"] > DOMAIN_ATOMS_FACTOR * self.max_atoms:
            out.append(f"{d['n_atoms']} atoms per cell, training cells have at most {self.max_atoms}")
        if d.get("isolated_sites") and not self.isolated_in_training:
            out.append(f"{d['isolated_sites']} atom(s) without a neighbour within r_max {r_max_A:g} Å")
        return out


def training_domain(members: Sequence[Any], records_dir: Path | str) -> TrainingDomain:
    """The :class:`TrainingDomain` of an ensemble: the structures of every training material of its members
    (bootstrap sample ∪ out-of-bag), read from ``records_dir``.  ``FileNotFoundError`` naming the first
    missing record if the directory does not hold them."""
    ids = sorted({m for mem in members for key in ("sample_ids", "oob_ids") for m in mem.metadata["bootstrap"][key]})
    d = Path(records_dir)
    missing = [m for m in ids if not (d / f"{m}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{d / (missing[0] + '.json')}: training record not found ({len(missing)} of {len(ids)} "
                                "missing); pass the records the ensemble was trained on with --records")
    return TrainingDomain.from_structures([load_record(d / f"{m}.json").structure for m in ids],
                                          float(getattr(members[0], "r_max_A", 4.0)))


@dataclass(frozen=True)
class SpreadCalibration:
    """How well the ensemble's T_c spread covers its out-of-bag errors, and the factor that calibrates it.

    On every training material left out of ≥ 2 members' bootstraps: the mean T_c of those members'
    predictions, their std σ, and the error against the material's target.  ``scale`` makes 68.3 % of
    |error| fall within ``scale``·σ (the coverage of ±1σ for a normal error); ``coverage_*`` are the
    fractions of materials whose |error| ≤ kσ before (``raw``) and after (``cal``) scaling."""

    scale: float
    n: int
    coverage_1sigma_raw: float
    coverage_2sigma_raw: float
    coverage_1sigma_cal: float
    coverage_2sigma_cal: float

    def describe(self) -> str:
        return (f"spread calibration on {self.n} out-of-bag materials: raw ±1σ/±2σ cover "
                f"{100 * self.coverage_1sigma_raw:.0f}/{100 * self.coverage_2sigma_raw:.0f} % of T_c errors "
                f"(normal: 68/95 %); σ scaled by {self.scale:.2f} -> "
                f"{100 * self.coverage_1sigma_cal:.0f}/{100 * self.coverage_2sigma_cal:.0f} %")


def oob_spread_calibration(member_dirs: Sequence[Path | str], *, mu_star: float = MU_STAR_DEFAULT,
                           min_members: int = 2) -> SpreadCalibration | None:
    """:class:`SpreadCalibration` from the members' ``oob.npz`` (their predictions of the materials left out
    of their bootstrap, with the targets); ``None`` when fewer than 3 materials are out of bag in
    ≥ ``min_members`` members (a small ensemble: the spread cannot be calibrated)."""
    preds: dict[str, list[float]] = {}
    truth: dict[str, float] = {}
    for d in member_dirs:
        with np.load(Path(d) / "oob.npz") as z:
            ids = [str(x) for x in z["ids"]]
            if not ids:
                continue
            tp = np.asarray(tc_allen_dynes_from_a2f(z["omega_meV"], z["pred_a2f"], mu_star), dtype=float).reshape(-1)
            tt = np.asarray(tc_allen_dynes_from_a2f(z["omega_meV"], z["target_a2f"], mu_star), dtype=float).reshape(-1)
        for m, p, t in zip(ids, tp, tt):
            preds.setdefault(m, []).append(float(p))
            truth[m] = float(t)
    keep = [m for m, p in preds.items() if len(p) >= min_members and np.std(p) > 0]
    if len(keep) < 3:
        return None
    err = np.array([abs(np.mean(preds[m]) - truth[m]) for m in keep])
    sig = np.array([np.std(preds[m]) for m in keep])
    z = err / sig
    scale = max(1.0, float(np.quantile(z, 0.683)))
    return SpreadCalibration(scale, len(keep), float(np.mean(z <= 1)), float(np.mean(z <= 2)),
                             float(np.mean(z <= scale)), float(np.mean(z <= 2 * scale)))


def screen_structures(members: Sequence[Any], structures: Sequence[tuple[Path, Any]], *, mu_star: float = MU_STAR_DEFAULT,
                      z: float = 1.0, predict=None, domain: TrainingDomain | None = None, spread_scale: float = 1.0,
                      r_max_A: float | None = None):
    """Predict every structure with the ensemble; rank by T_c of the mean α²F, flagged structures last.

    Returns ``(table, failures)``: a DataFrame with ``rank, file, formula, tc_K, tc_std_K, tc_std_cal_K,
    tc_lcb_K, lambda, lambda_std, omega_log_K, omega_2_K, in_domain, flags`` (T_c of the ensemble-mean α²F;
    spread = std of the members' T_c, ``tc_std_cal_K`` = ``spread_scale`` × it (see
    :func:`oob_spread_calibration`); LCB = mean of members' T_c − z·calibrated std), and
    ``[(path, reason)]`` for structures refused by :func:`guard_structure` or that the model could not
    process (isolated separately, so one bad structure does not sink the batch).  ``flags``: why a
    structure is outside ``domain`` (:meth:`TrainingDomain.flags`; "training domain unknown" when no
    domain is given); ``in_domain`` is False for flagged rows, and no flagged structure ranks above an
    unflagged one.  ``predict`` defaults to :func:`betenet.ensemble.predict_ensemble`.
    """
    import pandas as pd

    if not (np.isfinite(mu_star) and 0.0 <= mu_star < 1.0):
        raise ValueError(f"mu_star must be a finite number in [0, 1), got {mu_star!r}")
    if not (np.isfinite(z) and z >= 0):
        raise ValueError(f"z must be a finite number >= 0, got {z!r}")
    if not (np.isfinite(spread_scale) and spread_scale > 0):
        raise ValueError(f"spread_scale must be a finite number > 0, got {spread_scale!r}")
    if predict is None:
        predict = predict_ensemble
    if r_max_A is None:
        r_max_A = float(getattr(members[0], "r_max_A", 4.0)) if len(members) else 4.0
    failures: list[tuple[Path, str]] = []
    accepted: list[tuple[Path, Any]] = []
    for f, s in structures:
        why = guard_structure(s, r_max_A)
        if why is None:
            accepted.append((f, s))
        else:
            failures.append((f, f"refused: {why}"))
    good: list[tuple[Path, Any]] = []
    arrays: list[np.ndarray] = []
    if accepted:
        try:
            a = np.asarray(predict(members, [s for _, s in accepted]))
            good, arrays = list(accepted), [a]
        except Exception:  # isolate the offending structure(s): predict one by one
            for f, s in accepted:
                try:
                    arrays.append(np.asarray(predict(members, [s])))
                    good.append((f, s))
                except Exception as exc:  # model/graph errors for a single structure are reported, not raised
                    failures.append((f, f"prediction failed ({type(exc).__name__}: {str(exc)[:200]})"))
    columns = ["rank", "file", "formula", "tc_K", "tc_std_K", "tc_std_cal_K", "tc_lcb_K", "lambda", "lambda_std",
               "omega_log_K", "omega_2_K", "in_domain", "flags"]
    if not good:
        return pd.DataFrame(columns=columns), failures
    a2f = np.concatenate(arrays, axis=1)
    e = ensemble_tc(a2f, mu_star=mu_star, z=z)
    pm, ps = e.properties_of_mean, e.properties_std
    bad = ~np.isfinite(pm["tc_K"])
    flags = [("; ".join(domain.flags(s, r_max_A)) if domain is not None else "training domain unknown") for _, s in good]
    std_cal = e.tc_std_K * spread_scale
    table = pd.DataFrame({
        "file": [str(f) for f, _ in good],
        "formula": [s.composition.reduced_formula for _, s in good],
        "tc_K": pm["tc_K"], "tc_std_K": e.tc_std_K, "tc_std_cal_K": std_cal, "tc_lcb_K": e.tc_mean_K - z * std_cal,
        "lambda": pm["lambda"], "lambda_std": ps["lambda"],
        "omega_log_K": pm["omega_log_K"], "omega_2_K": pm["omega_2_K"],
        "in_domain": [not fl for fl in flags], "flags": flags,
    })
    if bad.any():  # a NaN prediction is an error, never a number in the ranking
        for f in table.loc[bad, "file"]:
            failures.append((Path(f), "prediction is not finite (NaN α²F)"))
        table = table.loc[~bad]
    table = table.sort_values(["in_domain", "tc_K", "file"], ascending=[False, False, True], kind="mergesort").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[columns], failures
