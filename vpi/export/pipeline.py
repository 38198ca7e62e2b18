"""``export_model``: checkpoint -> checked ONNX graphs (and an engine's files) + manifest.json.

Everything is written to a staging folder inside ``out_dir`` first and moved into place only after
the checks, the parity with eager PyTorch at fp32 and, for a reduced precision, the accuracy gate
(``vpi.export.gate``) pass, so a failed export leaves an earlier one intact.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx
import torch

from vpi import __version__
from vpi.checkpoint import failure_flag, failure_threshold, file_sha256, load_model
from vpi.config import EXPORT_DIR, Config, apply_overrides, config_to_dict
from vpi.errors import BackendError, ConfigError, VpiError
from vpi.export.calibration import CalibrationSource, calibration_inputs
from vpi.export.engines import EXPORT_ENGINES, Request
from vpi.export.gate import AccuracyGate, GateSettings
from vpi.export.onnx_export import check_graph, export_graphs, graph_signatures
from vpi.export.openvino import INT8, faster_precisions, quantize_ir
from vpi.export.parity import check_parity, parity_report, parity_tolerance
from vpi.export.tensorrt import PrecisionPlan
from vpi.graphs import GRAPH_FILES, GraphSpec
from vpi.io import ensure_writable_dir
from vpi.manifest import FORMAT, FORMAT_VERSION, MANIFEST, write_manifest
from vpi.model import VPIModel
from vpi.runtime.registry import BACKENDS, ENGINES, RunnerOptions
from vpi.runtime.torch_runner import TorchRunner


def export_model(
    checkpoint: str | Path,
    out_dir: str | Path = EXPORT_DIR,
    *,
    engine: str = "onnx",
    precision: str | None = None,
    opset: int | None = None,
    force: bool = False,
    gate: GateSettings | None = None,
    calibration: CalibrationSource | None = None,
    data: dict[str, Any] | None = None,
    test_time: dict[str, Any] | None = None,
) -> Path:
    """Export ``checkpoint`` to ``out_dir``; returns the path of the written manifest.json.

    ``engine="onnx"`` writes fp32 graphs only (``precision`` must be None or "fp32");
    ``engine="trt"`` also builds TensorRT engines in ``precision`` (default "fp16");
    ``engine="openvino"`` also writes OpenVINO IR (and for int8 a quantised IR, calibrated on
    ``calibration``), whose runners default to ``precision``; by default the fastest precision
    of this CPU that passes the accuracy gate. Every engine's files are checked against eager
    PyTorch at fp32 like the graphs, and a reduced precision must keep class-IoU within
    ``gate.margin`` points of PyTorch fp32 on ``gate.episodes`` held-out episodes, or the export
    is refused. ``data`` overrides the checkpoint's data config for those episodes (dataset,
    root, splits); ``test_time`` the model's test-time fields (``load_model``), which the graphs
    then fix. An ``out_dir`` that holds anything but an export of this same checkpoint is
    refused unless ``force``; files of ours are replaced, nothing else in the folder is touched.
    """
    request = check_engine_request(engine, precision)
    ort_version = BACKENDS["onnx"].require().__version__  # the parity check runs on it
    started = time.perf_counter()
    model, config, state = load_model(checkpoint, test_time=test_time)
    episodes_config = apply_overrides(config, {"data": data or {}})
    digest = file_sha256(checkpoint)
    out = Path(out_dir)
    _check_out_dir(out, digest, force)
    ensure_writable_dir(out)
    spec = GraphSpec.from_config(config, failure_threshold(state))
    with tempfile.TemporaryDirectory(dir=out, prefix=".staging-") as tmp:
        stage = Path(tmp)
        exported_opset = _stage_graphs(model, spec, stage, opset)
        exported = time.perf_counter()
        manifest = _manifest(config, state, Path(checkpoint), digest, spec)
        manifest.update(opset=exported_opset, onnxruntime_version=ort_version)
        write_manifest(stage, manifest)  # provisional: the runners below open the staged folder
        manifest["parity"] = {"onnxruntime": _parity("onnx", model, spec, stage)}
        manifest["timing_s"] = {
            "onnx_export": round(exported - started, 3),
            "onnx_parity": round(time.perf_counter() - exported, 3),
        }
        write_engine = EXPORT_ENGINES[engine].write
        if write_engine is not None:  # an engine is named after the backend that runs its files
            manifest[BACKENDS[engine].key] = write_engine(model, spec, stage, request, opset)
            write_manifest(stage, manifest)
            manifest["parity"][BACKENDS[engine].key] = _parity(engine, model, spec, stage)
            _gate_precision(engine, request, model, episodes_config, stage, manifest,
                            gate or GateSettings(), calibration or CalibrationSource())
        manifest["timing_s"]["total"] = round(time.perf_counter() - started, 3)
        _move_staged(stage, out)
    return write_manifest(out, manifest)


def check_engine_request(
    engine: str, precision: str | None, engines: tuple[str, ...] = ENGINES
) -> Request:
    """Validate engine (one of ``engines``) and precision, and fail on a missing library before
    anything is written; returns the engine's request (``EXPORT_ENGINES``): TensorRT's precision
    plan, the OpenVINO IR's precision (None: the fastest that passes the accuracy gate), or None
    for the ONNX graphs alone."""
    if engine not in engines:
        raise ConfigError(f"engine is {engine!r}; choose one of: {', '.join(engines)}")
    check = EXPORT_ENGINES[engine].check
    if check is None:
        if precision not in (None, "fp32"):
            others = " or ".join(e for e in engines if EXPORT_ENGINES[e].check is not None)
            raise ConfigError(f"ONNX graphs are exported in fp32; precision {precision!r} "
                              f"applies to --engine {others}")
        return None
    return check(precision)


def _check_out_dir(out: Path, digest: str, force: bool) -> None:
    """Refuse to mix exports: a folder of another checkpoint, or of other files, needs force."""
    if force or not out.is_dir():
        return
    if not any(p for p in out.iterdir() if not p.name.startswith(".staging-")):
        return
    try:
        old = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict) and old.get("format") == FORMAT:
        previous = old.get("checkpoint", {})
        if previous.get("sha256") == digest:
            return
        raise VpiError(
            f"output folder {str(out)!r} holds the export of another checkpoint "
            f"({previous.get('file')}): choose another --out or pass --force to replace it"
        )
    raise VpiError(
        f"output folder {str(out)!r} is not empty and holds no vpi export: choose an empty "
        "folder or pass --force"
    )


def _stage_graphs(model: VPIModel, spec: GraphSpec, stage: Path, opset: int | None) -> int:
    """Export both graphs into the staging folder and check each one's inputs and outputs against
    ``graph_signatures``; returns the opset the manifest records (the higher of the two)."""
    signatures = graph_signatures(spec)
    paths = {name: stage / file for name, file in GRAPH_FILES.items()}
    opsets = export_graphs(model, spec, paths, opset=opset)
    for name, path in paths.items():
        check_graph(path, signatures[name])
    return max(opsets.values())


def _move_staged(stage: Path, out: Path) -> None:
    """Move every staged file but the provisional manifest into ``out``, once every check has
    passed; the final manifest is written after them."""
    for path in stage.iterdir():
        if path.name != MANIFEST:
            os.replace(path, out / path.name)


def _manifest(
    config: Config,
    state: dict[str, Any],
    checkpoint: Path,
    digest: str,
    spec: GraphSpec,
) -> dict[str, Any]:
    """Everything but the parity figures, the opset and the ONNX Runtime version."""
    signatures = graph_signatures(spec)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vpi_version": __version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input_size": [spec.input_size, spec.input_size],
        "latent_dim": spec.latent_dim,
        "shots": [1, spec.max_shots],
        "samples": [1, spec.max_samples],
        "batch": [1, spec.max_batch],
        "probabilistic": spec.probabilistic,
        "aggregation": config.model.aggregation,
        "checkpoint": {
            "file": checkpoint.name,
            "sha256": digest,
            "step": state.get("step"),
            "vpi_version": state.get("vpi_version"),
        },
        "config": config_to_dict(config),
        "failure_flag": failure_flag(state),
        "graphs": {
            name: {"file": GRAPH_FILES[name], "dtype": "float32", **signatures[name]}
            for name in GRAPH_FILES
        },
    }


def _parity(backend: str, model: VPIModel, spec: GraphSpec, stage: Path) -> dict[str, Any]:
    """The staged files on ``backend`` against eager PyTorch on the CPU, at the files' precision
    (fp32 for a runtime that takes one); raises when they disagree, so nothing is written."""
    entry = BACKENDS[backend]
    candidate = entry.open(stage, RunnerOptions(device="cpu", precision="fp32"))
    tolerance = parity_tolerance(candidate.precision, candidate.device.type)
    report = parity_report(TorchRunner(model, spec, device="cpu"), candidate, spec, tolerance)
    check_parity(report, entry.library)
    return report


def _gate_precision(
    engine: str,
    request: PrecisionPlan | str | None,
    model: VPIModel,
    config: Config,
    stage: Path,
    manifest: dict[str, Any],
    settings: GateSettings,
    calibration: CalibrationSource,
) -> None:
    """Set the engine's precision in ``manifest``, gated on accuracy, and record why in its
    ``gate`` section. A precision asked for is refused (AccuracyError) if it fails the gate; with
    none asked for (OpenVINO), the CPU's reduced precisions are tried fastest first and the first
    that passes is kept, else fp32, which needs no gate."""
    entry = BACKENDS[engine]
    section = manifest[entry.key]
    asked = request.precision if isinstance(request, PrecisionPlan) else request
    if asked == "fp32":
        return
    candidates, skipped, machine = ([asked], {}, {}) if asked else faster_precisions()
    record: dict[str, Any] = {"asked": asked or "the fastest that passes", **machine}
    chosen = "fp32"
    gate = AccuracyGate(model, config, settings) if candidates else None
    for precision in candidates:
        if precision == INT8:
            reference = TorchRunner(model, GraphSpec.from_config(config), device="cpu", amp=False)
            section["int8"] = quantize_ir(stage, calibration_inputs(calibration, config, reference))
        section["precision"] = precision
        write_manifest(stage, manifest)
        try:
            passed = gate.judge(entry.open(stage, RunnerOptions(device="cpu", precision=precision)),
                                precision)
        except BackendError as exc:  # listed by the CPU, yet it would not compile
            if asked:
                raise
            skipped[precision] = str(exc)
            passed = False
        if passed:
            chosen = precision
            break
        if asked:
            raise gate.refusal(entry.library)
        if precision == INT8:  # not good enough to ship
            for file in (*section["int8"]["files"].values(), *section["int8"]["weights"].values()):
                (stage / file).unlink()
            del section["int8"]
    section["precision"] = chosen
    record.update(gate.record() if gate else {})
    record.update(chosen=chosen, why=_why(chosen, asked, [c for c in candidates if c not in skipped],
                                          skipped, settings.margin), skipped=skipped)
    manifest["gate"] = record


def _why(
    chosen: str, asked: str | None, tried: list[str], skipped: dict[str, str], margin: float
) -> str:
    """One sentence for the manifest: why the export's runners default to ``chosen``."""
    within = f"keeps class-IoU within {margin:g} points of PyTorch fp32"
    if asked:
        return f"{chosen} was asked for and {within}"
    if chosen != "fp32":
        return f"{chosen} is the fastest precision this CPU offers that {within}"
    if tried:
        return f"{', '.join(tried)} lost more than {margin:g} points; fp32 needs no gate"
    return f"this CPU offers no faster precision ({'; '.join(f'{p}: {why}' for p, why in skipped.items())})"

