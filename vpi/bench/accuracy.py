"""Class-IoU for each L on the built-in test episodes, through the deployed runner.

Scoring through the runner (not the training-time model) measures the pipeline whose latency the
benchmark reports. Each episode draws its noise once, eps (L_max, D), and the first L rows serve
every L, so the curve over L compares nested sets of samples rather than unrelated draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from vpi.config import Config
from vpi.data import build_episodes
from vpi.graphs import draw_noise, noise_generator, reparameterise
from vpi.metrics import IoUAccumulator
from vpi.runtime.base import Runner


def score_builtin(
    runner: Runner,
    config: Config,
    samples: Sequence[int],
    *,
    shots: int,
    episodes: int,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Class-IoU and FB-IoU for each L in ``samples`` on ``episodes`` built-in test episodes of
    the config's held-out fold, at the runner's input size and the config's threshold."""
    data = replace(config.data, dataset="builtin", image_size=runner.spec.input_size)
    dataset = build_episodes(data, "test", shots=shots, episodes=episodes, seed=seed)
    accumulators = {L: IoUAccumulator(dataset.class_ids) for L in samples}
    largest = max(samples)
    threshold = config.eval.threshold
    for index in range(len(dataset)):
        episode = dataset[index]
        mean, variance = runner.run_prior(episode.support_images[None], episode.support_masks[None])
        noise = draw_noise((largest, mean.shape[-1]), noise_generator(seed, index),
                           runner.spec.probabilistic)
        prototypes = reparameterise(mean, variance, noise)
        for L, accumulator in accumulators.items():
            probability = runner.run_decoder(episode.query_image[None], prototypes[None, :L]).probability
            accumulator.update(probability > threshold, episode.query_mask[None], [episode.class_id])
    results = []
    for L, accumulator in accumulators.items():
        metrics = accumulator.compute()
        results.append({"L": L, "class_iou": metrics["class_iou"], "fb_iou": metrics["fb_iou"],
                        "episodes": metrics["episodes"]})
    return results
