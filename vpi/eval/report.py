"""Tables of an eval report for the terminal (rich), kept out of the CLI, which only prints them."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from vpi.eval.uncertainty import CORRECTED_SHARES, MAPS


def uncertainty_table(report: dict[str, Any]) -> Table:
    """One row per model run and map: what ``vpi eval --uncertainty`` measured."""
    runs = [run for run in report["runs"] if "uncertainty" in run]
    shares = [f"{share:g}" for share in CORRECTED_SHARES]
    table = Table(title="uncertainty: does each map flag the errors? (AUROC 0.5 = no better than "
                        "chance; class-IoU after the most uncertain pixels are corrected)")
    for column in ("model", "k", "L", "map", "pixel AUROC", "pixel AUPR", "failed-episode AUROC",
                   *(f"+{100 * float(s):g}%" for s in shares), "ECE"):
        table.add_column(column, justify="left" if column in ("model", "map") else "right")
    for run in runs:
        flags = run["uncertainty"]
        failed = f"{flags['failed_episodes']}/{flags['episodes']} failed"
        rows = [(name, flags["maps"][name]) for name in MAPS]
        rows.append(("random order", {"corrected_class_iou": flags["random_corrected_class_iou"]}))
        for index, (name, scores) in enumerate(rows):
            first = index == 0
            table.add_row(
                run["label"] if first else "", str(run["shots"]) if first else "",
                str(run["samples"]) if first else "", name,
                _ratio(scores.get("pixel_error_auroc")), _ratio(scores.get("pixel_error_aupr")),
                _ratio(scores.get("failed_episode_auroc")) + (f" ({failed})" if first else ""),
                *(f"{100 * scores['corrected_class_iou'][s]:.1f}" for s in shares),
                f"{flags['ece']:.3f}" if first else "",
            )
    return table


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
