"""Segmenter: the one object applications use, on top of any Runner.

``encode_support`` runs the prior encoder once per support set (cached by content, so a stream of
queries against the same examples pays for it once); ``segment`` draws the L prototypes with a
seeded CPU generator, runs the decoder and returns maps at the query's own size, and
``segment_batch`` does so for several queries in one decoder call. The noise is drawn here, never
in a graph, so a seed gives the same prototypes on every backend and in every batch.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from vpi.config import DEFAULT_SAMPLES, DEFAULT_THRESHOLD
from vpi.errors import DataError
from vpi.graphs import confidence, draw_noise, failure_score, noise_generator, reparameterise
from vpi.ranges import check_threshold
from vpi.runtime.base import Runner
from vpi.runtime.processing import (
    check_support_pair,
    image_tensor,
    mask_tensor,
    to_original,
)


@dataclass(frozen=True)
class Prior:
    """The aggregated prior p(z|S): mean and variance (1, D) of ``shots`` support pairs."""

    mean: torch.Tensor
    variance: torch.Tensor
    shots: int
    key: str  # sha256 of the preprocessed support tensors


@dataclass
class Segmentation:
    """One query's result at its original (H, W)."""

    probability: np.ndarray  # float32, mean foreground probability over the L samples (Eq. 5)
    mask: np.ndarray  # bool, probability > threshold
    uncertainty: np.ndarray  # float32, variance of the L probability maps (0..0.25)
    entropy: np.ndarray  # float32, of the mean probability, in nats (0..ln 2)
    mutual_information: np.ndarray  # float32, in nats: how much the L samples disagree
    samples: int  # L actually decoded (1 for the deterministic twin)
    # 1 - the entropy failure score / ln 2 (vpi.graphs.confidence), and whether that score is
    # over the threshold chosen on validation episodes (None: the model records none).
    confidence: float
    likely_failed: bool | None
    timings_ms: dict[str, float] = field(default_factory=dict)  # its share of its batch's

    @property
    def foreground_fraction(self) -> float:
        return float(self.mask.mean())

    @property
    def mean_uncertainty(self) -> float:
        return float(self.uncertainty.mean())


class Segmenter:
    """Few-shot segmentation with any backend; pre/post-processing are the same for all.

    For a deterministic checkpoint (``model.probabilistic`` False) the prototype is the prior
    mean: the decoder runs once (L = 1) whatever ``samples`` says, and uncertainty is zero.
    """

    def __init__(self, runner: Runner, *, cache_size: int = 16) -> None:
        self.runner = runner
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Prior] = OrderedDict()

    def encode_support(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        names: Sequence[str] | None = None,
    ) -> Prior:
        """Images (H, W, 3) uint8 and masks (H, W), non-zero = foreground, any sizes."""
        if len(images) != len(masks):
            raise DataError(f"got {len(images)} support images but {len(masks)} masks")
        self.runner.check_request(shots=len(images))
        names = list(names) if names is not None else [f"#{i + 1}" for i in range(len(images))]
        side = self.runner.spec.input_size
        for image, mask, name in zip(images, masks, names, strict=True):
            check_support_pair(image, np.asarray(mask), name, f"mask of {name}")
        image_batch = torch.stack([image_tensor(image, side) for image in images])
        mask_batch = torch.stack([mask_tensor(np.asarray(m) != 0, side) for m in masks])
        digest = hashlib.sha256()
        for tensor in (image_batch, mask_batch):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.numpy().tobytes())
        key = digest.hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        mean, variance = self.runner.run_prior(image_batch[None], mask_batch[None])
        prior = Prior(mean, variance, len(images), key)
        self._cache[key] = prior
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return prior

    def check_request(self, *, samples: int, batch: int, threshold: float) -> None:
        """L, B (the runner's ``check_request``) and the threshold of ``segment_batch``, which a
        caller may also check before costly work."""
        self.runner.check_request(batch=batch, samples=samples)
        check_threshold(threshold)

    def prototypes(self, prior: Prior, samples: int, seed: int) -> torch.Tensor:
        """z = mean + eps * std, eps ~ N(0, I) from a CPU generator seeded with ``seed``: (L, D);
        the prior mean once, (1, D), for the deterministic twin."""
        probabilistic = self.runner.spec.probabilistic
        noise = draw_noise((samples if probabilistic else 1, prior.mean.shape[-1]),
                           noise_generator(seed), probabilistic)
        return reparameterise(prior.mean, prior.variance, noise)

    def segment(
        self,
        query: np.ndarray,
        prior: Prior,
        *,
        samples: int = DEFAULT_SAMPLES,
        seed: int = 0,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> Segmentation:
        """One query image (H, W, 3) uint8 -> probability, mask and uncertainty at (H, W)."""
        return self.segment_batch([query], prior, samples=samples, seed=seed, threshold=threshold)[0]

    def segment_batch(
        self,
        queries: Sequence[np.ndarray],
        prior: Prior,
        *,
        samples: int = DEFAULT_SAMPLES,
        seed: int = 0,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> list[Segmentation]:
        """Query images (H, W, 3) uint8, any sizes, against one support set in one decoder call.

        B = len(queries) may be up to the graphs' ``max_batch``. Every query gets the prototypes
        of ``seed``, so each result is what ``segment`` gives that query alone. Timings are the
        batch's, split evenly over its queries.
        """
        self.check_request(samples=samples, batch=len(queries), threshold=threshold)
        for index, query in enumerate(queries):
            if query.ndim != 3 or query.shape[2] != 3 or query.dtype != np.uint8:
                which = f" #{index + 1}" if len(queries) > 1 else ""
                raise DataError(f"query{which} must be (H, W, 3) uint8, got {query.dtype} {query.shape}")
        started = time.perf_counter()
        batch = torch.stack([image_tensor(query, self.runner.spec.input_size) for query in queries])
        z = self.prototypes(prior, samples, seed)
        prepared = time.perf_counter()
        maps = self.runner.run_decoder(batch, z.expand(len(queries), -1, -1))
        decoded = time.perf_counter()
        scores = failure_score(maps.probability, maps.entropy)  # at network resolution, as in eval
        limit = self.runner.spec.failure_threshold
        results = []
        for index, query in enumerate(queries):
            size = (query.shape[0], query.shape[1])
            probability, variance, entropy, information = (
                np.clip(to_original(m[index], size), 0.0, None) for m in maps)
            results.append(Segmentation(
                probability=probability,
                mask=probability > threshold,
                uncertainty=variance,
                entropy=entropy,
                mutual_information=information,
                samples=int(z.shape[0]),
                confidence=float(confidence(scores[index])),
                likely_failed=None if limit is None else bool(scores[index] > limit),
            ))
        share = len(queries)
        timings = {
            "preprocess": _ms(started, prepared, share),
            "decode": _ms(prepared, decoded, share),
            "postprocess": _ms(decoded, time.perf_counter(), share),
        }
        for result in results:
            result.timings_ms = dict(timings)
        return results


def _ms(start: float, end: float, share: int = 1) -> float:
    return round((end - start) * 1000.0 / share, 3)
