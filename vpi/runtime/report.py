"""What `vpi segment` prints (a rich table and markup lines), kept out of the CLI, which only
prints them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table


def segment_report(results: dict[str, Any], out: Path) -> list[Table | str]:
    """``results`` (what ``segment_folder`` returns and writes into ``out``): one row per query,
    a note when the model records no failure threshold, and where the outputs are."""
    lines: list[Table | str] = [segment_table(results)]
    if results["failure_threshold"] is None:
        lines.append("[dim]this model records no failure threshold (trained before vpi chose "
                     "one on validation episodes): no query is flagged[/]")
    lines.append(f"outputs in [bold]{out}[/] (results.json)")
    return lines


def segment_table(results: dict[str, Any]) -> Table:
    """Per query: the foreground share, the confidence, the likely-failed flag, the decode time."""
    table = Table(title=f"{len(results['support']['pairs'])}-shot · L={results['samples_decoded']}"
                        f" · batches of {results['batch_size']} · {results['backend']}")
    for column in ("query", "foreground", "confidence", "likely failed", "decode ms"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for record in results["queries"]:
        failed = {True: "[yellow]yes[/]", False: "no", None: "–"}[record["likely_failed"]]
        table.add_row(Path(record["query"]).name, f"{100 * record['foreground_fraction']:.1f}%",
                      f"{record['confidence']:.3f}", failed, f"{record['timing_ms']['decode']:.1f}")
    return table
