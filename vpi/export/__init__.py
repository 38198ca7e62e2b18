"""Export: a checkpoint becomes two checked ONNX graphs (and, on a GPU, TensorRT engines).

``prior_encoder.onnx`` maps B support sets of K pairs to their aggregated priors;
``segmentation_decoder.onnx`` maps B queries, each with its L prototypes, to the mean probability
and its variance. ``manifest.json`` beside
them records versions, shapes, the checkpoint's hash and config, and the parity with PyTorch.
``write_triton_repository`` writes a Triton model repository instead: the prior encoder, a decoder
that samples z from the prior and client-drawn noise, a request validator that refuses K or L out
of range, and the ensemble that chains them.
"""

from vpi.export.pipeline import export_model
from vpi.export.triton import write_triton_repository
from vpi.export.triton_graphs import SampledDecoderGraph

__all__ = [
    "SampledDecoderGraph",
    "export_model",
    "write_triton_repository",
]
