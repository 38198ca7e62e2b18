"""Tables and warnings of an eval report for the terminal (rich), kept out of the CLI, which only
prints them."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from vpi.eval.controls import LOW_SUPPORT_GAIN
from vpi.eval.protocol import MATCHER, models_under_matcher
from vpi.eval.uncertainty import CORRECTED_SHARES, MAPS


def eval_tables(report: dict[str, Any]) -> list[Table]:
    """What `vpi eval` prints: the summary, class-IoU per class and, where it was measured, how
    well the uncertainty maps flag errors."""
    tables = [summary_table(report), per_class_table(report)]
    if any("uncertainty" in run for run in report["runs"]):
        tables.append(uncertainty_table(report))
    return tables


def eval_warnings(report: dict[str, Any]) -> list[str]:
    """What a reader should not miss: a model that barely uses its support, or that scores under
    the training-free matcher (rich markup)."""
    lines = []
    weak = [f"{e['label']} (k={e['shots']}, L={e['samples']}): {e['support_gain']['mean']:.1f}"
            for e in report["summary"]
            if "support_gain" in e and e["support_gain"]["mean"] < LOW_SUPPORT_GAIN]
    if weak:
        lines.append(f"support gain under {LOW_SUPPORT_GAIN:g} points, the model barely uses its "
                     f"support: {'; '.join(weak)}")
    under = models_under_matcher(report)
    if under:
        lines.append("under the training-free matcher, the model learned less than nothing on this "
                     f"data: {'; '.join(under)}")
    return lines




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
    notes = [_flag_note(run) for run in runs if "failure_flag" in run["uncertainty"]]
    if notes:
        table.caption = "\n".join(notes)
    return table


def _flag_note(run: dict[str, Any]) -> str:
    """How the checkpoint's likely-failed threshold (chosen in training) does on these episodes."""
    flag = run["uncertainty"]["failure_flag"]
    return (f"{run['label']} (k={run['shots']}, L={run['samples']}): its likely-failed flag "
            f"({flag['map']} score > {flag['threshold']:.3f}) flags {flag['flagged']} of "
            f"{run['uncertainty']['episodes']} episodes, precision {_ratio(flag['precision'])}, "
            f"recall {_ratio(flag['recall'])}")


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def summary_table(report: dict[str, Any]) -> Table:
    """One row per predictor and setting: class-IoU per fold and over folds, FB-IoU and the
    swapped-support control."""
    s = report["settings"]
    # The episodes scored, not the setting: FSS walks every test image once, whatever it asks.
    scored = sorted({r["episodes"] for r in report["runs"]})
    episodes = "/".join(map(str, scored)) if scored else s["episodes"]
    table = Table(title=f"{s['dataset']} · {episodes} episodes per fold · seeds {s['seeds']}")
    for name in ("predictor", "k", "L", "aggregation"):
        table.add_column(name)
    folds = sorted({f for entry in report["summary"] for f in entry["folds"]})
    folds = folds if len(folds) > 1 else []  # one fold: its column would repeat the mean
    for fold in folds:
        table.add_column(f"fold {fold}\nclass-IoU", justify="right")
    table.add_column("class-IoU (mIoU)", justify="right")
    table.add_column("FB-IoU", justify="right")
    table.add_column("swapped support\nclass-IoU", justify="right")
    table.add_column("support gain\n(points)", justify="right")
    for entry in report["summary"]:
        per_fold = entry["class_iou"]["per_fold"]
        controls = ("–", "–")
        if "support_gain" in entry:
            gain = entry["support_gain"]
            controls = (_pct(entry["swapped_class_iou"]["mean"], entry["swapped_class_iou"]["std"]),
                        f"{gain['mean']:.1f}" + (f" ± {gain['std']:.1f}" if gain["std"] else ""))
        table.add_row(
            entry["label"], str(entry["shots"]), _dash(entry["samples"]), _dash(entry["aggregation"]),
            *[_pct(per_fold[f]) if f in per_fold else "" for f in folds],
            _pct(entry["class_iou"]["mean"], entry["class_iou"]["std"]),
            _pct(entry["fb_iou"]["mean"], entry["fb_iou"]["std"]),
            *controls,
        )
    return table


def per_class_table(report: dict[str, Any]) -> Table:
    """Class-IoU per class, by name, of each model and the matcher: the first run of each label
    (its first fold, seed, k, L and rule), so a class the model misses stands out beside the
    matcher's figure for it."""
    first: dict[str, dict[str, float]] = {}
    for run in report["runs"]:
        if (run["samples"] is not None or run["label"] == MATCHER) and run["label"] not in first:
            first[run["label"]] = run["per_class_iou"]
    table = Table(title="class-IoU per class (the first setting of each)")
    table.add_column("class")
    for label in first:
        table.add_column(label, justify="right")
    classes = dict.fromkeys(name for per_class in first.values() for name in per_class)
    for name in classes:
        table.add_row(name, *[_pct(per_class[name]) if name in per_class else "–"
                              for per_class in first.values()])
    return table


def _dash(value: object) -> str:
    return "–" if value is None else str(value)


def _pct(value: float, std: float = 0.0) -> str:
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std else "")
