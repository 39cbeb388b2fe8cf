"""The UPF pseudopotential format: header reading (v1 and v2), functional names, rewrapping and digests."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import PseudoError

__all__ = ["UpfHeader", "read_upf_header", "normalize_functional", "rewrap_upf", "upf_digest"]

#: Long ("SLA PW PSX PSC") and short spellings of the same functional, mapped to one name.
_FUNCTIONAL_ALIASES = {
    "SLA PW PSX PSC": "PBESOL",
    "SLA-PW-PSX-PSC": "PBESOL",
    "PBESOL": "PBESOL",
    "SLA PW PBX PBC": "PBE",
    "SLA PW PBE PBE": "PBE",
    "SLA-PW-PBX-PBC": "PBE",
    "PBE": "PBE",
    "GGA PBE": "PBE",
    "SLA PZ NOGX NOGC": "PZ",
    "SLA-PZ-NOGX-NOGC": "PZ",
    "PZ": "PZ",
    "LDA": "PZ",
    "SLA PW NOGX NOGC": "PW",
    "SLA PW": "PW",
    "PW": "PW",
    "SLA PW PW86 PBC": "PW86",
    "SLA PW GGX GGC": "PW91",
}


def normalize_functional(raw: str) -> str:
    """One name per functional: ``' SLA  PW   PSX  PSC'`` and ``'PBESOL'`` -> ``'PBESOL'``.

    Unknown spellings are returned upper-cased with whitespace collapsed.
    """
    key = " ".join(raw.replace("-", " ").split()).upper()
    key = re.sub(r"\s*\(.*\)$", "", key)
    return _FUNCTIONAL_ALIASES.get(key, _FUNCTIONAL_ALIASES.get(key.replace(" ", "-"), key))


@dataclass(frozen=True)
class UpfHeader:
    """The fields of a UPF header this project uses (UPF v1 and v2)."""

    path: str
    element: str
    functional: str
    functional_raw: str
    pseudo_type: str
    z_valence: float
    is_ultrasoft: bool
    is_paw: bool
    relativistic: str | None = None
    wfc_cutoff_Ry: float | None = None
    rho_cutoff_Ry: float | None = None
    has_atomic_wfc: bool = True


def _attr(header: str, name: str) -> str | None:
    m = re.search(rf'\b{name}\s*=\s*"([^"]*)"', header, re.IGNORECASE)
    return m.group(1).strip() if m else None


def read_upf_header(path: Path | str) -> UpfHeader:
    """Parse the header of a UPF file (v2 XML attributes, or the v1 ``<PP_HEADER>`` block).

    The element comes from the header (``element=``), not from the file name, so SG15 names like
    ``Al_ONCV_PBE-1.2.upf`` work.  Raises :class:`PseudoError` naming the file when the header
    is missing or incomplete.
    """
    path = Path(path)
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            head = fh.read(200_000)
    except OSError as exc:
        raise PseudoError(f"cannot read pseudopotential file {path}: {exc}") from None
    m = re.search(r"<PP_HEADER\b(.*?)(/>|</PP_HEADER>)", head, re.S)
    if not m:
        raise PseudoError(f"{path}: no <PP_HEADER> found; not a UPF pseudopotential file")
    body = m.group(1)
    n_chi = head.count("<PP_CHI")
    if _attr(body, "element") is not None:  # UPF v2
        el = _attr(body, "element") or ""
        func_raw = _attr(body, "functional") or ""
        ptype = (_attr(body, "pseudo_type") or "").upper()
        zval = float(_attr(body, "z_valence") or "nan")
        is_us = (_attr(body, "is_ultrasoft") or "").lower().startswith(("t", ".t"))
        is_paw = (_attr(body, "is_paw") or "").lower().startswith(("t", ".t"))
        rel = _attr(body, "relativistic")
        wfc = _attr(body, "wfc_cutoff")
        rho = _attr(body, "rho_cutoff")
        nwfc = int(float(_attr(body, "number_of_wfc") or n_chi))
        wfc_f = float(wfc) if wfc and float(wfc) > 0 else None
        rho_f = float(rho) if rho and float(rho) > 0 else None
    else:  # UPF v1: one value per line, a comment after it
        lines = [ln.split() for ln in body.strip().splitlines() if ln.strip()]
        def find(tag: str) -> list[str]:
            for ln in lines:
                if tag.lower() in " ".join(ln).lower():
                    return ln
            raise PseudoError(f"{path}: UPF v1 header has no {tag!r} line")
        el = find("Element")[0]
        fl = find("Exchange-Correlation")
        idx = [i for i, t in enumerate(fl) if t.lower().startswith("exchange-correlation")][0]
        func_raw = " ".join(fl[: min(idx, 4)])
        i_el = next(i for i, ln in enumerate(lines) if "element" in " ".join(ln).lower())
        ptype = lines[i_el + 1][0].upper() if len(lines) > i_el + 1 else "NC"
        zval = float(find("Z valence")[0])
        is_us, is_paw = ptype in ("US", "PAW"), ptype == "PAW"
        rel, wfc_f, rho_f = None, None, None
        try:
            cut = find("Suggested cutoff")
            wfc_f, rho_f = float(cut[0]) or None, float(cut[1]) or None
        except (PseudoError, ValueError, IndexError):
            pass
        try:
            nwfc = int(find("Wavefunctions")[0])
        except (PseudoError, ValueError):
            nwfc = n_chi
    if not el:
        raise PseudoError(f"{path}: UPF header has no element")
    # the v2 header's functional may be the long form; normalize_functional maps both
    return UpfHeader(
        path=str(path), element=el.strip(), functional=normalize_functional(func_raw), functional_raw=func_raw,
        pseudo_type=ptype, z_valence=zval, is_ultrasoft=is_us, is_paw=is_paw, relativistic=rel,
        wfc_cutoff_Ry=wfc_f, rho_cutoff_Ry=rho_f, has_atomic_wfc=nwfc > 0,
    )


_NUMERIC_LINE = re.compile(r"[\s0-9eE+\-.]+")


def rewrap_upf(path: Path | str, max_len: int = 200) -> int:
    """Rewrap over-long purely numeric lines of a UPF file, 4 numbers per line (values unchanged).

    ld1.x 6.7 writes ``PP_Q``/``PP_DIJ`` of a pseudopotential with >= 7 projectors on a single
    line longer than 1024 characters, which QE 6.7's own XML reader (pw.x, ld1.x) then refuses
    ("file ... not readable").  Returns the number of lines rewrapped.
    """
    path = Path(path)
    lines = path.read_text().split("\n")
    out, n = [], 0
    for ln in lines:
        if len(ln) > max_len and _NUMERIC_LINE.fullmatch(ln):
            v = ln.split()
            out += ["  " + "  ".join(v[i : i + 4]) for i in range(0, len(v), 4)]
            n += 1
        else:
            out.append(ln)
    if n:
        path.write_text("\n".join(out))
    return n


def upf_digest(path: Path | str) -> str:
    """SHA-256 of a UPF file without its generation-date fields (so regenerated files compare equal)."""
    text = Path(path).read_text(errors="replace")
    text = re.sub(r"Generation date:.*", "", text)
    text = re.sub(r'\bdate="[^"]*"', "", text)
    return hashlib.sha256(text.encode()).hexdigest()
