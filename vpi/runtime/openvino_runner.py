"""OpenVINO runner (CPU): an export's OpenVINO IR, or its ONNX graphs read directly.

Precision is OpenVINO's ``INFERENCE_PRECISION_HINT``, set when the graphs are compiled. Given no
hint the CPU plugin picks one itself (bf16 on CPUs with AMX, f32 on most others), and given one the
CPU lacks it quietly compiles f32. So the runner reads the precision back from the compiled graphs,
reports it, and refuses a precision it was asked for but did not get, rather than run another one
without a word. int8 is other files, the export's quantised IR, compiled with the f32 hint: the
ops its quantisation left out of int8 are the fragile ones, and they stay fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpi.errors import BackendError, ConfigError
from vpi.graphs import (
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    GRAPH_FILES,
    PRIOR_INPUTS,
    PRIOR_OUTPUTS,
    GraphSpec,
)
from vpi.manifest import check_vpi_version, read_manifest
from vpi.runtime.base import Runner
from vpi.runtime.registry import AUTO_PRECISION, BACKENDS

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # vpi's names -> OpenVINO's
_VPI_PRECISIONS = {hint: name for name, hint in PRECISION_HINTS.items()}
INT8 = "int8"  # the quantised IR; its other ops compute in fp32
_VERSION_KEY = ["framework", "vpi_version"]  # where read_model puts an ONNX graph's metadata_props


class OpenVinoRunner(Runner):
    """Runs the export's IR (written by `vpi export --engine openvino`), else its ONNX graphs.

    ``precision`` is "fp32", "bf16", "fp16" or "int8" (the export's quantised IR); "auto" leaves
    the choice to OpenVINO; None takes the IR's recorded precision, else fp32. ``threads`` and
    ``performance_hint`` ("latency" or "throughput") become ``INFERENCE_NUM_THREADS`` and
    ``PERFORMANCE_HINT``.
    """

    backend = "openvino"

    def __init__(
        self,
        folder: str | Path,
        *,
        device: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        performance_hint: str | None = None,
    ) -> None:
        if device not in ("auto", "cpu"):
            raise ConfigError(f"OpenVINO runs on the CPU here, and device is {device!r}: "
                              "use --device cpu or auto")
        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        super().__init__(GraphSpec.from_manifest(manifest))
        ov = BACKENDS["openvino"].require()
        section = manifest.get("openvino")
        self.source = "IR" if section else "ONNX"
        requested = precision or (section["precision"] if section else "fp32")
        computes = "fp32" if requested == INT8 else requested
        config: dict[str, Any] = {}
        if requested != AUTO_PRECISION:
            config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[computes]
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if performance_hint:
            config["PERFORMANCE_HINT"] = performance_hint.upper()
        core = ov.Core()
        files = _files(self.folder, section, requested)
        self.compiled = {name: self._compile(core, file, config) for name, file in files.items()}
        self.requests = {name: graph.create_infer_request() for name, graph in self.compiled.items()}
        compiled = {_VPI_PRECISIONS.get(hint, hint) for hint in (
            graph.get_property("INFERENCE_PRECISION_HINT").get_type_name()
            for graph in self.compiled.values())}
        if requested != AUTO_PRECISION and compiled != {computes}:
            offers = ", ".join(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
            raise BackendError(
                f"OpenVINO was asked for {requested} but compiled {', '.join(sorted(compiled))}: "
                f"this CPU ({core.get_property('CPU', 'FULL_DEVICE_NAME')}) offers {offers}; "
                f"choose another --precision"
            )
        self.precision = INT8 if requested == INT8 else "/".join(sorted(compiled))
        self.chosen_by_openvino = requested == AUTO_PRECISION

    def _compile(self, core: Any, file: str, config: dict[str, Any]) -> Any:
        path = self.folder / file
        if not path.is_file():
            raise BackendError(f"export {str(self.folder)!r} lacks {file}: export it again")
        try:
            model = core.read_model(str(path))
        except RuntimeError as exc:
            raise BackendError(f"OpenVINO cannot read {str(path)!r}: {_reason(exc)}") from None
        found = model.get_rt_info(_VERSION_KEY).astype(str) if model.has_rt_info(_VERSION_KEY) else None
        check_vpi_version(found, f"graph {str(path)!r}")
        return core.compile_model(model, "CPU", config)

    @property
    def name(self) -> str:
        pick = ", OpenVINO's pick" if self.chosen_by_openvino else ""
        return f"openvino ({self.source}, {self.precision}{pick})"

    def _run(
        self, graph: str, feeds: dict[str, torch.Tensor], outputs: tuple[str, ...]
    ) -> tuple[torch.Tensor, ...]:
        results = self.requests[graph].infer({key: value.numpy() for key, value in feeds.items()})
        # np.array copies: the request reuses its output memory on the next call.
        return tuple(torch.from_numpy(np.array(results[name], dtype=np.float32)) for name in outputs)

    def _run_prior(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        feeds = dict(zip(PRIOR_INPUTS, (images, masks), strict=True))
        return self._run("prior_encoder", feeds, PRIOR_OUTPUTS)

    def _run_decoder(
        self, query: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        feeds = dict(zip(DECODER_INPUTS, (query, prototypes), strict=True))
        return self._run("segmentation_decoder", feeds, DECODER_OUTPUTS)


def _files(folder: Path, section: dict[str, Any] | None, precision: str) -> dict[str, str]:
    """The graph files to compile: the int8 IR for int8, else the IR, else the ONNX graphs."""
    if precision != INT8:
        return section["files"] if section else GRAPH_FILES
    if not section or "int8" not in section:
        raise BackendError(f"export {str(folder)!r} holds no int8 IR: export it with `vpi export "
                           "CHECKPOINT --engine openvino --precision int8`")
    return section["int8"]["files"]


def _reason(exc: Exception) -> str:
    """The line of an OpenVINO error that says what is wrong, not where in its C++ it was raised."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    told = [line for line in lines if not line.startswith(("Exception from", "Check '"))]
    return (told or lines or [type(exc).__name__])[0]
