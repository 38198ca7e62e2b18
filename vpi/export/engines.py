"""The export engines: what `vpi export --engine NAME` checks before anything is written, and
what it writes beside the ONNX graphs.

An engine is named after the backend that runs its files: the backend table
(``vpi.runtime.registry``) lists the engines (``ENGINES``, the choices of --engine, which the
CLI's help reads without importing this module) and gives each its manifest section (``key``),
its parity check and its precisions; this table says how each is checked and written.
``vpi.export.pipeline.export_model`` reads it and branches on no engine's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpi.export.onnx_export import check_graph, export_graphs, graph_signatures
from vpi.export.openvino import ir_precision, write_ir
from vpi.export.tensorrt import ENGINE_FILES, PrecisionPlan, build_engines, precision_plan, typed_sources
from vpi.graphs import GRAPH_FILES, GraphSpec
from vpi.model import VPIModel
from vpi.runtime.tensorrt_compat import import_tensorrt

Request = PrecisionPlan | str | None  # what an engine's check returns and its writer builds
Writer = Callable[[VPIModel, GraphSpec, Path, Any, "int | None"], dict[str, Any]]


@dataclass(frozen=True)
class ExportEngine:
    """One engine. ``check(precision)`` validates the precision asked for (None: the engine's
    default) and imports the engine's library, so a missing one fails before anything is
    written; it returns the request ``write`` builds. ``write(model, spec, stage, request,
    opset)`` writes the engine's files into the staging folder beside the ONNX graphs and returns
    its manifest section. An engine without them is the ONNX graphs alone, in fp32."""

    name: str
    check: Callable[[str | None], Request] | None = None
    write: Writer | None = None


def _check_tensorrt(precision: str | None) -> PrecisionPlan:
    return precision_plan(import_tensorrt().__version__, precision or "fp16")


def _write_tensorrt(
    model: VPIModel, spec: GraphSpec, stage: Path, plan: PrecisionPlan, opset: int | None
) -> dict[str, Any]:
    """Engines from the fp32 graphs, or for fp16/bf16 from checked typed copies of them."""
    graphs = {name: stage / file for name, file in GRAPH_FILES.items()}
    sources = typed_sources(model, spec, graphs, plan, opset, export_graphs)
    if sources is not graphs:
        signatures = graph_signatures(spec)
        for name, path in sources.items():
            check_graph(path, signatures[name])
    plans = {name: stage / file for name, file in ENGINE_FILES.items()}
    return build_engines(sources, plans, spec, plan)


def _write_openvino(
    model: VPIModel, spec: GraphSpec, stage: Path, precision: str | None, opset: int | None
) -> dict[str, Any]:
    return write_ir(stage, precision or "fp32")


EXPORT_ENGINES: dict[str, ExportEngine] = {
    entry.name: entry for entry in (
        ExportEngine("onnx"),
        ExportEngine("openvino", check=ir_precision, write=_write_openvino),
        ExportEngine("trt", check=_check_tensorrt, write=_write_tensorrt),
    )
}
