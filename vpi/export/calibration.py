"""Calibration inputs of the int8 graphs: what post-training quantization measures ranges on.

Both graphs are calibrated on the inputs a deployment feeds them: the prior encoder on support
sets, the decoder on queries with prototypes drawn from their own support's prior (computed by
eager PyTorch in fp32, the noise from a seeded generator by ``draw_prototypes``, as `vpi eval`
draws it). Each input is one item of the graphs' batch axis (B = 1): the quantisation ranges do
not depend on B, and the int8 IR keeps B dynamic. The pairs come from the train split of
the checkpoint's dataset (or of the one given), never from the reported test episodes, or from a
folder of the user's own images laid out as `vpi segment` reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpi.config import CALIBRATION_EPISODES, Config
from vpi.data import build_episodes
from vpi.errors import ConfigError
from vpi.graphs import DECODER_INPUTS, PRIOR_INPUTS, GraphSpec
from vpi.model.gaussian import draw_prototypes
from vpi.runtime.base import Runner
from vpi.runtime.processing import image_tensor, load_image, mask_tensor
from vpi.runtime.support import find_queries, find_support_pairs, load_support

CALIBRATION_SPLIT = "train"
CALIBRATION_SEED_OFFSET = 1  # a seed stream of its own, apart from the gate's (vpi.export.gate)

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class CalibrationSource:
    """Where the calibration inputs come from: ``episodes`` train-split episodes of the
    config's dataset, or with ``support_dir`` that folder's image/mask pairs (``queries``, image
    files or folders, default: the support images themselves)."""

    episodes: int = CALIBRATION_EPISODES
    support_dir: Path | None = None
    queries: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--calibration-episodes is {self.episodes}; it must be 1 or more")


@dataclass
class Calibration:
    """Inputs per graph, ready for ``nncf.Dataset``, and what the manifest says of them."""

    inputs: dict[str, list[Feeds]]
    record: dict[str, Any]


def calibration_inputs(
    source: CalibrationSource, config: Config, reference: Runner
) -> Calibration:
    """The prior encoder's and the decoder's calibration inputs; ``reference`` (fp32 PyTorch)
    gives each support's prior, from which the decoder's L = ``config.eval.samples`` prototypes
    are drawn."""
    started = time.perf_counter()
    spec = reference.spec
    generator = torch.Generator().manual_seed(config.eval.seed + CALIBRATION_SEED_OFFSET)
    samples = config.eval.samples
    if source.support_dir is not None:
        supports, queries = _folder(source, spec)
        record: dict[str, Any] = {"source": "folder", "support": str(source.support_dir),
                                  "queries": [str(q) for q in source.queries] or "the support images"}
    else:
        seed = config.eval.seed + CALIBRATION_SEED_OFFSET
        dataset = build_episodes(config.data, CALIBRATION_SPLIT, shots=config.eval.shots,
                                 episodes=source.episodes, seed=seed)
        episodes = [dataset[i] for i in range(len(dataset))]
        supports = [(e.support_images[None], e.support_masks[None]) for e in episodes]
        queries = [(e.query_image[None], i) for i, e in enumerate(episodes)]
        record = {"source": "episodes", "dataset": config.data.dataset, "root": config.data.root,
                  "fold": config.data.fold, "split": CALIBRATION_SPLIT, "seed": seed,
                  "episodes": len(episodes), "shots": config.eval.shots}
    priors = [reference.run_prior(images, masks) for images, masks in supports]
    prior_inputs = [_feeds(PRIOR_INPUTS, images, masks) for images, masks in supports]
    decoder_inputs = []
    for query, index in queries:
        mean, variance = priors[index]
        prototypes = draw_prototypes(mean, variance, samples if spec.probabilistic else 1,
                                     generator, spec.probabilistic)
        decoder_inputs.append(_feeds(DECODER_INPUTS, query, prototypes))
    record.update(samples=samples, inputs={"prior_encoder": len(prior_inputs),
                                           "segmentation_decoder": len(decoder_inputs)},
                  prepare_s=round(time.perf_counter() - started, 3))
    return Calibration({"prior_encoder": prior_inputs, "segmentation_decoder": decoder_inputs},
                       record)


def _folder(
    source: CalibrationSource, spec: GraphSpec
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, int]]]:
    """Each support pair alone and, from two on, all of them (up to K max) as one support set,
    (1, K, 3, S, S) and (1, K, 1, S, S); each query (1, 3, S, S) with the prior of the whole set
    (the last support entry)."""
    pairs = find_support_pairs(source.support_dir)  # type: ignore[arg-type]
    images, masks = load_support(pairs)
    side = spec.input_size
    image_batch = torch.stack([image_tensor(image, side) for image in images])
    mask_batch = torch.stack([mask_tensor(mask, side) for mask in masks])
    supports = [(image_batch[None, i:i + 1], mask_batch[None, i:i + 1]) for i in range(len(pairs))]
    if len(pairs) > 1:
        supports.append((image_batch[None, :spec.max_shots], mask_batch[None, :spec.max_shots]))
    files = find_queries(source.queries) if source.queries else [pair.image for pair in pairs]
    queries = [(image_tensor(load_image(path, "calibration query"), side)[None], len(supports) - 1)
               for path in files]
    return supports, queries


def _feeds(names: tuple[str, str], first: torch.Tensor, second: torch.Tensor) -> Feeds:
    return dict(zip(names, (first.contiguous().numpy(), second.contiguous().numpy()), strict=True))
