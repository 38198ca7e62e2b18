"""Edge-aware refinement: the decoder's coarse probability map snapped to the query's own edges.

The matching decoder decides at stride 8, so its upsampled mask is blurred across object edges
by several pixels. A guided filter (He et al., 2010) with the query's colours as the guide fits,
in each window, the probability as a linear function of the colour; averaged over the windows
and applied at every pixel, that function puts the mask's edge where the colour changes. It is
computed on a 4x subsampled grid and applied at full resolution (the fast guided filter, He and
Sun, 2015): a few dozen operations on a 32 x 32 grid at 128 px. Nothing in it is learned, so
nothing in it can learn what generated objects look like: on the demo it raised the built-in fold
and photographs alike (docs/reproduce.md, "Edge-aware refinement"). Short of its final clamp
into [0, 1] it is linear in the probability map, so refining the mean of L maps is the mean of
the refined maps: it runs once per query, after the L samples are summarised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Chosen at 128 px on built-in episodes of seed 1 (never the test list, never the photographs):
# windows of 33 x 33 pixels (radius 4 on the 4x grid), regularisation 1e-3 on RGB in [0, 1].
SUBSAMPLE = 4
RADIUS = 4
EPSILON = 1e-3
# The guide is scaled by GUIDE_SCALE and EPSILON by its square: the filter's output is unchanged
# (its colour coefficients scale by 1 / GUIDE_SCALE), bit for bit in fp32 since it is a power of
# two, but the colour covariance's determinant (about EPSILON^3 = 1e-9 unscaled) leaves fp16's
# underflow, where reduced-precision graphs (OpenVINO's fp16) divided by zero and gave NaN.
GUIDE_SCALE = 8.0


def edge_aware_refinement(
    probability: torch.Tensor, image: torch.Tensor, passes: int
) -> torch.Tensor:
    """probability (B, H, W) in [0, 1], image (B, 3, H, W) in [0, 1] -> refined (B, H, W), fp32,
    in [0, 1]. Each pass filters the previous one's output; 0 passes is the identity."""
    if passes == 0:
        return probability
    # Centred on the image's mean colour: the fit absorbs a constant shift of the guide in its
    # offset, and the windows' covariances (mean of products minus product of means) lose far
    # less to cancellation in fp32, so every backend computes the same map.
    image = image.float()
    image = (image - image.mean((2, 3), keepdim=True)) * GUIDE_SCALE
    low = F.avg_pool2d(image, SUBSAMPLE)
    mean = _box(low)  # the guide's window means and inverse covariances serve every pass
    inverse = _inverse_covariance(low, mean)
    refined = probability.float()
    for _ in range(passes):
        refined = _guided_pass(refined, image, low, mean, inverse)
    return refined


def _box(x: torch.Tensor) -> torch.Tensor:
    """The mean over each pixel's window, the border's windows cut to the image."""
    return F.avg_pool2d(x, 2 * RADIUS + 1, stride=1, padding=RADIUS, count_include_pad=False)


def _inverse_covariance(low: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The guide's windowed colour covariance + EPSILON, inverted per pixel: its six distinct
    entries (B, h, w) each, by cofactors (no batched matrix op, so it exports anywhere). ``mean``
    is ``_box(low)``."""
    r, g, b = low.unbind(1)
    mr, mg, mb = mean.unbind(1)

    def cov(x: torch.Tensor, mx: torch.Tensor, y: torch.Tensor, my: torch.Tensor) -> torch.Tensor:
        return _box((x * y)[:, None])[:, 0] - mx * my

    epsilon = EPSILON * GUIDE_SCALE**2
    a11, a22, a33 = (cov(r, mr, r, mr) + epsilon, cov(g, mg, g, mg) + epsilon,
                     cov(b, mb, b, mb) + epsilon)
    a12, a13, a23 = cov(r, mr, g, mg), cov(r, mr, b, mb), cov(g, mg, b, mb)
    c11, c12, c13 = a22 * a33 - a23 * a23, a13 * a23 - a12 * a33, a12 * a23 - a13 * a22
    c22, c23, c33 = a11 * a33 - a13 * a13, a12 * a13 - a11 * a23, a11 * a22 - a12 * a12
    det = a11 * c11 + a12 * c12 + a13 * c13
    return tuple(c / det for c in (c11, c12, c13, c22, c23, c33))


def _guided_pass(
    probability: torch.Tensor, image: torch.Tensor, low: torch.Tensor, mean: torch.Tensor,
    inverse: tuple[torch.Tensor, ...],
) -> torch.Tensor:
    """One pass: per window on the coarse grid, the least-squares linear map from colour to
    probability; the windows' mean maps, upsampled, applied to the full-resolution colours."""
    p = F.avg_pool2d(probability[:, None], SUBSAMPLE)[:, 0]
    mp = _box(p[:, None])[:, 0]
    v1, v2, v3 = (_box((channel * p)[:, None])[:, 0] - m * mp
                  for channel, m in zip(low.unbind(1), mean.unbind(1), strict=True))
    i11, i12, i13, i22, i23, i33 = inverse
    ar = i11 * v1 + i12 * v2 + i13 * v3
    ag = i12 * v1 + i22 * v2 + i23 * v3
    ab = i13 * v1 + i23 * v2 + i33 * v3
    offset = mp - ar * mean[:, 0] - ag * mean[:, 1] - ab * mean[:, 2]
    coefficients = _box(torch.stack([ar, ag, ab, offset], 1))
    coefficients = F.interpolate(coefficients, size=image.shape[-2:], mode="bilinear",
                                 align_corners=False)
    refined = (coefficients[:, :3] * image).sum(1) + coefficients[:, 3]
    return refined.clamp(0.0, 1.0)
