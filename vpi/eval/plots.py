"""Figures: class-IoU against the number of samples L (the paper's Fig. 3, right), reliability."""

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
    style_iou_axis(ax, [iou for points in lines.values() for _, iou in points])
    runs = [run for run in report["runs"] if run["samples"] is not None]
    ax.set_title(f"{report['settings']['dataset']} · {runs[0]['episodes']} episodes per fold, "
                 f"seeds {report['settings']['seeds']}", fontsize=8)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def iou_axis_limits(values: list[float], min_margin: float = 2.0) -> tuple[float, float]:
    """y-limits (%) that show a flat curve as flat: matplotlib's autoscale would stretch a
    0.3-point wobble over the whole axis and make sampling noise look like a trend."""
    low, high = min(values), max(values)
    margin = max(min_margin, high - low)
    return max(0.0, low - margin), min(100.0, high + margin)


def style_iou_axis(ax: Any, values: list[float]) -> None:
    """Class-IoU (%) against integer L, on limits from ``iou_axis_limits``."""
    from matplotlib.ticker import MaxNLocator

    ax.set_ylim(*iou_axis_limits(values))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("samples L")
    ax.set_ylabel("class-IoU (%)")
    ax.grid(alpha=0.3)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Lay out, write atomically as PNG and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def plot_reliability(report: dict[str, Any], path: str | Path) -> Path:
    """Observed foreground frequency against the mean probability, per bin, for every model run
    that ``vpi eval --uncertainty`` scored; the diagonal is perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=120)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for run in report["runs"]:
        if "uncertainty" not in run:
            continue
        curve = run["uncertainty"]["reliability"]
        points = [(p, f) for p, f in zip(curve["mean_probability"], curve["foreground_frequency"],
                                          strict=True) if p is not None]
        ax.plot([p for p, _ in points], [f for _, f in points], marker="o", markersize=3,
                label=f"{run['label']} k={run['shots']} L={run['samples']} "
                      f"(ECE {run['uncertainty']['ece']:.3f})")
    ax.set_xlabel("mean foreground probability")
    ax.set_ylabel("foreground frequency")
    ax.set_title(f"{report['settings']['dataset']} · reliability", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return save_figure(fig, path)
