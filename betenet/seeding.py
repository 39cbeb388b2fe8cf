"""Explicit seeding and dtype set-up.  Nothing here runs at import; call :func:`seed_everything`."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["seed_everything", "torch_dtype"]


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
