"""Offline checks of a Triton model repository written by ``write_triton_repository``.

Triton reads a config.pbtxt only when it loads the model; these checks catch beforehand what it
would refuse then, or serve wrongly: text that does not parse against Triton's model-config schema
(``tritonclient`` ships it as ``model_config_pb2``), a config whose tensors differ from the ONNX
graph beside it (with ``max_batch_size`` > 0 the config's dims leave out the graph's leading
batch axis, which must be dynamic), an ensemble whose maps leave an input unused, a step's input
unfed or an output unproduced, a step model that batches less than the ensemble, and a graph that
reads a dynamic-sized request tensor the request validator has not checked. They need
``pip install tritonclient`` (a dev dependency), nothing else.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import onnx

from vpi.errors import VpiError
from vpi.export.triton import CONFIG, ENSEMBLE, MODELS, PLATFORMS, PYTHON_MODEL, VALIDATOR, VERSION

Tensors = dict[str, tuple[str, list[int]]]  # name -> (Triton data type, dims with -1 for dynamic)

_TRITON_TYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}


def check_repository(repo: str | Path) -> dict[str, Any]:
    """Check vpi's three models in ``repo``; returns their parsed ``ModelConfig`` by name."""
    repo = Path(repo)
    configs = {name: read_model_config(repo / name / CONFIG) for name in MODELS}
    for name, config in configs.items():
        where = str(repo / name / CONFIG)
        if config.name != name:
            raise VpiError(f"{where} names the model {config.name!r}, but its folder is {name!r}")
        if not (repo / name / VERSION).is_dir():
            raise VpiError(f"model {name!r} has no version folder {VERSION}/: Triton would not load it")
        if config.platform == PLATFORMS["onnx"][0]:
            check_onnx_model(config, repo / name / VERSION / PLATFORMS["onnx"][1], where)
        elif config.platform == PLATFORMS["trt"][0]:
            if not (repo / name / VERSION / PLATFORMS["trt"][1]).is_file():
                raise VpiError(f"{where} is a tensorrt_plan but {name}/{VERSION}/ holds no model.plan")
        elif config.backend == "python":
            if not (repo / name / VERSION / PYTHON_MODEL).is_file():
                raise VpiError(f"{where} is a Python model but {name}/{VERSION}/ holds no {PYTHON_MODEL}")
        elif name != ENSEMBLE:
            raise VpiError(f"{where} has platform {config.platform!r}, which vpi does not write")
    check_ensemble(configs[ENSEMBLE], configs, str(repo / ENSEMBLE / CONFIG))
    return configs


def read_model_config(path: Path) -> Any:
    """A config.pbtxt parsed against Triton's ``ModelConfig`` message; errors name the file."""
    from google.protobuf import text_format

    if not path.is_file():
        raise VpiError(f"{str(path)!r} does not exist")
    try:
        return text_format.Parse(path.read_text(), _model_config_pb2().ModelConfig())
    except text_format.ParseError as exc:
        raise VpiError(f"{str(path)!r} is not a valid Triton model config: {exc}") from None


def check_onnx_model(config: Any, onnx_path: Path, where: str) -> None:
    """The config declares exactly the graph's inputs and outputs: names, types and dims (less the
    batch axis, when the config batches)."""
    if not onnx_path.is_file():
        raise VpiError(f"{where} is an ONNX model, but {str(onnx_path)!r} does not exist")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    for kind, declared, values in (("input", config.input, graph.input),
                                   ("output", config.output, graph.output)):
        actual = {v.name: _onnx_tensor(v) for v in values if v.name not in weights}
        if config.max_batch_size > 0:
            fixed = [name for name, (_, dims) in actual.items() if dims[:1] != [-1]]
            if fixed:
                raise VpiError(f"{where} has max_batch_size {config.max_batch_size}, but the ONNX "
                               f"graph's {kind} {fixed[0]!r} has no dynamic batch axis first")
            actual = {name: (dtype, dims[1:]) for name, (dtype, dims) in actual.items()}
        _compare(where, kind, _tensors(declared), actual, "the ONNX graph")


def check_ensemble(config: Any, models: dict[str, Any], where: str) -> None:
    """Every ensemble input is consumed, every step input fed, every ensemble output produced.

    Triton orders the steps by their data; vpi lists them in that order, and this check requires
    it: a step may only read what an ensemble input or an earlier step provides. Only the request
    validator may read an ensemble input with a -1 axis, since Triton lets that axis be any size.
    """
    if config.platform != "ensemble":
        raise VpiError(f"{where} has platform {config.platform!r}; the {ENSEMBLE!r} model is an ensemble")
    available = _tensors(config.input)
    unchecked = {name for name, (_, dims) in available.items() if -1 in dims}
    consumed: set[str] = set()
    for step in config.ensemble_scheduling.step:
        if step.model_name not in models:
            raise VpiError(f"{where}: a step runs model {step.model_name!r}, which is not in the repository")
        model = models[step.model_name]
        if model.max_batch_size < config.max_batch_size:
            raise VpiError(f"{where} has max_batch_size {config.max_batch_size}, but its step "
                           f"{step.model_name!r} only {model.max_batch_size}: Triton refuses that")
        inputs = _tensors(model.input)
        unmapped = [name for name in inputs if name not in step.input_map]
        if unmapped:
            raise VpiError(f"{where}: step {step.model_name!r} leaves the model's input "
                           f"{unmapped[0]!r} unmapped")
        for key, tensor in step.input_map.items():
            if key not in inputs:
                raise VpiError(f"{where}: step {step.model_name!r} maps input {key!r}, which "
                               "the model does not have")
            if tensor not in available:
                raise VpiError(f"{where}: step {step.model_name!r} reads {key!r} from {tensor!r}, "
                               "which no ensemble input or earlier step provides")
            if tensor in unchecked and step.model_name != VALIDATOR:
                raise VpiError(f"{where}: step {step.model_name!r} reads the request's {tensor!r} "
                               f"unchecked (Triton lets its -1 axis be any size, 0 included): map "
                               f"{key!r} from the {VALIDATOR!r} step's output")
        _compare(where, f"{step.model_name} input", {k: available[t] for k, t in step.input_map.items()},
                 inputs, f"model {step.model_name!r}")
        consumed.update(step.input_map.values())
        outputs = _tensors(model.output)
        for key, tensor in step.output_map.items():
            if key not in outputs:
                raise VpiError(f"{where}: step {step.model_name!r} maps output {key!r}, which "
                               "the model does not have")
            available[tensor] = outputs[key]
    unused = [t.name for t in config.input if t.name not in consumed]
    if unused:
        raise VpiError(f"{where}: ensemble input {unused[0]!r} is consumed by no step")
    inputs = {t.name for t in config.input}
    produced = {t: v for t, v in available.items() if t not in inputs}
    missing = [t.name for t in config.output if t.name not in produced]
    if missing:
        raise VpiError(f"{where}: ensemble output {missing[0]!r} is produced by no step")
    _compare(where, "output", _tensors(config.output),
             {t.name: produced[t.name] for t in config.output}, "its steps")


def _compare(where: str, kind: str, declared: dict[str, Any], actual: Tensors, other: str) -> None:
    undeclared, unknown = sorted(actual.keys() - declared.keys()), sorted(declared.keys() - actual.keys())
    if undeclared:
        raise VpiError(f"{where} does not declare {kind} {undeclared[0]!r} of {other}")
    if unknown:
        raise VpiError(f"{where} declares {kind} {unknown[0]!r}, which {other} does not have")
    for name, (dtype, dims) in declared.items():
        if (dtype, dims) != actual[name]:
            raise VpiError(f"{where}: {kind} {name!r} is {dtype} {dims}, but {other} has "
                           f"{actual[name][0]} {actual[name][1]}")


def _tensors(values: Any) -> Tensors:
    names = _model_config_pb2().DataType.Name
    return {t.name: (names(t.data_type), list(t.dims)) for t in values}


def _onnx_tensor(value: Any) -> tuple[str, list[int]]:
    tensor = value.type.tensor_type
    dtype = _TRITON_TYPES.get(tensor.elem_type, onnx.TensorProto.DataType.Name(tensor.elem_type))
    return dtype, [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]


def _model_config_pb2() -> ModuleType:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise VpiError("checking a Triton repository needs tritonclient: pip install "
                       "'tritonclient[grpc]'") from None
    return model_config_pb2
