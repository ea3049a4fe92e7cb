"""Figures: one style, image grids and ``save_figure`` (PNG + PDF under figures/<scale>/)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)  # headless default; notebooks may still display inline
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from l2l.io import atomic_write, figures_dir  # noqa: E402


def set_style() -> None:
    """Small, print-friendly defaults shared by every figure."""
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "font.size": 9,
                         "axes.titlesize": 9, "pdf.fonttype": 42})


def image_grid(images: np.ndarray, *, row_labels: list[str], col_labels: list[str] | None = None,
               cell: float = 0.9) -> plt.Figure:
    """A grid of images.

    Args:
        images: uint8 [rows, cols, H, W, 3] (or float in [0, 1]).
        row_labels: one label per row, drawn on the left.
        col_labels: optional titles of the top row.
    """
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell + 1.2, rows * cell),
                             squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.04})
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(images[r, c], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row_labels[r], rotation=0, ha="right", va="center")
            if r == 0 and col_labels:
                ax.set_title(col_labels[c])
    return fig


def save_figure(fig: plt.Figure, name: str, scale: str) -> list[Path]:
    """Write ``figures/<scale>/<name>.png`` and ``.pdf``; returns both paths."""
    out = figures_dir(scale)
    paths = []
    for ext in ("png", "pdf"):
        # PDFs embed a creation date unless told not to: keep reruns byte-stable.
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        paths.append(atomic_write(out / f"{name}.{ext}",
                             lambda p, e=ext, m=meta: fig.savefig(p, format=e, bbox_inches="tight",
                                                                   metadata=m)))
    return paths


def completion_grid(panels: dict[str, np.ndarray], row_names: list[str]) -> plt.Figure:
    """Stack per-subset panels (uint8 [rows, n, 3, S, S]) into one labelled image grid.

    Row labels read "<subset>: <row name>", e.g. "forget: unlearned".
    """
    blocks, labels = [], []
    for subset, panel in panels.items():
        arr = np.asarray(panel)
        if arr.shape[0] != len(row_names):
            raise ValueError(f"{subset} panel has {arr.shape[0]} rows, expected {len(row_names)}")
        blocks.append(arr.transpose(0, 1, 3, 4, 2))  # -> [rows, n, S, S, 3]
        labels += [f"{subset}: {r}" for r in row_names]
    return image_grid(np.concatenate(blocks), row_labels=labels)
