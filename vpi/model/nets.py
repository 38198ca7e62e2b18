"""The prior/posterior nets (Gaussian heads) and the segmentation net (decoder)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpi.model.backbone import Features
from vpi.model.gaussian import masked_average_pool

LOGVAR_RANGE = (-10.0, 10.0)  # keeps exp(logvar) finite in fp16 and the KL well-conditioned


class GaussianHead(nn.Module):
    """Masked average pooling of foreground features, then two linear layers: mean and log-variance.

    The prior net (support image + mask) and the posterior net (query image + its ground truth)
    are two instances over the same shared encoder.
    """

    def __init__(self, in_channels: int, latent_dim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(in_channels, latent_dim)
        self.logvar = nn.Linear(in_channels, latent_dim)

    def forward(self, deep: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """deep (N, C, h, w), masks (N, 1, H, W) in [0, 1] -> mean, logvar (N, D)."""
        pooled = masked_average_pool(deep, masks)
        return self.mean(pooled), self.logvar(pooled).clamp(*LOGVAR_RANGE)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class SegmentationDecoder(nn.Module):
    """Query features concatenated with z tiled over space, three conv blocks with skips.

    A 1x1 convolution over ``concat(features, tile(z))`` equals ``W_f * features + W_z z``: the
    z-dependent part is a per-channel bias. So the query is projected once and each of the L
    prototypes only adds its bias, and all L samples run through the blocks as one batch. Each
    block's skip features are convolved once per query, not once per sample (``_skip_block``).
    """

    def __init__(
        self,
        encoder_channels: tuple[int, int, int, int],
        latent_dim: int,
        widths: tuple[int, int, int],
    ) -> None:
        super().__init__()
        deep, c8, c4, c2 = encoder_channels
        w1, w2, w3 = widths
        self.feature_proj = nn.Conv2d(deep, w1, 1)
        self.prototype_proj = nn.Linear(latent_dim, w1, bias=False)
        self.skip8 = nn.Conv2d(c8, w1 // 2, 1)
        self.skip4 = nn.Conv2d(c4, w2 // 2, 1)
        self.skip2 = nn.Conv2d(c2, w3 // 2, 1)
        self.block8 = _conv_block(w1 + w1 // 2, w1)
        self.block4 = _conv_block(w1 + w2 // 2, w2)
        self.block2 = _conv_block(w2 + w3 // 2, w3)
        self.head = nn.Conv2d(w3, 1, 1)

    def forward(self, features: Features, z: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        """features of B queries, z (B, L, D) -> foreground logits (B, L, H, W) at ``out_size``."""
        batch, samples = z.shape[:2]
        fused = self.feature_proj(features.deep)[:, None] + self.prototype_proj(z)[..., None, None]
        x = F.relu(fused).flatten(0, 1)  # (B*L, w1, h, w)
        x = _skip_block(self.block8, x, self.skip8(features.skip8))
        x = _upsample_to(x, features.skip4)
        x = _skip_block(self.block4, x, self.skip4(features.skip4))
        x = _upsample_to(x, features.skip2)
        x = _skip_block(self.block2, x, self.skip2(features.skip2))
        logits = F.interpolate(self.head(x), size=out_size, mode="bilinear", align_corners=False)
        return logits.reshape(batch, samples, logits.shape[-2], logits.shape[-1])


def _skip_block(block: nn.Sequential, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``block(concat(x, skip))`` for x (B*L, C, h, w) and one skip (B, S, h, w) per query.

    The first convolution is linear in its input, so it splits into a part over x and a part over
    the skip: the skip part is computed once per query and broadcast over the L samples, instead
    of convolving L copies of the same skip features.
    """
    first = block[0]
    channels = x.shape[1]
    per_sample = F.conv2d(x, first.weight[:, :channels], first.bias, padding=first.padding)
    shared = F.conv2d(skip, first.weight[:, channels:], padding=first.padding)
    batch = skip.shape[0]
    y = (per_sample.unflatten(0, (batch, -1)) + shared[:, None]).flatten(0, 1)
    return block[1:](y)


def _upsample_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)
