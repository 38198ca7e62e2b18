"""OpenVINO IR beside the exported ONNX graphs: what `vpi export --engine openvino` adds.

The IR keeps the fp32 weights (``compress_to_fp16=False``): fp32, bf16 and fp16 are chosen when a
runner compiles the graphs, so the manifest records the precision runners take by default, and
the parity check runs the IR at fp32 like every other exported graph.

int8 is a second pair of IR files, quantised after training by NNCF on calibration inputs
(``vpi.export.calibration``). The numerically fragile ops stay out of int8 (NNCF's ignored
scope): in the prior encoder every op the support masks reach (the masked pooling and its
division, the prior heads, the K-shot aggregation of the log-variances and their exp), in the
decoder the sigmoid and the mean/variance over L, and the edge-aware refinement's guide (its
colour covariances, differences of window means that int8 rounds away). The runner compiles the
int8 IR with an f32 inference hint, so those ops run in fp32 even on CPUs whose default is bf16.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from vpi.errors import BackendError, ConfigError
from vpi.export.calibration import Calibration
from vpi.graphs import GRAPH_FILES
from vpi.runtime.openvino_runner import INT8
from vpi.runtime.registry import BACKENDS

IR_FILES = {"prior_encoder": "prior_encoder.xml", "segmentation_decoder": "segmentation_decoder.xml"}
INT8_FILES = {name: file.replace(".xml", ".int8.xml") for name, file in IR_FILES.items()}
NNCF_MISSING = "NNCF is not installed: pip install 'vpi[openvino]' (int8 export needs it)"
SPEED_ORDER = (INT8, "bf16", "fp16")  # reduced precisions, fastest first where the CPU has them
_CAPABILITIES = {INT8: "INT8", "bf16": "BF16", "fp16": "FP16"}  # OPTIMIZATION_CAPABILITIES names
KEPT_IN_FP32 = {
    "prior_encoder": "every op the support masks reach: the masked pooling and its division, the "
                     "prior heads, the K-shot aggregation of the log-variances and their exp",
    "segmentation_decoder": "the sigmoid and the mean/variance over L, and the refinement's guide "
                            "(what the query's pixels reach before any convolution)",
}
_WEIGHT_OPS = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")
_CONVOLUTIONS = ("Convolution", "GroupConvolution")
_DEQUANTIZE = ("Convert", "Subtract", "Multiply", "Reshape", "Transpose")  # int8 weights -> f32


def require_nncf() -> ModuleType:
    """NNCF, or the line that says how to install it."""
    try:
        import nncf
    except ImportError:
        raise BackendError(NNCF_MISSING) from None
    return nncf


def ir_precision(precision: str | None) -> str | None:
    """The precision asked for, checked (OpenVINO, and NNCF for int8, imported) before anything is
    written; None leaves it to ``faster_precisions`` and the accuracy gate."""
    entry = BACKENDS["openvino"]
    entry.require()
    if precision is None:
        return None
    if precision not in entry.precisions:
        raise ConfigError(f"precision is {precision!r}; OpenVINO IR takes: "
                          f"{', '.join(entry.precisions)}")
    if precision == INT8:
        require_nncf()
    return precision


def faster_precisions() -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The reduced precisions to try on this CPU, fastest first; why each other one is not tried;
    and the CPU, as the manifest records it."""
    core = BACKENDS["openvino"].require().Core()
    offers = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    cpu = {"cpu": core.get_property("CPU", "FULL_DEVICE_NAME"), "capabilities": offers}
    tried, skipped = [], {}
    for precision in SPEED_ORDER:
        if _CAPABILITIES[precision] not in offers:
            skipped[precision] = (f"this CPU ({cpu['cpu']}) has no {_CAPABILITIES[precision]}: "
                                  f"OpenVINO offers {', '.join(offers)}")
            continue
        try:
            if precision == INT8:
                require_nncf()
        except BackendError as exc:
            skipped[precision] = str(exc)
            continue
        tried.append(precision)
    return tried, skipped, cpu


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


def quantize_ir(stage: Path, calibration: Calibration) -> dict[str, Any]:
    """The int8 IR of both staged graphs, quantised by NNCF on ``calibration`` with the fragile
    ops kept in fp32 (``KEPT_IN_FP32``); returns the ``int8`` part of the manifest's section."""
    nncf = require_nncf()
    ov = BACKENDS["openvino"].require()
    started = time.perf_counter()
    kept, quantized = {}, {}
    for name, file in INT8_FILES.items():
        model = ov.Core().read_model(str(stage / IR_FILES[name]))
        names = _kept_in_fp32(model, name)
        inputs = calibration.inputs[name]
        with _quiet():
            int8 = nncf.quantize(model, nncf.Dataset(inputs), subset_size=len(inputs),
                                 target_device=nncf.TargetDevice.CPU,
                                 ignored_scope=nncf.IgnoredScope(names=names))
        ov.save_model(int8, stage / file, compress_to_fp16=False)
        kept[name] = {"ops": len(names), "what": KEPT_IN_FP32[name]}
        quantized[name] = quantized_ops(int8)
    return {
        "files": INT8_FILES,
        "weights": {name: Path(file).with_suffix(".bin").name for name, file in INT8_FILES.items()},
        "nncf_version": nncf.__version__,
        "calibration": calibration.record,
        "kept_in_fp32": kept,
        "quantized": quantized,
        "quantize_s": round(time.perf_counter() - started, 3),
    }


def quantized_ops(model: Any) -> dict[str, int]:
    """What runs in int8: the FakeQuantize nodes on activations, and the layers (by type) whose
    weights are stored in int8."""
    counts: Counter[str] = Counter()
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize":
            counts[kind] += 1
        elif kind in _WEIGHT_OPS and _int8_weights(op):
            counts[f"{kind} (int8 weights)"] += 1
    return dict(sorted(counts.items()))


def _int8_weights(op: Any) -> bool:
    """Whether ``op``'s weights input traces back, through dequantisation, to an int8 constant."""
    node = op.input_value(1).get_node()
    while node.get_type_name() in _DEQUANTIZE:
        node = node.input_value(0).get_node()
    return node.get_type_name() == "Constant" and node.get_element_type().get_type_name() in ("i8", "u8")


def _kept_in_fp32(model: Any, graph: str) -> list[str]:
    """The names of the ops NNCF must leave in fp32 (``KEPT_IN_FP32``): everything downstream of
    the support masks in the prior encoder; in the decoder, of the sigmoid (outputs excluded), and
    what the query's pixels reach before any convolution: the refinement's guide, whose colour
    covariances (E[xy] - E[x]E[y] over a window) int8 rounds to noise."""
    if graph == "prior_encoder":
        names = _downstream(_parameters(model, "support_masks"), include_front=False)
    else:
        sigmoids = [op for op in model.get_ops() if op.get_type_name() == "Sigmoid"]
        names = _downstream(sigmoids, include_front=True)
        taken = set(names)
        names += [name for name in _downstream(_parameters(model, "query_image"), include_front=False,
                                               stop_at=_CONVOLUTIONS) if name not in taken]
    if not names:
        raise BackendError(f"cannot find the fp32 part of {graph} to keep out of int8: export it "
                           "again with this vpi")
    return names


def _parameters(model: Any, name: str) -> list[Any]:
    return [p for p in model.get_parameters() if p.get_friendly_name() == name]


def _downstream(front: list[Any], include_front: bool, stop_at: tuple[str, ...] = ()) -> list[str]:
    """The friendly names of the ops that ``front`` reaches (Results excluded), each once; an op
    of a type in ``stop_at`` is neither taken nor followed."""
    names = [op.get_friendly_name() for op in front] if include_front else []
    seen = set(names)
    front = list(front)
    while front:
        node = front.pop()
        for output in node.outputs():
            for target in output.get_target_inputs():
                child = target.get_node()
                name = child.get_friendly_name()
                if name in seen or child.get_type_name() in ("Result", *stop_at):
                    continue
                seen.add(name)
                names.append(name)
                front.append(child)
    return names


@contextmanager
def _quiet() -> Iterator[None]:
    """NNCF logs a line per op it leaves alone, and imports torch's extension builder, which warns
    that a CPU-only machine has no CUDA runtime: keep NNCF's warnings only."""
    loggers = {logging.getLogger("nncf"): logging.WARNING,
               logging.getLogger("torch.utils.cpp_extension"): logging.ERROR}
    levels = {logger: logger.level for logger in loggers}
    for logger, level in loggers.items():
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, level in levels.items():
            logger.setLevel(level)
