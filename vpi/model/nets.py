"""The prior/posterior nets (Gaussian heads) and the segmentation net (decoder)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpi.errors import ConfigError
from vpi.model.backbone import Features
from vpi.model.gaussian import masked_average_pool, unit
from vpi.model.parts import background_parts

LOGVAR_RANGE = (-10.0, 10.0)  # keeps exp(logvar) finite in fp16 and the KL well-conditioned


class GaussianHead(nn.Module):
    """Masked average pooling of foreground features, then two linear layers: mean and log-variance.

    The prior net (support image + mask) and the posterior net (query image + its ground truth)
    are two instances over the same shared encoder. With ``background``, z's first half is the
    foreground prototype and its second half the background one (the same layers over the pixels
    outside the mask): the matching decoder compares a query pixel with both, which needs no
    threshold on a similarity whose level differs between images and domains. Where a half is as
    wide as the pooled features, its mean layer starts as the identity, so the untrained prototypes
    are the plain ImageNet ones of the training-free matcher. ``parts`` (with ``background``)
    appends that many centres of the background's own pixels (``background_parts``), through the
    same mean layer and with the smallest variance: they are not sampled, and the KL leaves them
    out (``gaussian_dim``).
    """

    def __init__(
        self, in_channels: int, latent_dim: int, background: bool = False, identity: bool = False,
        parts: int = 0,
    ) -> None:
        super().__init__()
        width = latent_dim // (2 + parts) if background else latent_dim
        self.background = background
        self.parts = parts
        self.gaussian_dim = 2 * width if background else width
        self.mean = nn.Linear(in_channels, width)
        self.logvar = nn.Linear(in_channels, width)
        if identity and width != in_channels:
            raise ConfigError(f"model.projection 'identity' keeps the {in_channels} pooled "
                              f"channels: model.latent_dim must be "
                              f"{in_channels * ((2 + parts) if background else 1)}, got {latent_dim}")
        if width == in_channels and (background or identity):
            nn.init.eye_(self.mean.weight)
            nn.init.zeros_(self.mean.bias)
        # "identity": the prototypes and the query's keys stay ImageNet features; training on one
        # domain (generated shapes) cannot bend the space that another (photographs) is matched in.
        self.mean.requires_grad_(not identity)

    def forward(self, deep: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """deep (N, C, h, w), masks (N, 1, H, W) in [0, 1] -> mean, logvar (N, D)."""
        pooled = masked_average_pool(deep, masks)
        if self.background:
            pooled = torch.cat([pooled, masked_average_pool(deep, 1 - masks)], 0)
        mean, logvar = self.mean(pooled), self.logvar(pooled).clamp(*LOGVAR_RANGE)
        if self.background:  # slices, not chunk: chunk exports as SplitToSequence
            count = deep.shape[0]
            mean, logvar = (torch.cat([t[:count], t[count:]], 1) for t in (mean, logvar))
        if self.parts:
            parts = self.mean(background_parts(deep, masks, pooled[:count], self.parts))
            mean = torch.cat([mean, parts.flatten(1)], 1)
            logvar = torch.cat([logvar, torch.full_like(parts.flatten(1), LOGVAR_RANGE[0])], 1)
        return mean, logvar

    def project(self, deep: torch.Tensor) -> torch.Tensor:
        """Every pixel through the mean layer: (N, C, h, w) -> (N, D, h, w). The mean is linear,
        so the mean of a support is the masked average of its projected pixels: a prototype and a
        query pixel compare in one space, from the first step of training on."""
        return F.conv2d(deep, self.mean.weight[:, :, None, None], self.mean.bias)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class _SkipDecoder(nn.Module):
    """Three conv blocks, each over the previous output and one encoder skip (strides 8, 4, 2),
    then a 1x1 head: what both decoders run after their first, stride-8 input. Without ``skips``
    the blocks see only that input, upsampled: nothing of the query's raw appearance.
    ``low_resolution`` keeps all three at stride 8 (the logits are upsampled after the head), so
    that each of the L samples costs a sixteenth of what the stride-2 block did; the stride-4 and
    stride-2 skips are then average-pooled to stride 8, once per query."""

    def __init__(
        self,
        encoder_channels: tuple[int, int, int, int],
        widths: tuple[int, int, int],
        skips: bool = True,
        low_resolution: bool = False,
    ) -> None:
        super().__init__()
        _, c8, c4, c2 = encoder_channels
        w1, w2, w3 = widths
        self.skips = skips
        self.low_resolution = low_resolution
        extra = (w1 // 2, w2 // 2, w3 // 2) if skips else (0, 0, 0)
        if skips:
            self.skip8 = nn.Conv2d(c8, extra[0], 1)
            self.skip4 = nn.Conv2d(c4, extra[1], 1)
            self.skip2 = nn.Conv2d(c2, extra[2], 1)
        self.block8 = _conv_block(w1 + extra[0], w1)
        self.block4 = _conv_block(w1 + extra[1], w2)
        self.block2 = _conv_block(w2 + extra[2], w3)
        self.head = nn.Conv2d(w3, 1, 1)

    def refine(self, x: torch.Tensor, features: Features) -> torch.Tensor:
        """x (B*L, w1, h, w) at the deep map's size -> head logits (B*L, 1, H/2, W/2)."""
        if x.shape[-2:] != features.skip8.shape[-2:]:  # an undilated encoder's deep map
            x = _upsample_to(x, features.skip8)
        skip4, skip2 = features.skip4, features.skip2
        if self.low_resolution and self.skips:
            size = features.skip8.shape[-2:]
            skip4, skip2 = (F.adaptive_avg_pool2d(s, size) for s in (skip4, skip2))
        x = self._block(self.block8, x, "skip8", features.skip8)
        if not self.low_resolution:
            x = _upsample_to(x, skip4)
        x = self._block(self.block4, x, "skip4", skip4)
        if not self.low_resolution:
            x = _upsample_to(x, skip2)
        x = self._block(self.block2, x, "skip2", skip2)
        return self.head(x)

    def _block(self, block: nn.Sequential, x: torch.Tensor, skip: str, feature: torch.Tensor
               ) -> torch.Tensor:
        return _skip_block(block, x, getattr(self, skip)(feature)) if self.skips else block(x)


class SegmentationDecoder(_SkipDecoder):
    """Query features concatenated with z tiled over space, three conv blocks with skips.

    A 1x1 convolution over ``concat(features, tile(z))`` equals ``W_f * features + W_z z``: the
    z-dependent part is a per-channel bias. So the query is projected once and each of the L
    prototypes only adds its bias, and all L samples run through the blocks as one batch. Each
    block's skip features are convolved once per query, not once per sample (``_skip_block``).

    With ``similarity_map`` (an extension, off in the paper's design), a per-pixel map of the
    cosine similarity between each prototype and the query's features projected to the latent
    space (``keys``, by the prior net's mean layer: ``GaussianHead.project``) joins that input as
    one more channel, and the map read as a mask is added to the head's logits. A bias alone
    shifts every pixel alike; the map tells the decoder where the query looks like the support,
    as PANet and PFENet do.
    """

    def __init__(
        self,
        encoder_channels: tuple[int, int, int, int],
        latent_dim: int,
        widths: tuple[int, int, int],
        similarity_map: bool = False,
        low_resolution: bool = False,
    ) -> None:
        super().__init__(encoder_channels, widths, low_resolution=low_resolution)
        deep, w1 = encoder_channels[0], widths[0]
        self.feature_proj = nn.Conv2d(deep, w1, 1)
        self.prototype_proj = nn.Linear(latent_dim, w1, bias=False)
        self.similarity_proj = nn.Conv2d(1, w1, 1, bias=False) if similarity_map else None
        # Reads the map as a mask (logits): trained by VPIModel.similarity_loss and added to the
        # head's logits, so the decoder refines it rather than having to discover it.
        self.similarity_logit = nn.Conv2d(1, 1, 1) if similarity_map else None
        if self.similarity_logit is not None:
            nn.init.constant_(self.similarity_logit.weight, 10.0)
            nn.init.constant_(self.similarity_logit.bias, -5.0)

    def match_logits(self, keys: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The similarity map of prototypes z (B, L, D) read as a mask: logits (B, L, h, w)."""
        similarity = prototype_similarity(keys, z)
        return self.similarity_logit(similarity.flatten(0, 1)[:, None]).view_as(similarity)

    def forward(
        self,
        features: Features,
        z: torch.Tensor,
        out_size: tuple[int, int] | None,
        keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """features of B queries, z (B, L, D) -> foreground logits (B, L, H, W) at ``out_size``
        (at the finest block's where None);
        ``keys`` (B, D, h, w), the query's pixels in the latent space, with ``similarity_map``."""
        batch, samples = z.shape[:2]
        fused = self.feature_proj(features.deep)[:, None] + self.prototype_proj(z)[..., None, None]
        if self.similarity_proj is not None:
            if keys is None:
                raise ValueError("a decoder with similarity_map needs the query's keys")
            similarity = prototype_similarity(keys, z).flatten(0, 1)[:, None]  # (B*L, 1, h, w)
            fused = fused + self.similarity_proj(similarity).unflatten(0, (batch, samples))
        head = self.refine(F.relu(fused).flatten(0, 1), features)
        if self.similarity_logit is not None:
            head = head + _upsample_to(self.similarity_logit(similarity), head)
        return _to_logits(head, batch, samples, out_size)


class MatchingDecoder(_SkipDecoder):
    """Refines the training-free matcher's decision instead of reading raw deep features.

    z holds a foreground and a background prototype (``GaussianHead`` with ``background``). Each
    query pixel's cosine similarity to both (its ``keys``, projected by the prior net's mean layer)
    gives two maps, and their scaled difference is the matcher's rule as logits: a pixel nearer
    the foreground prototype is foreground (PANet). The conv blocks read only those two maps and
    the encoder's shallow skips (where ``skips``), and add a correction that starts at zero, so the
    untrained model is the matcher. With ``parts``, z also holds that many parts of the support's
    background (``GaussianHead``), and the background map is the largest of their similarities
    and the background prototype's. Similarities carry over between domains where deep features
    do not: a decoder that reads deep features learns what generated objects look like, and loses
    photographs (docs/reproduce.md, "Real photographs").
    """

    def __init__(
        self,
        encoder_channels: tuple[int, int, int, int],
        widths: tuple[int, int, int],
        skips: bool = True,
        self_support: int = 0,
        low_resolution: bool = False,
        self_support_from: str = "decoder",
        training_rounds: int | None = None,
        blocks_per_sample: str = "all",
        parts: int = 0,
    ) -> None:
        super().__init__(encoder_channels, widths, skips, low_resolution)
        self.prototypes = 2 + parts  # foreground, background, the background's parts
        self.self_support = self_support  # the rounds it decides with
        self.training_rounds = self_support if training_rounds is None else training_rounds
        self.self_support_from = self_support_from
        self.blocks_per_sample = blocks_per_sample  # at test time (ModelConfig)
        self.scale = nn.Parameter(torch.tensor(10.0))  # cosines differ by ~0.1: logits of ~1
        self.offset = nn.Parameter(torch.tensor(0.0))
        self.similarity_proj = nn.Conv2d(2, widths[0], 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def match_logits(self, keys: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The matcher's rule on prototypes z (B, L, n*d): logits (B, L, h, w)."""
        return self._rule(self._similarity(keys, z))

    def _similarity(self, keys: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The foreground similarity and the largest background one (B, L, 2, h, w): a pixel is
        as near the background as it is to the nearest of its prototypes."""
        similarity = _prototype_similarities(keys, z, self.prototypes)
        return torch.stack([similarity[:, :, 0], similarity[:, :, 1:].amax(2)], 2)

    def _rule(self, similarity: torch.Tensor) -> torch.Tensor:
        """(B, L, 2, h, w) foreground and background similarities -> logits (B, L, h, w)."""
        return self.scale * (similarity[:, :, 0] - similarity[:, :, 1]) + self.offset

    def forward(
        self,
        features: Features,
        z: torch.Tensor,
        out_size: tuple[int, int] | None,
        keys: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """features of B queries, z (B, L, 2d) -> foreground logits (B, L, H, W) at ``out_size``
        (at the finest block's where None);
        ``keys`` (B, d, h, w), the query's pixels in the prototypes' space."""
        if keys is None:
            raise ValueError("the matching decoder needs the query's keys")
        batch, samples = z.shape[:2]
        rounds = self.training_rounds if self.training else self.self_support
        once = self.blocks_per_sample == "none" and not self.training
        if rounds and self.self_support_from == "matcher":
            logits = self.match_logits(keys, z).flatten(0, 1)[:, None]  # no blocks: cheap per L
        else:
            logits = self._decision(features, z, keys, once)
        for _ in range(rounds):
            z = _self_supported(z, keys, _upsample_to(logits, keys), self.prototypes)
            logits = self._decision(features, z, keys, once)
        return _to_logits(logits, batch, samples, out_size)

    def _decision(
        self, features: Features, z: torch.Tensor, keys: torch.Tensor, once: bool
    ) -> torch.Tensor:
        """Each prototype's logits (B*L, 1, h', w'): its own pass through the blocks, or, ``once``,
        one pass on the prototypes' mean, whose learned correction each adds to its own rule."""
        if not once:
            return self._decide(features, z, keys)
        mean = z.mean(1, keepdim=True)
        return self._corrected_rules(self._decide(features, mean, keys),
                                     self.match_logits(keys, mean), self.match_logits(keys, z))

    def _decide(self, features: Features, z: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Logits (B*L, 1, h', w') at the finest block's resolution."""
        similarity = self._similarity(keys, z)  # (B, L, 2, h, w)
        match = self._rule(similarity).flatten(0, 1)[:, None]
        head = self.refine(F.relu(self.similarity_proj(similarity.flatten(0, 1))), features)
        return head + _upsample_to(match, head)

    @staticmethod
    def _corrected_rules(
        decided: torch.Tensor, mean_rule: torch.Tensor, rules: torch.Tensor
    ) -> torch.Tensor:
        """The mean prototype's decision (B, 1, h', w') with its own rule (B, 1, h, w) swapped for
        each sample's (B, L, h, w): the correction, made once, beside L rules -> (B*L, 1, h', w')."""
        correction = decided - _upsample_to(mean_rule, decided)
        each = _upsample_to(rules, decided)[:, :, None]  # (B, L, 1, h', w')
        return (correction[:, None] + each).flatten(0, 1)


# Self-support matching's rule (Fan et al. 2022): the query's pixels over 0.8 make its own
# foreground prototype, which takes 30% of the new one; those under 0.2 its background, 70%.
SELF_SUPPORT = {"foreground": (0.8, 0.3), "background": (0.2, 0.7)}


def _self_supported(
    z: torch.Tensor, keys: torch.Tensor, logits: torch.Tensor, prototypes: int = 2
) -> torch.Tensor:
    """Prototypes z (B, L, n*d) moved towards the query's own: its confident foreground and
    background pixels, pooled, are nearer its other pixels than the support's prototypes, which
    differ in pose, light and background. keys (B, d, h, w); logits (B*L, 1, h, w) at the keys'
    resolution. Domain-free (nothing is learned); a prototype with no confident pixel stays as it
    was, and so do the background's parts (the query's background is one pool, not parts).
    Broadcast over L rather than repeated, so that L stays a dynamic axis in ONNX."""
    batch, samples, width = z.shape
    probability = torch.sigmoid(logits).unflatten(0, (batch, samples))  # (B, L, 1, h, w)
    keys = keys[:, None]  # (B, 1, d, h, w)
    own = unit(z.unflatten(2, (prototypes, width // prototypes)), dim=-1)  # (B, L, n, d)
    (fg_threshold, fg_weight), (bg_threshold, bg_weight) = SELF_SUPPORT.values()
    foreground = _mix(own[:, :, 0], keys, (probability > fg_threshold).to(keys.dtype), fg_weight)
    background = _mix(own[:, :, 1], keys, (probability < bg_threshold).to(keys.dtype), bg_weight)
    return torch.cat([foreground, background, own[:, :, 2:].flatten(2)], -1)


def _mix(prototype: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, weight: float) -> torch.Tensor:
    """(1 - weight) x the unit prototypes (B, L, d) + weight x the unit mean of the keys
    (B, 1, d, h, w) under each mask (B, L, 1, h, w)."""
    count = mask.sum((3, 4))  # (B, L, 1)
    pooled = unit((keys * mask).sum((3, 4)) / count.clamp(min=1.0), dim=-1)
    share = weight * (count > 0).to(keys.dtype)
    return (1 - share) * prototype + share * pooled


def _prototype_similarities(keys: torch.Tensor, z: torch.Tensor, prototypes: int) -> torch.Tensor:
    """Similarity maps (B, L, n, h, w) of the n prototypes that z (B, L, n*d) holds, in one pass
    over the keys."""
    batch, samples, width = z.shape
    # fg, bg, parts of sample 0, then of sample 1, ...
    each = z.reshape(batch, samples * prototypes, width // prototypes)
    similarity = prototype_similarity(keys, each)
    return similarity.view(batch, samples, prototypes, *similarity.shape[-2:])


def _to_logits(
    head: torch.Tensor, batch: int, samples: int, out_size: tuple[int, int] | None
) -> torch.Tensor:
    """Head logits (B*L, 1, h, w) -> (B, L, H, W) at ``out_size``, or at (h, w) where None."""
    logits = (head if out_size is None
              else F.interpolate(head, size=out_size, mode="bilinear", align_corners=False))
    return logits.reshape(batch, samples, logits.shape[-2], logits.shape[-1])


def prototype_similarity(keys: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each prototype with each pixel: keys (B, D, h, w), z (B, L, D) ->
    (B, L, h, w) in [-1, 1]."""
    keys = unit(keys, dim=1)
    return torch.einsum("bld,bdhw->blhw", unit(z, dim=-1), keys)


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
