"""``write_triton_repository``: a checkpoint becomes a model repository that Triton serves as is.

Layout (``platform`` onnxruntime_onnx, or tensorrt_plan with ``model.plan`` for ``engine="trt"``)::

    REPO/request_validator/config.pbtxt, 1/model.py       refuses K or L out of range (Python backend)
    REPO/prior_encoder/config.pbtxt, 1/model.onnx         support pairs -> prior mean, variance
    REPO/segmentation_decoder/config.pbtxt, 1/model.onnx  query + prior + noise -> maps
    REPO/vpi/config.pbtxt, 1/                             the ensemble chaining the three

The repository is built in a staging folder beside REPO, checked (onnx's checker, the graphs'
signatures, parity with eager PyTorch) and only then moved into place, so a failure leaves an earlier
repository intact. Nothing in it carries a time or a path: a checkpoint written twice gives the
same bytes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpi import __version__
from vpi.checkpoint import file_sha256, load_model
from vpi.errors import CheckpointError, VpiError
from vpi.export.onnx_export import check_graph
from vpi.export.parity import FP32_TOLERANCE, check_parity, parity_report
from vpi.export.pipeline import check_engine_request
from vpi.export.tensorrt import PrecisionPlan, build_engines, typed_sources
from vpi.export.triton_graphs import (
    Signature,
    export_triton_graphs,
    triton_profiles,
    triton_signatures,
)
from vpi.graphs import GraphSpec
from vpi.io import ensure_writable_dir
from vpi.model import VPIModel
from vpi.runtime.registry import BACKENDS
from vpi.runtime.tensorrt_compat import import_tensorrt
from vpi.runtime.torch_runner import TorchRunner

ENSEMBLE = "vpi"
VALIDATOR = "request_validator"
MODELS = (VALIDATOR, "prior_encoder", "segmentation_decoder", ENSEMBLE)
VERSION = "1"
CONFIG = "config.pbtxt"
PLATFORMS = {"onnx": ("onnxruntime_onnx", "model.onnx"), "trt": ("tensorrt_plan", "model.plan")}
PYTHON_MODEL = "model.py"
VALIDATOR_SOURCE = Path(__file__).with_name("triton_validator.py")
AXES = {"K": "support pairs", "L": "samples of z"}  # the graphs' named axes within one request
QUEUE_DELAY_US = 1000  # how long a request may wait for others to share its batch
_DYNAMIC_BATCHING = f"dynamic_batching {{\n  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n}}\n"
_WHY_BATCHING = (
    "# max_batch_size {batch}: every tensor leads with a batch axis of independent requests, which\n"
    "# dims leave out; dynamic_batching merges concurrent requests whose other dims agree. -1 marks\n"
    "# the axes within one request: K (support pairs) in 1..{shots}, L (noise samples) in 1..{samples}.\n"
)
_WHY_VALIDATOR = (
    "# Triton lets a -1 axis take any size, 0 included, and the graphs would answer NaN for K = 0:\n"
    "# this model refuses a K or L out of range before any graph runs and passes the checked\n"
    "# tensors on. Each parameter names an axis, its range and the tensors that carry it.\n"
)
_WHY_NOISE = (
    "# An ensemble cannot draw random numbers: the client sends noise (L, D) ~ N(0, I), drawn with\n"
    "# a seed as vpi's runtime does, and the decoder forms z = prior_mean + noise * sqrt(prior_variance).\n"
)


def write_triton_repository(
    checkpoint: str | Path,
    repo: str | Path,
    *,
    engine: str = "onnx",
    precision: str | None = None,
    opset: int | None = None,
    force: bool = False,
    test_time: dict[str, Any] | None = None,
) -> Path:
    """Write the Triton model repository of ``checkpoint`` to ``repo``; returns ``repo``.
    ``test_time``: the model's test-time fields, as for ``export_model``.

    ``engine="trt"`` builds TensorRT plans (``precision`` as for ``export_model``, default fp16)
    that only load on the server's exact TensorRT version and GPU architecture. A ``repo`` that
    exists and is not empty is refused unless ``force``; then only the three models above are
    replaced and any other model in it is kept.
    """
    # Missing backends and unusable checkpoints fail first, before anything is written.
    trt_plan = check_engine_request(engine, precision, tuple(PLATFORMS))
    BACKENDS["onnx"].require()  # the parity check runs on it
    model, config, _ = load_model(checkpoint, test_time=test_time)
    if not config.model.probabilistic:
        raise CheckpointError(
            f"checkpoint {str(checkpoint)!r} is the deterministic twin (model.probabilistic is "
            "false): its prior has no learned variance for the ensemble to sample z from; serve it "
            "with `vpi export` and the vpi runtime instead"
        )
    repo = Path(repo)
    _check_target(repo, force)
    ensure_writable_dir(repo.parent)
    spec = GraphSpec.from_config(config)
    signatures = triton_signatures(spec)
    header = (f"# Written by vpi {__version__} from the checkpoint with sha256 "
              f"{file_sha256(checkpoint)}.\n" + _WHY_BATCHING.format(
                  batch=spec.max_batch, shots=spec.max_shots, samples=spec.max_samples))
    platform, filename = PLATFORMS[engine]
    with tempfile.TemporaryDirectory(dir=repo.parent, prefix=f".{repo.name}.staging-") as tmp:
        stage = Path(tmp) / "repo"
        graphs = stage if engine == "onnx" else Path(tmp) / "onnx"
        sources = {name: graphs / name / VERSION / "model.onnx" for name in signatures}
        export_triton_graphs(model, spec, sources, opset=opset)
        for name, path in sources.items():
            check_graph(path, signatures[name])
        check_parity(parity_report(TorchRunner(model, spec, device="cpu"), _OnnxChain(sources), spec,
                                   FP32_TOLERANCE), "ONNX Runtime")
        if trt_plan is not None:
            targets = {name: stage / name / VERSION / filename for name in signatures}
            _build_plans(model, spec, sources, targets, trt_plan, opset)
        for name, signature in signatures.items():
            text = header + model_config_text(name, platform, signature, spec.max_batch,
                                              gpu=engine == "trt")
            (stage / name / CONFIG).write_text(text)
        (stage / VALIDATOR / VERSION).mkdir(parents=True)
        (stage / VALIDATOR / VERSION / PYTHON_MODEL).write_bytes(VALIDATOR_SOURCE.read_bytes())
        (stage / VALIDATOR / CONFIG).write_text(header + _WHY_VALIDATOR + validator_config_text(
            validator_signature(signatures), spec))
        (stage / ENSEMBLE / VERSION).mkdir(parents=True)  # Triton needs it, even empty
        (stage / ENSEMBLE / CONFIG).write_text(header + _WHY_NOISE + ensemble_config_text(
            signatures, spec.max_batch))
        _move_into_place(stage, repo, Path(tmp) / "replaced")
    return repo


def model_config_text(
    name: str, platform: str, signature: Signature, max_batch: int, *, gpu: bool
) -> str:
    """config.pbtxt of one graph; no kind in the instance group (KIND_AUTO) unless it needs a GPU."""
    kind = "\n    kind: KIND_GPU" if gpu else ""
    return (
        f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch}\n'
        + _tensors("input", signature["inputs"]) + _tensors("output", signature["outputs"])
        + _DYNAMIC_BATCHING + f"instance_group [\n  {{\n    count: 1{kind}\n  }}\n]\n"
    )


def validator_signature(signatures: dict[str, Signature]) -> Signature:
    """The request validator's tensors: the ensemble inputs with a K or L axis, in and out alike."""
    checked = {t: d for t, d in ensemble_inputs(signatures).items() if any(a in AXES for a in d)}
    return {"inputs": checked, "outputs": checked}


def validator_config_text(signature: Signature, spec: GraphSpec) -> str:
    """config.pbtxt of the request validator: one JSON parameter per named axis (see its model.py),
    whose tensors' axis indices count the batch axis, as the arrays it gets have it."""
    ranges = {"K": spec.max_shots, "L": spec.max_samples}
    parameters = []
    for axis, what in AXES.items():
        tensors = {t: dims.index(axis) for t, dims in signature["inputs"].items() if axis in dims}
        value = json.dumps({"min": 1, "max": ranges[axis], "what": what, "tensors": tensors})
        # json.dumps of that text is also a valid protobuf text string (both escape '"' as \")
        parameters.append(f'  {{\n    key: "{axis}"\n    value {{ string_value: {json.dumps(value)} }}\n  }}')
    return (
        f'name: "{VALIDATOR}"\nbackend: "python"\nmax_batch_size: {spec.max_batch}\n'
        + _tensors("input", signature["inputs"]) + _tensors("output", signature["outputs"])
        + _DYNAMIC_BATCHING + "parameters [\n" + ",\n".join(parameters) + "\n]\n"
        + "instance_group [\n  {\n    count: 1\n    kind: KIND_CPU\n  }\n]\n"
    )


def ensemble_inputs(signatures: dict[str, Signature]) -> dict[str, list[int | str]]:
    """What a client sends: the graphs' inputs that no earlier graph produces."""
    inputs: dict[str, list[int | str]] = {}
    produced: set[str] = set()
    for signature in signatures.values():
        inputs.update({t: d for t, d in signature["inputs"].items() if t not in produced})
        produced.update(signature["outputs"])
    return inputs


def ensemble_config_text(signatures: dict[str, Signature], max_batch: int) -> str:
    """The ``vpi`` ensemble: the request validator, then the graphs in the order given.

    It batches nothing itself (an ensemble takes no dynamic_batching); each of its models merges
    the concurrent requests that reach it.

    Tensors keep their names, except that the validator's outputs (its inputs, passed through)
    become ``checked_<name>``, which is what the graphs then read. Its inputs are
    ``ensemble_inputs``; its outputs are the last graph's.
    """
    carrier = {t: t for t in ensemble_inputs(signatures)}  # a step's tensor -> the ensemble's
    steps = []
    for model, signature in {VALIDATOR: validator_signature(signatures), **signatures}.items():
        outputs = {t: f"checked_{t}" if t in signature["inputs"] else t for t in signature["outputs"]}
        maps = [f'      input_map {{ key: "{t}" value: "{carrier[t]}" }}\n' for t in signature["inputs"]]
        maps += [f'      output_map {{ key: "{t}" value: "{v}" }}\n' for t, v in outputs.items()]
        carrier.update(outputs)
        steps.append(f'    {{\n      model_name: "{model}"\n      model_version: -1\n'
                     + "".join(maps) + "    }")
    last = signatures[list(signatures)[-1]]
    return (
        f'name: "{ENSEMBLE}"\nplatform: "ensemble"\nmax_batch_size: {max_batch}\n'
        + _tensors("input", ensemble_inputs(signatures)) + _tensors("output", last["outputs"])
        + "ensemble_scheduling {\n  step [\n" + ",\n".join(steps) + "\n  ]\n}\n"
    )


def _tensors(kind: str, tensors: dict[str, list[int | str]]) -> str:
    """An input or output list; dims leave out the leading batch axis B (Triton's with
    max_batch_size > 0), and a named axis ("K", "L") becomes -1."""
    entries = []
    for name, dims in tensors.items():
        shape = ", ".join(str(-1 if isinstance(d, str) else d) for d in dims[1:])
        entries.append(f'  {{\n    name: "{name}"\n    data_type: TYPE_FP32\n    dims: [ {shape} ]\n  }}')
    return f"{kind} [\n" + ",\n".join(entries) + "\n]\n"


def _check_target(repo: Path, force: bool) -> None:
    if repo.exists() and not repo.is_dir():
        raise VpiError(f"model repository {str(repo)!r} exists and is not a folder")
    if not force and repo.is_dir() and any(repo.iterdir()):
        raise VpiError(
            f"model repository {str(repo)!r} exists and is not empty: choose a new path, or pass "
            f"--force to replace its {', '.join(MODELS)} models (other models are kept)"
        )


def _move_into_place(stage: Path, repo: Path, replaced: Path) -> None:
    """Swap each model folder in with one rename; an old one goes to ``replaced`` (deleted after)."""
    repo.mkdir(parents=True, exist_ok=True)
    replaced.mkdir()
    for name in MODELS:
        target = repo / name
        if target.exists() or target.is_symlink():
            os.replace(target, replaced / name)
        os.replace(stage / name, target)


class _OnnxChain:
    """The staged graphs in ONNX Runtime, as the parity check's runner.

    Parity hands the decoder prototypes z (B, L, D); they enter the sampled decoder as noise with
    mean 0 and variance 1, and 0 + z * sqrt(1) is z exactly in fp32.
    """

    def __init__(self, sources: dict[str, Path]) -> None:
        ort = BACKENDS["onnx"].require()
        self.sessions = {name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                         for name, path in sources.items()}

    def run_prior(self, images: Any, masks: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run("prior_encoder", support_images=images, support_masks=masks)

    def run_decoder(self, query: Any, prototypes: Any) -> tuple[torch.Tensor, ...]:
        batch, _, d = prototypes.shape
        return self._run("segmentation_decoder", query_image=query, prior_mean=torch.zeros(batch, d),
                         prior_variance=torch.ones(batch, d), noise=prototypes)

    def _run(self, name: str, **feeds: Any) -> tuple[torch.Tensor, ...]:
        arrays = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in feeds.items()}
        return tuple(torch.from_numpy(output) for output in self.sessions[name].run(None, arrays))


def _build_plans(
    model: VPIModel,
    spec: GraphSpec,
    sources: dict[str, Path],
    targets: dict[str, Path],
    plan: PrecisionPlan,
    opset: int | None,
) -> None:
    """TensorRT plans with the served graphs' own profiles (noise takes L's range).

    fp16/bf16 plans are built from typed copies of the graphs (strongly typed builds).
    """
    import_tensorrt()
    sources = typed_sources(model, spec, sources, plan, opset, export_triton_graphs)
    build_engines(sources, targets, spec, plan, profiles=triton_profiles(spec))
