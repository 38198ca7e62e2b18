"""Runtime: one Runner interface (torch, ONNX Runtime, TensorRT) and the Segmenter on top.

Example::

    from vpi.runtime import Segmenter, open_backend

    segmenter = Segmenter(open_backend("auto", engine_dir="export").runner)
    prior = segmenter.encode_support(images, masks)  # (H, W, 3) uint8, (H, W) non-zero = fg
    result = segmenter.segment(query, prior, samples=6, seed=0)  # maps at the query's size
"""

from vpi.runtime.base import Runner
from vpi.runtime.folder import segment_folder
from vpi.runtime.latest import find_latest_checkpoint
from vpi.runtime.onnx_runner import OnnxRunner
from vpi.runtime.segmenter import Prior, Segmentation, Segmenter
from vpi.runtime.select import BACKENDS, BackendChoice, open_backend
from vpi.runtime.support import find_queries, find_support_pairs, load_support
from vpi.runtime.tensorrt_runner import TensorRTRunner
from vpi.runtime.torch_runner import TorchRunner

__all__ = [
    "BACKENDS",
    "BackendChoice",
    "OnnxRunner",
    "Prior",
    "Runner",
    "Segmentation",
    "Segmenter",
    "TensorRTRunner",
    "TorchRunner",
    "find_latest_checkpoint",
    "find_queries",
    "find_support_pairs",
    "load_support",
    "open_backend",
    "segment_folder",
]
