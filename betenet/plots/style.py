"""What every figure of the package shares: the one way a figure is saved (:func:`save_figure`) and the
colour of each model variant."""

from __future__ import annotations

from pathlib import Path

__all__ = ["VARIANT_COLORS", "save_figure"]

VARIANT_COLORS: dict[str, str] = {"CSO": "tab:blue", "CPD": "tab:orange", "FPD": "tab:green"}


def save_figure(fig, directory: Path | str, name: str, *, dpi: int = 130) -> Path:
    """Save ``fig`` as ``<directory>/<name>.png`` and return the path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
