"""Small file helpers shared by the package: UTC time stamps, atomic JSON writes and tolerant reads,
file digests.  One definition each (QE runs, splits, training checkpoints and ensembles all use them)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["utc_now", "json_default", "write_json_atomic", "read_json", "sha256_file"]


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-12-03T15:41:04+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for NumPy scalars and arrays, paths and dataclasses."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(path: Path | str, data: Any, *, indent: int = 1) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same directory and a rename,
    so a reader never sees a half-written file (the temporary name carries the PID: two writers do
    not collide)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=json_default) + "\n")
    tmp.replace(path)


def read_json(path: Path | str, *, error: type[Exception] | None = None) -> Any | None:
    """The JSON in ``path``, or ``None`` when it is missing or not valid JSON.

    With ``error`` (an exception class, e.g. :class:`betenet.qe.parsers.QEParseError`) a missing, empty or
    garbled file raises it instead, with a message naming the file (``<path>: file not found``,
    ``<path>: not valid JSON (empty file)``)."""
    if error is None:
        try:
            return json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError):
            return None
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    text = path.read_text(errors="replace")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"{path}: not valid JSON ({'empty file' if not text.strip() else exc})") from None


def sha256_file(path: Path | str) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
