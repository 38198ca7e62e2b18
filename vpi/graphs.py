"""The contract export and runtime share: the graphs' spec, tensor names and files, and z.

Export writes two graphs that take and give exactly these tensors; every runner feeds them. Both
lead with a batch axis B of independent items (a support set each, a query each with its own
prototypes), so a server can merge concurrent requests into one call. Sampling
is in neither graph: the caller draws the noise with ``draw_noise`` and forms the prototypes with
``reparameterise``, so both graphs are deterministic and a seed gives the same z on every backend.
This module imports nothing of vpi but the config, so the model, export and runtime can all use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from vpi.config import MAX_BATCH, MAX_SAMPLES, MAX_SHOTS, Config

PRIOR_INPUTS = ("support_images", "support_masks")
PRIOR_OUTPUTS = ("prior_mean", "prior_variance")
DECODER_INPUTS = ("query_image", "prototypes")


class SampleMaps(NamedTuple):
    """What the decoder graph returns for B queries, (B, H, W) each, fp32, from its L maps.

    ``probability`` is Eq. 5's mean. The three uncertainty maps differ in what they flag
    (docs/reproduce.md, "Uncertainty"): ``variance`` of the L maps and ``mutual_information``
    (the entropy of the mean minus the mean entropy of the samples, in nats) measure only how much
    the samples disagree, and are zero at L = 1 or for the deterministic twin; ``entropy`` of the
    mean (nats, up to ln 2) is also high where every sample is unsure, and one pass gives it.
    """

    probability: torch.Tensor
    variance: torch.Tensor
    entropy: torch.Tensor
    mutual_information: torch.Tensor


DECODER_OUTPUTS = SampleMaps._fields
PROBABILITY_EPS = 1e-6  # keeps log(p) finite where a sample is certain


def binary_entropy(probability: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of a Bernoulli(p), elementwise. Each log's argument is clamped on its own,
    not p into [eps, 1 - eps]: in fp16, 1 - 1e-6 rounds to 1, and an fp16 engine took log(0)."""
    p = probability.clamp(0.0, 1.0)
    q = 1 - p
    return -(p * p.clamp(min=PROBABILITY_EPS).log() + q * q.clamp(min=PROBABILITY_EPS).log())


def summarise_samples(
    probs: torch.Tensor, out_size: tuple[int, int] | None = None
) -> SampleMaps:
    """L foreground-probability maps per query (B, L, h, w) -> their ``SampleMaps``, in fp32,
    upsampled (bilinear) to ``out_size`` where given: a decoder at low resolution is summarised
    at its own size, so no per-sample work runs at the image's (docs/reproduce.md, "L's price").

    The one place these maps are computed: the model's ``predict``, the decoder graph of every
    backend and the Triton ensemble all call it, so each backend ships the same maps.
    """
    probs = probs.float()
    mean = probs.mean(1)
    entropy = binary_entropy(mean)
    variance = ((probs - mean[:, None]) ** 2).mean(1)  # torch's var(1) is 50x slower on CPU
    maps = SampleMaps(mean, variance, entropy,
                      (entropy - binary_entropy(probs).mean(1)).clamp(min=0.0))
    if out_size is None or tuple(mean.shape[-2:]) == tuple(out_size):
        return maps
    stacked = torch.nn.functional.interpolate(torch.stack(maps, 1), size=out_size,
                                              mode="bilinear", align_corners=False)
    return SampleMaps(*stacked.unbind(1))


CONSIDERED = 0.2  # a query's failure score is taken over the pixels given over this


def failure_score(probability: torch.Tensor, uncertainty: torch.Tensor) -> torch.Tensor:
    """Per query (B,): the mean of an uncertainty map (B, H, W) over the pixels the model
    considers foreground-ish (probability over ``CONSIDERED``), or over all where there are none.

    How unsure the model is about what it segmented, not about the empty background, which it is
    sure of in every answer: the score that tells failed answers apart
    (docs/reproduce.md, "Uncertainty").
    """
    considered = (probability > CONSIDERED).float()
    counts = considered.sum((-2, -1))
    over_considered = (uncertainty * considered).sum((-2, -1)) / counts.clamp(min=1.0)
    return torch.where(counts > 0, over_considered, uncertainty.mean((-2, -1)))


def confidence(score: torch.Tensor) -> torch.Tensor:
    """1 - an entropy failure score / ln 2: 1 where every considered pixel is certain, 0 where
    each is a coin toss."""
    return (1.0 - score / math.log(2)).clamp(0.0, 1.0)


GRAPH_FILES = {
    "prior_encoder": "prior_encoder.onnx",
    "segmentation_decoder": "segmentation_decoder.onnx",
}


@dataclass(frozen=True)
class GraphSpec:
    """What a runner must know to feed the graphs: the fixed input side, D, and the B/K/L ranges."""

    input_size: int
    latent_dim: int
    probabilistic: bool = True
    max_shots: int = MAX_SHOTS
    max_samples: int = MAX_SAMPLES
    max_batch: int = MAX_BATCH
    # The failure score over which a query is flagged as likely failed (``failure_score``),
    # chosen on validation episodes in training; None for a model trained before that.
    failure_threshold: float | None = None

    @classmethod
    def from_config(cls, config: Config, failure_threshold: float | None = None) -> GraphSpec:
        return cls(config.data.image_size, config.model.latent_dim, config.model.probabilistic,
                   failure_threshold=failure_threshold)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> GraphSpec:
        return cls(
            manifest["input_size"][0],
            manifest["latent_dim"],
            manifest["probabilistic"],
            manifest["shots"][1],
            manifest["samples"][1],
            manifest["batch"][1],
            (manifest.get("failure_flag") or {}).get("threshold"),
        )


def reparameterise(
    mean: torch.Tensor, variance: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """z = mean + noise * sqrt(variance), broadcast: a prior (1, D) and noise (L, D) give (L, D),
    priors (B, 1, D) and noise (B, L, D) give (B, L, D).

    The one place the prototypes are formed, in training, in the runtime and in the served graph,
    so the same noise gives the same z bit for bit everywhere.
    """
    return mean + noise * variance.sqrt()


EPISODE_SEED_STRIDE = 1_000_003  # a prime over any episode count: seeds' streams never overlap


def noise_generator(seed: int, index: int | None = None) -> torch.Generator:
    """The CPU generator of one draw of noise: seeded with ``seed`` for one request (the
    ``Segmenter``), or with ``seed * EPISODE_SEED_STRIDE + index`` for episode ``index`` of a run
    (training and the benchmark's accuracy), so an episode's noise does not depend on which
    process, batch or order drew it."""
    return torch.Generator().manual_seed(seed if index is None else
                                         seed * EPISODE_SEED_STRIDE + index)


def draw_noise(
    shape: tuple[int, ...], generator: torch.Generator | None, probabilistic: bool = True
) -> torch.Tensor:
    """Standard-normal noise eps of ``shape`` ((L, D) or (B, L, D)) on the CPU from
    ``generator`` (None: torch's global one), zeros for the deterministic twin, whose prototype is
    its prior mean (and which then consumes nothing of the generator).

    The one place eps is drawn: the model, the runtime's ``Segmenter``, eval over an engine, the
    benchmark and training all call it, so a seed gives the same z on every backend.
    """
    if not probabilistic:
        return torch.zeros(shape)
    return torch.randn(shape, generator=generator, device="cpu")
