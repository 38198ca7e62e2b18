"""Reference predictors scored on the same episodes as the model, so a number has context.

If the colour baseline comes close to the model, the task is a colour threshold, not few-shot
segmentation: the built-in data is designed so that it does not. The class-agnostic oracle segments
every object of the query perfectly: what a flawless "segment the objects" network that ignores
the support would score. A predictor returns None where an episode batch lacks what it needs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vpi.data.episode import EpisodeBatch


def all_foreground(batch: EpisodeBatch) -> torch.Tensor:
    return torch.ones_like(batch.query_mask, dtype=torch.bool)


def all_background(batch: EpisodeBatch) -> torch.Tensor:
    return torch.zeros_like(batch.query_mask, dtype=torch.bool)


def nearest_colour(batch: EpisodeBatch) -> torch.Tensor:
    """Each query pixel is foreground if its colour is nearer the supports' mean foreground colour
    than their mean background colour. Returns (B, H, W) bool."""
    images = batch.support_images  # (B, K, 3, H, W)
    masks = batch.support_masks  # (B, K, 1, H, W)
    dims = (1, 3, 4)
    fg = (images * masks).sum(dims) / masks.sum(dims).clamp(min=1)
    bg = (images * (1 - masks)).sum(dims) / (1 - masks).sum(dims).clamp(min=1)
    query = batch.query_image  # (B, 3, H, W)
    to_fg = ((query - fg[..., None, None]) ** 2).sum(1)
    to_bg = ((query - bg[..., None, None]) ** 2).sum(1)
    return to_fg < to_bg


def class_agnostic_oracle(batch: EpisodeBatch) -> torch.Tensor | None:
    """Every object of the query, whatever its class: (B, H, W) bool, where the data knows them."""
    return None if batch.query_objects is None else batch.query_objects.bool()


BASELINES: dict[str, Callable[[EpisodeBatch], torch.Tensor | None]] = {
    "all-foreground": all_foreground,
    "all-background": all_background,
    "colour": nearest_colour,
    "class-agnostic oracle": class_agnostic_oracle,
}
