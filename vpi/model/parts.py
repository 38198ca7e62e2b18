"""The support's background split into parts: further prototypes that a query pixel must not be
nearer than the foreground one.

One background prototype averages a scene's backdrop and every other object in it into one
vector that resembles none of them, so a query pixel on another object can lie nearer the
foreground prototype than that average, and is taken (docs/reproduce.md, "Background parts").
A few cluster centres of the background's own pixels keep those objects apart.

The clustering is a soft k-means over the pixels at least one feature cell away from the object
(pixels at its edge mix both), in cosine similarity. Soft assignments and soft seeds keep every
step continuous in its input, so that an exported graph, whose float sums differ from PyTorch's
in the last bits, gives the same parts rather than a pixel switching clusters. The first seed is
the background most like the foreground (the hardest negative), each further one the background
least like the seeds before it (things equally unlike them share a seed); so part i means the
same thing in every shot, and k shots' parts can be fused as their prototypes are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vpi.model.gaussian import masked_average_pool, unit

TEMPERATURE = 0.1  # of the soft assignments and seeds, on cosine similarities in [-1, 1]
ITERATIONS = 5
_EDGE_CELLS = 1  # feature cells around the object left out of the background's parts
_EMPTY = 1e-6


def background_parts(
    features: torch.Tensor, masks: torch.Tensor, foreground: torch.Tensor, parts: int
) -> torch.Tensor:
    """features (N, C, h, w), masks (N, 1, H, W) in [0, 1], the pooled foreground (N, C) ->
    ``parts`` centres of the background away from the object (N, parts, C), as averages of its
    features (like the prototypes). A support with no such background gets its plain background
    average for each part."""
    m = F.interpolate(masks, size=features.shape[-2:], mode="bilinear", align_corners=False)
    near = F.max_pool2d(m, 2 * _EDGE_CELLS + 1, 1, _EDGE_CELLS)
    away = (1.0 - near.clamp(0.0, 1.0)).flatten(1)  # (N, P), 0 on and beside the object
    pixels = features.flatten(2)  # (N, C, P)
    directions = unit(pixels, dim=1)
    like = torch.einsum("nc,ncp->np", unit(foreground, dim=1), directions)
    centres = [_weighted_mean(pixels, away * _softmax_over(like, away))]
    for _ in range(parts - 1):
        taken = torch.stack([_similarity(c, directions) for c in centres], 1).amax(1)  # (N, P)
        centres.append(_weighted_mean(pixels, away * _softmax_over(-taken, away)))
    centres = torch.stack(centres, 1)  # (N, parts, C)
    for _ in range(ITERATIONS):
        similarity = torch.einsum("nkc,ncp->nkp", unit(centres, dim=-1), directions)
        weights = torch.softmax(similarity / TEMPERATURE, 1) * away[:, None]  # (N, parts, P)
        centres = torch.einsum("nkp,ncp->nkc", weights, pixels) / (weights.sum(-1, keepdim=True)
                                                                    + _EMPTY)
    background = masked_average_pool(features, 1.0 - masks)
    has_away = (away.sum(1) > 0.5).to(features.dtype)[:, None, None]
    return has_away * centres + (1.0 - has_away) * background[:, None]


def _softmax_over(score: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """softmax(score / TEMPERATURE) over the pixels where ``weights`` is not 0: (N, P)."""
    score = score / TEMPERATURE - 1e4 * (weights <= 0).to(score.dtype)
    return torch.softmax(score, -1)


def _similarity(centre: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    return torch.einsum("nc,ncp->np", unit(centre, dim=-1), directions)


def _weighted_mean(pixels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N, C, P) pixels averaged by (N, P) weights -> (N, C)."""
    return torch.einsum("np,ncp->nc", weights, pixels) / (weights.sum(-1, keepdim=True) + _EMPTY)
