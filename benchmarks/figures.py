"""Figure helpers shared by the benchmark reports: image strips and grids, and plots."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from sdn.io import atomic_write_bytes
from sdn.training import png_bytes


def strip(images: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) in [0, 1] -> (H, n*W, 3) uint8: the images side by side."""
    return (torch.cat(list(images), dim=2).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def white(height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8 white: a separator."""
    return np.full((height, width, 3), 255, np.uint8)


def save_rows(path: Path, rows: list[np.ndarray]) -> Path:
    """Stack (h_i, w_i, 3) uint8 rows top to bottom, padding narrower rows with white on
    the right, and write the PNG atomically."""
    width = max(r.shape[1] for r in rows)
    rows = [np.concatenate([r, white(r.shape[0], width - r.shape[1])], axis=1) for r in rows]
    atomic_write_bytes(path, png_bytes(np.concatenate(rows, axis=0)))
    return path


def plot_png(fig, dpi: int = 120) -> bytes:
    """A matplotlib figure laid out tightly as PNG bytes (no software tag, so a rerun gives
    the same bytes); the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def save_plot(fig, path: Path, dpi: int = 120) -> Path:
    """Write a matplotlib figure to ``path`` atomically (see :func:`plot_png`)."""
    atomic_write_bytes(path, plot_png(fig, dpi))
    return path
