"""Figures: class-IoU against the number of samples L (the paper's Fig. 3, right)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpi.io import atomic_path


def plot_iou_against_samples(report: dict[str, Any], path: str | Path) -> Path:
    """One line per predictor and k from an eval report's summary; baselines are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[int, float]]] = {}
    for entry in report["summary"]:
        if entry["samples"] is None:
            continue
        name = f"{entry['label']}, {entry['shots']}-shot, {entry['aggregation']}"
        lines.setdefault(name, []).append((entry["samples"], 100 * entry["class_iou"]["mean"]))
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for name, points in lines.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xlabel("samples L")
    ax.set_ylabel("class-IoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Lay out, write atomically as PNG and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
