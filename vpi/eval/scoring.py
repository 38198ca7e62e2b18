"""Scoring a model (and the baselines) on a fixed, seeded list of test episodes.

Two runs with the same checkpoint, dataset settings and seed give identical numbers: the episode
list depends only on the seed, and the Monte Carlo draws come from one generator seeded alike.
A predictor is the PyTorch model or a deployed engine (``vpi.eval.engine.RunnerPredictor``): both
go through the same scoring, controls and noise draws.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from vpi.config import DEFAULT_SAMPLES, DEFAULT_THRESHOLD
from vpi.data.episode import Episode, EpisodeBatch, collate_episodes
from vpi.eval.baselines import BASELINES
from vpi.eval.controls import SwappedSupport, support_gain
from vpi.eval.uncertainty import UncertaintyAccumulator
from vpi.graphs import SampleMaps
from vpi.metrics import IoUAccumulator
from vpi.model import VPIModel

Progress = Callable[[int], None]  # called with the number of episodes just scored


class EnginePredictor(Protocol):
    """What scoring needs of a deployed engine (``vpi.eval.engine.RunnerPredictor``): the
    model's ``predict``, and a check of the k-shot rule, which its graph fixes."""

    def predict(
        self, support_images: torch.Tensor, support_masks: torch.Tensor,
        query_images: torch.Tensor, samples: int = DEFAULT_SAMPLES, generator: torch.Generator | None = None,
    ) -> SampleMaps: ...

    def check_aggregation(self, rule: str | None) -> None: ...


Predictor = VPIModel | EnginePredictor


def iterate_batches(
    dataset: Dataset[Episode], batch_size: int, num_workers: int = 0
) -> Iterator[tuple[list[int], EpisodeBatch]]:
    """Episodes in index order, batched; yields their indices too (for original-size scoring)."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        collate_fn=collate_episodes,
    )
    start = 0
    for batch in loader:
        count = batch.class_ids.shape[0]
        yield list(range(start, start + count)), batch
        start += count


def evaluate_model(
    model: Predictor, dataset: Dataset[Episode], *, uncertainty: bool = False,
    failure_threshold: float | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Class-IoU, FB-IoU and positive IoU of ``model`` over every episode of ``dataset``, beside
    the swapped-support control (``swapped``: the same metrics) and the ``support_gain`` in
    class-IoU points; with ``uncertainty``, how well its uncertainty maps flag its errors
    (``vpi.eval.uncertainty``), and how the model's ``failure_threshold`` (chosen in training)
    flags the failed episodes here. The other keyword arguments are ``score_model``'s."""
    flags = None
    if uncertainty:
        flags = UncertaintyAccumulator(getattr(dataset, "class_ids", ()),
                                       kwargs.get("threshold", DEFAULT_THRESHOLD), kwargs.get("seed", 0))
    metrics = score_model(model, dataset, uncertainty=flags, **kwargs).compute()
    if flags is not None:
        metrics["uncertainty"] = flags.compute(failure_threshold)
    swapped = score_model(model, SwappedSupport(dataset), **kwargs).compute()
    metrics["swapped"] = {k: swapped[k] for k in ("class_iou", "fb_iou", "positive_iou")}
    metrics["support_gain"] = support_gain(metrics["class_iou"], swapped["class_iou"])
    return metrics


@torch.no_grad()
def score_model(
    model: Predictor,
    dataset: Dataset[Episode],
    *,
    samples: int,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    aggregation: str | None = None,
    score_at: str = "input",
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    num_workers: int = 0,
    progress: Progress | None = None,
    uncertainty: UncertaintyAccumulator | None = None,
) -> IoUAccumulator:
    """The pooled counts of ``model`` over ``dataset`` (sum them across processes, then compute).

    ``aggregation`` overrides the checkpoint's k-shot rule (Eq. 6 "variance" or Eq. 10 "mean");
    an engine takes only its graph's. ``score_at="original"`` scores at the image's original size
    where the dataset provides it (``original_query_mask(i)``), as PFENet/BAM do; "input" scores
    at network resolution (HSNet). ``batch_size`` groups the noise draws, so an engine scored
    with the model's batch size gets the model's z. ``uncertainty`` is fed every batch's maps,
    at network resolution.
    """
    with _scoring(model, aggregation):
        generator = torch.Generator().manual_seed(seed)
        accumulator = IoUAccumulator(getattr(dataset, "class_ids", ()))
        for indices, batch in iterate_batches(dataset, batch_size, num_workers):
            batch = batch.to(device)
            maps = model.predict(
                batch.support_images, batch.support_masks, batch.query_image,
                samples=samples, generator=generator,
            )
            _score(accumulator, dataset, indices, maps.probability.float().cpu(), batch, threshold,
                   score_at)
            if uncertainty is not None:
                uncertainty.update(maps, batch.query_mask, batch.class_ids.tolist())
            if progress:
                progress(len(indices))
    return accumulator


@contextmanager
def _scoring(model: Predictor, aggregation: str | None) -> Iterator[None]:
    """The model in eval mode under ``aggregation`` for the run, restored after; an engine, whose
    graph fixes the rule, only checks it."""
    if not isinstance(model, VPIModel):
        model.check_aggregation(aggregation)
        yield
        return
    was_training = model.training
    model.eval()
    original_config = model.config
    if aggregation is not None:
        model.config = dataclasses.replace(model.config, aggregation=aggregation)
    try:
        yield
    finally:
        model.config = original_config
        model.train(was_training)


def evaluate_baselines(
    dataset: Dataset[Episode], *, batch_size: int = 8, num_workers: int = 0,
    score_at: str = "input",
) -> dict[str, dict[str, Any]]:
    """The reference predictors on the same episodes as the model; one that needs what the data
    lacks (the oracle on a real benchmark) is left out."""
    class_ids = getattr(dataset, "class_ids", ())
    accumulators = {name: IoUAccumulator(class_ids) for name in BASELINES}
    for indices, batch in iterate_batches(dataset, batch_size, num_workers):
        for name, predictor in BASELINES.items():
            prediction = predictor(batch)
            if prediction is None:
                accumulators.pop(name, None)
            elif name in accumulators:
                _score(accumulators[name], dataset, indices, prediction.float(), batch, 0.5,
                       score_at)
    return {name: acc.compute() for name, acc in accumulators.items()}


def _score(
    accumulator: IoUAccumulator,
    dataset: Dataset[Episode],
    indices: list[int],
    probability: torch.Tensor,
    batch: EpisodeBatch,
    threshold: float,
    score_at: str,
) -> None:
    """Add a batch of predictions (B, H, W) in [0, 1] to the pooled counts."""
    class_ids = batch.class_ids.tolist()
    original = getattr(dataset, "original_query_mask", None)
    if score_at != "original" or original is None:
        accumulator.update(probability > threshold, batch.query_mask.cpu(), class_ids)
        return
    for index, prob, class_id in zip(indices, probability, class_ids, strict=True):
        target = original(index)
        resized = F.interpolate(prob[None, None], size=target.shape, mode="bilinear",
                                align_corners=False)[0, 0]
        accumulator.update(resized > threshold, target, [class_id])
