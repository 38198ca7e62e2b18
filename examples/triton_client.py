"""Segment one query through Triton's ``vpi`` ensemble: a request end to end.

Start Triton on a repository written by ``vpi export CHECKPOINT --triton model_repository`` (see
docs/serving.md), then::

    python examples/triton_client.py examples/support-star5 examples/queries/query1.png --out query_mask.png

Support pairs and query are prepared exactly as vpi's runtime prepares them (resized to the graphs'
input side, RGB in [0, 1]). An ensemble cannot draw random numbers, so this client draws the noise
(L, D) with a seed the way ``vpi.runtime.Segmenter`` does: a seed gives the mask that
``vpi segment --seed`` gives. Every tensor of a request leads with the batch axis (here 1: one
query); Triton merges concurrent requests along it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from vpi.config import MAX_SAMPLES, MAX_SHOTS
from vpi.errors import DataError, VpiError
from vpi.ranges import check_samples
from vpi.runtime import find_support_pairs, load_support
from vpi.runtime.processing import image_tensor, load_image, mask_tensor, to_original

OUTPUTS = ("probability", "variance")  # of the ensemble's maps (vpi.graphs.SampleMaps)


def draw_noise(samples: int, latent_dim: int, seed: int) -> np.ndarray:
    """(L, D) standard-normal noise from a seeded CPU torch generator, as ``Segmenter.prototypes``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((samples, latent_dim), generator=generator).numpy()


def request_arrays(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    query: np.ndarray,
    *,
    input_size: int,
    latent_dim: int,
    samples: int = 6,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The ensemble's inputs for one query, float32, each with a batch axis of 1: support_images
    (1, K, 3, S, S) and support_masks (1, K, 1, S, S) in [0, 1], query_image (1, 3, S, S), noise
    (1, L, D). Images are (H, W, 3) uint8, masks (H, W)."""
    if not 1 <= len(images) <= MAX_SHOTS:
        raise DataError(f"the support set has {len(images)} pairs; the ensemble takes 1 to {MAX_SHOTS}")
    check_samples(samples, MAX_SAMPLES)
    return {
        "support_images": torch.stack([image_tensor(i, input_size) for i in images])[None].numpy(),
        "support_masks": torch.stack([mask_tensor(np.asarray(m) != 0, input_size)
                                      for m in masks])[None].numpy(),
        "query_image": image_tensor(query, input_size)[None].numpy(),
        "noise": draw_noise(samples, latent_dim, seed)[None],
    }


def infer_inputs(arrays: dict[str, np.ndarray]) -> list[Any]:
    """``tritonclient.grpc.InferInput``s carrying ``arrays`` (all FP32)."""
    import tritonclient.grpc as grpcclient

    inputs = []
    for name, array in arrays.items():
        item = grpcclient.InferInput(name, list(array.shape), "FP32")
        item.set_data_from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        inputs.append(item)
    return inputs


def model_sizes(metadata: dict[str, Any]) -> tuple[int, int]:
    """The input side S and latent size D, read from the ensemble's metadata (``as_json=True``)."""
    shapes = {t["name"]: [int(d) for d in t["shape"]] for t in metadata["inputs"]}
    return shapes["query_image"][-1], shapes["noise"][-1]


def maps_at(
    size: tuple[int, int], probability: np.ndarray, uncertainty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(1, S, S) outputs of one request -> (H, W) maps at the query's size, as the runtime
    post-processes.

    ``torch.tensor`` copies: the arrays a Triton client returns are read-only views of its buffer.
    """
    uncertainty_map = to_original(torch.tensor(uncertainty[0]), size)
    return to_original(torch.tensor(probability[0]), size), np.clip(uncertainty_map, 0.0, None)


def segment(
    url: str, model: str, support: Path, query_path: Path, samples: int, seed: int,
    timeout: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One request to the ensemble; probability and uncertainty at the query's size.

    Each call to the server gives up after ``timeout`` seconds, so a stuck server is an error.
    """
    import tritonclient.grpc as grpcclient

    images, masks = load_support(find_support_pairs(support))
    query = load_image(query_path, "query image")
    client = grpcclient.InferenceServerClient(url)
    side, dim = model_sizes(client.get_model_metadata(model, as_json=True, client_timeout=timeout))
    arrays = request_arrays(images, masks, query, input_size=side, latent_dim=dim,
                            samples=samples, seed=seed)
    result = client.infer(model, infer_inputs(arrays), client_timeout=timeout,
                          outputs=[grpcclient.InferRequestedOutput(name) for name in OUTPUTS])
    return maps_at(query.shape[:2], *(result.as_numpy(name) for name in OUTPUTS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Segment one query through Triton's vpi ensemble (see docs/serving.md).")
    parser.add_argument("support", type=Path, help="folder of support images with NAME_mask.png beside")
    parser.add_argument("query", type=Path, help="query image")
    parser.add_argument("--url", default="localhost:8001", help="Triton's gRPC address")
    parser.add_argument("--model", default="vpi", help="the ensemble's name in the repository")
    parser.add_argument("--samples", "-L", type=int, default=6, help="samples of z, 1..16")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--threshold", type=float, default=0.5, help="foreground probability threshold")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each server call")
    parser.add_argument("--out", type=Path, default=Path("mask.png"), help="mask PNG to write")
    args = parser.parse_args(argv)
    if not 0.0 < args.threshold < 1.0:
        parser.error(f"--threshold is {args.threshold}; it must lie strictly between 0 and 1")
    from tritonclient.utils import InferenceServerException

    try:
        probability, uncertainty = segment(args.url, args.model, args.support, args.query,
                                           args.samples, args.seed, args.timeout)
    except (VpiError, InferenceServerException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mask = probability > args.threshold
    Image.fromarray(mask.astype(np.uint8) * 255).save(args.out)
    print(f"{args.out}: foreground {100 * mask.mean():.1f}%, mean uncertainty {uncertainty.mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
