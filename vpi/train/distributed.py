"""Data-parallel training on torchrun: process groups, the per-rank share of each step, reductions.

Training episodes come from a seeded, index-addressed stream, and step ``s`` uses the global
indices ``s*B .. (s+1)*B - 1``. Rank ``r`` of ``W`` takes the r-th contiguous slice of them, so
the ranks together see exactly the single-process batch, and every step (the stream's "epoch")
is new data without a sampler to reshuffle. The prototype noise is drawn per episode index too,
so a run on W processes computes the same averaged gradients as one process on the global batch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from vpi.errors import ConfigError
from vpi.graphs import draw_noise, noise_generator


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_type: str) -> DistContext:
    """Join torchrun's process group where its variables are set (NCCL on GPUs, gloo on CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    context = DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return context


def shutdown_distributed(context: DistContext) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def step_indices(step: int, batch: int, context: DistContext) -> range:
    """The global episode indices this rank trains on at ``step``."""
    share = batch // context.world
    start = step * batch + context.rank * share
    return range(start, start + share)


def per_rank_batch(batch: int, context: DistContext) -> int:
    if batch % context.world:
        raise ConfigError(
            f"train.batch_size {batch} does not split over {context.world} processes; "
            f"use a multiple of {context.world}"
        )
    return batch // context.world


class StepShardSampler(Sampler[int]):
    """Yields this rank's episode indices for steps ``start .. steps - 1``, in order."""

    def __init__(self, start: int, steps: int, batch: int, context: DistContext) -> None:
        self.start, self.steps, self.batch, self.context = start, steps, batch, context

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.steps):
            yield from step_indices(step, self.batch, self.context)

    def __len__(self) -> int:
        return (self.steps - self.start) * (self.batch // self.context.world)


def episode_noise(
    indices: Sequence[int], latent_dim: int, seed: int, samples: int = 1
) -> torch.Tensor:
    """Standard-normal noise (B, S, D) for the reparameterisation, a function of each episode
    index (its first sample is the same whatever S)."""
    return torch.stack([draw_noise((samples, latent_dim), noise_generator(seed, i)) for i in indices])


def all_reduce_sum(tensor: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Sum across ranks (a no-op in one process); used for pooled IoU counts."""
    if context.active:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def launch(devices: int, argv: Sequence[str], *, cpu: bool) -> int:
    """Re-run ``vpi train`` under torchrun on ``devices`` processes; returns its exit code."""
    if devices < 1:
        raise ConfigError(f"--devices is {devices}; it must be at least 1")
    if not cpu:
        available = torch.cuda.device_count()
        if devices > available:
            raise ConfigError(
                f"--devices {devices} asks for more GPUs than the {available} present; "
                f"use --device cpu to run {devices} gloo processes on the CPU"
            )
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={devices}", "-m", "vpi", "train", *argv]
    print("running:", " ".join(shutil.which("torchrun") and ["torchrun", *command[3:]] or command),
          flush=True)
    return subprocess.call(command)
