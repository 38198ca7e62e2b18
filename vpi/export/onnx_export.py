"""Exporting the two graphs to ONNX with the torch.export-based exporter, and checking them.

B (the batch of independent items), K and L are dynamic axes; the image side is fixed at the
checkpoint's input size (the runtime resizes every image to it), which keeps every backend's
shapes static but for B, K and L.
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
# Example sizes of the dynamic axes: each at least 2 (a 1 would be specialised into the graph),
# and different from one another, so that the exporter cannot take two axes for one.
EXAMPLE_BATCH, EXAMPLE_SHOTS, EXAMPLE_SAMPLES = 2, 3, 4


def graph_signatures(spec: GraphSpec) -> dict[str, dict[str, dict[str, list[int | str]]]]:
    """Inputs and outputs of both graphs with their shapes; "B", "K" and "L" mark the dynamic
    axes, and every tensor leads with B."""
    s, d = spec.input_size, spec.latent_dim
    return {
        "prior_encoder": {
            "inputs": {"support_images": ["B", "K", 3, s, s], "support_masks": ["B", "K", 1, s, s]},
            "outputs": {"prior_mean": ["B", d], "prior_variance": ["B", d]},
        },
        "segmentation_decoder": {
            "inputs": {"query_image": ["B", 3, s, s], "prototypes": ["B", "L", d]},
            "outputs": {name: ["B", s, s] for name in DECODER_OUTPUTS},
        },
    }


def export_graphs(
    model: VPIModel,
    spec: GraphSpec,
    paths: dict[str, Path],
    *,
    opset: int | None = None,
) -> dict[str, int]:
    """Write both graphs to ``paths`` (keys as in ``graph_signatures``); returns each one's opset."""
    s, d = spec.input_size, spec.latent_dim
    batch, samples = batch_dim(spec), torch.export.Dim("L", min=1, max=spec.max_samples)
    jobs: dict[str, Job] = {
        "prior_encoder": prior_encoder_job(model, spec),
        "segmentation_decoder": (
            SegmentationDecoderGraph(model),
            (torch.rand(EXAMPLE_BATCH, 3, s, s), torch.randn(EXAMPLE_BATCH, EXAMPLE_SAMPLES, d)),
            {"query_image": {0: batch}, "prototypes": {0: batch, 1: samples}},
            DECODER_INPUTS,
            DECODER_OUTPUTS,
        ),
    }
    return export_jobs(model, jobs, paths, opset=opset)


def batch_dim(spec: GraphSpec) -> torch.export.Dim:
    """The B axis both graphs lead with, 1..max_batch."""
    return torch.export.Dim("B", min=1, max=spec.max_batch)


def prior_encoder_job(model: VPIModel, spec: GraphSpec) -> Job:
    """The prior encoder with B and K dynamic; served as it is, so Triton's repository reuses it."""
    s = spec.input_size
    batch, shots = batch_dim(spec), torch.export.Dim("K", min=1, max=spec.max_shots)
    pairs = (EXAMPLE_BATCH, EXAMPLE_SHOTS)
    return (
        PriorEncoderGraph(model),
        (torch.rand(*pairs, 3, s, s), (torch.rand(*pairs, 1, s, s) > 0.5).float()),
        {"support_images": {0: batch, 1: shots}, "support_masks": {0: batch, 1: shots}},
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

    A fixed axis where B, K or L should be dynamic (or the reverse) fails here, before any runtime
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
