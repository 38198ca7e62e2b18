"""The two graphs a Triton ensemble serves: the prior encoder, and a decoder that samples z itself.

An ensemble cannot draw random numbers, and no model of it may compute z from the prior unless a
graph does: so the served decoder takes the prior mean and variance (1, D) with L standard-normal
noise vectors (L, D) that the client draws, forms z with ``vpi.graphs.reparameterise`` as
``Segmenter.prototypes`` does, and then runs ``SegmentationDecoderGraph`` unchanged. With the same
noise it gives the runtime's answer.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vpi.export.onnx_export import Job, export_jobs, graph_signatures, prior_encoder_job
from vpi.export.tensorrt import optimization_profiles
from vpi.graphs import DECODER_OUTPUTS, GraphSpec, reparameterise
from vpi.model import VPIModel
from vpi.model.graphs import SegmentationDecoderGraph

SAMPLED_DECODER_INPUTS = ("query_image", "prior_mean", "prior_variance", "noise")

Signature = dict[str, dict[str, list[int | str]]]


class SampledDecoderGraph(nn.Module):
    """Query (1, 3, H, W), prior mean and variance (1, D), noise (L, D) -> probability,
    uncertainty (1, 1, H, W).

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
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(query_image, reparameterise(prior_mean, prior_variance, noise))


def triton_signatures(spec: GraphSpec) -> dict[str, Signature]:
    """Inputs and outputs of the two served graphs; "K" and "L" mark the dynamic axes."""
    s, d = spec.input_size, spec.latent_dim
    exported = graph_signatures(spec)
    return {
        "prior_encoder": exported["prior_encoder"],
        "segmentation_decoder": {
            "inputs": {"query_image": [1, 3, s, s], "prior_mean": [1, d],
                       "prior_variance": [1, d], "noise": ["L", d]},
            "outputs": exported["segmentation_decoder"]["outputs"],
        },
    }


def triton_profiles(spec: GraphSpec) -> dict[str, dict[str, list[list[int]]]]:
    """TensorRT min/opt/max shapes: the export's K and L ranges, with noise taking L's."""
    base = optimization_profiles(spec)
    decoder = base["segmentation_decoder"]
    prior = [[1, spec.latent_dim]] * 3
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

    Examples have K = L = 2, since a size of 1 on a dynamic axis would be specialised into the
    graph. The exporter's output depends only on the weights and shapes, not on the example values,
    so a checkpoint exported twice gives the same bytes.
    """
    s, d = spec.input_size, spec.latent_dim
    samples = torch.export.Dim("L", min=1, max=spec.max_samples)
    jobs: dict[str, Job] = {
        "prior_encoder": prior_encoder_job(model, spec),
        "segmentation_decoder": (
            SampledDecoderGraph(model),
            (torch.rand(1, 3, s, s), torch.randn(1, d), torch.rand(1, d) + 0.5, torch.randn(2, d)),
            {"query_image": None, "prior_mean": None, "prior_variance": None,
             "noise": {0: samples}},
            SAMPLED_DECODER_INPUTS,
            DECODER_OUTPUTS,
        ),
    }
    export_jobs(model, jobs, paths, opset=opset)
