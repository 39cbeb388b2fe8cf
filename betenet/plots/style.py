"""What every figure of the package shares: the one way a figure is saved (:func:`save_figure`) and the
colour of each model variant."""

from __future__ import annotations

from pathlib import Path

__all__ = ["VARIANT_COLORS", "FIGURE_DPI", "save_figure"]

VARIANT_COLORS: dict[str, str] = {"CSO": "tab:blue", "CPD": "tab:orange", "FPD": "tab:green"}
#: resolution of every saved figure
FIGURE_DPI = 150


def save_figure(fig, path: Path | str, *, dpi: int = FIGURE_DPI) -> Path:
    """Save ``fig`` to ``path`` (its suffix names the format: ``FIGURES / "02-parity-base.png"``), creating the
    directory, and return the path.  The notebooks write every figure through this."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
