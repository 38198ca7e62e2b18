"""How much a checkpoint's predictions move with the sampled prototype z.

Averaging L samples (Eq. 5) can only help where single samples disagree. These figures say, for a
trained model, whether they do: if the decoder ignores z's noise, class-IoU is flat in L and L = 1
costs nothing in accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vpi.checkpoint import load_model
from vpi.data import build_episodes
from vpi.eval.scoring import iterate_batches


@dataclass(frozen=True)
class SampleSpread:
    """Averages over the test episodes, on the model's held-out fold."""

    episodes: int
    samples: int
    prior_std: float  # median standard deviation of p(z|S) over episodes and latent dimensions
    prior_mean_spread: float  # standard deviation of the prior means across episodes, per dimension
    pixel_std: float  # per-pixel std of the foreground probability over the L samples, mean
    pixel_std_max: float
    label_flips: float  # fraction of pixels whose label at L differs from a single sample's


@torch.no_grad()
def sample_spread(
    checkpoint: str | Path, *, episodes: int = 200, samples: int = 10, seed: int = 0,
    batch_size: int = 25,
) -> SampleSpread:
    """Score the spread of ``checkpoint``'s 1-shot predictions over ``samples`` draws of z."""
    model, config, _ = load_model(checkpoint)
    dataset = build_episodes(config.data, "test", shots=1, episodes=episodes, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    means, stds, pixel_std, flips = [], [], [], []
    for _, batch in iterate_batches(dataset, batch_size):
        mean, var = model.prior(batch.support_images, batch.support_masks)
        means.append(mean)
        stds.append(var.sqrt())
        features = model.encoder(batch.query_image)
        z = model.prototypes(mean, var, samples, generator)
        probs = torch.sigmoid(model.decode(features, z, batch.query_image.shape[-2:]))
        pixel_std.append(probs.std(1, unbiased=False))
        flips.append(((probs.mean(1) > config.eval.threshold) != (probs[:, 0] > config.eval.threshold))
                     .float().mean((1, 2)))
    pixel = torch.cat(pixel_std)
    return SampleSpread(
        episodes=len(dataset), samples=samples,
        prior_std=torch.cat(stds).median().item(),
        prior_mean_spread=torch.cat(means).std(0).mean().item(),
        pixel_std=pixel.mean().item(), pixel_std_max=pixel.max().item(),
        label_flips=torch.cat(flips).mean().item(),
    )
