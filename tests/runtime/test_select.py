"""Choosing a backend, ONNX Runtime's quiet failures, version checks, the newest training run."""

from __future__ import annotations

import importlib.metadata
import os
import sys

import onnx
import pytest

from runtime.helpers import copy_export, tensorrt_missing
from vpi.errors import BackendError, ConfigError, VpiError
from vpi.runtime import (
    BACKENDS,
    OnnxRunner,
    TensorRTRunner,
    find_latest_checkpoint,
    onnx_runner,
    open_backend,
)


def test_auto_on_an_export_without_openvino_takes_onnx_and_says_why(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # its import fails, as if not installed
    choice = open_backend("auto", engine_dir=exported[1], device="auto")
    assert choice.runner.name == "onnx (CPUExecutionProvider)"
    assert "trt" in choice.skipped and "backend: onnx" in choice.reason
    if choice.skipped["openvino"].startswith("auto prefers it on x86"):
        pytest.skip("not an x86 CPU: auto passes OpenVINO over before importing it")
    assert choice.skipped["openvino"] == "OpenVINO is not installed: pip install 'vpi[openvino]'"
    if tensorrt_missing() is None:
        pytest.skip("this machine has TensorRT: auto would take it for an engine export")
    assert choice.skipped["trt"].endswith("holds no TensorRT engines: build them with "
                                          "`vpi export CHECKPOINT --engine trt`")


def test_auto_on_a_checkpoint_takes_torch(exported):
    choice = open_backend("auto", checkpoint=exported[0], device="cpu")
    assert choice.runner.name == "torch (cpu)"
    assert choice.skipped == {"trt/openvino/onnx": "they run an export (--engine-dir)",
                              "torch-amp": "autocast runs on CUDA only; on the CPU it is the "
                                           "torch backend"}


@pytest.mark.parametrize(("backend", "source", "message"), [
    ("onnx", "checkpoint", "--backend onnx runs an export folder: run `vpi export"),
    ("trt", "checkpoint", "--backend trt runs an export folder"),
    ("torch", "engine_dir", "--backend torch runs a checkpoint"),
    ("fast", "checkpoint", "backend is 'fast'; choose one of: auto, torch, torch-amp, onnx, openvino, "
                           "trt"),
])
def test_a_backend_that_cannot_run_the_given_model(exported, backend, source, message):
    path = exported[0] if source == "checkpoint" else exported[1]
    with pytest.raises(ConfigError, match=message):
        open_backend(backend, **{source: path})


def test_trt_without_tensorrt_is_one_line(exported):
    if tensorrt_missing() is None:
        pytest.skip("TensorRT is installed here")
    with pytest.raises(BackendError) as info:
        TensorRTRunner(exported[1])
    assert "\n" not in str(info.value) and "TensorRT engines" in str(info.value)


def test_export_from_another_vpi_version_is_refused(exported, tmp_path):
    folder = copy_export(exported[1], tmp_path / "old", vpi_version="0.0.9")
    with pytest.raises(BackendError, match="was written by vpi 0.0.9, but this is vpi 0.1"):
        OnnxRunner(folder)
    with pytest.raises(BackendError, match="was written by vpi 0.0.9"):
        open_backend("auto", engine_dir=folder)


def test_onnx_file_from_another_vpi_version_is_refused(exported, tmp_path):
    folder = copy_export(exported[1], tmp_path / "mixed")
    path = folder / "segmentation_decoder.onnx"
    model = onnx.load(path)
    onnx.helper.set_model_props(model, {"vpi_version": "1.4.0", "vpi_graph": "x"})
    onnx.save(model, path)
    with pytest.raises(BackendError, match="graph '.*segmentation_decoder.onnx' was written by "
                                           "vpi 1.4.0"):
        OnnxRunner(folder)


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_a_silent_cuda_fallback_is_reported(exported, monkeypatch):
    # Asking for CUDA where ONNX Runtime cannot give it: the session quietly runs on the CPU.
    with pytest.raises(BackendError, match="asked for CUDAExecutionProvider, .* runs on "
                                           "CPUExecutionProvider"):
        OnnxRunner(exported[1], device="cuda")
    ort = BACKENDS["onnx"].require()
    available = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: [onnx_runner.CUDA, *available])
    runner = OnnxRunner(exported[1], device="auto")
    assert runner.provider == onnx_runner.CPU
    assert any("CUDAExecutionProvider failed to load" in w for w in runner.warnings)


def test_onnxruntime_and_onnxruntime_gpu_together_are_explained():
    def both(dist: str) -> str:
        return {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.32.0"}[dist]

    def one(dist: str) -> str:
        if dist == "onnxruntime-gpu":
            raise importlib.metadata.PackageNotFoundError(dist)
        return "1.32.0"

    problem = onnx_runner.double_install_problem(both)
    assert "both onnxruntime 1.32.0 and onnxruntime-gpu 1.32.0 are installed" in problem
    assert onnx_runner.double_install_problem(one) is None


def test_the_newest_run_and_its_best_checkpoint(tmp_path):
    with pytest.raises(VpiError, match="no run of `vpi train` found under"):
        find_latest_checkpoint(tmp_path)
    for age, (run, names) in enumerate([("tiny-20240101-000000", ["last.pt", "best.pt"]),
                                        ("demo-20230101-000000", ["last.pt"])]):
        (tmp_path / run).mkdir()
        for name in names:
            (tmp_path / run / name).write_bytes(b"x")
            os.utime(tmp_path / run / name, (1000 + age, 1000 + age))
    (tmp_path / "empty-run").mkdir()
    assert find_latest_checkpoint(tmp_path) == tmp_path / "demo-20230101-000000" / "last.pt"
    os.utime(tmp_path / "tiny-20240101-000000" / "last.pt", (2000, 2000))
    assert find_latest_checkpoint(tmp_path) == tmp_path / "tiny-20240101-000000" / "best.pt"
