"""The benchmark report on the terminal (a rich table) and on disk (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from vpi.io import atomic_write_text
from vpi.runtime.registry import BACKENDS, taking


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Every figure of the run, the machine and the settings, written atomically."""
    path = Path(path)
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return path


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _triple(stats: dict[str, float]) -> str:
    return "/".join(_ms(stats[q]) for q in ("p50", "p90", "p99"))


def bench_table(report: dict[str, Any]) -> Table:
    """One row per backend, L and batch size B, latencies in ms: p50 of the prior encoder and of
    the decoder in each mode, end to end p50/p90/p99 in the main mode (batched where measured) and
    p50 in the other, their ratio, the end-to-end p50 over that of L = 1, the decoder's throughput
    once the support sets are encoded (queries/s) and, where several B were measured, its ratio to
    B = 1's, the peak memory (MiB) and the class-IoU where scored.
    """
    settings = report["settings"]
    modes = settings["modes"]
    main = "batched" if "batched" in modes else modes[0]
    other = [m for m in modes if m != main]
    several = len(settings["batches"]) > 1
    cells = {(r["backend"], r["L"], r["mode"], r["B"]): r for r in report["results"]}
    comparisons = report["comparisons"]
    over_one = {(c["backend"], c["L"], c["B"]): c["end_to_end"] for c in comparisons["over_L1"]
                if c["mode"] == main}
    ratios = {(c["backend"], c["L"], c["B"]): c["end_to_end"]
              for c in comparisons["looped_over_batched"]}
    gains = {(c["backend"], c["L"], c["B"]): c["decoder"] for c in comparisons["over_B1"]
             if c["mode"] == main}
    accuracy = report.get("accuracy") or {}
    iou = {a["L"]: a["class_iou"] for a in accuracy.get("per_L", [])}
    table = Table(title=_title(report), box=box.SIMPLE_HEAD, title_style="bold")
    _add_columns(table, modes, main, several=several, iou=bool(iou))
    rows = dict.fromkeys((r["backend"], r["L"], r["B"]) for r in report["results"])
    for backend, samples, batch in rows:
        first = cells[(backend, samples, main, batch)]
        row = [backend, str(samples), str(batch), _ms(first["prior_ms"]["p50"])]
        row += [_ms(cells[(backend, samples, m, batch)]["decoder_ms"]["p50"]) for m in modes]
        row.append(_triple(first["end_to_end_ms"]))
        row += [_ms(cells[(backend, samples, m, batch)]["end_to_end_ms"]["p50"]) for m in other]
        if other:
            row.append(f"{ratios[(backend, samples, batch)]:.2f}x")
        ratio = over_one.get((backend, samples, batch))
        row.append(f"{ratio:.2f}" if ratio is not None else "-")
        row.append(f"{first['throughput_qps']:.1f}")
        if several:
            gain = gains.get((backend, samples, batch))
            row.append(f"{gain:.2f}x" if gain is not None else "-")
        row.append(f"{max(cells[(backend, samples, m, batch)]['peak_memory_mb'] for m in modes):.0f}")
        if iou:
            row.append(f"{100 * iou[samples]:.1f}" if samples in iou else "-")
        table.add_row(*row)
    return table


def _title(report: dict[str, Any]) -> str:
    """The table's title: the model, K and the machine the figures were measured on."""
    machine, model = report["machine"], report["model"]
    gpu = f", {machine['gpu']['name']}" if machine.get("gpu") else ""
    return (f"{model['backbone']} {model['image_size']}x{model['image_size']}, "
            f"K={report['settings']['shots']} · {machine['cpu_model']} "
            f"({machine['cpu_cores_usable']} cores, {machine['torch_threads']} threads{gpu}) · ms")


def _add_columns(table: Table, modes: Sequence[str], main: str, *, several: bool, iou: bool) -> None:
    """The columns ``bench_table`` fills, in its rows' order: a mode's, the B = 1 ratio's and the
    class-IoU's only where they were measured."""
    other = [m for m in modes if m != main]
    table.add_column("backend")
    table.add_column("L", justify="right")
    table.add_column("B", justify="right")
    table.add_column("prior", justify="right")
    for mode in modes:
        table.add_column(f"decoder\n{mode}", justify="right")
    table.add_column(f"e2e {main}\np50/p90/p99", justify="right", no_wrap=True)
    for mode in other:
        table.add_column(f"e2e\n{mode}", justify="right")
    if other:
        table.add_column("looped/\nbatched", justify="right")
    table.add_column("/L=1", justify="right")
    table.add_column("q/s", justify="right")
    if several:
        table.add_column("q/s\n/B=1", justify="right")
    table.add_column("MiB", justify="right")
    if iou:
        table.add_column("class\nIoU %", justify="right")


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Skipped backends with their reasons, the targets, and what the IoU was scored on."""
    lines = [f"model: {report['model']['origin']}"]
    for entry in report["backends"]:
        if entry["status"] == "skipped":
            lines.append(f"skipped {entry['backend']}: {entry['reason']}")
        else:
            lines.append(f"{entry['backend']}: {entry['runner']} on {entry['device']}, timed with "
                         f"{entry['timer']}, memory {entry['memory']} (opening it added "
                         f"{entry['host_footprint_mb']:.0f} MiB of RSS)")
    threads = report["settings"].get("threads")
    libraries = " and ".join(BACKENDS[name].library for name in taking("threads"))
    lines.append(f"CPU threads: torch {report['machine']['torch_threads']}, {libraries} "
                 f"{threads if threads else 'their defaults'}")
    for target in report["targets"]:
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"target {target['description']} [{target['backend']}]: "
                     f"{target['value']:.2f} ({target['threshold']}) {verdict}")
    accuracy = report.get("accuracy")
    if accuracy:
        note = " (random weights: the IoU says nothing of the method)" if accuracy["random_weights"] else ""
        lines.append(f"class-IoU: {accuracy['episodes']} built-in test episodes, "
                     f"{accuracy['shots']}-shot, on {accuracy['backend']}{note}")
    machine = report["machine"]
    if machine.get("load_average") and machine.get("load_average_end"):
        lines.append(f"load average (1 min): {machine['load_average'][0]:.2f} at the start, "
                     f"{machine['load_average_end'][0]:.2f} at the end, on "
                     f"{machine['cpu_cores_usable']} usable cores")
    return lines
