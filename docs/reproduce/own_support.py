"""Is the demo limited by finding the target or by drawing its mask? (docs/reproduce.md)

Scores 120 1-shot test episodes twice: with each episode's support, and with the query's own
image and ground truth as its support (a perfect prototype). Prints the mean episode IoU of both
and how the episodes spread over IoU bins.

    python docs/reproduce/own_support.py runs/demo-*/best.pt
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from vpi.checkpoint import load_model
from vpi.data import build_episodes, collate_episodes

EPISODES, BATCH, SAMPLES = 120, 8, 6


def episode_ious(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    inter = (pred & target).sum((1, 2)).float()
    union = (pred | target).sum((1, 2)).float()
    return (inter / union.clamp(min=1)).tolist()


def main(checkpoint: str) -> None:
    model, config = load_model(checkpoint)[:2]
    model.eval()
    episodes = build_episodes(config.data, "test", shots=1, episodes=EPISODES, seed=0)
    generator = torch.Generator().manual_seed(0)
    own, real = [], []
    for start in range(0, EPISODES, BATCH):
        batch = collate_episodes([episodes[i] for i in range(start, min(start + BATCH, EPISODES))])
        target = batch.query_mask == 1
        probs, _ = model.predict(batch.support_images, batch.support_masks, batch.query_image,
                                 SAMPLES, generator)
        real += episode_ious(probs > 0.5, target)
        probs, _ = model.predict(batch.query_image[:, None], target[:, None, None].float(),
                                 batch.query_image, SAMPLES, generator)
        own += episode_ious(probs > 0.5, target)
    for name, ious in (("episode's support", real), ("query's own ground truth", own)):
        counts = np.histogram(ious, bins=10, range=(0, 1))[0]
        print(f"{name}: mean episode IoU {100 * np.mean(ious):.1f}; episodes per 0.1 bin {counts}")


if __name__ == "__main__":
    main(sys.argv[1])
