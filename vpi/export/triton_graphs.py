"""The two graphs a Triton ensemble serves: the prior encoder, and a decoder that samples z itself.

An ensemble cannot draw random numbers, and no model of it may compute z from the prior unless a
graph does: so the served decoder takes the priors' means and variances (B, D) with L
standard-normal noise vectors per item (B, L, D) that the client draws, forms z with
``vpi.graphs.reparameterise`` as ``Segmenter.prototypes`` does, and then runs
``SegmentationDecoderGraph`` unchanged. With the same noise it gives the runtime's answer. Both
graphs lead with the batch axis B that Triton's dynamic batching fills with concurrent requests.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vpi.export.onnx_export import (
    EXAMPLE_BATCH,
    EXAMPLE_SAMPLES,
    Job,
    batch_dim,
    export_jobs,
    graph_signatures,
    prior_encoder_job,
)
from vpi.export.tensorrt import optimization_profiles
from vpi.graphs import DECODER_OUTPUTS, GraphSpec, reparameterise
from vpi.model import VPIModel
from vpi.model.graphs import SegmentationDecoderGraph

SAMPLED_DECODER_INPUTS = ("query_image", "prior_mean", "prior_variance", "noise")

Signature = dict[str, dict[str, list[int | str]]]


class SampledDecoderGraph(nn.Module):
    """Queries (B, 3, H, W), their priors' means and variances (B, D), noise (B, L, D) ->
    the ``SampleMaps``, (B, H, W) each.

    z = mean + noise * sqrt(variance) is the runtime's ``vpi.graphs.reparameterise``;
    the rest is ``SegmentationDecoderGraph``, so the two cannot drift apart.
    """

    def __init__(self, model: VPIModel) -> None:
        super().__init__()
        self.decoder = SegmentationDecoderGraph(model)

    def forward(
        self,
        query_image: torch.Tensor,
        prior_mean: torch.Tensor,
        prior_variance: torch.Tensor,
        noise: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        z = reparameterise(prior_mean[:, None], prior_variance[:, None], noise)
        return self.decoder(query_image, z)


def triton_signatures(spec: GraphSpec) -> dict[str, Signature]:
    """Inputs and outputs of the two served graphs; "B", "K" and "L" mark the dynamic axes."""
    s, d = spec.input_size, spec.latent_dim
    exported = graph_signatures(spec)
    return {
        "prior_encoder": exported["prior_encoder"],
        "segmentation_decoder": {
            "inputs": {"query_image": ["B", 3, s, s], "prior_mean": ["B", d],
                       "prior_variance": ["B", d], "noise": ["B", "L", d]},
            "outputs": exported["segmentation_decoder"]["outputs"],
        },
    }


def triton_profiles(spec: GraphSpec) -> dict[str, dict[str, list[list[int]]]]:
    """TensorRT min/opt/max shapes: the export's B, K and L ranges, with noise taking L's."""
    base = optimization_profiles(spec)
    decoder = base["segmentation_decoder"]
    prior = [[shape[0], spec.latent_dim] for shape in decoder["query_image"]]
    return {
        "prior_encoder": base["prior_encoder"],
        "segmentation_decoder": {
            "query_image": decoder["query_image"],
            "prior_mean": prior,
            "prior_variance": prior,
            "noise": decoder["prototypes"],
        },
    }


def export_triton_graphs(
    model: VPIModel, spec: GraphSpec, paths: dict[str, Path], *, opset: int | None = None
) -> None:
    """Write both served graphs to ``paths`` (keys as in ``triton_signatures``).

    The example sizes are the export's (``vpi.export.onnx_export``). The exporter's output depends
    only on the weights and shapes, not on the example values, so a checkpoint exported twice
    gives the same bytes.
    """
    s, d = spec.input_size, spec.latent_dim
    batch, samples = batch_dim(spec), torch.export.Dim("L", min=1, max=spec.max_samples)
    b = EXAMPLE_BATCH
    jobs: dict[str, Job] = {
        "prior_encoder": prior_encoder_job(model, spec),
        "segmentation_decoder": (
            SampledDecoderGraph(model),
            (torch.rand(b, 3, s, s), torch.randn(b, d), torch.rand(b, d) + 0.5,
             torch.randn(b, EXAMPLE_SAMPLES, d)),
            {"query_image": {0: batch}, "prior_mean": {0: batch}, "prior_variance": {0: batch},
             "noise": {0: batch, 1: samples}},
            SAMPLED_DECODER_INPUTS,
            DECODER_OUTPUTS,
        ),
    }
    export_jobs(model, jobs, paths, opset=opset)
