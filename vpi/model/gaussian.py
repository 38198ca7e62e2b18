"""Diagonal-Gaussian algebra of VPI: masked pooling, k-shot aggregation, KL and sampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vpi.graphs import draw_noise, reparameterise

_EPS = 1e-6
# The smallest norm ``unit`` divides by: a normal fp16 number, where F.normalize's 1e-12 is 0 and
# a zero vector (a ReLU's) came out of an fp16 engine as 0 / 0. Features' norms are far above it.
NORM_EPS = 1e-4


def unit(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` scaled to unit length along ``dim`` (for cosine similarities); zero stays zero."""
    return F.normalize(x, dim=dim, eps=NORM_EPS)


def masked_average_pool(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Average of ``features`` (N, C, h, w) over the foreground of ``masks`` (N, 1, H, W).

    The mask is resized to the feature map bilinearly; an empty mask gives a zero vector, a full
    one the global average. Written with sums (no boolean indexing) so it exports to ONNX.
    """
    m = F.interpolate(masks, size=features.shape[-2:], mode="bilinear", align_corners=False)
    return (features * m).sum((2, 3)) / (m.sum((2, 3)) + _EPS)


def aggregate_priors(
    mean: torch.Tensor, logvar: torch.Tensor, method: str = "variance"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuse K per-shot priors, mean and log-variance (..., K, D), into mean and variance (..., D).

    "variance" (Eq. 6): precision-weighted mean, variance K / sum(1 / var_i), so confident
    shots weigh more. "mean" (Eq. 10): the plain mean of the means and of the variances.

    Both work on the log-variances with the extreme one factored out, so that every summed term
    lies in (0, 1]: Eq. 6's weights are softmax(-logvar) and its variance
    K * exp(-logsumexp(-logvar)) = exp(min logvar) / mean(exp(min logvar - logvar)); Eq. 10's
    variance is exp(max logvar) * mean(exp(logvar - max logvar)). The textbook sums overflow
    fp16: ten precisions at the -10 clamp of the log-variance add up to 2.2e5 > 65504.
    """
    if method == "variance":
        low = logvar.amin(-2, keepdim=True)
        relative = torch.exp(low - logvar)  # precision_i / the largest precision
        weights = relative / relative.sum(-2, keepdim=True)
        return (weights * mean).sum(-2), low.squeeze(-2).exp() / relative.mean(-2)
    if method == "mean":
        high = logvar.amax(-2, keepdim=True)
        variance = high.squeeze(-2).exp() * torch.exp(logvar - high).mean(-2)
        return mean.mean(-2), variance
    raise ValueError(f"aggregation must be 'variance' or 'mean', got {method!r}")


def kl_divergence(
    mean_q: torch.Tensor, logvar_q: torch.Tensor, mean_p: torch.Tensor, logvar_p: torch.Tensor,
    free_bits: float = 0.0,
) -> torch.Tensor:
    """KL(q || p) of diagonal Gaussians in closed form, summed over the last axis.

    ``free_bits`` (nats per dimension, Kingma et al. 2016) floors each dimension's term: below it
    the KL has no gradient, so it stops pulling the posterior onto the prior there (0: the ELBO).
    """
    kl = 0.5 * (
        logvar_p - logvar_q + (logvar_q.exp() + (mean_q - mean_p) ** 2) / logvar_p.exp() - 1.0
    )
    return (kl.clamp(min=free_bits) if free_bits else kl).sum(-1)


def sample_prototypes(mean: torch.Tensor, var: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Reparameterised draws z = mean + noise * std: mean, var (B, D), noise (B, L, D) -> (B, L, D)."""
    return reparameterise(mean[:, None], var[:, None], noise)


def draw_prototypes(
    mean: torch.Tensor,
    var: torch.Tensor,
    samples: int,
    generator: torch.Generator | None,
    probabilistic: bool = True,
) -> torch.Tensor:
    """L prototypes per episode (B, L, D): draws from N(mean, var), or the mean if deterministic.

    The noise (B, L, D) is drawn on the CPU in one call (``draw_noise``), so the PyTorch model and
    a runner that scores the exported graphs (``vpi.eval.engine``) get the same z from the same
    generator.
    """
    noise = draw_noise((mean.shape[0], samples, mean.shape[1]), generator, probabilistic)
    return sample_prototypes(mean, var, noise.to(mean))
