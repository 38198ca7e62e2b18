"""The test protocol behind `vpi eval`: checkpoints x seeds, the baselines, and one JSON report.

Each checkpoint is scored on the test fold of its own config (or the one asked for), on the
seeded episode list; several checkpoints (one per fold) give per-fold numbers and their mean, and
several seeds give mean and standard deviation, as BAM reports. The report records every setting
that changes a number: dataset, fold convention, resolution, k, L, aggregation, seeds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from vpi.checkpoint import load_model
from vpi.config import Config, apply_overrides
from vpi.data import build_episodes
from vpi.device import resolve_device
from vpi.evaluate import evaluate_baselines, evaluate_model

METRICS = ("class_iou", "fb_iou", "positive_iou")
Announce = Callable[[str], None]


def run_evaluation(
    checkpoints: Sequence[str | Path],
    *,
    overrides: dict[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
    compare: Sequence[str | Path] = (),
    baselines: bool = True,
    device: str = "auto",
    announce: Announce | None = None,
) -> dict[str, Any]:
    """Score ``checkpoints`` (and ``compare``, e.g. the deterministic twin) on the same episodes.

    ``overrides`` is a nested dict laid over each checkpoint's config (``{"eval": {"shots": 5}}``);
    out-of-range values fail here, before any work, with the field named.
    """
    overrides = overrides or {}
    announce = announce or (lambda _: None)
    torch_device = resolve_device(device)
    runs: list[dict[str, Any]] = []
    baseline_runs: dict[tuple, list[dict[str, Any]]] = {}
    settings: dict[str, Any] | None = None
    for group, paths in (("model", checkpoints), ("compare", compare)):
        for path in paths:
            model, config, _ = load_model(path, torch_device)
            config = apply_overrides(config, overrides)
            label = _label(config, group, path, compare, runs)
            for seed in seeds if seeds is not None else [config.eval.seed]:
                dataset = build_episodes(config.data, "test", shots=config.eval.shots,
                                         episodes=config.eval.episodes, seed=seed)
                announce(f"{label}: {Path(path).name} fold {config.data.fold} seed {seed}, "
                         f"{len(dataset)} episodes")
                metrics = evaluate_model(
                    model, dataset, samples=config.eval.samples, seed=seed,
                    threshold=config.eval.threshold, aggregation=config.model.aggregation,
                    score_at=config.data.score_at, device=torch_device,
                    num_workers=config.data.num_workers,
                )
                runs.append(_run_record(label, path, config, seed, metrics))
                key = (config.data.fold, seed)
                if baselines and key not in baseline_runs:
                    scored = evaluate_baselines(dataset, score_at=config.data.score_at,
                                                num_workers=config.data.num_workers)
                    baseline_runs[key] = [_run_record(name, None, config, seed, m)
                                          for name, m in scored.items()]
            settings = settings or _settings(config, seeds)
    all_runs = runs + [r for records in baseline_runs.values() for r in records]
    return {"settings": settings, "runs": all_runs, "summary": summarise(all_runs)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per label: each metric per fold (mean over seeds), the mean over folds, and the std over
    seeds of the fold-mean."""
    summary: dict[str, dict[str, Any]] = {}
    for label in dict.fromkeys(r["label"] for r in runs):
        mine = [r for r in runs if r["label"] == label]
        folds = sorted({r["fold"] for r in mine})
        seeds = sorted({r["seed"] for r in mine})
        entry: dict[str, Any] = {"folds": folds, "seeds": seeds}
        for metric in METRICS:
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
        summary[label] = entry
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
    label: str, path: str | Path | None, config: Config, seed: int, metrics: dict[str, Any]
) -> dict[str, Any]:
    return {
        "label": label,
        "checkpoint": str(path) if path is not None else None,
        "fold": config.data.fold,
        "seed": seed,
        "episodes": metrics["episodes"],
        **{m: metrics[m] for m in METRICS},
        "per_class_iou": {str(k): v for k, v in metrics["per_class_iou"].items()},
    }


def _settings(config: Config, seeds: Sequence[int] | None) -> dict[str, Any]:
    return {
        "dataset": config.data.dataset,
        "coco_split": config.data.coco_split if config.data.dataset == "coco" else None,
        "score_at": config.data.score_at,
        "image_size": config.data.image_size,
        "shots": config.eval.shots,
        "samples": config.eval.samples,
        "aggregation": config.model.aggregation,
        "episodes": config.eval.episodes,
        "seeds": list(seeds) if seeds is not None else [config.eval.seed],
        "threshold": config.eval.threshold,
    }
