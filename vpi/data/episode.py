"""The Episode contract: what every dataset (built-in, PASCAL-5i, COCO-20i, FSS-1000) returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

IGNORE_INDEX = 255  # label of pixels that count in neither loss nor metrics (VOC boundaries)


@dataclass
class Episode:
    """One few-shot task: k support pairs and one query pair of the same class.

    Images are float RGB in [0, 1] (the model normalises them); masks hold 0 = background,
    1 = foreground and, for the query only, ``IGNORE_INDEX`` where a pixel is not scored.

    support_images: (K, 3, H, W) float32
    support_masks:  (K, 1, H, W) float32 in {0, 1}
    query_image:    (3, H, W) float32
    query_mask:     (H, W) int64 in {0, 1, IGNORE_INDEX}
    class_id:       the dataset's id of the episode's class
    query_objects:  (H, W) int64 in {0, 1}, every object of the query whatever its class, where the
                    dataset knows them (the built-in data): the class-agnostic oracle's answer
    """

    support_images: torch.Tensor
    support_masks: torch.Tensor
    query_image: torch.Tensor
    query_mask: torch.Tensor
    class_id: int
    query_objects: torch.Tensor | None = None


@dataclass
class EpisodeBatch:
    """Episodes stacked along a leading batch axis B (same K and size in the batch)."""

    support_images: torch.Tensor  # (B, K, 3, H, W)
    support_masks: torch.Tensor  # (B, K, 1, H, W)
    query_image: torch.Tensor  # (B, 3, H, W)
    query_mask: torch.Tensor  # (B, H, W)
    class_ids: torch.Tensor  # (B,) int64
    query_objects: torch.Tensor | None = None  # (B, H, W), where every episode has them

    def to(self, device: torch.device | str) -> EpisodeBatch:
        return EpisodeBatch(
            self.support_images.to(device, non_blocking=True),
            self.support_masks.to(device, non_blocking=True),
            self.query_image.to(device, non_blocking=True),
            self.query_mask.to(device, non_blocking=True),
            self.class_ids.to(device, non_blocking=True),
            None if self.query_objects is None else self.query_objects.to(device, non_blocking=True),
        )


def collate_episodes(episodes: Sequence[Episode]) -> EpisodeBatch:
    """Stack episodes for a DataLoader (``collate_fn=collate_episodes``)."""
    return EpisodeBatch(
        support_images=torch.stack([e.support_images for e in episodes]),
        support_masks=torch.stack([e.support_masks for e in episodes]),
        query_image=torch.stack([e.query_image for e in episodes]),
        query_mask=torch.stack([e.query_mask for e in episodes]),
        class_ids=torch.tensor([e.class_id for e in episodes], dtype=torch.int64),
        query_objects=None if any(e.query_objects is None for e in episodes)
        else torch.stack([e.query_objects for e in episodes]),
    )
