"""The contract export and runtime share: the graphs' spec, tensor names and files, and z.

Export writes two graphs that take and give exactly these tensors; every runner feeds them. Both
lead with a batch axis B of independent items (a support set each, a query each with its own
prototypes), so a server can merge concurrent requests into one call. Sampling
is in neither graph: the caller draws the noise with a seed and forms the prototypes with
``reparameterise``, so both graphs are deterministic and a seed gives the same z on every backend.
This module imports nothing of vpi but the config, so the model, export and runtime can all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vpi.config import MAX_BATCH, MAX_SAMPLES, MAX_SHOTS, Config

PRIOR_INPUTS = ("support_images", "support_masks")
PRIOR_OUTPUTS = ("prior_mean", "prior_variance")
DECODER_INPUTS = ("query_image", "prototypes")
DECODER_OUTPUTS = ("probability", "uncertainty")
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

    @classmethod
    def from_config(cls, config: Config) -> GraphSpec:
        return cls(config.data.image_size, config.model.latent_dim, config.model.probabilistic)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> GraphSpec:
        return cls(
            manifest["input_size"][0],
            manifest["latent_dim"],
            manifest["probabilistic"],
            manifest["shots"][1],
            manifest["samples"][1],
            manifest["batch"][1],
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
