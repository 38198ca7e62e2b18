"""The `vpi` command line: each command parses its options, then calls one library function.

User errors (VpiError) print one red line and exit 2; nothing here prints a traceback for them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vpi import __version__
from vpi.errors import VpiError

app = typer.Typer(
    name="vpi",
    help="Few-shot segmentation with Variational Prototype Inference: train, eval, export, run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"vpi {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """vpi: segment a new kind of object from a handful of annotated examples."""


def _overrides(
    config_file: Path | None, sets: list[str] | None, flags: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """YAML file, then --set items, then explicit flags (highest precedence), as one nested dict."""
    from vpi.config import load_yaml, parse_overrides

    merged: dict[str, Any] = {}
    layers = [load_yaml(config_file) if config_file else {}, parse_overrides(sets or []), flags]
    for layer in layers:
        for section, values in layer.items():
            if isinstance(values, dict):
                merged.setdefault(section, {}).update(values)
            else:
                merged[section] = values
    return merged


def _flags(**sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Keep only the flags the user gave (None means not given)."""
    out = {s: {k: v for k, v in values.items() if v is not None} for s, values in sections.items()}
    return {s: v for s, v in out.items() if v}


def _weights(value: str | None) -> str | None:
    return None if value is None else "" if value.lower() == "none" else value


ConfigFile = Annotated[Path | None, typer.Option("--config", help="YAML file of overrides.")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override a field: model.latent_dim=64")]


@app.command()
def train(
    preset: Annotated[str, typer.Option("--preset", "-p", help="Named preset.")] = "demo",
    config_file: ConfigFile = None,
    sets: Sets = None,
    weights: Annotated[str | None, typer.Option(
        help="ImageNet weights: a torchvision state-dict file, 'imagenet' (offline cache) or 'none'."
    )] = None,
    dataset: Annotated[str | None, typer.Option(help="builtin, pascal, coco or fss.")] = None,
    root: Annotated[str | None, typer.Option(help="Your copy of the dataset.")] = None,
    splits: Annotated[str | None, typer.Option(help="Folder of HSNet-format split lists.")] = None,
    fold: Annotated[int | None, typer.Option(help="Held-out fold, 0..3.")] = None,
    steps: Annotated[int | None, typer.Option(help="Training iterations.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Episodes per step.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda[:N].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the run.")] = None,
    out: Annotated[str | None, typer.Option(help="Folder that holds the runs.")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue a run: its folder or a checkpoint in it.")] = None,
    evaluate: Annotated[bool, typer.Option(
        "--eval/--no-eval", help="Score the final model and the baselines on the held-out fold."
    )] = True,
) -> None:
    """Train VPI (default: the demo preset on the built-in data), then evaluate it."""
    from vpi.config import apply_overrides, get_preset
    from vpi.train import train as train_run

    flags = _flags(
        model={"weights": _weights(weights)},
        data={"dataset": dataset, "root": root, "splits": splits, "fold": fold},
        train={"steps": steps, "batch_size": batch_size, "device": device, "seed": seed,
               "out_dir": out},
    )
    if flags.get("model", {}).get("weights") == "":
        flags["model"]["weights"] = None
    if resume is not None:
        result = train_run(get_preset(preset), resume=resume, console=console)
    else:
        config = apply_overrides(get_preset(preset), _overrides(config_file, sets, flags))
        result = train_run(config, console=console)
    console.print(f"checkpoints in [bold]{result.run_dir}[/] (best: {result.best_checkpoint.name})")
    if evaluate:
        report = _evaluate([result.best_checkpoint], {}, None, (), True, "auto")
        _write_json(result.run_dir / "eval.json", report)
        console.print(f"report: {result.run_dir / 'eval.json'}")


@app.command("eval")
def eval_command(
    checkpoints: Annotated[list[Path], typer.Argument(
        help="Checkpoint(s): one per fold gives per-fold numbers and their mean.")],
    shots: Annotated[int | None, typer.Option("--shots", "-k", help="Support pairs k, 1..10.")] = None,
    samples: Annotated[int | None, typer.Option("--samples", "-L", help="Samples of z, 1..16.")] = None,
    aggregation: Annotated[str | None, typer.Option(
        help="k-shot priors: variance (Eq. 6) or mean (Eq. 10).")] = None,
    episodes: Annotated[int | None, typer.Option(help="Test episodes per fold.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2,3,4.")] = None,
    dataset: Annotated[str | None, typer.Option(help="builtin, pascal, coco or fss.")] = None,
    root: Annotated[str | None, typer.Option(help="Your copy of the dataset.")] = None,
    splits: Annotated[str | None, typer.Option(help="Folder of HSNet-format split lists.")] = None,
    fold: Annotated[int | None, typer.Option(help="Test fold, 0..3 (default: the checkpoint's).")] = None,
    coco_split: Annotated[str | None, typer.Option(help="interleaved or consecutive.")] = None,
    score_at: Annotated[str | None, typer.Option(help="input or original resolution.")] = None,
    compare: Annotated[list[Path] | None, typer.Option(
        help="Checkpoint(s) to score on the same episodes, e.g. the deterministic twin.")] = None,
    baselines: Annotated[bool, typer.Option(
        "--baselines/--no-baselines", help="Also score all-fg, all-bg and colour.")] = True,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    config_file: ConfigFile = None,
    sets: Sets = None,
) -> None:
    """Score checkpoints on a fixed, seeded list of test episodes (class-IoU, FB-IoU)."""
    flags = _flags(
        eval={"shots": shots, "samples": samples, "episodes": episodes},
        model={"aggregation": aggregation},
        data={"dataset": dataset, "root": root, "splits": splits, "fold": fold,
              "coco_split": coco_split, "score_at": score_at},
    )
    report = _evaluate(checkpoints, _overrides(config_file, sets, flags), _parse_seeds(seeds),
                       compare or (), baselines, device)
    if json_path is not None:
        _write_json(json_path, report)
        console.print(f"report: {json_path}")


def _evaluate(
    checkpoints: list[Path], overrides: dict[str, Any], seeds: list[int] | None,
    compare: Any, baselines: bool, device: str,
) -> dict[str, Any]:
    from vpi.protocol import run_evaluation

    report = run_evaluation(
        checkpoints, overrides=overrides, seeds=seeds, compare=compare, baselines=baselines,
        device=device, announce=lambda line: console.print(f"[dim]{line}[/]"),
    )
    console.print(_report_table(report))
    return report


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise VpiError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise VpiError("--seeds names no seed")
    return seeds


def _report_table(report: dict[str, Any]) -> Table:
    s = report["settings"]
    title = (f"{s['dataset']} · {s['shots']}-shot · L={s['samples']} · {s['aggregation']} "
             f"aggregation · {s['episodes']} episodes · seeds {s['seeds']}")
    table = Table(title=title)
    table.add_column("predictor")
    folds = sorted({f for entry in report["summary"].values() for f in entry["folds"]})
    folds = folds if len(folds) > 1 else []  # one fold: its column would repeat the mean
    for fold in folds:
        table.add_column(f"fold {fold}\nclass-IoU", justify="right")
    table.add_column("class-IoU (mIoU)", justify="right")
    table.add_column("FB-IoU", justify="right")
    for label, entry in report["summary"].items():
        per_fold = entry["class_iou"]["per_fold"]
        cells = [_pct(per_fold[f]) if f in per_fold else "" for f in folds]
        table.add_row(label, *cells, _pct(entry["class_iou"]["mean"], entry["class_iou"]["std"]),
                      _pct(entry["fb_iou"]["mean"], entry["fb_iou"]["std"]))
    return table


def _pct(value: float, std: float = 0.0) -> str:
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std else "")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from vpi.io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=str))


def main() -> None:
    """Entry point: a VpiError becomes one red line and exit code 2, never a traceback."""
    try:
        app()
    except VpiError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
