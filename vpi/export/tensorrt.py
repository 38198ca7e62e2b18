"""TensorRT engines from the exported ONNX graphs, and the plain-Python rules around them.

TensorRT cannot be installed on the machines vpi is developed on, so the part that calls it
(``build_engines``) is kept thin and follows the documented Python API; everything it decides —
precision per TensorRT major version, optimisation profiles, the timing-cache location — is plain
Python, tested without TensorRT. What a runner checks before loading an engine (the library, the
GPU, the engine's fit) lives in ``vpi.runtime.tensorrt_compat``.

Precision: one strongly typed build for every TensorRT >= 10, with no FP16/BF16 builder flags
(deprecated since 10.12, removed in 11, and free to run any layer in fp16). The precision is in
the graph: fp16/bf16 engines are built from a typed copy of the graphs
(``vpi.model.graphs.typed_model``) whose encoder and decoder run in fp16/bf16 while pooling, the
K-shot aggregation, sigmoid and the mean/variance over L stay fp32. fp32 engines clear TF32
(on by default), which would round convolution inputs to 10-bit mantissas.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from vpi.errors import BackendError, ConfigError
from vpi.graphs import GraphSpec
from vpi.io import atomic_write_bytes
from vpi.model import VPIModel
from vpi.model.graphs import typed_model
from vpi.runtime.tensorrt_compat import device_fingerprint, import_tensorrt

PRECISIONS = ("fp16", "fp32", "bf16")
BF16_OPSET = 22  # the first opset whose Conv accepts bfloat16
SHOTS_PROFILE = (1, 1)  # min and opt of K; max is the spec's max_shots
SAMPLES_PROFILE = (1, 6)  # min and opt of L; max is the spec's max_samples
# min and opt of B; max is the spec's max_batch. A support set is usually encoded alone, while
# queries come in batches (`vpi segment --batch-size`, Triton's dynamic batching).
PRIOR_BATCH_PROFILE, DECODER_BATCH_PROFILE = (1, 1), (1, 4)
ENGINE_FILES = {
    "prior_encoder": "prior_encoder.plan",
    "segmentation_decoder": "segmentation_decoder.plan",
}
WORKSPACE_BYTES = 2 << 30


def tensorrt_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        raise BackendError(f"cannot read TensorRT's version {version!r}") from None


@dataclass(frozen=True)
class PrecisionPlan:
    """How an engine gets its precision: from the types of the graph it is built from."""

    precision: str
    graph_dtype: torch.dtype  # the dtype of the graph's convolutions that TensorRT parses
    tf32: bool  # whether fp32 layers may round their inputs to TF32


def precision_plan(tensorrt_version: str, precision: str) -> PrecisionPlan:
    """The same strongly typed plan for every TensorRT >= 10; fp32 without TF32, since the parity
    check holds fp32 engines to 1e-3 of PyTorch."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision is {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if tensorrt_major(tensorrt_version) < 10:
        raise BackendError(f"TensorRT {tensorrt_version} is too old: vpi needs TensorRT 10 or newer")
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    return PrecisionPlan(precision, dtypes[precision], tf32=precision != "fp32")


def typed_sources(
    model: VPIModel,
    spec: GraphSpec,
    sources: dict[str, Path],
    plan: PrecisionPlan,
    opset: int | None,
    export: Callable[..., Any],
) -> dict[str, Path]:
    """The ONNX files TensorRT builds ``plan`` from: ``sources`` themselves for fp32; for
    fp16/bf16, typed copies (``typed_model``) written beside them as NAME.<precision>.onnx by
    ``export(model, spec, paths, opset=...)``, the exporter of those graphs (bf16 needs opset
    ``BF16_OPSET`` or later)."""
    if plan.graph_dtype == torch.float32:
        return sources
    typed = {name: path.with_suffix(f".{plan.precision}.onnx") for name, path in sources.items()}
    if plan.graph_dtype == torch.bfloat16:
        opset = max(opset or BF16_OPSET, BF16_OPSET)
    export(typed_model(model, plan.graph_dtype), spec, typed, opset=opset)
    return typed


def optimization_profiles(spec: GraphSpec) -> dict[str, dict[str, list[list[int]]]]:
    """min/opt/max shapes of every input: B in 1..max_batch (opt 1 for the prior encoder, 4 for the
    decoder), K in 1..max_shots (opt 1), L in 1..max_samples (opt 6)."""
    s, d = spec.input_size, spec.latent_dim
    prior_batch = _range(PRIOR_BATCH_PROFILE, spec.max_batch)
    decoder_batch = _range(DECODER_BATCH_PROFILE, spec.max_batch)
    shots = _range(SHOTS_PROFILE, spec.max_shots)
    samples = _range(SAMPLES_PROFILE, spec.max_samples)
    pairs = list(zip(prior_batch, shots, strict=True))
    return {
        "prior_encoder": {
            "support_images": [[b, k, 3, s, s] for b, k in pairs],
            "support_masks": [[b, k, 1, s, s] for b, k in pairs],
        },
        "segmentation_decoder": {
            "query_image": [[b, 3, s, s] for b in decoder_batch],
            "prototypes": [[b, n, d] for b, n in zip(decoder_batch, samples, strict=True)],
        },
    }


def _range(low_opt: tuple[int, int], high: int) -> tuple[int, int, int]:
    """min, opt, max of one axis; opt never above max."""
    low, opt = low_opt
    return low, min(opt, high), high


def timing_cache_path(tensorrt_version: str, compute_capability: str) -> Path:
    """One cache per TensorRT version and GPU, shared by every export on this machine."""
    root = os.environ.get("VPI_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vpi"
    )
    return Path(root) / "tensorrt" / f"timing-{tensorrt_version}-sm{compute_capability}.cache"


def read_timing_cache(path: Path) -> bytes:
    """Fail-open: a missing or unreadable cache only means a slower build."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def build_engines(
    onnx_paths: dict[str, Path],
    plan_paths: dict[str, Path],
    spec: GraphSpec,
    plan: PrecisionPlan,
    cache_path: Path | None = None,
    profiles: dict[str, dict[str, list[list[int]]]] | None = None,
) -> dict[str, Any]:
    """Build one engine per graph (one optimisation profile each); plans written atomically.

    ``profiles`` defaults to the export graphs' (``optimization_profiles``); the Triton graphs
    pass their own. The timing cache (default: ``timing_cache_path``) is read fail-open and saved
    atomically, so a second build on the same machine skips most kernel timing.
    """
    trt = import_tensorrt()
    started = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    fingerprint = device_fingerprint()
    cache_path = cache_path or timing_cache_path(trt.__version__, fingerprint["compute_capability"])
    cache = read_timing_cache(cache_path)
    profiles = profiles or optimization_profiles(spec)
    for name, onnx_path in onnx_paths.items():
        serialized, cache = _build(trt, logger, onnx_path, profiles[name], plan, cache)
        atomic_write_bytes(plan_paths[name], serialized)
    atomic_write_bytes(cache_path, cache)
    return {
        "tensorrt_version": trt.__version__,
        **fingerprint,
        "precision": plan.precision,
        "strongly_typed": True,
        "tf32": plan.tf32,
        "profiles": profiles,
        "files": {name: path.name for name, path in plan_paths.items()},
        "built_from": {name: path.name for name, path in onnx_paths.items()},
        "timing_cache": str(cache_path),
        "build_s": round(time.perf_counter() - started, 3),
    }


def _build(
    trt: ModuleType,
    logger: Any,
    onnx_path: Path,
    profile_shapes: dict[str, list[list[int]]],
    plan: PrecisionPlan,
    cache: bytes,
) -> tuple[bytes, bytes]:
    builder = trt.Builder(logger)
    # Required on TensorRT 10 to take the graph's own types; accepted and ignored by 11.
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if not plan.tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in profile_shapes.items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    try:
        timing = config.create_timing_cache(cache)
        if not config.set_timing_cache(timing, ignore_mismatch=False):
            raise ValueError("stale timing cache")
    except Exception:  # a cache from another build of TensorRT: start afresh
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT could not build an engine from {onnx_path.name}")
    return bytes(serialized), bytes(config.get_timing_cache().serialize())
