"""Export: a checkpoint becomes two checked ONNX graphs (and, on a GPU, TensorRT engines).

``prior_encoder.onnx`` maps K support pairs to the aggregated prior; ``segmentation_decoder.onnx``
maps one query and L prototypes to the mean probability and its variance. ``manifest.json`` beside
them records versions, shapes, the checkpoint's hash and config, and the parity with PyTorch.
"""

from vpi.export.graphs import PriorEncoderGraph, SegmentationDecoderGraph, typed_model
from vpi.export.manifest import GraphSpec, read_manifest
from vpi.export.pipeline import export_model

__all__ = [
    "GraphSpec",
    "PriorEncoderGraph",
    "SegmentationDecoderGraph",
    "export_model",
    "read_manifest",
    "typed_model",
]
