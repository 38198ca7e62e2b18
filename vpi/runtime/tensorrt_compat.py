"""Whether TensorRT engines can run here: the library with a GPU, and the engines' fit.

The runner checks these before it deserialises a plan (a plan for another TensorRT or GPU would
crash, not fail); export records the same fingerprint when it builds one.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch

from vpi.errors import BackendError
from vpi.graphs import GraphSpec
from vpi.runtime.registry import BACKENDS


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or one line saying what is missing (TensorRT or a CUDA GPU)."""
    tensorrt = BACKENDS["trt"].require()
    if not torch.cuda.is_available():
        raise BackendError("TensorRT needs an NVIDIA GPU, and no CUDA device is visible here")
    return tensorrt


def profile_spec(spec: GraphSpec, profiles: dict[str, dict[str, list[list[int]]]]) -> GraphSpec:
    """The B, K and L ranges an engine accepts: the max of its optimisation profiles (B: the
    smaller of the two graphs')."""
    prior, decoder = profiles["prior_encoder"]["support_images"][2], profiles["segmentation_decoder"]
    return GraphSpec(
        spec.input_size, spec.latent_dim, spec.probabilistic,
        prior[1], decoder["prototypes"][2][1], min(prior[0], decoder["query_image"][2][0]),
    )


def device_fingerprint() -> dict[str, str]:
    """The GPU an engine is built for: its name and compute capability, e.g. "9.0"."""
    major, minor = torch.cuda.get_device_capability()
    return {"gpu": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}"}


def check_engine_compatibility(
    info: dict[str, Any], tensorrt_version: str, device: dict[str, str], where: str
) -> str | None:
    """Refuse, before deserialising, an engine built by another TensorRT or for another GPU
    architecture; return a warning when only the GPU's name differs.

    ``device`` is this machine's ``device_fingerprint()``. A plan loads on another GPU of equal
    compute capability (H100 -> H200), but its kernels were chosen by timing on the first one.
    """
    hint = "rebuild it here with `vpi export CHECKPOINT --engine trt`"
    compute_capability = device["compute_capability"]
    if info["tensorrt_version"] != tensorrt_version:
        raise BackendError(
            f"the TensorRT engines in {where} were built with TensorRT {info['tensorrt_version']}, "
            f"but this machine has TensorRT {tensorrt_version} (plans only load on the exact "
            f"version that built them): {hint}"
        )
    if info["compute_capability"] != compute_capability:
        raise BackendError(
            f"the TensorRT engines in {where} were built for compute capability "
            f"{info['compute_capability']} ({info.get('gpu', 'unknown GPU')}), but this GPU is "
            f"{compute_capability}: {hint}"
        )
    if info.get("gpu") != device["gpu"]:
        return (
            f"the TensorRT engines in {where} were built on {info.get('gpu', 'an unrecorded GPU')}"
            f" and run here on {device['gpu']} (same compute capability {compute_capability}): "
            f"they work, but may be slower than engines tuned here; {hint}"
        )
    return None
