"""The OpenVINO backend on the CPU: the IR export's round trip, precision, options, the missing
package, and where ``auto`` takes it. Parity with eager PyTorch is in the shared runner test."""

from __future__ import annotations

import json
import platform
import re
import shutil
import sys

import pytest
import torch
from typer.testing import CliRunner

from runtime.helpers import blob_pair, matching_checkpoint, openvino_missing, run_cli, write_pair
from vpi.bench import BenchSettings, resolve_model, run_benchmark
from vpi.cli import app
from vpi.errors import BackendError, ConfigError
from vpi.export import export_model
from vpi.export.pipeline import check_engine_request
from vpi.runtime import BACKENDS, OnnxRunner, OpenVinoRunner, RunnerOptions, open_backend

MISSING = "OpenVINO is not installed: pip install 'vpi[openvino]'"
needs_openvino = pytest.mark.skipif(openvino_missing() is not None, reason=str(openvino_missing()))


def _cpu() -> tuple[str, list[str]]:
    """This CPU's name and what OpenVINO's CPU plugin says it can run fast (FP32, BF16, ...)."""
    core = BACKENDS["openvino"].require().Core()
    return (core.get_property("CPU", "FULL_DEVICE_NAME"),
            list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")))


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    masks = torch.zeros(2, 2, 1, 64, 64)
    masks[..., 8:40, 16:48] = 1.0
    return (torch.rand(2, 2, 3, 64, 64, generator=gen), masks, torch.rand(2, 3, 64, 64, generator=gen),
            torch.randn(2, 5, 16, generator=gen))


def _largest_error(first, second) -> float:
    """The largest difference between two runners on the same supports, queries and prototypes
    (a batch of two)."""
    images, masks, query, prototypes = _inputs()
    errors = [(a - b).abs().max() for a, b in zip(first.run_prior(images, masks),
                                                  second.run_prior(images, masks), strict=True)]
    errors += [(a - b).abs().max() for a, b in zip(first.run_decoder(query, prototypes),
                                                   second.run_decoder(query, prototypes), strict=True)]
    return float(max(errors))


@pytest.fixture(scope="module")
def ir_export(exported, tmp_path_factory):
    """The tiny checkpoint exported with `--engine openvino`: ONNX graphs, IR and manifest."""
    if openvino_missing():
        pytest.skip(openvino_missing())
    folder = tmp_path_factory.mktemp("openvino") / "export"
    export_model(exported[0], folder, engine="openvino", precision="fp32")
    return folder


@needs_openvino
def test_ir_export_round_trip(ir_export, exported):
    ov = BACKENDS["openvino"].require()
    manifest = json.loads((ir_export / "manifest.json").read_text())
    section = manifest["openvino"]
    assert section["precision"] == "fp32" and section["openvino_version"] == ov.__version__
    assert section["files"] == {"prior_encoder": "prior_encoder.xml",
                                "segmentation_decoder": "segmentation_decoder.xml"}
    for name, file in section["files"].items():
        assert (ir_export / file).is_file() and (ir_export / section["weights"][name]).stat().st_size
        constants = [op for op in ov.Core().read_model(str(ir_export / file)).get_ops()
                     if op.get_type_name() == "Constant"]
        assert constants and all(op.get_element_type() != ov.Type.f16 for op in constants)
    report = manifest["parity"]["openvino"]
    assert report["tolerance"] == 1e-4 and max(report["max_error"].values()) <= 1e-4
    assert "onnxruntime" in manifest["parity"]  # the ONNX graphs beside the IR are checked too
    assert not list(ir_export.glob(".staging-*"))
    runner = OpenVinoRunner(ir_export)
    assert runner.name == "openvino (IR, fp32)" and runner.precision == "fp32"
    assert _largest_error(runner, OnnxRunner(exported[1], device="cpu")) <= 1e-4


@needs_openvino
def test_an_ir_of_another_vpi_version_is_refused(ir_export, tmp_path):
    ov = BACKENDS["openvino"].require()
    folder = shutil.copytree(ir_export, tmp_path / "old")
    # Read the original, write the copy: OpenVINO maps a read IR's weights file into memory.
    model = ov.Core().read_model(str(ir_export / "prior_encoder.xml"))
    model.set_rt_info("0.0.9", ["framework", "vpi_version"])
    ov.save_model(model, folder / "prior_encoder.xml", compress_to_fp16=False)
    with pytest.raises(BackendError, match="graph '.*prior_encoder.xml' was written by vpi 0.0.9"):
        OpenVinoRunner(folder)


@needs_openvino
def test_precision_defaults_to_fp32_auto_is_openvinos_pick_and_options_reach_openvino(exported):
    onnx_export = exported[1]
    assert OpenVinoRunner(onnx_export).name == "openvino (ONNX, fp32)"
    ov = BACKENDS["openvino"].require()
    untold = ov.Core().compile_model(str(onnx_export / "segmentation_decoder.onnx"), "CPU")
    own = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}[
        untold.get_property("INFERENCE_PRECISION_HINT").get_type_name()]
    picked = OpenVinoRunner(onnx_export, precision="auto")
    assert picked.precision == own and picked.name == f"openvino (ONNX, {own}, OpenVINO's pick)"
    tuned = OpenVinoRunner(onnx_export, threads=1, performance_hint="throughput")
    for graph in tuned.compiled.values():
        assert graph.get_property("INFERENCE_NUM_THREADS") == 1
        assert str(graph.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
        assert graph.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"


@needs_openvino
def test_unknown_precisions_are_refused_and_int8_needs_the_int8_ir(exported, ir_export, tmp_path):
    with pytest.raises(ConfigError, match="precision is 'int4'; openvino takes: auto, fp32, bf16, "
                                          "fp16, int8"):
        BACKENDS["openvino"].open(exported[1], RunnerOptions(precision="int4"))
    for folder in (exported[1], ir_export):
        with pytest.raises(BackendError, match="holds no int8 IR: export it with `vpi export "
                                               "CHECKPOINT --engine openvino --precision int8`"):
            OpenVinoRunner(folder, precision="int8")
    assert check_engine_request("openvino", None) is None  # the accuracy gate chooses
    assert check_engine_request("openvino", "bf16") == "bf16"
    with pytest.raises(ConfigError, match="precision is 'int4'; OpenVINO IR takes: fp32, bf16, "
                                          "fp16, int8"):
        export_model(exported[0], tmp_path / "x", engine="openvino", precision="int4")
    with pytest.raises(ConfigError, match="--performance-hint is 'fast'; choose one of: latency, "
                                          "throughput"):
        RunnerOptions(performance_hint="fast")
    assert not (tmp_path / "x").exists()


@needs_openvino
def test_a_precision_this_cpu_lacks_is_refused_not_run_at_another(exported):
    """OpenVINO quietly compiles what the CPU has instead (fp32, or bf16 where fp16 is asked on a
    CPU with BF16 only): the runner refuses rather than report a precision that did not run."""
    name, offers = _cpu()
    lacking = [vpi for vpi, cap in (("bf16", "BF16"), ("fp16", "FP16")) if cap not in offers]
    if not lacking:
        pytest.skip(f"this CPU ({name}) runs both bf16 and fp16 (OpenVINO: {', '.join(offers)})")
    with pytest.raises(BackendError, match=f"OpenVINO was asked for {lacking[0]} but compiled "
                                           f"(fp32|bf16): this CPU .* offers "
                                           f"{re.escape(', '.join(offers))}") as info:
        OpenVinoRunner(exported[1], precision=lacking[0])
    assert f"compiled {lacking[0]}" not in str(info.value)


@needs_openvino
def test_bf16_runs_where_the_cpu_has_it(exported):
    name, offers = _cpu()
    if "BF16" not in offers:
        pytest.skip(f"this CPU ({name}) has no bf16 hardware (AVX512-BF16 or AMX): OpenVINO "
                    f"offers {', '.join(offers)}")
    runner = OpenVinoRunner(exported[1], precision="bf16")
    assert runner.precision == "bf16" and runner.name == "openvino (ONNX, bf16)"
    # bf16 keeps about 3 significant digits: close to fp32, not equal to it.
    assert _largest_error(runner, OpenVinoRunner(exported[1])) <= 0.1


@needs_openvino
def test_fp16_keeps_the_refined_map_where_the_cpu_has_it(tiny_config, tmp_path):
    """The edge-aware refinement inverts each window's colour covariance; on a flat patch its
    determinant is about EPSILON^3 = 1e-9, under fp16's smallest number, and the demo's fp16
    graphs divided by zero everywhere (class-IoU 0.0) until the guide was scaled
    (vpi.model.refine.GUIDE_SCALE)."""
    name, offers = _cpu()
    if "FP16" not in offers:
        pytest.skip(f"this CPU ({name}) has no fp16 hardware (AVX512-FP16): OpenVINO offers "
                    f"{', '.join(offers)}")
    checkpoint = matching_checkpoint(tiny_config, tmp_path, decoder_low_resolution=True,
                                     refine_passes=2)
    folder = tmp_path / "export"
    export_model(checkpoint, folder)
    images, masks, _, _ = _inputs()
    query = torch.full((2, 3, 64, 64), 0.4)  # flat colours, an edge between them
    query[:, :, :, 32:] = 0.7
    maps = []
    for precision in ("fp32", "fp16"):
        runner = OpenVinoRunner(folder, precision=precision)
        assert runner.precision == precision
        prototypes = runner.run_prior(images, masks)[0][:, None].repeat(1, 3, 1)  # L = 3
        maps.append(runner.run_decoder(query, prototypes).probability)
    assert torch.isfinite(maps[1]).all()
    assert (maps[1] - maps[0]).abs().max() <= 0.05


def test_missing_openvino_is_one_line_everywhere(exported, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # its import fails, as if not installed
    with pytest.raises(BackendError) as info:
        OpenVinoRunner(exported[1])
    assert str(info.value) == MISSING
    with pytest.raises(BackendError) as info:
        export_model(exported[0], tmp_path / "ir", engine="openvino")
    assert str(info.value) == MISSING and not (tmp_path / "ir").exists()
    report_error = f"no backend could run here (openvino: {MISSING})"
    with pytest.raises(BackendError, match=re.escape(report_error)):
        run_benchmark(resolve_model(checkpoint=exported[0]),
                      BenchSettings(samples=(1,), backends=("openvino",), warmup=0, repeats=1),
                      cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing was exported for it


@needs_openvino
def test_auto_prefers_openvino_on_x86_cpus(exported, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    choice = open_backend("auto", engine_dir=exported[1])
    assert choice.runner.name == "openvino (ONNX, fp32)" and set(choice.skipped) == {"trt"}
    assert choice.reason.startswith("backend: openvino (ONNX, fp32); skipped trt")
    tuned = open_backend("auto", engine_dir=exported[1], precision="auto")
    assert tuned.runner.backend == "openvino" and tuned.skipped["trt"] == "it takes no --precision"
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    elsewhere = open_backend("auto", engine_dir=exported[1])
    assert elsewhere.runner.backend == "onnx"
    assert elsewhere.skipped["openvino"] == "auto prefers it on x86 CPUs, and this one is aarch64"
    assert open_backend("auto", engine_dir=exported[1], device="cpu").skipped["trt"] == "device is cpu"


@needs_openvino
def test_options_a_named_backend_does_not_take_are_refused(exported):
    with pytest.raises(ConfigError, match="--precision applies to --backend openvino, not onnx"):
        open_backend("onnx", engine_dir=exported[1], precision="fp32")
    with pytest.raises(ConfigError, match="--performance-hint applies to --backend openvino, not "
                                          "trt"):
        open_backend("trt", engine_dir=exported[1], performance_hint="latency")
    with pytest.raises(ConfigError, match="OpenVINO runs on the CPU here, and device is 'cuda'"):
        open_backend("openvino", engine_dir=exported[1], device="cuda")
    with pytest.raises(ConfigError, match="--backend openvino runs an export folder: run `vpi "
                                          "export CHECKPOINT --out DIR`, then pass --engine-dir"):
        open_backend("openvino", checkpoint=exported[0])


@needs_openvino
def test_segment_on_the_ir_from_the_command_line(monkeypatch, capsys, ir_export, tmp_path):
    for i in range(2):
        write_pair(tmp_path / "support", f"s{i}.png", *blob_pair(i))
    write_pair(tmp_path / "queries", "q.png", *blob_pair(7))
    code, out, err = run_cli(monkeypatch, capsys, "segment", tmp_path / "support",
                             tmp_path / "queries" / "q.png", "--engine-dir", ir_export,
                             "--backend", "openvino", "--precision", "fp32", "--threads", 1,
                             "--performance-hint", "latency", "--out", tmp_path / "out")
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["backend"] == "openvino (IR, fp32)" and results["precision"] == "fp32"
    assert "backend: openvino (IR, fp32)" in out
    code, _, err = run_cli(monkeypatch, capsys, "segment", tmp_path / "support",
                           tmp_path / "queries" / "q.png", "--engine-dir", ir_export,
                           "--backend", "openvino", "--precision", "int8", "--out", tmp_path / "bad")
    assert code == 2 and "holds no int8 IR" in err
    assert not (tmp_path / "bad").exists()


def _help(command: str) -> str:
    """`vpi COMMAND --help` as one line of words, without the panels' borders."""
    return " ".join(CliRunner().invoke(app, [command, "--help"]).output.replace("│", " ").split())


def test_every_backend_is_in_the_help_of_each_command():
    for command in ("segment", "bench"):
        text = _help(command)
        assert all(f"{name} ({entry.summary})" in text for name, entry in BACKENDS.items())
        assert "--precision" in text and "openvino: fp32, bf16, fp16, int8" in text
    assert "onnx (ONNX Runtime), openvino (OpenVINO), trt (TensorRT)" in _help("export")


@needs_openvino
def test_bench_measures_openvino_and_reports_its_precision(exported, tmp_path):
    settings = BenchSettings(samples=(1,), backends=("openvino",), modes=("batched",), warmup=0,
                             repeats=1, threads=1, performance_hint="latency")
    report = run_benchmark(resolve_model(checkpoint=exported[0], engine_dir=exported[1]), settings,
                           cache_dir=tmp_path)
    (entry,) = report["backends"]
    assert entry["status"] == "measured" and entry["device"] == "cpu"
    assert entry["runner"] == "openvino (ONNX, fp32)" and entry["precision"] == "fp32"
    assert {(r["backend"], r["L"], r["mode"]) for r in report["results"]} == {("openvino", 1, "batched")}
    assert BenchSettings().runner_options(random_weights=True).precision == "auto"
    assert BenchSettings().runner_options(random_weights=False).precision is None
    assert BenchSettings(precision="bf16").runner_options(random_weights=True).precision == "bf16"
    with pytest.raises(ConfigError, match="--precision applies to --backend openvino, and none of "
                                          "torch, onnx takes it"):
        BenchSettings(backends=("torch", "onnx"), precision="fp32")
    with pytest.raises(ConfigError, match="--precision is 'int4'; choose one of: auto, bf16, fp16, "
                                          "fp32, int8"):
        BenchSettings(precision="int4")
