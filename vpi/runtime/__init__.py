"""Runtime: one Runner interface over the registry's backends, and the Segmenter on top.

Example::

    from vpi.runtime import Segmenter, open_backend

    segmenter = Segmenter(open_backend("auto", engine_dir="export").runner)
    prior = segmenter.encode_support(images, masks)  # (H, W, 3) uint8, (H, W) non-zero = fg
    result = segmenter.segment(query, prior, samples=6, seed=0)  # maps at the query's size

Names load on first use, so reading the registry (the CLI's help does) imports no torch.
"""

from __future__ import annotations

from vpi.lazy import lazy_names

_HOMES = {
    "BACKENDS": "vpi.runtime.registry",
    "Backend": "vpi.runtime.registry",
    "BackendChoice": "vpi.runtime.select",
    "OnnxRunner": "vpi.runtime.onnx_runner",
    "OpenVinoRunner": "vpi.runtime.openvino_runner",
    "Prior": "vpi.runtime.segmenter",
    "Runner": "vpi.runtime.base",
    "RunnerOptions": "vpi.runtime.registry",
    "Segmentation": "vpi.runtime.segmenter",
    "Segmenter": "vpi.runtime.segmenter",
    "TensorRTRunner": "vpi.runtime.tensorrt_runner",
    "TorchRunner": "vpi.runtime.torch_runner",
    "find_latest_checkpoint": "vpi.runtime.latest",
    "find_queries": "vpi.runtime.support",
    "find_support_pairs": "vpi.runtime.support",
    "load_support": "vpi.runtime.support",
    "open_backend": "vpi.runtime.select",
    "segment_folder": "vpi.runtime.folder",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
