"""Scoring a deployed engine: a predictor that drives a Runner the way ``VPIModel.predict`` runs.

`vpi eval --engine-dir` and the accuracy gate of `vpi export` score the exported graphs through
the same code as the PyTorch model (``vpi.eval.scoring``), so the figures differ only by what the
engine computes. The noise comes from the same generator in the same (B, L, D) draws as the
model's (``draw_prototypes``), so an fp32 engine reproduces the model's class-IoU to float error.
A batch of episodes goes through each graph in one call (the graphs' batch axis B, in calls of
at most its largest B), as it goes through the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vpi.config import DEFAULT_SAMPLES, Config, config_from_dict
from vpi.errors import BackendError, ConfigError, VpiError
from vpi.graphs import SampleMaps
from vpi.manifest import read_manifest
from vpi.model.gaussian import draw_prototypes
from vpi.runtime.base import Runner
from vpi.runtime.select import open_backend


class RunnerPredictor:
    """``predict`` over a Runner: the priors of a batch of episodes, their noise in one draw, then
    the decoder, each graph called on up to ``spec.max_batch`` episodes at once. ``aggregation``
    is the k-shot rule baked into the exported prior encoder."""

    def __init__(self, runner: Runner, aggregation: str) -> None:
        self.runner = runner
        self.aggregation = aggregation

    def check_aggregation(self, rule: str | None) -> None:
        """An exported prior encoder fuses shots by one rule; the deterministic twin's is always
        the plain mean whatever it is told, as for the PyTorch model."""
        if rule is not None and rule != self.aggregation and self.runner.spec.probabilistic:
            raise ConfigError(f"the exported prior encoder fuses shots by {self.aggregation!r}; "
                              f"aggregation {rule!r} needs the checkpoint (vpi eval CHECKPOINT)")

    def predict(
        self,
        support_images: torch.Tensor,
        support_masks: torch.Tensor,
        query_images: torch.Tensor,
        samples: int = DEFAULT_SAMPLES,
        generator: torch.Generator | None = None,
    ) -> SampleMaps:
        """Supports (B, K, 3, H, W), masks (B, K, 1, H, W), queries (B, 3, H, W) -> the mean
        probability and uncertainty maps over the L samples, as ``VPIModel.predict`` returns."""
        mean, variance = self._in_batches(self.runner.run_prior, support_images, support_masks)
        probabilistic = self.runner.spec.probabilistic
        z = draw_prototypes(mean, variance, samples if probabilistic else 1, generator, probabilistic)
        return SampleMaps(*self._in_batches(self.runner.run_decoder, query_images, z))

    def _in_batches(
        self, run: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]],
        first: torch.Tensor, second: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """``run`` on the items in calls of at most the graphs' B, its answers joined again."""
        size = self.runner.spec.max_batch
        answers = [run(first[i:i + size], second[i:i + size]) for i in range(0, len(first), size)]
        return tuple(torch.cat(parts) for parts in zip(*answers, strict=True))


def open_engine(
    engine_dir: str | Path, backend: str = "auto", **options: Any
) -> tuple[RunnerPredictor, Config, dict[str, Any]]:
    """The predictor of an export folder on ``backend``, the checkpoint's config as the manifest
    records it, and the manifest; ``options`` are ``open_backend``'s (device, precision, ...)."""
    manifest = read_manifest(engine_dir)
    try:
        config = config_from_dict(manifest["config"])
    except (KeyError, VpiError) as exc:
        raise BackendError(f"export {str(engine_dir)!r} records no usable config ({exc}): export "
                           "the checkpoint again") from None
    runner = open_backend(backend, engine_dir=engine_dir, **options).runner
    return RunnerPredictor(runner, manifest["aggregation"]), config, manifest
