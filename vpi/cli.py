"""The `vpi` command line: each command parses its options, then calls one library function.

User errors (VpiError) print one red line and exit 2; nothing here prints a traceback for them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from vpi import __version__
from vpi.config import (
    BENCH_CACHE,
    BENCH_SAMPLES,
    CALIBRATION_EPISODES,
    DEFAULT_PRESET,
    DEFAULT_SAMPLES,
    DEFAULT_THRESHOLD,
    EXPORT_DIR,
    GATE_EPISODES,
    GATE_MARGIN,
    MAX_BATCH,
    MAX_SAMPLES,
    MAX_SHOTS,
    SEGMENT_BATCH,
    SEGMENT_DIR,
    TEST_TIME_MODEL_FIELDS,
)
from vpi.data.registry import dataset_help
from vpi.errors import VpiError
from vpi.runtime.registry import (
    BACKENDS,
    ENGINES,
    PERFORMANCE_HINTS,
    RunnerOptions,
    backend_help,
    precision_help,
    taking,
)

if TYPE_CHECKING:
    from vpi.bench import BenchSettings

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


def _without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` less ``name VALUE`` / ``name=VALUE``: the command torchrun re-runs on each rank."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == name:
            skip = True
        elif not item.startswith(f"{name}="):
            out.append(item)
    return out


def _weights(value: str | None) -> str | None:
    return None if value is None else "" if value.lower() == "none" else value


ConfigFile = Annotated[Path | None, typer.Option("--config", help="YAML file of overrides.")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Override a field: model.latent_dim=64")]
_ENGINE_HELP = (", ".join(f"{e} ({BACKENDS[e].library})" for e in ENGINES) + ": every engine but onnx "
                "writes its files beside the ONNX graphs (with --triton: onnx or trt).")
_EXPORT_PRECISION_HELP = (
    "TensorRT's: fp16 (default), fp32 or bf16; " + "; ".join(
        f"{b.library}'s: {', '.join(b.precisions)} (default: the fastest this CPU has that passes "
        "the accuracy gate)" for b in BACKENDS.values() if b.engine and b.precisions)
    + ". ONNX graphs are fp32. Every precision but fp32 must pass the accuracy gate.")
_HINT_HELP = (" and ".join(BACKENDS[b].library for b in taking("performance_hint"))
              + f"'s performance hint: {' or '.join(PERFORMANCE_HINTS)} (default: its own).")


def _threads_help(*libraries: str) -> str:
    *first, last = [*libraries, *(BACKENDS[b].library for b in taking("threads"))]
    return f"CPU threads of {', '.join(first) + ' and ' if first else ''}{last} (default: theirs)."


@app.command()
def train(
    preset: Annotated[str, typer.Option("--preset", "-p", help="Named preset.")] = DEFAULT_PRESET,
    config_file: ConfigFile = None,
    sets: Sets = None,
    weights: Annotated[str | None, typer.Option(
        help="ImageNet weights: a torchvision state-dict file, 'imagenet' (offline cache) or 'none'."
    )] = None,
    dataset: Annotated[str | None, typer.Option(help=dataset_help() + ".")] = None,
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
    devices: Annotated[int | None, typer.Option(
        help="Data-parallel processes: relaunches this command under torchrun.")] = None,
) -> None:
    """Train VPI (default: the demo preset on the built-in data), then evaluate it."""
    from vpi.config import apply_overrides, get_preset
    from vpi.train import train as train_run

    if devices is not None:
        from vpi.train.distributed import launch

        code = launch(devices, _without_option(sys.argv[2:], "--devices"), cpu=device == "cpu")
        raise typer.Exit(code)

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
    if os.environ.get("RANK", "0") != "0":
        return  # a torchrun rank other than 0: rank 0 reports
    console.print(f"checkpoints in [bold]{result.run_dir}[/] (best: {result.best_checkpoint.name})")
    if evaluate:
        report = _evaluate([result.best_checkpoint], {})
        _write_json(result.run_dir / "eval.json", report)
        console.print(f"report: {result.run_dir / 'eval.json'}")


@app.command("eval")
def eval_command(
    checkpoints: Annotated[list[Path] | None, typer.Argument(
        help="Checkpoint(s): one per fold gives per-fold numbers and their mean.")] = None,
    engine_dir: Annotated[Path | None, typer.Option(
        "--engine-dir", help="Score an export (from `vpi export`) instead of checkpoints, on the "
                             "episodes of the config its manifest records.")] = None,
    backend: Annotated[str, typer.Option(
        help="With --engine-dir: " + backend_help(auto=True) + ".")] = "auto",
    precision: Annotated[str | None, typer.Option(
        help="With --engine-dir: " + precision_help("the export's"))] = None,
    shots: Annotated[str | None, typer.Option(
        "--shots", "-k", help=f"Support pairs k, 1..{MAX_SHOTS}; a list sweeps: 1,5.")] = None,
    samples: Annotated[str | None, typer.Option(
        "--samples", "-L", help=f"Samples of z, 1..{MAX_SAMPLES}; a range sweeps: 1..10.")] = None,
    aggregation: Annotated[str | None, typer.Option(
        help="k-shot rule: variance (Eq. 6), mean (Eq. 10), or both: variance,mean.")] = None,
    episodes: Annotated[int | None, typer.Option(help="Test episodes per fold.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Seeds, e.g. 0,1,2,3,4 (mean ± std).")] = None,
    dataset: Annotated[str | None, typer.Option(help=dataset_help() + ".")] = None,
    root: Annotated[str | None, typer.Option(help="Your copy of the dataset.")] = None,
    splits: Annotated[str | None, typer.Option(help="Folder of HSNet-format split lists.")] = None,
    fold: Annotated[int | None, typer.Option(help="Test fold, 0..3 (default: the checkpoint's).")] = None,
    coco_split: Annotated[str | None, typer.Option(help="interleaved or consecutive.")] = None,
    score_at: Annotated[str | None, typer.Option(help="input or original resolution.")] = None,
    compare: Annotated[list[Path] | None, typer.Option(
        help="Checkpoint(s) to score on the same episodes, e.g. the deterministic twin.")] = None,
    baselines: Annotated[bool, typer.Option(
        "--baselines/--no-baselines",
        help="Also score all-fg, all-bg, colour and the training-free matcher.")] = True,
    uncertainty: Annotated[bool, typer.Option(
        help="Also score how well the variance, mutual-information and entropy maps flag errors "
             "and failed episodes, and the calibration (ECE).")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="PNG of class-IoU against L (Fig. 3); with --uncertainty, also the reliability "
             "diagram beside it (NAME-reliability.png).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    config_file: ConfigFile = None,
    sets: Sets = None,
) -> None:
    """Score checkpoints, or an export's engine, on a fixed, seeded list of test episodes.

    Lists sweep the paper's ablations in one command: --compare DET.pt --shots 1,5 (Table 1),
    --samples 1..10 --plot fig3.png (Fig. 3), --shots 5 --aggregation variance,mean (Table 2).
    --engine-dir DIR --backend openvino scores the deployed graphs on the same episodes and noise.
    """
    flags = _flags(
        eval={"episodes": episodes},
        data={"dataset": dataset, "root": root, "splits": splits, "fold": fold,
              "coco_split": coco_split, "score_at": score_at},
    )
    report = _evaluate(
        checkpoints or [], _overrides(config_file, sets, flags),
        engine_dir=engine_dir, backend=backend, precision=precision,
        **_sweeps(seeds, shots, samples, aggregation),
        compare=compare or (), baselines=baselines, uncertainty=uncertainty, device=device,
    )
    _save_eval(report, json_path, plot, uncertainty)


def _sweeps(
    seeds: str | None, shots: str | None, samples: str | None, aggregation: str | None
) -> dict[str, list[int] | list[str] | None]:
    """`vpi eval`'s lists, parsed and checked before any work; None where not given (the
    checkpoint's config decides)."""
    from vpi.config import AGGREGATIONS
    from vpi.ranges import parse_choice_list, parse_int_list

    return {
        "seeds": parse_int_list(seeds, name="--seeds", low=0, high=2**31) if seeds else None,
        "shots": parse_int_list(shots, name="--shots", low=1, high=MAX_SHOTS) if shots else None,
        "samples": parse_int_list(samples, name="--samples", low=1, high=MAX_SAMPLES)
        if samples else None,
        "aggregations": parse_choice_list(aggregation, name="--aggregation", choices=AGGREGATIONS)
        if aggregation else None,
    }


def _save_eval(report: dict[str, Any], json_path: Path | None, plot: Path | None,
               uncertainty: bool) -> None:
    """Write the report's JSON and plots where asked for; with ``uncertainty``, the plot's
    reliability diagram beside it."""
    if json_path is not None:
        _write_json(json_path, report)
        console.print(f"report: {json_path}")
    if plot is not None:
        from vpi.eval.plots import plot_iou_against_samples

        plot_iou_against_samples(report, plot)
        console.print(f"plot: {plot}")
        if uncertainty:
            from vpi.eval.plots import plot_reliability

            reliability = plot.with_name(f"{plot.stem}-reliability.png")
            plot_reliability(report, reliability)
            console.print(f"reliability plot: {reliability}")


def _evaluate(checkpoints: list[Path], overrides: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    from vpi.eval.protocol import run_evaluation
    from vpi.eval.report import eval_tables, eval_warnings

    report = run_evaluation(
        checkpoints, overrides=overrides, announce=lambda line: console.print(f"[dim]{line}[/]"),
        **kwargs,
    )
    for table in eval_tables(report):
        console.print(table)
    for line in eval_warnings(report):
        console.print(f"[yellow]warning:[/] {line}", soft_wrap=True)
    return report


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from vpi.io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=str))


@app.command("export")
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `vpi train`.")],
    out: Annotated[Path | None, typer.Option(
        help=f"Folder for the graphs and manifest.json (default: {EXPORT_DIR}).")] = None,
    triton: Annotated[Path | None, typer.Option(
        help="Write a Triton model repository here instead of the --out folder (docs/serving.md).")
    ] = None,
    engine: Annotated[str, typer.Option(help=_ENGINE_HELP)] = "onnx",
    precision: Annotated[str | None, typer.Option(help=_EXPORT_PRECISION_HELP)] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the exporter's).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Write into --out even if it holds another export or other files; with "
                        "--triton, replace vpi's models in a repository that is not empty.")] = False,
    gate_episodes: Annotated[int, typer.Option(
        help="Held-out episodes (validation split, else train) on which a reduced precision's "
             "class-IoU is compared with PyTorch fp32.")] = GATE_EPISODES,
    gate_margin: Annotated[float, typer.Option(
        help="Class-IoU points a reduced precision may lose against PyTorch fp32.")] = GATE_MARGIN,
    calibration_episodes: Annotated[int, typer.Option(
        help="int8: train-split episodes whose supports and queries calibrate the quantisation."
    )] = CALIBRATION_EPISODES,
    calibration_support: Annotated[Path | None, typer.Option(
        help="int8: calibrate on this folder of support images with masks beside them (as `vpi "
             "segment` reads them) instead of episodes.")] = None,
    calibration_queries: Annotated[Path | None, typer.Option(
        help="int8: query images (a file or folder) for --calibration-support (default: the "
             "support images).")] = None,
    dataset: Annotated[str | None, typer.Option(
        help=f"Episodes of the gate and of calibration: {dataset_help()} (default: the "
             "checkpoint's).")] = None,
    root: Annotated[str | None, typer.Option(help="Your copy of that dataset.")] = None,
    splits: Annotated[str | None, typer.Option(help="Folder of HSNet-format split lists.")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help=f"A test-time field of the model for the graphs to fix, e.g. "
                      f"model.blocks_per_sample=none (only {', '.join(TEST_TIME_MODEL_FIELDS)})."
    )] = None,
) -> None:
    """Export a checkpoint: ONNX graphs checked against PyTorch, optionally an engine's files too.

    A reduced precision (fp16, bf16, int8) is exported only if it keeps class-IoU within
    --gate-margin points of PyTorch fp32 on --gate-episodes held-out episodes. With --triton
    REPO: a Triton model repository instead, both graphs, a request validator and the `vpi`
    ensemble.
    """
    from vpi.export import export_model
    from vpi.export.calibration import CalibrationSource
    from vpi.export.gate import GateSettings
    from vpi.export.report import export_report

    test_time = _test_time_fields(sets)
    if triton is not None:
        _export_triton(checkpoint, triton, out, engine=engine, precision=precision, opset=opset,
                       force=force, test_time=test_time)
        return
    out = out or Path(EXPORT_DIR)
    if calibration_queries is not None and calibration_support is None:
        raise VpiError("--calibration-queries needs --calibration-support")
    manifest_path = export_model(
        checkpoint, out, engine=engine, precision=precision, opset=opset, force=force,
        gate=GateSettings(gate_episodes, gate_margin),
        calibration=CalibrationSource(calibration_episodes, calibration_support,
                                      (calibration_queries,) if calibration_queries else ()),
        data=_flags(data={"dataset": dataset, "root": root, "splits": splits}).get("data"),
        test_time=test_time,
    )
    _print_report(export_report(manifest_path, out))


def _test_time_fields(sets: list[str] | None) -> dict[str, Any]:
    """`vpi export --set model.X=V`: the model's fields that no weight depends on, nothing else."""
    from vpi.config import parse_overrides

    given = [item.partition("=")[0].strip() for item in sets or []]
    allowed = {f"model.{name}" for name in TEST_TIME_MODEL_FIELDS}
    other = [key for key in given if key not in allowed]
    if other:
        raise VpiError(f"vpi export --set changes only the model's test-time fields "
                       f"({', '.join('model.' + n for n in TEST_TIME_MODEL_FIELDS)}), not "
                       f"{', '.join(other)}")
    return parse_overrides(sets or []).get("model", {})


def _export_triton(checkpoint: Path, triton: Path, out: Path | None, *, engine: str,
                   precision: str | None, opset: int | None, force: bool,
                   test_time: dict[str, Any]) -> None:
    """`vpi export --triton REPO`: a Triton model repository, in place of the --out folder."""
    from vpi.export import write_triton_repository
    from vpi.export.report import triton_report

    if out is not None:
        raise VpiError("--out and --triton write different things: give one of them")
    repo = write_triton_repository(checkpoint, triton, engine=engine, precision=precision,
                                   opset=opset, force=force, test_time=test_time)
    _print_report(triton_report(repo))


def _print_report(items: list[Any]) -> None:
    """Print a report's tables and lines; a OneLine unwrapped, to be copied or read whole."""
    from vpi.export.report import OneLine

    for item in items:
        console.print(item, soft_wrap=isinstance(item, OneLine))


@app.command("segment")
def segment_command(
    support: Annotated[Path, typer.Argument(
        help="Folder of support images, each with NAME_mask.png (or NAME.png) beside it.")],
    queries: Annotated[list[Path], typer.Argument(help="Query image(s), or a folder of them.")],
    checkpoint: Annotated[Path | None, typer.Option(
        help="Checkpoint to run (default: the newest run of `vpi train`).")] = None,
    engine_dir: Annotated[Path | None, typer.Option(
        "--engine-dir", help="Folder written by `vpi export`.")] = None,
    backend: Annotated[str, typer.Option(help=backend_help(auto=True) + ".")] = "auto",
    samples: Annotated[int, typer.Option(
        "--samples", "-L", help=f"Samples of z, 1..{MAX_SAMPLES}.")] = DEFAULT_SAMPLES,
    seed: Annotated[int, typer.Option(help="Seed of the samples.")] = 0,
    threshold: Annotated[float, typer.Option(
        help="Foreground probability threshold.")] = DEFAULT_THRESHOLD,
    batch_size: Annotated[int, typer.Option(
        help=f"Queries per decoder call, 1..{MAX_BATCH}; the results do not depend on it.")
    ] = SEGMENT_BATCH,
    out: Annotated[Path, typer.Option(help="Folder for the PNGs and results.json.")] = Path(
        SEGMENT_DIR),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (torch and onnx).")] = "auto",
    precision: Annotated[str | None, typer.Option(
        help=precision_help("the export's, else fp32"))] = None,
    threads: Annotated[int | None, typer.Option(help=_threads_help())] = None,
    performance_hint: Annotated[str | None, typer.Option(help=_HINT_HELP)] = None,
) -> None:
    """Segment query images with a few annotated examples: mask, overlay, uncertainty PNGs.

    The support set is encoded once; the queries are decoded --batch-size at a time.
    """
    from vpi.runtime import segment_folder
    from vpi.runtime.report import segment_report

    results = segment_folder(
        support, queries, checkpoint=checkpoint, engine_dir=engine_dir, backend=backend,
        samples=samples, seed=seed, threshold=threshold, batch_size=batch_size, out_dir=out,
        options=RunnerOptions(device=device, threads=threads, precision=precision,
                              performance_hint=performance_hint),
        announce=lambda line: console.print(
            f"[yellow]{escape(line)}[/]" if line.startswith("warning") else f"[dim]{escape(line)}[/]"),
    )
    for item in segment_report(results, out):
        console.print(item)


@app.command("bench")
def bench_command(
    samples: Annotated[str | None, typer.Option(
        "--samples", "-L", help=f"L to measure, within 1..{MAX_SAMPLES}: a range 1..10, a list "
        f"1,2,4,8 or one value (default: {BENCH_SAMPLES[0]}..{BENCH_SAMPLES[-1]}).")] = None,
    backend: Annotated[str | None, typer.Option(
        help=backend_help(auto=False) + "; or a list: torch,onnx (default: every one; those that "
        "cannot run here are skipped, with the reason).")] = None,
    mode: Annotated[str, typer.Option(help="batched, looped or both.")] = "both",
    batch: Annotated[str, typer.Option(
        "--batch", "-B", help=f"Users per call B, 1..{MAX_BATCH}: a list 1,4,16 reports queries/s "
        "per backend, L and B.")] = "1",
    checkpoint: Annotated[Path | None, typer.Option(
        help="Checkpoint to measure (default: the newest run of `vpi train`, else --preset).")] = None,
    engine_dir: Annotated[Path | None, typer.Option(
        "--engine-dir", help="Folder written by `vpi export` (onnx, trt).")] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", help="Measure a preset with random weights, e.g. pascal-resnet50.")] = None,
    sets: Sets = None,
    image_size: Annotated[int | None, typer.Option(help="Input side of the preset, e.g. 384.")] = None,
    shots: Annotated[int, typer.Option(
        "--shots", "-k", help=f"Support pairs K, 1..{MAX_SHOTS}.")] = 1,
    warmup: Annotated[int, typer.Option(help="Untimed rounds first (a round runs every cell once).")] = 3,
    repeats: Annotated[int, typer.Option(help="Timed rounds: runs per backend, L and mode.")] = 20,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the inputs and random weights.")] = 0,
    threads: Annotated[int | None, typer.Option(help=_threads_help("torch"))] = None,
    precision: Annotated[str | None, typer.Option(help=precision_help(
        "on random weights the library's pick (the report says which), else the export's"))] = None,
    performance_hint: Annotated[str | None, typer.Option(help=_HINT_HELP)] = None,
    evaluate: Annotated[str | None, typer.Option(
        "--eval", help="builtin: add class-IoU for each L on the built-in test episodes.")] = None,
    eval_episodes: Annotated[int, typer.Option(help="Episodes scored by --eval.")] = 100,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every figure here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="PNG of latency (and IoU) against L.")] = None,
    cache_dir: Annotated[Path, typer.Option(
        help="Where random-weight checkpoints and exports are cached.")] = Path(BENCH_CACHE),
) -> None:
    """Measure latency, throughput and memory of the deployed pipeline over backends, L, mode and
    batch size."""
    from vpi.bench import resolve_model, run_benchmark

    settings = _bench_settings(
        samples, backend, mode, batch,
        shots=shots, warmup=warmup, repeats=repeats, device=device, seed=seed, threads=threads,
        precision=precision, performance_hint=performance_hint, eval=evaluate,
        eval_episodes=eval_episodes,
    )
    bench = resolve_model(
        checkpoint=checkpoint, engine_dir=engine_dir, preset=preset, seed=seed,
        overrides=_overrides(None, sets, _flags(data={"image_size": image_size})),
    )
    report = run_benchmark(bench, settings, cache_dir=cache_dir,
                           announce=lambda line: console.print(f"[dim]{escape(line)}[/]"))
    _print_bench(report, json_path, plot)


def _bench_settings(samples: str | None, backend: str | None, mode: str, batch: str,
                    **fixed: Any) -> BenchSettings:
    """`vpi bench`'s settings, its lists parsed and checked before any work; ``fixed``: the
    options it takes as they are."""
    from vpi.bench import MODES, BenchSettings
    from vpi.ranges import parse_choice_list, parse_int_list

    return BenchSettings(
        samples=tuple(parse_int_list(samples, name="--samples", low=1, high=MAX_SAMPLES))
        if samples is not None else BENCH_SAMPLES,
        backends=tuple(parse_choice_list(backend, name="--backend", choices=tuple(BACKENDS)))
        if backend else None,
        modes=MODES if mode == "both" else tuple(parse_choice_list(mode, name="--mode", choices=MODES)),
        batches=tuple(parse_int_list(batch, name="--batch", low=1, high=MAX_BATCH)),
        **fixed,
    )


def _print_bench(report: dict[str, Any], json_path: Path | None, plot: Path | None) -> None:
    """The table and summary lines of a benchmark; its JSON and plot where asked for."""
    from vpi.bench import bench_table, plot_bench, summary_lines, write_json

    console.print(bench_table(report))
    for line in summary_lines(report):
        console.print(escape(line), highlight=False)
    if json_path is not None:
        console.print(f"report: {write_json(report, json_path)}")
    if plot is not None:
        console.print(f"plot: {plot_bench(report, plot)}")


@app.command("demo")
def demo_command(
    checkpoint: Annotated[Path | None, typer.Argument(
        help="Checkpoint to run (default: the newest run of `vpi train`).")] = None,
    engine_dir: Annotated[Path | None, typer.Option(
        "--engine-dir", help="Folder written by `vpi export`, instead of a checkpoint.")] = None,
    backend: Annotated[str, typer.Option(
        help=backend_help(auto=True) + "; the page can switch among those that run the model.")
    ] = "auto",
    host: Annotated[str, typer.Option(
        help="Address to bind: 127.0.0.1 serves this machine only; 0.0.0.0 opens the page to the "
             "network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the page.")] = 7860,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (torch and onnx).")] = "auto",
) -> None:
    """A local web page: paint the object on 1-5 example photos, segment your own (vpi[demo]).

    The page shows the mask, its probability and uncertainty, the foreground share and the
    timings, and offers the mask PNGs and the results.json `vpi segment` would write.
    """
    from vpi.demo import serve_demo

    if checkpoint is not None and engine_dir is not None:
        raise VpiError("give a checkpoint or --engine-dir, not both")
    serve_demo(checkpoint, engine_dir=engine_dir, backend=backend, device=device, host=host,
               port=port, announce=lambda line: console.print(f"[dim]{escape(line)}[/]", soft_wrap=True))


def main() -> None:
    """Entry point: a VpiError becomes one red line and exit code 2, never a traceback."""
    try:
        app()
    except VpiError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
