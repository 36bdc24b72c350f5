"""Pictures of a dataset's labels: each AU's intensity histogram, and how often AUs are active together."""
from __future__ import annotations

import numpy as np

from fineface_core.aus import AU_ORDER
from fineface_core.files.safe_write import write_atomically

HISTOGRAMS, COOCCURRENCE = "au_histograms.png", "au_cooccurrence.png"


def _save(fig, path: str) -> str:
    import matplotlib.pyplot as plt

    try:
        return write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)


def cooccurrence(values: np.ndarray) -> np.ndarray:
    """[12, 12]: row i, column j = the share of the faces with AU i active (> 0) that also have AU j active."""
    active = np.asarray(values) > 0
    both = active.T.astype(np.int64) @ active.astype(np.int64)
    counts = active.sum(0)
    return np.divide(both, counts[:, None], out=np.zeros(both.shape), where=counts[:, None] > 0)


def write_plots(values: np.ndarray, folder: str, title: str = "") -> list[str]:
    """``values`` [N, 12] on 0..5 -> folder/au_histograms.png and folder/au_cooccurrence.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(values, dtype=np.float64).reshape(-1, len(AU_ORDER))
    fig, axes = plt.subplots(3, 4, figsize=(12, 7.5), sharex=True)
    bins = np.linspace(0, 5, 21)
    for i, (ax, code) in enumerate(zip(axes.flat, AU_ORDER)):
        ax.hist(values[:, i], bins=bins, color="tab:blue")
        active = (values[:, i] > 0).mean() * 100 if len(values) else 0.0
        ax.set_title(f"{code}: {active:.0f}% active", fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("intensity")
    fig.suptitle(f"AU intensities of {len(values)} faces{(' - ' + title) if title else ''}")
    fig.tight_layout()
    paths = [_save(fig, f"{folder}/{HISTOGRAMS}")]

    matrix = cooccurrence(values)
    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(AU_ORDER)), AU_ORDER, rotation=90)
    ax.set_yticks(range(len(AU_ORDER)), AU_ORDER)
    for i in range(len(AU_ORDER)):
        for j in range(len(AU_ORDER)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if matrix[i, j] < 0.5 else "black")
    ax.set_xlabel("also active")
    ax.set_ylabel("faces with this AU active")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"AU co-occurrence, {len(values)} faces")
    fig.tight_layout()
    paths.append(_save(fig, f"{folder}/{COOCCURRENCE}"))
    return paths
