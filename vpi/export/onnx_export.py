"""Exporting the two graphs to ONNX with the torch.export-based exporter, and checking them.

K and L are dynamic axes; the image side is fixed at the checkpoint's input size (the runtime
resizes every image to it), which keeps every backend's shapes static but for K and L.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import onnx
import torch

from vpi import __version__
from vpi.errors import VpiError
from vpi.graphs import DECODER_INPUTS, DECODER_OUTPUTS, PRIOR_INPUTS, PRIOR_OUTPUTS, GraphSpec
from vpi.model import VPIModel
from vpi.model.graphs import PriorEncoderGraph, SegmentationDecoderGraph

_EXTERNAL_DATA_BYTES = 1 << 30  # above this the weights go to a .onnx.data file beside the graph
Job = tuple[torch.nn.Module, tuple, dict, tuple, tuple]  # graph, example args, dynamic, names


def graph_signatures(spec: GraphSpec) -> dict[str, dict[str, dict[str, list[int | str]]]]:
    """Inputs and outputs of both graphs with their shapes; "K" and "L" mark the dynamic axes."""
    s, d = spec.input_size, spec.latent_dim
    return {
        "prior_encoder": {
            "inputs": {"support_images": ["K", 3, s, s], "support_masks": ["K", 1, s, s]},
            "outputs": {"prior_mean": [1, d], "prior_variance": [1, d]},
        },
        "segmentation_decoder": {
            "inputs": {"query_image": [1, 3, s, s], "prototypes": ["L", d]},
            "outputs": {"probability": [1, 1, s, s], "uncertainty": [1, 1, s, s]},
        },
    }


def export_graphs(
    model: VPIModel,
    spec: GraphSpec,
    paths: dict[str, Path],
    *,
    opset: int | None = None,
) -> dict[str, int]:
    """Write both graphs to ``paths`` (keys as in ``graph_signatures``); returns each one's opset.

    Examples have K = L = 2: a size of 1 on a dynamic axis would be specialised into the graph.
    """
    s, d = spec.input_size, spec.latent_dim
    samples = torch.export.Dim("L", min=1, max=spec.max_samples)
    jobs: dict[str, Job] = {
        "prior_encoder": prior_encoder_job(model, spec),
        "segmentation_decoder": (
            SegmentationDecoderGraph(model),
            (torch.rand(1, 3, s, s), torch.randn(2, d)),
            {"query_image": None, "prototypes": {0: samples}},
            DECODER_INPUTS,
            DECODER_OUTPUTS,
        ),
    }
    return export_jobs(model, jobs, paths, opset=opset)


def prior_encoder_job(model: VPIModel, spec: GraphSpec) -> Job:
    """The prior encoder with K dynamic; served as it is, so Triton's repository reuses it."""
    s = spec.input_size
    shots = torch.export.Dim("K", min=1, max=spec.max_shots)
    return (
        PriorEncoderGraph(model),
        (torch.rand(2, 3, s, s), (torch.rand(2, 1, s, s) > 0.5).float()),
        {"support_images": {0: shots}, "support_masks": {0: shots}},
        PRIOR_INPUTS,
        PRIOR_OUTPUTS,
    )


def export_jobs(
    model: VPIModel, jobs: dict[str, Job], paths: dict[str, Path], *, opset: int | None = None
) -> dict[str, int]:
    """Export each named graph module to its path with named inputs/outputs; returns opsets.

    Weights go to a ``.onnx.data`` file beside the graph when the model is over 1 GiB.
    """
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > _EXTERNAL_DATA_BYTES
    opsets = {}
    for name, (graph, args, dynamic, inputs, outputs) in jobs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter, not ours
            program = torch.onnx.export(
                graph.eval(), args, None, dynamo=True, dynamic_shapes=dynamic,
                input_names=list(inputs), output_names=list(outputs),
                opset_version=opset, verbose=False,
            )
        program.model.metadata_props.update({"vpi_version": __version__, "vpi_graph": name})
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        program.save(paths[name], external_data=big)
        opsets[name] = program.model.opset_imports[""]
    return opsets


def check_graph(path: Path, signature: dict[str, dict[str, list[int | str]]]) -> None:
    """onnx's full checker, strict shape inference, then the named inputs/outputs and shapes.

    A fixed axis where K or L should be dynamic (or the reverse) fails here, before any runtime
    could hit it at K = 1 in production.
    """
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path), load_external_data=False)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise VpiError(f"exported graph {path.name} fails onnx's checks: {exc}") from None
    for kind, values in (("inputs", inferred.graph.input), ("outputs", inferred.graph.output)):
        found = {v.name: _dims(v) for v in values}
        if found != signature[kind]:
            raise VpiError(
                f"exported graph {path.name} has {kind} {found}, expected {signature[kind]}"
            )


def _dims(value: Any) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
