"""One cell of the sweep: fresh inputs, the two ways to decode L prototypes, and the timed runs.

A run is what a deployment does for B users at once, each with a new support set and a query
(B = 1: a single user; B > 1: a server's batch of concurrent requests): the prior encoder on B sets
of K support pairs, the L prototypes z = mean + eps * std of each, and the decoder on the B
queries, either batched (one pass over all L prototypes, the exported graph) or looped (L passes
with one prototype each, as a naive implementation would: each query is encoded L times).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vpi.bench.timing import Clock, PeakMemory, summarize
from vpi.graphs import GraphSpec, SampleMaps, draw_noise, reparameterise, summarise_samples
from vpi.runtime.base import Runner

Decode = Callable[[Runner, torch.Tensor, torch.Tensor], SampleMaps]
Cell = tuple[int, str, int]  # L, mode, B


@dataclass
class InputStream:
    """Fresh, non-zero inputs for every run, drawn from a seeded generator outside the timed span:
    support images (B, K, 3, S, S) in [0.05, 1), masks (B, K, 1, S, S) with a rectangle of
    foreground, queries (B, 3, S, S) and the noise eps (B, L, D) of the prototypes."""

    spec: GraphSpec
    shots: int
    seed: int = 0
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def draw(
        self, samples: int, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        side, g = self.spec.input_size, self.generator
        images = 0.05 + 0.95 * torch.rand((batch, self.shots, 3, side, side), generator=g)
        masks = torch.zeros((batch, self.shots, 1, side, side))
        for mask in masks.flatten(0, 1):
            top, left = torch.randint(0, side // 2, (2,), generator=g).tolist()
            height, width = torch.randint(side // 4, side // 2 + 1, (2,), generator=g).tolist()
            mask[:, top:top + height, left:left + width] = 1.0
        query = 0.05 + 0.95 * torch.rand((batch, 3, side, side), generator=g)
        noise = draw_noise((batch, samples, self.spec.latent_dim), g)
        return images, masks, query, noise


def decode_batched(runner: Runner, query: torch.Tensor, prototypes: torch.Tensor) -> SampleMaps:
    """One decoder pass over all L prototypes (B, L, D): each query is encoded once."""
    return runner.run_decoder(query, prototypes)


def decode_looped(runner: Runner, query: torch.Tensor, prototypes: torch.Tensor) -> SampleMaps:
    """L decoder passes with one prototype each, then the maps over the L probability maps: the
    same result as ``decode_batched``, at the naive cost."""
    maps = torch.stack([runner.run_decoder(query, prototypes[:, i:i + 1]).probability
                        for i in range(prototypes.shape[1])], 1)
    return summarise_samples(maps)


DECODERS: dict[str, Decode] = {"batched": decode_batched, "looped": decode_looped}


def time_run(
    runner: Runner, clock: Clock, inputs: InputStream, samples: int, mode: str, batch: int
) -> tuple[float, float, float]:
    """One run on fresh inputs for ``batch`` users: (prior encoder, decoder, end to end) in ms.
    The end to end span also covers drawing the prototypes; drawing the inputs is outside it."""
    images, masks, query, noise = inputs.draw(samples, batch)
    marks = [clock.start()]
    mean, variance = runner.run_prior(images, masks)
    marks.append(clock.mark())
    prototypes = reparameterise(mean[:, None], variance[:, None], noise)
    marks.append(clock.mark())
    DECODERS[mode](runner, query, prototypes)
    marks.append(clock.mark())
    gaps = clock.elapsed_ms(marks)
    return gaps[0], gaps[2], sum(gaps)


@dataclass
class Lane:
    """One backend in the sweep: its runner, clock, memory gauge and input stream."""

    name: str
    runner: Runner
    clock: Clock
    memory: PeakMemory
    inputs: InputStream


def measure_cells(
    lanes: Sequence[Lane],
    cells: Sequence[Cell],
    *,
    warmup: int,
    repeats: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[tuple[str, int, str, int], dict[str, Any]]:
    """Time every backend and (L, mode, B) cell in interleaved rounds: ``warmup`` untimed rounds,
    then ``repeats`` timed ones, each running every backend's every cell once, in an order
    shuffled by ``seed``.

    Interleaving spreads a burst of load from elsewhere on the machine over all backends and cells
    instead of landing on one, so ratios stay fair on a shared host. Returns, per (backend, L,
    mode, B), the latency statistics (ms) of the prior encoder, the decoder and the whole run (each
    for all B users), the throughput of the decoder (queries/s once the support sets are encoded:
    B queries per mean decoder latency) and the peak memory over the cell's runs (MiB).
    """
    spans = {(lane.name, *cell): ([], [], []) for lane in lanes for cell in cells}
    peaks = dict.fromkeys(spans, 0.0)
    order = random.Random(seed)
    for round_ in range(warmup + repeats):
        if progress:
            progress(round_)
        # A fresh order each round: no cell always runs first, last, or after a given backend.
        # A backend's cells stay together, so thread pools hand over once per round.
        keys = [(lane, cell) for lane in order.sample(list(lanes), len(lanes))
                for cell in order.sample(list(cells), len(cells))]
        for lane, cell in keys:
            key = (lane.name, *cell)
            lane.memory.reset()
            timed = time_run(lane.runner, lane.clock, lane.inputs, *cell)
            peaks[key] = max(peaks[key], lane.memory.peak_mb())
            if round_ >= warmup:
                for values, value in zip(spans[key], timed, strict=True):
                    values.append(value)
    measured = {}
    for key, (prior, decoder, end_to_end) in spans.items():
        stats = {"prior_ms": summarize(prior), "decoder_ms": summarize(decoder),
                 "end_to_end_ms": summarize(end_to_end)}
        batch = key[3]
        measured[key] = {**stats,
                         "throughput_qps": round(batch * 1000.0 / stats["decoder_ms"]["mean"], 3),
                         "peak_memory_mb": peaks[key]}
    return measured
