"""The TensorRT runner against a stand-in of TensorRT's runtime API: its own CUDA stream, checked
shapes and addresses, and the warning for an engine built on another GPU.

TensorRT and CUDA are not installed here, so the stand-ins record what the runner asks of them;
the buffers, CUDA tensors in production, live on the CPU (``runner.device``).
"""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path

import pytest
import torch

from vpi import __version__
from vpi.errors import BackendError
from vpi.export.tensorrt import ENGINE_FILES, optimization_profiles
from vpi.graphs import GraphSpec
from vpi.manifest import FORMAT, FORMAT_VERSION, write_manifest
from vpi.runtime import tensorrt_runner
from vpi.runtime.tensorrt_runner import TensorRTRunner

SPEC = GraphSpec(64, 16)
OUTPUT_SHAPES = {"prior_mean": (2, 16), "prior_variance": (2, 16),
                 "probability": (1, 64, 64), "uncertainty": (1, 64, 64)}


class _Context:
    """An execution context that accepts everything unless told to refuse one call."""

    def __init__(self, calls: list[tuple], refuse: str | None) -> None:
        self.calls, self.refuse = calls, refuse

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.calls.append(("set_input_shape", name, shape))
        return self.refuse != "set_input_shape"

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.calls.append(("set_tensor_address", name))
        return self.refuse != "set_tensor_address"

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return OUTPUT_SHAPES[name]

    def execute_async_v3(self, stream_handle: int) -> bool:
        self.calls.append(("execute_async_v3", stream_handle))
        return True


class _Stream:
    """A torch.cuda.Stream stand-in with a handle that is not the default stream's (0)."""

    cuda_stream = 1234

    def __init__(self, calls: list[tuple]) -> None:
        self.calls = calls

    def synchronize(self) -> None:
        self.calls.append(("synchronize",))


def _fake_tensorrt(calls: list[tuple], refuse: str | None) -> types.ModuleType:
    engine = types.SimpleNamespace(
        get_tensor_dtype=lambda name: types.SimpleNamespace(name="FLOAT"),
        create_execution_context=lambda: _Context(calls, refuse),
    )
    module = types.ModuleType("tensorrt")
    module.__version__ = "10.3.0"
    module.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda s, level: None})
    module.Runtime = lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda b: engine)
    return module


def _engine_folder(folder: Path, gpu: str) -> Path:
    """An export folder whose manifest says it holds engines built on ``gpu`` (sm 9.0)."""
    folder.mkdir()
    for file in ENGINE_FILES.values():
        (folder / file).write_bytes(b"plan")
    write_manifest(folder, {
        "format": FORMAT, "format_version": FORMAT_VERSION, "vpi_version": __version__,
        "input_size": [64, 64], "latent_dim": 16, "probabilistic": True,
        "shots": [1, 10], "samples": [1, 16], "batch": [1, 16],
        "tensorrt": {"tensorrt_version": "10.3.0", "gpu": gpu, "compute_capability": "9.0",
                     "precision": "fp16", "profiles": optimization_profiles(SPEC),
                     "files": ENGINE_FILES},
    })
    return folder


@pytest.fixture
def open_runner(monkeypatch, tmp_path):
    """``open_runner(built_on, refuse=None)``: a runner on an "NVIDIA H200", and its call log."""

    def make(built_on: str, refuse: str | None = None) -> tuple[TensorRTRunner, list[tuple]]:
        calls: list[tuple] = []
        monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(calls, refuse))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(tensorrt_runner, "device_fingerprint",
                            lambda: {"gpu": "NVIDIA H200", "compute_capability": "9.0"})
        monkeypatch.setattr(torch.cuda, "Stream", lambda: _Stream(calls))

        @contextlib.contextmanager
        def stream(chosen):
            calls.append(("enter stream", chosen.cuda_stream))
            yield
            calls.append(("leave stream", chosen.cuda_stream))

        monkeypatch.setattr(torch.cuda, "stream", stream)
        runner = TensorRTRunner(_engine_folder(tmp_path / f"engines-{refuse}", built_on))
        assert runner.device == torch.device("cuda")  # where the engines compute
        runner.device = torch.device("cpu")  # no CUDA here
        return runner, calls

    return make


def test_runs_on_its_own_stream_and_waits_for_it(open_runner):
    runner, calls = open_runner("NVIDIA H200")
    assert runner.warnings == []
    mean, var = runner.run_prior(torch.rand(2, 3, 3, 64, 64), torch.ones(2, 3, 1, 64, 64))
    assert mean.shape == var.shape == (2, 16) and mean.dtype == torch.float32
    assert calls == [
        ("enter stream", 1234),
        ("set_input_shape", "support_images", (2, 3, 3, 64, 64)),
        ("set_tensor_address", "support_images"),
        ("set_input_shape", "support_masks", (2, 3, 1, 64, 64)),
        ("set_tensor_address", "support_masks"),
        ("set_tensor_address", "prior_mean"),
        ("set_tensor_address", "prior_variance"),
        ("execute_async_v3", 1234),  # the runner's stream, never the default one (0)
        ("synchronize",),
        ("leave stream", 1234),
    ]


def test_a_refused_shape_or_address_is_an_error_not_a_silent_result(open_runner):
    runner, _ = open_runner("NVIDIA H200", refuse="set_input_shape")
    with pytest.raises(BackendError, match=r"^TensorRT refused shape \(1, 3, 64, 64\) for input "
                                           r"'query_image' of segmentation_decoder: its engine "
                                           r"takes \(1, 3, 64, 64\) to \(16, 3, 64, 64\)$"):
        runner.run_decoder(torch.rand(1, 3, 64, 64), torch.zeros(1, 6, 16))
    runner, calls = open_runner("NVIDIA H200", refuse="set_tensor_address")
    with pytest.raises(BackendError, match="^TensorRT refused the buffer of tensor "
                                           "'support_images' of prior_encoder$"):
        runner.run_prior(torch.rand(1, 1, 3, 64, 64), torch.ones(1, 1, 1, 64, 64))
    assert not any(call[0] == "execute_async_v3" for call in calls)


def test_an_engine_built_on_another_gpu_of_equal_capability_warns(open_runner):
    runner, _ = open_runner("NVIDIA H100 80GB HBM3")
    (warning,) = runner.warnings
    assert warning.startswith("the TensorRT engines in ")
    assert ("were built on NVIDIA H100 80GB HBM3 and run here on NVIDIA H200 (same compute "
            "capability 9.0)") in warning
