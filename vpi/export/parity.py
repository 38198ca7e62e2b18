"""Parity of an exported backend with eager PyTorch, on random and on real inputs, one by one and
batched.

Random inputs cover the corners (K = 10, L = 16); real inputs — built-in images with their masks,
prototypes drawn from their prior — cover the values a deployment actually sees. The batch cases
give the candidate B = 2 items of different classes at once, and the reference each item alone:
an item's answer must not depend on what else is in its batch. Errors on the prior are scaled by
the size of the reference (variances reach e^10), errors on the decoder's maps are
absolute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from vpi.data.builtin import render_sample
from vpi.errors import BackendError
from vpi.graphs import DECODER_OUTPUTS, PRIOR_OUTPUTS, GraphSpec, reparameterise

FP32_TOLERANCE = 1e-4
GPU_FP32_TOLERANCE = 1e-3  # GPU kernels (cuDNN, TensorRT tactics) reorder fp32 sums
LOW_PRECISION_TOLERANCE = 3e-2  # fp16/bf16 engines against fp32 eager PyTorch
# Random inputs probe the ends of the dynamic ranges, real ones the sizes used in practice.
RANDOM_SHOTS, REAL_SHOTS = (1, 10), (1, 3)
RANDOM_SAMPLES, REAL_SAMPLES = (1, 16), (1, 6, 10)
BATCH_CLASSES, BATCH_SHOTS, BATCH_SAMPLES = (0, 1), 2, 6  # one item per class: B = 2
_REAL_CLASS = 0  # a class that fold 0 holds out, as a deployment would meet it
Pair = tuple[torch.Tensor, torch.Tensor]  # images and masks
Outputs = tuple[torch.Tensor, ...]


class GraphRunner(Protocol):
    """What parity needs of a runner (``vpi.runtime.Runner`` satisfies it)."""

    def run_prior(self, images: Any, masks: Any) -> Outputs: ...

    def run_decoder(self, query: Any, prototypes: Any) -> Outputs: ...


def parity_tolerance(precision: str, device: str) -> float:
    """The largest error a runner computing in ``precision`` on ``device`` ("cpu", "cuda") may make."""
    if precision != "fp32":
        return LOW_PRECISION_TOLERANCE
    return FP32_TOLERANCE if device == "cpu" else GPU_FP32_TOLERANCE


def parity_report(
    reference: GraphRunner, candidate: GraphRunner, spec: GraphSpec, tolerance: float
) -> dict[str, Any]:
    """Run both on every case; the worst error per output and every case's figures.

    The reference runs each item of a case alone, the candidate the whole batch at once.
    """
    cases = []
    for kind, images, masks in _support_cases(spec):
        ref = _one_by_one(reference.run_prior, images, masks)
        got = candidate.run_prior(images, masks)
        cases.append({"graph": "prior_encoder", "inputs": kind, "B": int(images.shape[0]),
                      "K": int(images.shape[1]),
                      **{name: _scaled(r, g)
                         for name, r, g in zip(PRIOR_OUTPUTS, ref, got, strict=True)}})
    for kind, query, prototypes in _decoder_cases(spec, reference):
        ref = _one_by_one(reference.run_decoder, query, prototypes)
        got = candidate.run_decoder(query, prototypes)
        cases.append({"graph": "segmentation_decoder", "inputs": kind, "B": int(query.shape[0]),
                      "L": int(prototypes.shape[1]),
                      **{name: _abs(r, g)
                         for name, r, g in zip(DECODER_OUTPUTS, ref, got, strict=True)}})
    worst = {name: max(c[name] for c in cases if name in c)
             for name in PRIOR_OUTPUTS + DECODER_OUTPUTS}
    return {"tolerance": tolerance, "max_error": worst, "cases": cases}


def check_parity(report: dict[str, Any], backend: str) -> None:
    """Refuse an export whose worst error exceeds the tolerance, naming the case."""
    tolerance = report["tolerance"]
    for case in report["cases"]:
        for name in PRIOR_OUTPUTS + DECODER_OUTPUTS:
            if case.get(name, 0.0) > tolerance:
                size = f"K={case['K']}" if "K" in case else f"L={case['L']}"
                raise BackendError(
                    f"{backend} disagrees with eager PyTorch on {case['graph']} at {size}, "
                    f"B={case['B']} ({case['inputs']} inputs): {name} error {case[name]:.2e} > "
                    f"{tolerance:.0e}; the export was not written"
                )


def _one_by_one(
    run: Callable[[Any, Any], Outputs], first: torch.Tensor, second: torch.Tensor
) -> Outputs:
    """``run`` on each item of a batch alone, its answers stacked again."""
    answers = [run(first[i:i + 1], second[i:i + 1]) for i in range(first.shape[0])]
    return tuple(torch.cat(parts) for parts in zip(*answers, strict=True))


def _support_cases(spec: GraphSpec) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(inputs, images (B, K, 3, S, S), masks (B, K, 1, S, S)); B = 1 but for the batch case."""
    gen = torch.Generator().manual_seed(0)
    s = spec.input_size
    cases = []
    for shots in _within(RANDOM_SHOTS, spec.max_shots):
        masks = (torch.rand(1, shots, 1, s, s, generator=gen) > 0.5).float()
        cases.append(("random", torch.rand(1, shots, 3, s, s, generator=gen), masks))
    images, masks = _real_pairs(s, max(REAL_SHOTS) + 1)
    cases += [("real", images[None, :k], masks[None, :k]) for k in _within(REAL_SHOTS, spec.max_shots)]
    if _batched(spec):
        images, masks = _batch_pairs(s, BATCH_SHOTS)
        cases.append(("batch", images, masks))
    return cases


def _decoder_cases(
    spec: GraphSpec, reference: GraphRunner
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(inputs, queries (B, 3, S, S), prototypes (B, L, D)); each batch item with its own prior."""
    gen = torch.Generator().manual_seed(1)
    s, d = spec.input_size, spec.latent_dim
    cases = [("random", torch.rand(1, 3, s, s, generator=gen), torch.randn(1, n, d, generator=gen))
             for n in _within(RANDOM_SAMPLES, spec.max_samples)]
    shots = min(max(REAL_SHOTS), spec.max_shots)
    images, masks = _real_pairs(s, shots + 1)
    mean, var = reference.run_prior(images[None, :shots], masks[None, :shots])
    for n in _within(REAL_SAMPLES, spec.max_samples):
        noise = torch.randn(1, n, d, generator=gen)
        cases.append(("real", images[shots:], reparameterise(mean[:, None], var[:, None], noise)))
    if _batched(spec):
        shots = min(BATCH_SHOTS, spec.max_shots)
        images, masks = _batch_pairs(s, shots + 1)
        mean, var = _one_by_one(reference.run_prior, images[:, :shots], masks[:, :shots])
        samples = min(BATCH_SAMPLES, spec.max_samples)
        noise = torch.randn(len(BATCH_CLASSES), samples, d, generator=gen)
        cases.append(("batch", images[:, shots], reparameterise(mean[:, None], var[:, None], noise)))
    return cases


def _within(sizes: tuple[int, ...], maximum: int) -> list[int]:
    return [n for n in sizes if n <= maximum]


def _batched(spec: GraphSpec) -> bool:
    return spec.max_batch >= len(BATCH_CLASSES)


def _real_pairs(size: int, count: int, class_id: int = _REAL_CLASS) -> Pair:
    """``count`` built-in images of one held-out class: (N, 3, S, S) and masks (N, 1, S, S)."""
    rng = np.random.default_rng(class_id)
    pairs = [render_sample(class_id, rng, size) for _ in range(count)]
    images = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2) / 255.0
    masks = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None].float()
    return images.float().contiguous(), masks


def _batch_pairs(size: int, count: int) -> Pair:
    """``count`` pairs of each of BATCH_CLASSES: (B, count, 3, S, S) and masks (B, count, 1, S, S)."""
    pairs = [_real_pairs(size, count, class_id) for class_id in BATCH_CLASSES]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _abs(ref: torch.Tensor, got: torch.Tensor) -> float:
    return float((ref.float() - got.float()).abs().max())


def _scaled(ref: torch.Tensor, got: torch.Tensor) -> float:
    return _abs(ref, got) / max(1.0, float(ref.float().abs().max()))
