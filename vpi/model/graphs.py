"""The two deployable graphs, as small modules over a trained VPIModel.

Every backend runs exactly these modules: ONNX export traces them, the torch runner calls them, so
backends differ only in how they execute the same computation. Their tensor names, and the
sampling step that stays outside both graphs, are the contract in ``vpi.graphs``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from vpi.model import Features, VPIModel, aggregate_priors


class PriorEncoderGraph(nn.Module):
    """B support sets: images (B, K, 3, H, W) in [0, 1] and masks (B, K, 1, H, W) -> mean,
    variance (B, D), one prior per set.

    The K per-shot priors are fused by the model's rule (``VPIModel.shot_rule``) from their clamped
    log-variances (``aggregate_priors``), in fp32 whatever the encoder's precision.
    """

    def __init__(self, model: VPIModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, support_images: torch.Tensor, support_masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.model.shot_priors(support_images, support_masks)
        return aggregate_priors(mean.float(), logvar.float(), self.model.shot_rule)


class SegmentationDecoderGraph(nn.Module):
    """B queries (B, 3, H, W), each with its own L prototypes (B, L, D) -> the ``SampleMaps``
    (probability, variance, entropy, mutual information), (B, H, W) each.

    Each query is encoded once; the decoder runs its L prototypes as one batch over its shared
    features. The maps are reductions over the L sigmoid maps (``summarise_samples``), in fp32.
    """

    def __init__(self, model: VPIModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, query_image: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        features = self.model.encoder(query_image)
        return tuple(self.model.sample_maps(features, prototypes, query_image))


class _TypedEncoder(nn.Module):
    """Runs the encoder in ``dtype``; takes and returns fp32 so the pooling stays fp32."""

    def __init__(self, encoder: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = encoder.to(dtype)
        self.dtype = dtype

    def forward(self, images: torch.Tensor) -> Features:
        return Features(*(f.float() for f in self.inner(images.to(self.dtype))))


class _TypedDecoder(nn.Module):
    """Runs the segmentation net in ``dtype``; returns fp32 logits for the sigmoid and the mean."""

    def __init__(self, decoder: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = decoder.to(dtype)
        self.dtype = dtype

    def forward(
        self,
        features: Features,
        z: torch.Tensor,
        out_size: tuple[int, int],
        keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        typed = Features(*(f.to(self.dtype) for f in features))
        keys = None if keys is None else keys.to(self.dtype)
        return self.inner(typed, z.to(self.dtype), out_size, keys).float()


def typed_model(model: VPIModel, dtype: torch.dtype) -> VPIModel:
    """A copy whose encoder and decoder convolutions run in ``dtype`` (fp16/bf16).

    This is how strongly typed TensorRT builds get FP16/BF16: the precision lives in the graph.
    The numerically fragile parts stay fp32, as DEPLOY.md asks: masked pooling and its division,
    the prior heads, the K-shot aggregation of the log-variances, the sigmoid and the
    maps over L.
    Graph inputs and outputs stay fp32, so runners feed every precision the same way.
    """
    if dtype == torch.float32:
        return model
    typed = copy.deepcopy(model)
    typed.encoder = _TypedEncoder(typed.encoder, dtype)
    typed.decoder = _TypedDecoder(typed.decoder, dtype)
    return typed.eval()
