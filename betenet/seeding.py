"""Explicit seeding and dtype set-up.  Nothing here runs at import; call :func:`seed_everything`."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["seed_everything", "torch_dtype", "torch_device"]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if imported/installed) PyTorch; return a NumPy ``Generator``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def torch_dtype(name: str):
    """``"float32"``/``"float64"`` -> torch dtype (pass it explicitly; never set a global default)."""
    import torch

    try:
        return {"float32": torch.float32, "float64": torch.float64}[name]
    except KeyError:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {name!r}") from None


def torch_device(spec: str):
    """Where training runs: ``"auto"`` (CUDA when torch sees a GPU, else CPU), ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``.  Asking for a GPU that torch cannot see is an error, not a silent fall-back to CPU."""
    import torch

    spec = str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"ExecutionConfig.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {spec!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"ExecutionConfig.device={spec!r} but torch {torch.__version__} sees no CUDA GPU; "
                             "use 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"ExecutionConfig.device={spec!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev
