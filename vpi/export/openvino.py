"""OpenVINO IR beside the exported ONNX graphs: what `vpi export --engine openvino` adds.

The IR keeps the fp32 weights (``compress_to_fp16=False``): precision is chosen when a runner
compiles the graphs, so the manifest records the precision runners take by default, and the
parity check runs the IR at fp32 like every other exported graph.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vpi.errors import ConfigError
from vpi.graphs import GRAPH_FILES
from vpi.runtime.registry import BACKENDS

IR_FILES = {"prior_encoder": "prior_encoder.xml", "segmentation_decoder": "segmentation_decoder.xml"}


def ir_precision(precision: str | None) -> str:
    """The precision the IR's runners default to, checked (and OpenVINO imported) before anything
    is written. Unless one is asked for it is fp32: a faster precision must first be shown to keep
    the task accuracy, and that choice belongs here."""
    entry = BACKENDS["openvino"]
    entry.require()
    chosen = precision or "fp32"
    if chosen not in entry.precisions:
        raise ConfigError(f"precision is {chosen!r}; OpenVINO IR takes: {', '.join(entry.precisions)}")
    return chosen


def write_ir(stage: Path, precision: str) -> dict[str, Any]:
    """Convert the staged ONNX graphs to IR in the same staging folder (moved into place with
    them once every check passed); returns the manifest's ``openvino`` section."""
    ov = BACKENDS["openvino"].require()
    started = time.perf_counter()
    for name, file in IR_FILES.items():
        ov.save_model(ov.convert_model(stage / GRAPH_FILES[name]), stage / file, compress_to_fp16=False)
    return {
        "openvino_version": ov.__version__,
        "precision": precision,
        "files": IR_FILES,
        "weights": {name: Path(file).with_suffix(".bin").name for name, file in IR_FILES.items()},
        "convert_s": round(time.perf_counter() - started, 3),
    }
