"""Image/mask conversions and the training augmentation, shared by every dataset.

Images are float tensors ``(3, H, W)`` in [0, 1]; masks are int64 ``(H, W)`` label maps. Every
geometric change is applied to the image and its mask together (bilinear for the image, nearest
for the mask) so the pair stays aligned.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor_image(image: np.ndarray) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 array as a float32 ``(3, H, W)`` tensor in [0, 1]."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be a uint8 array of shape (H, W, 3), got {image.dtype} {image.shape}"
        )
    return torch.from_numpy(image).permute(2, 0, 1).contiguous().float().div_(255.0)


def to_tensor_mask(mask: np.ndarray) -> torch.Tensor:
    """An ``(H, W)`` integer or bool label array as an int64 ``(H, W)`` tensor."""
    if mask.ndim != 2 or not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
        raise ValueError(
            f"mask must be an integer array of shape (H, W), got {mask.dtype} {mask.shape}"
        )
    return torch.from_numpy(mask.astype(np.int64))


def resize_pair(
    image: torch.Tensor, mask: torch.Tensor, size: int | tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize ``(3, H, W)`` image (bilinear, anti-aliased) and ``(H, W)`` mask (nearest).

    ``size`` is an int for a square output or ``(height, width)``.
    """
    _check_pair(image, mask)
    out = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(image.shape[-2:]) == out:
        return image, mask
    image = F.interpolate(
        image[None], size=out, mode="bilinear", align_corners=False, antialias=True
    )[0].clamp_(0.0, 1.0)
    mask = F.interpolate(mask[None, None].float(), size=out, mode="nearest-exact")[0, 0]
    return image, mask.long()


def augment_pair(
    image: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    *,
    ignore_value: int,
    scale: tuple[float, float] = (0.6, 1.0),
    max_degrees: float = 15.0,
    flip_prob: float = 0.5,
    min_kept: float = 0.5,
    attempts: int = 3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training recipe: random crop, horizontal flip and rotation, as one affine warp.

    The crop's side is a fraction in ``scale`` of the image's and is resized back to ``(H, W)``.
    Pixels that the warp brings in from outside the image are 0 in the image and
    ``ignore_value`` in the mask (0 for a support mask, ``IGNORE_INDEX`` for a query mask).
    A warp must keep at least ``min_kept`` of the foreground (label 1) in view, since a support
    or query cropped down to a sliver of its object teaches nothing: up to ``attempts`` warps
    are drawn, and if none qualifies the pair comes back unchanged. Draws from ``rng`` only, so
    it is reproducible.
    """
    _check_pair(image, mask)
    height, width = image.shape[-2:]
    foreground = int((mask == 1).sum())
    for _ in range(attempts):
        side, grid = _random_grid(rng, height, width, scale, max_degrees, flip_prob)
        # The mask travels with a channel of ones that tells which pixels came from the image.
        labels = torch.stack([mask.float(), torch.ones_like(mask, dtype=torch.float32)])
        labels = F.grid_sample(
            labels[None], grid, mode="nearest", padding_mode="zeros", align_corners=False
        )[0]
        warped_mask = torch.where(labels[1] > 0.5, labels[0], float(ignore_value)).long()
        # The crop magnifies areas by 1 / side^2; undo that to compare with the input.
        if int((warped_mask == 1).sum()) * side**2 >= min_kept * foreground:
            warped = F.grid_sample(
                image[None].float(), grid, mode="bilinear", padding_mode="zeros",
                align_corners=False,
            )[0]
            return warped.clamp_(0.0, 1.0), warped_mask
    return image, mask


def _random_grid(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float],
    max_degrees: float,
    flip_prob: float,
) -> tuple[float, torch.Tensor]:
    """A random crop-flip-rotation as the crop's side fraction and a grid_sample grid (1, H, W, 2).

    The output -> input map in pixels about the centre is side * Rotation * Flip + shift; in the
    normalised [-1, 1] coordinates of grid_sample that is A = D^-1 (side * R * Flip) D with
    D = diag(W/2, H/2). Built directly because affine_grid is several times slower on the CPU.
    """
    side = rng.uniform(*scale)
    shift_x, shift_y = rng.uniform(-1.0, 1.0, size=2) * (1.0 - side)
    flip = -1.0 if rng.random() < flip_prob else 1.0
    angle = math.radians(rng.uniform(-max_degrees, max_degrees))
    cos, sin = math.cos(angle), math.sin(angle)
    aspect = height / width
    xs = (torch.arange(width, dtype=torch.float32) * 2.0 + 1.0) / width - 1.0
    ys = (torch.arange(height, dtype=torch.float32) * 2.0 + 1.0) / height - 1.0
    grid = torch.empty(1, height, width, 2)
    grid[0, :, :, 0] = side * (cos * flip * xs[None, :] - sin * aspect * ys[:, None]) + shift_x
    grid[0, :, :, 1] = side * (sin * flip / aspect * xs[None, :] + cos * ys[:, None]) + shift_y
    return side, grid


def _check_pair(image: torch.Tensor, mask: torch.Tensor) -> None:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a (3, H, W) tensor, got shape {tuple(image.shape)}")
    if mask.shape != image.shape[-2:]:
        raise ValueError(
            f"mask must be (H, W) = {tuple(image.shape[-2:])} like its image, "
            f"got {tuple(mask.shape)}"
        )
