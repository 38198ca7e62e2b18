"""The VPI model: shared encoder, prior net, posterior net and segmentation net (Fig. 2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vpi.config import (
    DEFAULT_SAMPLES,
    MAX_SAMPLES,
    MAX_SHOTS,
    ModelConfig,
    check_test_time_model,
)
from vpi.data.episode import IGNORE_INDEX, EpisodeBatch
from vpi.graphs import SampleMaps, binary_entropy, draw_noise, summarise_samples
from vpi.model.backbone import Features, build_backbone
from vpi.model.gaussian import aggregate_priors, draw_prototypes, kl_divergence, sample_prototypes
from vpi.model.nets import GaussianHead, MatchingDecoder, SegmentationDecoder
from vpi.model.refine import edge_aware_refinement
from vpi.model.weights import load_backbone_weights
from vpi.ranges import check_samples, check_shots


class VPIModel(nn.Module):
    """z ~ p(z|S) from the support set, y ~ p(y|x_q, z) for the query; q(z|x_q, y_q) in training.

    Images are float RGB in [0, 1]; the encoder normalises them. With ``probabilistic=False`` this
    is the deterministic twin of the ablation: the prototype is the prior mean, with no KL term.
    """

    def __init__(self, config: ModelConfig, *, pretrained: bool = False) -> None:
        super().__init__()
        self.config = config
        state = load_backbone_weights(config.backbone, config.weights) if pretrained else None
        self.encoder = build_backbone(config.backbone, state, config.encoder_depth, config.dilated)
        channels = self.encoder.channels
        pooled = channels[0] + (channels[1] if config.prototype_features == "deep+mid" else 0)
        matching = config.decoder == "matching"
        identity = config.projection == "identity"
        parts = config.background_parts
        self.prior_net = GaussianHead(pooled, config.latent_dim, matching, identity, parts)
        self.posterior_net = GaussianHead(pooled, config.latent_dim, matching, identity, parts)
        self.decoder: SegmentationDecoder | MatchingDecoder = (
            MatchingDecoder(channels, config.decoder_channels, config.decoder_skips,
                            config.self_support, config.decoder_low_resolution,
                            config.self_support_from, config.self_support_in_training,
                            config.blocks_per_sample, parts)
            if matching else
            SegmentationDecoder(channels, config.latent_dim, config.decoder_channels,
                                similarity_map=config.similarity_map,
                                low_resolution=config.decoder_low_resolution))
        if config.initial_logvar is not None:
            for head in (self.prior_net, self.posterior_net):
                nn.init.constant_(head.logvar.bias, config.initial_logvar)

    def use_test_time(self, config: ModelConfig) -> None:
        """Score with ``config``, which may differ from the model's own only in fields that no
        weight depends on (``TEST_TIME_MODEL_FIELDS``); anything else is a ``ConfigError``."""
        check_test_time_model(self.config, config, export=False)
        self.config = config
        if isinstance(self.decoder, MatchingDecoder):
            self.decoder.self_support = config.self_support
            self.decoder.blocks_per_sample = config.blocks_per_sample

    @property
    def shot_rule(self) -> str:
        """How k per-shot priors fuse: the configured rule, or the plain mean of the means for
        the deterministic twin, whose log-variance head gets no gradient and never trains."""
        return self.config.aggregation if self.config.probabilistic else "mean"

    def head_parameters(self) -> list[nn.Parameter]:
        """Everything but the encoder that trains (not a fixed identity projection): trained at
        the head learning rate."""
        encoder = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in encoder and p.requires_grad]

    def prototype_features(self, features: Features) -> torch.Tensor:
        """The map the prior and posterior nets pool (``pooled_map``)."""
        return pooled_map(features, self.config.prototype_features)

    def shot_priors(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One prior per support pair: images (B, K, 3, H, W), masks (B, K, 1, H, W) ->
        mean, logvar (B, K, D)."""
        batch, shots = images.shape[:2]
        check_shots(shots, MAX_SHOTS)  # K priors are fused: none would give NaN
        pooled = self.prototype_features(self.encoder(images.flatten(0, 1)))
        mean, logvar = self.prior_net(pooled, masks.flatten(0, 1))
        return mean.view(batch, shots, -1), logvar.view(batch, shots, -1)

    def prior(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The aggregated prior p(z|S): mean and variance (B, D) by the configured rule."""
        mean, logvar = self.shot_priors(images, masks)
        return aggregate_priors(mean, logvar, self.shot_rule)

    def decode(
        self, features: Features, z: torch.Tensor, out_size: tuple[int, int] | None
    ) -> torch.Tensor:
        """Logits (B, L, H, W) for B encoded queries and L prototypes each, z (B, L, D); at the
        decoder's own resolution where ``out_size`` is None."""
        check_samples(z.shape[1], MAX_SAMPLES)  # the L maps are averaged: none would give NaN
        keys = (self.prior_net.project(self.prototype_features(features))
                if self.reads_similarity else None)
        return self.decoder(features, z, out_size, keys)

    @property
    def reads_similarity(self) -> bool:
        """Whether the decoder compares prototypes with the query's projected pixels."""
        return self.config.similarity_map or self.config.decoder == "matching"

    def prototypes(
        self, mean: torch.Tensor, var: torch.Tensor, samples: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """L prototypes per episode (B, L, D): draws from N(mean, var), or the mean if deterministic."""
        return draw_prototypes(mean, var, samples, generator, self.config.probabilistic)

    @torch.no_grad()
    def predict(
        self,
        support_images: torch.Tensor,
        support_masks: torch.Tensor,
        query_images: torch.Tensor,
        samples: int = DEFAULT_SAMPLES,
        generator: torch.Generator | None = None,
    ) -> SampleMaps:
        """Eq. 5: mean foreground probability over L prototypes, and the uncertainty maps over
        them (``SampleMaps``, (B, H, W) each). The deterministic twin decodes its mean once."""
        mean, var = self.prior(support_images, support_masks)
        samples = samples if self.config.probabilistic else 1
        z = self.prototypes(mean, var, samples, generator)
        return self.sample_maps(self.encoder(query_images), z, query_images)

    def sample_maps(
        self, features: Features, z: torch.Tensor, query_images: torch.Tensor
    ) -> SampleMaps:
        """The ``SampleMaps`` (B, H, W) of B encoded queries' L prototypes z (B, L, D), at the
        queries' size. A decoder at low resolution is summarised at its own size and its four maps
        upsampled once, so each sample costs only stride-8 work (docs/reproduce.md, "L's price").
        The mean probability is then refined along the query's edges (``refine_passes``),
        once per query, and the entropy is that of the refined mean; the variance and mutual
        information stay the samples' own."""
        out_size = query_images.shape[-2:]
        native = None if self.config.decoder_low_resolution else out_size
        maps = summarise_samples(torch.sigmoid(self.decode(features, z, native)), out_size)
        if not self.config.refine_passes:
            return maps
        probability = edge_aware_refinement(maps.probability, query_images,
                                            self.config.refine_passes)
        return maps._replace(probability=probability, entropy=binary_entropy(probability))

    def forward(
        self,
        batch: EpisodeBatch,
        noise: torch.Tensor | None = None,
        kl_weight: float = 1.0,
        similarity_weight: float = 0.0,
        dice_weight: float = 0.0,
        free_bits: float = 0.0,
        dice_on_refined: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The training objective of Eq. 4: cross-entropy + KL(q || p).

        ``noise`` (B, S, D) or (B, D) is the standard-normal draw of the reparameterisation, S at
        least ``likelihood_samples`` (drawn here when not given; the training loop passes one per
        episode index so that runs are reproducible however the batch is split). z is drawn from
        the prior, the posterior or both (``likelihood_z``); the S prior samples' losses combine
        by ``likelihood_rule``. The KL is divided by the number of scored pixels so that
        both terms are per pixel (the ELBO summed over pixels, rescaled), whatever the image size;
        ``kl_weight`` scales the KL term (1 is the paper's objective) and ``free_bits`` floors it
        per dimension (``kl_divergence``; 0 is the paper's). With the similarity map,
        ``similarity_weight`` adds ``similarity_loss`` (0 leaves the objective the paper's).
        ``dice_weight`` adds ``soft_dice_loss``: it scores each episode's mask as a whole, so a
        small target counts as much as a large one, as in IoU; per-pixel cross-entropy lets the
        few pixels of a small target count for little. ``dice_on_refined`` scores that term on
        each sample's map after ``refine_passes`` of edge-aware refinement, the map test time
        thresholds, so the decoder learns maps that refine well.
        """
        mean_p, logvar_p = self.shot_priors(batch.support_images, batch.support_masks)
        mean_p, var_p = aggregate_priors(mean_p, logvar_p, self.shot_rule)
        features = self.encoder(batch.query_image)
        valid = batch.query_mask != IGNORE_INDEX
        target = (batch.query_mask == 1).float()
        pixels = valid.sum((1, 2)).clamp(min=1).float()
        if self.config.probabilistic:
            kl, posterior, prior = self._likelihood_prototypes(
                features, (target * valid)[:, None], mean_p, var_p, noise, free_bits)
        else:
            kl, posterior, prior = torch.zeros_like(pixels), None, mean_p[:, None]
        z = torch.cat([p for p in (posterior, prior) if p is not None], 1)
        logits = self.decode(features, z, batch.query_image.shape[-2:])  # (B, S', H, W)
        ce = F.binary_cross_entropy_with_logits(
            logits, target[:, None].expand_as(logits), reduction="none")
        ce = (ce * valid[:, None]).sum((2, 3)) / pixels[:, None]  # (B, S')
        per_sample = ce
        terms = {"ce": ce.mean().detach(), "kl": kl.mean().detach()}
        if dice_weight:
            probability = torch.sigmoid(logits)
            if dice_on_refined:
                probability = self._refined_samples(probability, batch.query_image)
            dice = soft_dice_loss(probability, target[:, None], valid[:, None])
            per_sample = per_sample + dice_weight * dice
            terms["dice"] = dice.mean().detach()
        likelihood = per_sample[:, :1] if posterior is not None else per_sample[:, :0]
        if prior is not None:
            rule_loss = combine_sample_losses(per_sample[:, -prior.shape[1]:],
                                              self.config.likelihood_rule, pixels)
            likelihood = torch.cat([likelihood, rule_loss[:, None]], 1)
        loss = likelihood.sum(1) + kl_weight * kl / pixels
        if self.reads_similarity and similarity_weight:
            match = self.similarity_loss(features, mean_p, target, valid)
            loss = loss + similarity_weight * match
            terms["match"] = match.mean().detach()
        return {"loss": loss.mean(), **terms}

    def _refined_samples(self, probability: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Each sample's probability map (B, S, H, W) refined along its query's edges (B, 3, H, W)."""
        batch, samples = probability.shape[:2]
        images = images[:, None].expand(-1, samples, -1, -1, -1).flatten(0, 1)
        refined = edge_aware_refinement(probability.flatten(0, 1), images,
                                        self.config.refine_passes)
        return refined.unflatten(0, (batch, samples))

    def _likelihood_prototypes(
        self, features: Features, target: torch.Tensor, mean_p: torch.Tensor,
        var_p: torch.Tensor, noise: torch.Tensor | None, free_bits: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """KL(q || p) (B,) and the likelihood's prototypes: one posterior sample (B, 1, D) and S
        prior samples (B, S, D), each None where ``likelihood_z`` leaves it out."""
        config = self.config
        mean_q, logvar_q = self.posterior_net(self.prototype_features(features), target)
        gaussian = self.prior_net.gaussian_dim  # the background's parts are not z's Gaussian
        kl = kl_divergence(mean_q[:, :gaussian], logvar_q[:, :gaussian], mean_p[:, :gaussian],
                           var_p[:, :gaussian].log(), free_bits)
        samples = config.likelihood_samples
        if noise is None:
            noise = draw_noise((mean_p.shape[0], samples, mean_p.shape[1]), None)
        noise = (noise[:, None] if noise.dim() == 2 else noise).to(mean_p)
        posterior = prior = None
        if config.likelihood_z != "prior":
            posterior = sample_prototypes(mean_q, logvar_q.exp(), noise[:, :1])
        if config.likelihood_z != "posterior":
            prior = sample_prototypes(mean_p, var_p, noise[:, :samples])
        return kl, posterior, prior

    def similarity_loss(
        self, features: Features, mean: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """Per-episode cross-entropy of the prior mean's similarity map, read as a mask (B,).

        An auxiliary term (PANet's prototypes are trained alike): it teaches the projection to
        make the query's target pixels, not its other objects, resemble the support's prototype.
        Without it the decoder first learns "segment every object" and the map stays flat.
        Targets and valid pixels are area-averaged to the feature map's size.
        """
        keys = self.prior_net.project(self.prototype_features(features))
        logits = self.decoder.match_logits(keys, mean[:, None])[:, 0]  # (B, h, w)
        size = keys.shape[-2:]
        weight = F.adaptive_avg_pool2d(valid[:, None].float(), size)[:, 0]
        soft = F.adaptive_avg_pool2d((target * valid)[:, None], size)[:, 0] / weight.clamp(min=1e-6)
        loss = F.binary_cross_entropy_with_logits(logits, soft, reduction="none") * weight
        return loss.sum((1, 2)) / weight.sum((1, 2)).clamp(min=1e-6)


def pooled_map(features: Features, kind: str) -> torch.Tensor:
    """The map prototypes are pooled from (N, C, h, w): the deep features, or with "deep+mid"
    (``ModelConfig.prototype_features``) the stride-8 mid-level ones beside them. Mid-level
    features describe texture and shape locally and carry over to unseen classes better (PFENet
    pools layer 2 + 3)."""
    if kind == "deep+mid":
        deep = features.deep
        if deep.shape[-2:] != features.skip8.shape[-2:]:  # an undilated encoder
            deep = F.interpolate(deep, size=features.skip8.shape[-2:], mode="bilinear",
                                 align_corners=False)
        return torch.cat([deep, features.skip8], 1)
    return features.deep


def soft_dice_loss(
    probability: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """1 - soft Dice of the foreground probability per episode (and sample), over valid pixels:
    probability (..., H, W) -> (...); the +1 keeps an all-background target finite (predicting
    none of it scores 0 loss)."""
    probs = probability * valid
    target = target * valid
    overlap = (probs * target).sum((-2, -1))
    return 1 - (2 * overlap + 1) / (probs.sum((-2, -1)) + target.sum((-2, -1)) + 1)


def combine_sample_losses(losses: torch.Tensor, rule: str, pixels: torch.Tensor) -> torch.Tensor:
    """Per-pixel losses (B, S) of S prototype samples -> one per episode (B,).

    "mean" scores every sample; "best" only the lowest; "mixture" is the negative log-likelihood
    of the mixture of the S samples' predictions per pixel-summed episode (stochastic
    segmentation networks), rescaled per pixel: -(logsumexp(-N l_s) - log S) / N for N pixels.
    """
    if rule == "mean":
        return losses.mean(1)
    if rule == "best":
        return losses.amin(1)
    n = pixels[:, None]
    return -(torch.logsumexp(-n * losses, 1) - math.log(losses.shape[1])) / pixels
