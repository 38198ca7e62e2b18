"""Everything around TensorRT, tested without it: precision per version, profiles, compatibility,
the timing cache, the manifest checks — and the builder against a stand-in of TensorRT's API."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from vpi import __version__
from vpi.errors import BackendError, ConfigError
from vpi.export import tensorrt as trt_export
from vpi.graphs import GraphSpec
from vpi.manifest import check_vpi_version, major_minor, read_manifest
from vpi.ranges import check_batch, check_samples
from vpi.runtime import tensorrt_compat
from vpi.runtime.tensorrt_runner import TORCH_DTYPES, engine_info

SPEC = GraphSpec(64, 16)


@pytest.mark.parametrize(("version", "precision", "dtype", "tf32"), [
    ("10.0.1", "fp16", torch.float16, True),
    ("10.13.2.6", "bf16", torch.bfloat16, True),
    ("10.3.0", "fp32", torch.float32, False),
    ("11.0.0", "fp16", torch.float16, True),
    ("11.2.1", "bf16", torch.bfloat16, True),
    ("12.0.0", "fp32", torch.float32, False),
])
def test_one_strongly_typed_plan_for_every_version(version, precision, dtype, tf32):
    plan = trt_export.precision_plan(version, precision)
    assert (plan.precision, plan.graph_dtype, plan.tf32) == (precision, dtype, tf32)


def test_unusable_precisions_and_versions():
    with pytest.raises(ConfigError, match="precision is 'int8'; choose one of: fp16, fp32, bf16"):
        trt_export.precision_plan("10.3.0", "int8")
    with pytest.raises(BackendError, match="TensorRT 8.6.1 is too old"):
        trt_export.precision_plan("8.6.1", "fp16")


def test_profiles_cover_b_1_to_16_k_1_to_10_and_l_1_to_16():
    profiles = trt_export.optimization_profiles(SPEC)
    assert profiles["prior_encoder"]["support_images"] == [[1, 1, 3, 64, 64], [1, 1, 3, 64, 64],
                                                           [16, 10, 3, 64, 64]]
    assert profiles["prior_encoder"]["support_masks"][2] == [16, 10, 1, 64, 64]
    assert profiles["segmentation_decoder"]["prototypes"] == [[1, 1, 16], [4, 6, 16], [16, 16, 16]]
    assert profiles["segmentation_decoder"]["query_image"] == [[1, 3, 64, 64], [4, 3, 64, 64],
                                                               [16, 3, 64, 64]]
    assert tensorrt_compat.profile_spec(SPEC, profiles) == SPEC
    narrow = json.loads(json.dumps(profiles))
    narrow["segmentation_decoder"]["prototypes"][2] = [16, 8, 16]
    narrow["segmentation_decoder"]["query_image"][2] = [2, 3, 64, 64]
    spec = tensorrt_compat.profile_spec(SPEC, narrow)
    assert (spec.max_shots, spec.max_samples, spec.max_batch) == (10, 8, 2)
    with pytest.raises(ConfigError, match="samples \\(L\\) is 9; this decoder takes 1 to 8"):
        check_samples(9, spec.max_samples)
    with pytest.raises(ConfigError, match="batch size \\(B\\) is 3; these graphs take 1 to 2"):
        check_batch(3, spec.max_batch)
    small = trt_export.optimization_profiles(GraphSpec(64, 16, max_batch=2))
    assert small["segmentation_decoder"]["query_image"] == [[1, 3, 64, 64], [2, 3, 64, 64],
                                                            [2, 3, 64, 64]]  # opt never above max


def test_engines_of_another_tensorrt_or_gpu_are_refused():
    info = {"tensorrt_version": "10.3.0", "compute_capability": "8.9", "gpu": "NVIDIA L4"}
    here = {"gpu": "NVIDIA L4", "compute_capability": "8.9"}
    assert tensorrt_compat.check_engine_compatibility(info, "10.3.0", here, "'e'") is None
    with pytest.raises(BackendError, match="built with TensorRT 10.3.0, but this machine has "
                                           "TensorRT 10.4.0 .* rebuild it here"):
        tensorrt_compat.check_engine_compatibility(info, "10.4.0", here, "'e'")
    with pytest.raises(BackendError, match="compute capability 8.9 \\(NVIDIA L4\\), but this GPU "
                                           "is 9.0"):
        tensorrt_compat.check_engine_compatibility(
            info, "10.3.0", {"gpu": "NVIDIA H100", "compute_capability": "9.0"}, "'e'")


def test_an_engine_from_another_gpu_of_equal_capability_is_a_warning():
    info = {"tensorrt_version": "10.3.0", "compute_capability": "9.0", "gpu": "NVIDIA H100"}
    warning = tensorrt_compat.check_engine_compatibility(
        info, "10.3.0", {"gpu": "NVIDIA H200", "compute_capability": "9.0"}, "'e'")
    assert warning == (
        "the TensorRT engines in 'e' were built on NVIDIA H100 and run here on NVIDIA H200 (same "
        "compute capability 9.0): they work, but may be slower than engines tuned here; rebuild "
        "it here with `vpi export CHECKPOINT --engine trt`")


def test_timing_cache_location_and_fail_open_read(tmp_path, monkeypatch):
    monkeypatch.setenv("VPI_CACHE_DIR", str(tmp_path))
    path = trt_export.timing_cache_path("10.3.0", "9.0")
    assert path == tmp_path / "tensorrt" / "timing-10.3.0-sm9.0.cache"
    assert trt_export.read_timing_cache(path) == b""


def test_missing_tensorrt_or_gpu_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    with pytest.raises(BackendError, match="^TensorRT is not installed: pip install 'vpi\\[gpu\\]' "
                                           "on a machine with an NVIDIA GPU$"):
        tensorrt_compat.import_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendError, match="TensorRT needs an NVIDIA GPU"):
        tensorrt_compat.import_tensorrt()


def test_manifest_and_version_checks(tmp_path):
    assert major_minor("0.1.7") == major_minor("0.1.0rc1") == (0, 1)
    check_vpi_version("0.1.9", "x")
    for other in ("0.2.0", "1.1.0", None):
        with pytest.raises(BackendError, match="export the checkpoint again with `vpi export"):
            check_vpi_version(other, "export 'x'")
    with pytest.raises(BackendError, match="does not exist"):
        read_manifest(tmp_path / "nope")
    with pytest.raises(BackendError, match="holds no manifest.json, so it is not a vpi export"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(BackendError, match="is not readable JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(BackendError, match="is not a vpi export manifest"):
        read_manifest(tmp_path)
    for old in (1, 2):  # 2: a decoder of probability and variance alone
        (tmp_path / "manifest.json").write_text(json.dumps(
            {"format": "vpi-export", "format_version": old, "vpi_version": __version__}))
        with pytest.raises(BackendError, match=f"^export .* was exported by another vpi version "
                                               f"\\(manifest format {old}, this vpi reads 3\\): export "
                                               f"the checkpoint again with `vpi export CHECKPOINT`$"):
            read_manifest(tmp_path)
    with pytest.raises(BackendError, match="holds no TensorRT engines: build them with"):
        engine_info({"format": "vpi-export"}, "'x'")
    assert TORCH_DTYPES["HALF"] == torch.float16 and TORCH_DTYPES["FLOAT"] == torch.float32


class _Recorder:
    """A stand-in for the parts of TensorRT's builder API that build_engines calls."""

    def __init__(self, version: str) -> None:
        self.calls: list[tuple] = []
        module = types.ModuleType("tensorrt")
        module.__version__ = version
        module.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda s, level: None})
        module.BuilderFlag = types.SimpleNamespace(TF32="TF32")  # what 11 keeps of it
        module.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
        module.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
        module.Builder = lambda logger: self
        module.OnnxParser = lambda network, logger: types.SimpleNamespace(
            parse_from_file=lambda path: self.calls.append(("parse", path)) or True, num_errors=0)
        self.module = module

    def __getattr__(self, name):  # every builder/config/profile method records its call
        def record(*args, **kwargs):
            self.calls.append((name, *args))
            if name == "serialize":
                return b"cache"
            if name == "build_serialized_network":
                return b"plan"
            return True if name in ("set_timing_cache", "create_timing_cache") else self
        return record


@pytest.mark.parametrize("version", ["10.3.0", "11.1.0"])
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_builder_follows_the_plan(tmp_path, monkeypatch, version, precision):
    fake = _Recorder(version)
    monkeypatch.setitem(sys.modules, "tensorrt", fake.module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(trt_export, "device_fingerprint",
                        lambda: {"gpu": "NVIDIA H100", "compute_capability": "9.0"})
    onnx_paths = {"prior_encoder": tmp_path / "p.onnx", "segmentation_decoder": tmp_path / "d.onnx"}
    plans = {name: tmp_path / f"{name}.plan" for name in onnx_paths}
    plan = trt_export.precision_plan(version, precision)
    info = trt_export.build_engines(onnx_paths, plans, SPEC, plan, tmp_path / "timing.cache")
    assert all(path.read_bytes() == b"plan" for path in plans.values())
    assert (tmp_path / "timing.cache").read_bytes() == b"cache"
    assert info["tensorrt_version"] == version and info["compute_capability"] == "9.0"
    assert info["gpu"] == "NVIDIA H100" and info["strongly_typed"] is True
    assert info["tf32"] is (precision != "fp32")
    assert info["profiles"] == trt_export.optimization_profiles(SPEC)
    names = [call[0] for call in fake.calls]
    assert names.count("build_serialized_network") == 2
    # strongly typed on every version: the precision is the graph's, never a builder flag
    assert names.count("create_network") == 2 and ("create_network", 1) in fake.calls
    assert "set_flag" not in names
    assert names.count("clear_flag") == (2 if precision == "fp32" else 0)
    if precision == "fp32":
        assert ("clear_flag", "TF32") in fake.calls
    assert ("set_shape", "prototypes", [1, 1, 16], [4, 6, 16], [16, 16, 16]) in fake.calls
