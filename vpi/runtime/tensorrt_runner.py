"""TensorRT runner: deserialises the two plans and runs them with execute_async_v3 on torch memory.

Compatibility (TensorRT version, GPU compute capability) is checked from the manifest before any
plan is deserialised, so a mismatched engine fails with a message, not a crash; a GPU of another
name but equal compute capability is a warning. Buffers are torch CUDA tensors of exactly the
engine's dtypes: a mismatch would corrupt the output silently. Everything runs on the runner's own
CUDA stream: on the default stream TensorRT needs extra synchronisation (and warns about it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vpi.errors import BackendError
from vpi.graphs import DECODER_INPUTS, DECODER_OUTPUTS, PRIOR_INPUTS, PRIOR_OUTPUTS, GraphSpec
from vpi.manifest import read_manifest
from vpi.runtime.base import Runner
from vpi.runtime.tensorrt_compat import (
    check_engine_compatibility,
    device_fingerprint,
    import_tensorrt,
    profile_spec,
)

# TensorRT DataType member names -> torch dtypes.
TORCH_DTYPES = {
    "FLOAT": torch.float32,
    "HALF": torch.float16,
    "BF16": torch.bfloat16,
    "INT32": torch.int32,
    "INT64": torch.int64,
    "BOOL": torch.bool,
}


def engine_info(manifest: dict[str, Any], where: str) -> dict[str, Any]:
    """The manifest's TensorRT section, or a line saying how to build one."""
    info = manifest.get("tensorrt")
    if not info:
        raise BackendError(
            f"{where} holds no TensorRT engines: build them with "
            "`vpi export CHECKPOINT --engine trt`"
        )
    return info


class TensorRTRunner(Runner):
    """Runs ``prior_encoder.plan`` and ``segmentation_decoder.plan`` from an export folder."""

    backend = "trt"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        where = repr(str(self.folder))
        info = engine_info(manifest, where)
        super().__init__(profile_spec(GraphSpec.from_manifest(manifest), info["profiles"]))
        trt = import_tensorrt()
        warning = check_engine_compatibility(info, trt.__version__, device_fingerprint(), where)
        if warning:
            self.warnings.append(warning)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engines, self.contexts = {}, {}
        for name, file in info["files"].items():
            engine = runtime.deserialize_cuda_engine((self.folder / file).read_bytes())
            if engine is None:
                raise BackendError(f"TensorRT could not load {file} from {where}: rebuild it")
            self.engines[name] = engine
            self.contexts[name] = engine.create_execution_context()
        self.precision = info["precision"]
        self.profiles = info["profiles"]
        self.device = torch.device("cuda")
        self.stream = torch.cuda.Stream()

    @property
    def name(self) -> str:
        return f"trt ({self.precision})"

    def _execute(
        self, graph: str, feeds: dict[str, torch.Tensor], outputs: tuple[str, ...]
    ) -> tuple[torch.Tensor, ...]:
        engine, context = self.engines[graph], self.contexts[graph]
        with torch.cuda.stream(self.stream):  # copies, buffers and the engine: one stream
            keep = []  # the tensors must outlive the asynchronous execution
            for name, value in feeds.items():
                tensor = value.to(self.device, TORCH_DTYPES[engine.get_tensor_dtype(name).name])
                tensor = tensor.contiguous()
                if not context.set_input_shape(name, tuple(tensor.shape)):
                    low, _, high = self.profiles[graph][name]
                    raise BackendError(
                        f"TensorRT refused shape {tuple(tensor.shape)} for input {name!r} of "
                        f"{graph}: its engine takes {tuple(low)} to {tuple(high)}"
                    )
                self._bind(graph, context, name, tensor)
                keep.append(tensor)
            results = []
            for name in outputs:
                dtype = TORCH_DTYPES[engine.get_tensor_dtype(name).name]
                shape = tuple(context.get_tensor_shape(name))
                tensor = torch.empty(shape, dtype=dtype, device=self.device)
                self._bind(graph, context, name, tensor)
                results.append(tensor)
            if not context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError(f"TensorRT failed to run {graph}")
            self.stream.synchronize()
            return tuple(result.float().cpu() for result in results)

    @staticmethod
    def _bind(graph: str, context: Any, name: str, tensor: torch.Tensor) -> None:
        if not context.set_tensor_address(name, tensor.data_ptr()):
            raise BackendError(f"TensorRT refused the buffer of tensor {name!r} of {graph}")

    def _run_prior(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        feeds = dict(zip(PRIOR_INPUTS, (images, masks), strict=True))
        return self._execute("prior_encoder", feeds, PRIOR_OUTPUTS)

    def _run_decoder(
        self, query: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        feeds = dict(zip(DECODER_INPUTS, (query, prototypes), strict=True))
        return self._execute("segmentation_decoder", feeds, DECODER_OUTPUTS)
