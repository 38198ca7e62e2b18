"""Fig. 3 (right) for the runtime: latency against L per backend and mode, and class-IoU where
it was measured, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpi.eval.plots import save_figure, style_iou_axis

_STYLES = {"batched": "-", "looped": "--"}


def plot_bench(report: dict[str, Any], path: str | Path) -> Path:
    """End-to-end p50 latency (band: p50..p90) against L, one colour per backend (and batch size B,
    where several were measured), solid for the batched decoder and dashed for the looped one; a
    second panel with class-IoU against L."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    accuracy = report.get("accuracy")
    panels = 2 if accuracy else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), dpi=120, squeeze=False)
    ax = axes[0][0]
    colours = {}
    several = len(report["settings"]["batches"]) > 1
    lines: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for result in report["results"]:
        lines.setdefault((result["backend"], result["B"], result["mode"]), []).append(result)
    for (backend, batch, mode), cells in lines.items():
        cells.sort(key=lambda c: c["L"])
        samples = [c["L"] for c in cells]
        p50 = [c["end_to_end_ms"]["p50"] for c in cells]
        p90 = [c["end_to_end_ms"]["p90"] for c in cells]
        colour = colours.setdefault((backend, batch), f"C{len(colours)}")
        label = f"{backend}, B={batch}, {mode}" if several else f"{backend}, {mode}"
        ax.plot(samples, p50, _STYLES[mode], marker="o", markersize=3, color=colour, label=label)
        ax.fill_between(samples, p50, p90, color=colour, alpha=0.15, linewidth=0)
    ax.set_xlabel("samples L")
    ax.set_ylabel("end-to-end latency p50 (ms)")
    latencies = [r["end_to_end_ms"]["p50"] for r in report["results"]]
    if max(latencies) > 20 * min(latencies):  # backends an order of magnitude apart
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, handlelength=3)
    model, machine = report["model"], report["machine"]
    where = machine["gpu"]["name"] if machine.get("gpu") else f"{machine['cpu_model']}, " \
        f"{machine['cpu_cores_usable']} cores, {machine['torch_threads']} threads"
    ax.set_title(f"{model['backbone']} {model['image_size']}px · {where}", fontsize=8)
    if accuracy:
        ax = axes[0][1]
        points = sorted((a["L"], 100 * a["class_iou"]) for a in accuracy["per_L"])
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="C3")
        style_iou_axis(ax, [p[1] for p in points])
        note = ", random weights" if accuracy["random_weights"] else ""
        ax.set_title(f"built-in test episodes ({accuracy['episodes']}, "
                     f"{accuracy['shots']}-shot{note})", fontsize=8)
    return save_figure(fig, path)
