"""The training-free matcher: what ImageNet features alone give, scored beside every model.

PANet's non-parametric rule: the supports' foreground and background prototypes are the masked
averages of a frozen ImageNet encoder's features, and each query pixel goes to the prototype it
is nearer by cosine similarity. It needs no training, so a model that scores under it on some
data learned less than nothing there: a model trained on generated shapes can score well on them
and be useless on photographs, where this rule is not.

The encoder is the checkpoint's own (backbone and depth) with its ImageNet weights, at ImageNet's
own strides: dilating the deep stage, as the models do, costs the rule about 6 class-IoU points on
real photos (docs/reproduce.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpi.config import ModelConfig
from vpi.errors import ConfigError
from vpi.graphs import SampleMaps, summarise_samples
from vpi.model.backbone import Backbone, build_backbone
from vpi.model.gaussian import masked_average_pool
from vpi.model.nets import prototype_similarity
from vpi.model.weights import load_backbone_weights

SCALE = 20.0  # PANet's: the cosine difference as logits, so the mean "probability" reads as a mask


class PrototypeMatcher(nn.Module):
    """A predictor with the model's ``predict`` (so scoring and controls treat it alike)."""

    def __init__(self, encoder: Backbone) -> None:
        super().__init__()
        self.encoder = encoder.eval()

    def check_aggregation(self, rule: str | None) -> None:
        """Shots are averaged; no k-shot rule applies, so any is accepted."""

    @torch.no_grad()
    def predict(
        self,
        support_images: torch.Tensor,
        support_masks: torch.Tensor,
        query_images: torch.Tensor,
        samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> SampleMaps:
        """Supports (B, K, 3, H, W), masks (B, K, 1, H, W), queries (B, 3, H, W) -> the maps of
        one deterministic sample, (B, H, W) each; ``samples`` and ``generator`` are ignored
        (nothing is sampled)."""
        batch, shots = support_images.shape[:2]
        support = self.encoder(support_images.flatten(0, 1)).deep
        masks = support_masks.flatten(0, 1)
        foreground = masked_average_pool(support, masks).view(batch, shots, -1).mean(1)
        background = masked_average_pool(support, 1 - masks).view(batch, shots, -1).mean(1)
        similarity = prototype_similarity(self.encoder(query_images).deep,
                                          torch.stack([foreground, background], 1))
        difference = similarity[:, :1] - similarity[:, 1:]  # (B, 1, h, w)
        logits = F.interpolate(difference, size=query_images.shape[-2:], mode="bilinear",
                               align_corners=False)[:, 0]
        return summarise_samples(torch.sigmoid(SCALE * logits)[:, None])


def build_matcher(config: ModelConfig, device: torch.device | str = "cpu") -> PrototypeMatcher:
    """The matcher on the ImageNet weights of ``config``'s encoder; ConfigError (whose message
    says why) where those weights are not at hand, e.g. the test suite's tiny encoder."""
    if config.backbone == "tiny":
        raise ConfigError("the tiny encoder has no ImageNet weights")
    state = load_backbone_weights(config.backbone, "imagenet")
    encoder = build_backbone(config.backbone, state, config.encoder_depth, dilated=False)
    return PrototypeMatcher(encoder).to(device)
