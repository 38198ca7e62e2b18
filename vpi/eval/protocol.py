"""The test protocol behind `vpi eval`: checkpoints x seeds, controls, baselines, one JSON report.

Each checkpoint is scored on the test fold of its own config (or the one asked for), on the
seeded episode list; several checkpoints (one per fold) give per-fold numbers and their mean, and
several seeds give mean and standard deviation, as BAM reports. Every model figure stands beside
its swapped-support control and support gain (``vpi.eval.controls``), and beside the
training-free matcher (``vpi.eval.matcher``) with its own control. The report records every
setting that changes a number (dataset, fold convention, resolution, k, L, aggregation, seeds)
and how each checkpoint was chosen.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vpi.checkpoint import failure_threshold, load_model
from vpi.config import Config, apply_overrides, check_test_time_model
from vpi.data import build_episodes
from vpi.device import resolve_device
from vpi.errors import ConfigError
from vpi.eval.controls import CachedEpisodes
from vpi.eval.engine import RunnerPredictor, open_engine
from vpi.eval.matcher import PrototypeMatcher, build_matcher
from vpi.eval.scoring import evaluate_baselines, evaluate_model
from vpi.model import VPIModel

METRICS = ("class_iou", "fb_iou", "positive_iou")
CONTROLS = ("swapped_class_iou", "support_gain")  # model and matcher runs only
MATCHER = "matcher"  # the training-free matcher's label in runs and summary
Announce = Callable[[str], None]


def run_evaluation(
    checkpoints: Sequence[str | Path] = (),
    *,
    engine_dir: str | Path | None = None,
    backend: str = "auto",
    precision: str | None = None,
    overrides: dict[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
    shots: Sequence[int] | None = None,
    samples: Sequence[int] | None = None,
    aggregations: Sequence[str] | None = None,
    compare: Sequence[str | Path] = (),
    baselines: bool = True,
    uncertainty: bool = False,
    device: str = "auto",
    announce: Announce | None = None,
) -> dict[str, Any]:
    """Score ``checkpoints`` (and ``compare``, e.g. the deterministic twin) on the same episodes.

    ``engine_dir`` scores an export on ``backend`` (with ``precision`` where it takes one) in
    place of ``checkpoints``, on the episodes of the config its manifest records: the same
    episodes, noise, controls and baselines as the checkpoint it came from.
    ``shots``, ``samples`` and ``aggregations`` sweep k, L and the k-shot rule (the paper's
    Table 1, Fig. 3 and Table 2); where not given, the checkpoint's config decides.
    ``overrides`` is a nested dict laid over each checkpoint's config; out-of-range values fail
    before any work, with the field named. With ``baselines``, the training-free matcher runs on
    the first model's encoder; where it cannot (no ImageNet weights at hand) the report's
    ``matcher_skipped`` says why. With ``uncertainty``, each model run also records how well
    its uncertainty maps flag its errors (``vpi.eval.uncertainty``).
    """
    _check_sources(checkpoints, engine_dir, precision)
    overrides = overrides or {}
    announce = announce or (lambda _: None)
    tally = _Tally()
    settings: dict[str, Any] | None = None
    selection: dict[str, Any] = {}
    sources = [("model", path, False) for path in checkpoints]
    sources += [("model", engine_dir, True)] if engine_dir is not None else []
    sources += [("compare", path, False) for path in compare]
    for group, path, is_export in sources:
        source = _open_source(path, is_export, backend, device, precision, announce)
        selection[str(path)] = source.selection
        config = apply_overrides(source.config, overrides)
        if config.model != source.config.model:
            if is_export:
                check_test_time_model(source.config.model, config.model, export=True)
            source.model.use_test_time(config.model)
        label = _label(config, group, path, compare, tally.runs)
        grid = _grid(config, seeds, shots, samples, aggregations)
        if is_export:
            _check_engine(source.model, config, grid)
        for setting in grid:
            _score_setting(tally, source, label, path, config, setting, baselines=baselines,
                           uncertainty=uncertainty, announce=announce)
        settings = settings or _settings(config, seeds, shots, samples, aggregations)
    all_runs = tally.runs + [r for records in tally.baseline_runs.values() for r in records]
    report = {"settings": settings, "checkpoint_selection": selection, "runs": all_runs,
              "summary": summarise(all_runs)}
    if isinstance(tally.matcher, str):
        report["matcher_skipped"] = tally.matcher
    return report


@dataclass
class _Tally:
    """What the evaluation gathers over its sources: the models' runs, the baselines' runs per
    (fold, seed, k), the test episodes prepared once for every model, and the training-free
    matcher, built for the first model (a str: why it cannot run)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    baseline_runs: dict[tuple, list[dict[str, Any]]] = field(default_factory=dict)
    datasets: dict[tuple, CachedEpisodes] = field(default_factory=dict)
    matcher: PrototypeMatcher | str | None = None


def _score_setting(
    tally: _Tally,
    source: _Source,
    label: str,
    path: str | Path,
    config: Config,
    setting: tuple[int, int, int, str],
    *,
    baselines: bool,
    uncertainty: bool,
    announce: Announce,
) -> None:
    """Score ``source`` at one (seed, k, L, rule) of its grid into ``tally``; the baselines too,
    once per (fold, seed, k), since they depend on neither L nor the rule."""
    seed, k, L, rule = setting
    grid_config = apply_overrides(config, {"eval": {"shots": k, "samples": L},
                                           "model": {"aggregation": rule}})
    dataset = _prepared_episodes(tally.datasets, grid_config, seed)
    announce(f"{label}: {Path(path).name} fold {config.data.fold} seed {seed} "
             f"k={k} L={L} {rule}: {len(dataset)} episodes")
    metrics = evaluate_model(
        source.model, dataset, samples=L, seed=seed, threshold=config.eval.threshold,
        aggregation=rule, score_at=config.data.score_at, device=source.device,
        num_workers=config.data.num_workers, uncertainty=uncertainty,
        failure_threshold=source.failure_threshold,
    )
    tally.runs.append(_run_record(label, path, grid_config, seed, metrics, dataset.class_names))
    key = (config.data.fold, seed, k)
    if baselines and key not in tally.baseline_runs:
        tally.baseline_runs[key], tally.matcher = _score_baselines(
            dataset, config, grid_config, seed, tally.matcher, source.device, announce)


def _check_sources(
    checkpoints: Sequence[str | Path], engine_dir: str | Path | None, precision: str | None
) -> None:
    """Checkpoints or one export, and a precision only for an export."""
    if engine_dir is not None and checkpoints:
        raise ConfigError("give checkpoints or an export folder (--engine-dir), not both")
    if engine_dir is None and not checkpoints:
        raise ConfigError("give a checkpoint or an export folder (--engine-dir) to score")
    if engine_dir is None and precision is not None:
        raise ConfigError("--precision applies to an export (--engine-dir); a checkpoint runs in "
                          "fp32")


@dataclass
class _Source:
    """What one checkpoint or export brings to the evaluation."""

    model: VPIModel | RunnerPredictor
    config: Config
    device: torch.device  # where its input tensors go
    selection: dict[str, Any]  # how the checkpoint was chosen, for the report
    failure_threshold: float | None  # its likely-failed threshold, chosen in training


def _open_source(
    path: str | Path, is_export: bool, backend: str, device: str, precision: str | None,
    announce: Announce,
) -> _Source:
    if is_export:
        model, config, score_device, selection = _open_export(
            path, backend, device, precision, announce)
        return _Source(model, config, score_device, selection, model.runner.spec.failure_threshold)
    torch_device = resolve_device(device)
    model, config, state = load_model(path, torch_device)
    return _Source(model, config, torch_device, state.get("selection", {"by": "not recorded"}),
                   failure_threshold(state))


def _prepared_episodes(
    datasets: dict[tuple, CachedEpisodes], config: Config, seed: int
) -> CachedEpisodes:
    """The test episodes of ``config`` (its data, episode count and k) and ``seed``, prepared
    once for every model, L and rule that scores them."""
    k, count = config.eval.shots, config.eval.episodes
    key = (config.data, count, seed, k)
    if key not in datasets:
        datasets[key] = CachedEpisodes(build_episodes(config.data, "test", shots=k,
                                                      episodes=count, seed=seed))
    return datasets[key]


def _open_export(
    path: str | Path, backend: str, device: str, precision: str | None, announce: Announce
) -> tuple[RunnerPredictor, Config, torch.device, dict[str, Any]]:
    """The export's predictor on ``backend``, its config, the device its tensors go to and how it
    was chosen; the backend and its warnings announced."""
    model, config, manifest = open_engine(path, backend, device=device, precision=precision)
    selection = {"by": "export", "backend": model.runner.name, "checkpoint": manifest["checkpoint"]}
    announce(f"backend: {model.runner.name}")
    for warning in model.runner.warnings:
        announce(f"warning: {warning}")
    return model, config, torch.device("cpu"), selection  # a runner takes and returns CPU tensors


def _score_baselines(
    dataset: CachedEpisodes,
    config: Config,
    grid_config: Config,
    seed: int,
    matcher: PrototypeMatcher | str | None,
    device: torch.device,
    announce: Announce,
) -> tuple[list[dict[str, Any]], PrototypeMatcher | str]:
    """The baselines' runs on ``dataset`` and the training-free matcher's (built on ``config``'s
    encoder the first time, or why it cannot run); returns them and the matcher."""
    names = dataset.class_names
    scored = evaluate_baselines(dataset, score_at=config.data.score_at,
                                num_workers=config.data.num_workers)
    records = [_run_record(name, None, grid_config, seed, m, names, baseline=True)
               for name, m in scored.items()]
    if matcher is None:
        matcher = _matcher(config, device, announce)
    if isinstance(matcher, PrototypeMatcher):
        announce(f"{MATCHER}: fold {config.data.fold} seed {seed} k={grid_config.eval.shots}")
        scored_matcher = evaluate_model(
            matcher, dataset, samples=1, seed=seed, threshold=0.5,
            score_at=config.data.score_at, device=device, num_workers=config.data.num_workers)
        records.append(_run_record(MATCHER, None, grid_config, seed, scored_matcher, names,
                                   baseline=True))
    return records, matcher


def _matcher(
    config: Config, device: torch.device, announce: Announce
) -> PrototypeMatcher | str:
    """The matcher on ``config``'s encoder, or why it cannot run (announced)."""
    try:
        return build_matcher(config.model, device)
    except ConfigError as exc:
        reason = f"no training-free matcher: {exc}"
        announce(reason)
        return reason


def models_under_matcher(report: dict[str, Any]) -> list[str]:
    """Model entries whose class-IoU is under the matcher's at the same k: such a model learned
    less than nothing on this data. Each as "label (k, L): model vs matcher"."""
    matcher = {e["shots"]: e["class_iou"]["mean"] for e in report["summary"]
               if e["label"] == MATCHER}
    return [
        f"{e['label']} (k={e['shots']}, L={e['samples']}): {100 * e['class_iou']['mean']:.1f} "
        f"against {100 * matcher[e['shots']]:.1f}"
        for e in report["summary"]
        if e["samples"] is not None and e["shots"] in matcher
        and e["class_iou"]["mean"] < matcher[e["shots"]]
    ]


def _grid(
    config: Config,
    seeds: Sequence[int] | None,
    shots: Sequence[int] | None,
    samples: Sequence[int] | None,
    aggregations: Sequence[str] | None,
) -> list[tuple[int, int, int, str]]:
    return [
        (seed, k, L, rule)
        for seed in (seeds or [config.eval.seed])
        for k in (shots or [config.eval.shots])
        for L in (samples or [config.eval.samples])
        for rule in (aggregations or [config.model.aggregation])
    ]


def _check_engine(
    predictor: RunnerPredictor, config: Config, grid: list[tuple[int, int, int, str]]
) -> None:
    """Settings an export's graphs cannot run fail before any episode is scored."""
    spec = predictor.runner.spec
    if config.data.image_size != spec.input_size:
        raise ConfigError(f"the export's graphs take {spec.input_size}×{spec.input_size} images; "
                          f"data.image_size {config.data.image_size} needs the checkpoint")
    for _, k, L, rule in grid:
        predictor.runner.check_request(shots=k, samples=L)
        predictor.check_aggregation(rule)


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per predictor and setting (k, L, rule): each metric per fold (mean over seeds),
    the mean over folds, and the std over seeds of the fold-mean."""
    summary: list[dict[str, Any]] = []
    keys = dict.fromkeys((r["label"], r["shots"], r["samples"], r["aggregation"]) for r in runs)
    for key in keys:
        mine = [r for r in runs if (r["label"], r["shots"], r["samples"], r["aggregation"]) == key]
        folds = sorted({r["fold"] for r in mine})
        seeds = sorted({r["seed"] for r in mine})
        entry: dict[str, Any] = dict(zip(("label", "shots", "samples", "aggregation"), key,
                                         strict=True))
        entry.update(folds=folds, seeds=seeds)
        for metric in METRICS + CONTROLS:
            if metric not in mine[0]:
                continue
            per_fold = {
                f: statistics.fmean(r[metric] for r in mine if r["fold"] == f) for f in folds
            }
            per_seed = [
                statistics.fmean(r[metric] for r in mine if r["seed"] == s) for s in seeds
            ]
            entry[metric] = {
                "per_fold": per_fold,
                "mean": statistics.fmean(per_fold.values()),
                "std": statistics.pstdev(per_seed) if len(per_seed) > 1 else 0.0,
            }
        summary.append(entry)
    return summary


def _label(
    config: Config, group: str, path: str | Path, compare: Sequence, runs: list[dict[str, Any]]
) -> str:
    """"model" alone; with --compare, the kind of model (the Table 1 ablation), made unique."""
    if not compare:
        return "model"
    kind = "probabilistic" if config.model.probabilistic else "deterministic"
    taken = {r["label"] for r in runs if r["checkpoint"] != str(path)}
    return kind if group == "model" or kind not in taken else f"{kind} ({Path(path).stem})"


def _run_record(
    label: str,
    path: str | Path | None,
    config: Config,
    seed: int,
    metrics: dict[str, Any],
    class_names: dict[int, str],
    baseline: bool = False,
) -> dict[str, Any]:
    """One scored run; a baseline depends on neither L nor the k-shot rule, so it records None;
    what was scored with a swapped-support control (a model, the matcher) records it. Per-class
    figures are keyed by the class's name (an FSS folder's name, a PASCAL class), else its id."""
    controls = {} if "swapped" not in metrics else {
        "swapped_class_iou": metrics["swapped"]["class_iou"],
        "swapped_fb_iou": metrics["swapped"]["fb_iou"],
        "support_gain": metrics["support_gain"],
    }
    return {
        "label": label,
        "checkpoint": str(path) if path is not None else None,
        "fold": config.data.fold,
        "seed": seed,
        "shots": config.eval.shots,
        "samples": None if baseline else config.eval.samples,
        "aggregation": None if baseline else config.model.aggregation,
        "episodes": metrics["episodes"],
        **{m: metrics[m] for m in METRICS},
        **controls,
        "per_class_iou": {class_names.get(k, str(k)): v
                          for k, v in metrics["per_class_iou"].items()},
        **({"uncertainty": metrics["uncertainty"]} if "uncertainty" in metrics else {}),
    }


def _settings(
    config: Config,
    seeds: Sequence[int] | None,
    shots: Sequence[int] | None,
    samples: Sequence[int] | None,
    aggregations: Sequence[str] | None,
) -> dict[str, Any]:
    """Everything that changes a number, so a JSON report says how it was made."""
    return {
        "dataset": config.data.dataset,
        "coco_split": config.data.coco_split if config.data.dataset == "coco" else None,
        "score_at": config.data.score_at,
        "image_size": config.data.image_size,
        "shots": list(shots or [config.eval.shots]),
        "samples": list(samples or [config.eval.samples]),
        "aggregation": list(aggregations or [config.model.aggregation]),
        "episodes": config.eval.episodes,
        "seeds": list(seeds) if seeds is not None else [config.eval.seed],
        "threshold": config.eval.threshold,
    }
