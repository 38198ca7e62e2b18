"""The sweep on the tiny preset: looped equals batched, unavailable backends are skipped, the JSON
report has its schema, and the model is found the documented way."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
from rich.console import Console
from runtime.helpers import openvino_missing
from typer.testing import CliRunner

from vpi.bench import (
    BenchSettings,
    bench_table,
    decode_batched,
    decode_looped,
    plot_bench,
    resolve_model,
    run_benchmark,
    summary_lines,
)
from vpi.checkpoint import save_checkpoint
from vpi.cli import app
from vpi.errors import BackendError, ConfigError
from vpi.graphs import GraphSpec
from vpi.model import VPIModel
from vpi.runtime import BACKENDS, OnnxRunner, TorchRunner

STATS = {"p50", "p90", "p99", "mean", "min", "max", "n"}
QUICK = {"warmup": 0, "repeats": 2}


def _inputs(spec: GraphSpec, samples: int):
    torch.manual_seed(3)
    side = spec.input_size
    return torch.rand(2, 3, side, side), torch.randn(2, samples, spec.latent_dim)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_looped_and_batched_give_the_same_probabilities(backend, exported, tiny_model, tiny_config):
    spec = GraphSpec.from_config(tiny_config)
    runner = TorchRunner(tiny_model, spec, device="cpu") if backend == "torch" else OnnxRunner(
        exported[1], device="cpu")
    query, prototypes = _inputs(spec, 5)
    batched = decode_batched(runner, query, prototypes)
    looped = decode_looped(runner, query, prototypes)
    assert looped[0].shape == batched[0].shape == (2, spec.input_size, spec.input_size)
    torch.testing.assert_close(looped[0], batched[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(looped[1], batched[1], atol=1e-5, rtol=0)
    assert batched[1].max() > 0  # five different prototypes: the maps do differ


def test_unavailable_backend_is_reported_and_skipped(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # its import fails, as if not installed
    missing = BACKENDS["onnx"].missing
    report = run_benchmark(
        resolve_model(checkpoint=tiny_checkpoint),
        BenchSettings(samples=(1, 2), backends=("onnx", "torch", "trt"), **QUICK),
        cache_dir=tmp_path / "cache",
    )
    status = {b["backend"]: b for b in report["backends"]}
    assert status["onnx"] == {"backend": "onnx", "status": "skipped", "reason": missing}
    assert missing == "ONNX Runtime is not installed: pip install 'vpi[cpu]' (or 'vpi[gpu]' for CUDA)"
    assert status["torch"]["status"] == "measured"
    if not torch.cuda.is_available():
        assert status["trt"]["status"] == "skipped"
        assert "TensorRT" in status["trt"]["reason"]
    assert {r["backend"] for r in report["results"]} <= {"torch", "trt"}
    assert not (tmp_path / "cache").exists()  # nothing was exported for a skipped backend
    lines = summary_lines(report)
    assert f"skipped onnx: {missing}" in lines


def test_no_backend_at_all_is_one_error(tiny_checkpoint, tmp_path):
    with pytest.raises(BackendError, match=r"no backend could run here \(torch-amp: autocast runs "
                                           r"on CUDA only"):
        run_benchmark(resolve_model(checkpoint=tiny_checkpoint),
                      BenchSettings(backends=("torch-amp",), device="cpu", **QUICK),
                      cache_dir=tmp_path)


def test_json_report_of_a_short_run(exported, tmp_path):
    """The CLI on the tiny export: every backend, both modes, L = 1 and 2, IoU, JSON and plot."""
    checkpoint, folder = exported
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    result = CliRunner().invoke(app, [
        "bench", "--checkpoint", str(checkpoint), "--engine-dir", str(folder), "-L", "1,2",
        "--warmup", "0", "--repeats", "2", "--device", "cpu", "--eval", "builtin",
        "--eval-episodes", "2", "--json", str(out), "--plot", str(png),
        "--cache-dir", str(tmp_path / "cache"),
    ], terminal_width=160)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"format", "format_version", "vpi_version", "created", "machine", "model", "settings",
            "backends", "results", "comparisons", "targets", "accuracy"} <= set(report)
    assert report["format"] == "vpi-bench"
    machine = report["machine"]
    assert {"cpu_model", "cpu_cores_logical", "cpu_cores_usable", "torch_threads", "gpu",
            "load_average", "load_average_end", "versions"} <= set(machine)
    assert machine["cpu_model"] and machine["cpu_cores_usable"] >= 1
    assert {"vpi", "torch", "onnxruntime"} <= set(machine["versions"])
    assert report["model"]["backbone"] == "tiny" and report["model"]["image_size"] == 64
    assert report["settings"]["samples"] == [1, 2]
    assert report["settings"]["modes"] == ["batched", "looped"]
    backends = {b["backend"]: b for b in report["backends"]}
    measured = ["torch", "onnx"] + ([] if openvino_missing() else ["openvino"])
    assert {name for name, b in backends.items() if b["status"] == "measured"} == set(measured)
    assert backends["onnx"]["runner"] == "onnx (CPUExecutionProvider)"
    if "openvino" in measured:  # a trained model: the export's precision, fp32, not OpenVINO's pick
        assert backends["openvino"]["runner"] == "openvino (ONNX, fp32)"
        assert backends["openvino"]["precision"] == "fp32" and backends["openvino"]["device"] == "cpu"
    assert backends["torch"]["timer"] == "perf_counter" and backends["torch"]["memory"] == "rss"
    assert isinstance(backends["onnx"]["host_footprint_mb"], float)
    assert backends["torch"]["memory_scope"] == "run"
    # On every machine: torch-amp needs CUDA and --device is cpu; the export holds no TensorRT
    # engines (and where TensorRT is missing, that is said first).
    skipped = {name for name, b in backends.items() if b["status"] == "skipped"}
    assert skipped == set(BACKENDS) - set(measured) >= {"torch-amp", "trt"}
    for name in skipped:
        assert backends[name]["reason"] and f"skipped {name}: " in result.output
    cells = {(r["backend"], r["mode"], r["L"]) for r in report["results"]}
    assert cells == {(b, m, s) for b in measured for m in ("batched", "looped") for s in (1, 2)}
    for cell in report["results"]:
        for span in ("prior_ms", "decoder_ms", "end_to_end_ms"):
            stats = cell[span]
            assert set(stats) == STATS and stats["n"] == 2
            assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"]
        assert cell["end_to_end_ms"]["min"] >= cell["decoder_ms"]["min"]
        assert cell["throughput_qps"] > 0 and cell["peak_memory_mb"] > 0
    comparisons = report["comparisons"]
    assert len(comparisons["looped_over_batched"]) == 2 * len(measured)  # backends x 2 L
    assert {(c["backend"], c["mode"], c["L"]) for c in comparisons["torch_over_backend"]} == {
        (b, m, s) for b in measured[1:] for m in ("batched", "looped") for s in (1, 2)}
    assert report["targets"] == []  # L = 6 and L = 10 were not measured
    accuracy = report["accuracy"]
    assert accuracy["backend"] == "torch" and accuracy["episodes"] == 2
    assert [a["L"] for a in accuracy["per_L"]] == [1, 2]
    assert all(0.0 <= a["class_iou"] <= 1.0 and a["episodes"] == 2 for a in accuracy["per_L"])


def test_batch_sizes_report_queries_per_second(exported, tmp_path, monkeypatch):
    """--batch 1,3: every cell runs both graphs on B users at once, queries/s counts B queries per
    decoder call, the table gains B and q/s over B = 1, and the JSON the over_B1 ratios."""
    checkpoint, folder = exported
    seen: list[tuple[str, int]] = []
    for graph in ("prior", "decoder"):
        run = getattr(OnnxRunner, f"_run_{graph}")
        monkeypatch.setattr(OnnxRunner, f"_run_{graph}", lambda self, first, second, run=run,
                            graph=graph: seen.append((graph, len(first))) or run(self, first, second))
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [
        "bench", "--checkpoint", str(checkpoint), "--engine-dir", str(folder), "-L", "2",
        "--batch", "1,3", "--backend", "torch,onnx", "--mode", "batched", "--warmup", "0",
        "--repeats", "1", "--device", "cpu", "--json", str(out), "--cache-dir", str(tmp_path / "c"),
    ], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert sorted(set(seen)) == [("decoder", 1), ("decoder", 3), ("prior", 1), ("prior", 3)]
    report = json.loads(out.read_text())
    assert report["format_version"] == 2 and report["settings"]["batches"] == [1, 3]
    cells = {(r["backend"], r["B"]): r for r in report["results"]}
    assert set(cells) == {(b, n) for b in ("torch", "onnx") for n in (1, 3)}
    for (_, batch), cell in cells.items():
        assert cell["L"] == 2 and cell["mode"] == "batched"
        assert cell["throughput_qps"] == round(batch * 1000.0 / cell["decoder_ms"]["mean"], 3)
    gains = {c["backend"]: c for c in report["comparisons"]["over_B1"]}
    assert set(gains) == {"torch", "onnx"}
    for backend, gain in gains.items():
        one, three = cells[(backend, 1)], cells[(backend, 3)]
        assert gain["B"] == 3 and gain["decoder"] == round(
            3 * one["decoder_ms"]["p50"] / three["decoder_ms"]["p50"], 3)
    assert all(c["B"] in (1, 3) for c in report["comparisons"]["torch_over_backend"])
    console = Console(record=True, width=200)
    console.print(bench_table(report))
    text = console.export_text()
    assert "q/s" in text and "/B=1" in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("torch", "onnx"))]
    assert sorted((row[0], row[1], row[2]) for row in rows) == [
        ("onnx", "2", "1"), ("onnx", "2", "3"), ("torch", "2", "1"), ("torch", "2", "3")]
    plot_bench(report, tmp_path / "batches.png")  # a line per backend and B


def test_preset_with_random_weights_is_saved_once_and_said(tmp_path):
    bench = resolve_model(preset="tiny", overrides={"data": {"image_size": 96}})
    assert bench.random_weights and "random weights" in bench.origin
    settings = BenchSettings(samples=(2,), backends=("torch",), modes=("batched",), threads=1,
                             **QUICK)
    threads = torch.get_num_threads()
    report = run_benchmark(bench, settings, cache_dir=tmp_path)
    assert report["machine"]["torch_threads"] == 1 and torch.get_num_threads() == threads
    saved = list(tmp_path.glob("tiny-*/model.pt"))
    assert len(saved) == 1
    assert report["model"]["image_size"] == 96 and report["model"]["random_weights"]
    assert report["model"]["preset"] == "tiny"
    run_benchmark(bench, settings, cache_dir=tmp_path)
    assert list(tmp_path.glob("tiny-*/model.pt")) == saved
    console = Console(record=True, width=160)
    console.print(bench_table(report))
    assert "torch" in console.export_text()
    plot_bench(report, tmp_path / "one-mode.png")  # one mode, no IoU: one panel


def test_without_a_model_the_newest_run_then_the_demo_preset(tiny_checkpoint, tmp_path):
    runs = tmp_path / "runs"
    fallback = resolve_model(runs_dir=runs)
    assert fallback.preset == "demo" and fallback.random_weights
    (runs / "tiny-20250101").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, runs / "tiny-20250101" / "best.pt")
    newest = resolve_model(runs_dir=runs)
    assert newest.checkpoint == runs / "tiny-20250101" / "best.pt"
    assert "newest `vpi train` run" in newest.origin and not newest.random_weights


def test_model_options_that_conflict(tiny_model, tiny_config, exported, tmp_path):
    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.pt", VPIModel(tiny_config.model), tiny_config, step=0)
    with pytest.raises(ConfigError, match="not both"):
        resolve_model(checkpoint=other, preset="tiny")
    with pytest.raises(ConfigError, match="keeps its own config"):
        resolve_model(checkpoint=other, overrides={"data": {"image_size": 96}})
    with pytest.raises(ConfigError, match="was not made from checkpoint"):
        resolve_model(checkpoint=other, engine_dir=exported[1])
    both = resolve_model(checkpoint=exported[0], engine_dir=exported[1])
    assert both.checkpoint == exported[0] and both.engine_dir == exported[1]


def test_runner_device_decides_the_clock(tiny_model, tiny_config, exported):
    runner = TorchRunner(tiny_model, GraphSpec.from_config(tiny_config), device="cpu")
    assert runner.device == torch.device("cpu")
    onnx = OnnxRunner(exported[1], device="cpu")
    assert onnx.device == torch.device("cpu")
    onnx.provider = "CUDAExecutionProvider"
    assert onnx.device == torch.device("cuda")


@pytest.mark.slow
def test_a_cached_export_is_made_again_when_vpi_s_code_changes(tiny_checkpoint, tmp_path,
                                                                monkeypatch):
    """The same checkpoint, exported by other code, may make other graphs: the cache is keyed by
    both, so `vpi bench` never measures graphs that the code it runs would not make."""
    from vpi.bench import source

    bench = resolve_model(checkpoint=tiny_checkpoint)
    first = source.export_folder(bench, tmp_path)
    written = (first / "manifest.json").stat().st_mtime_ns
    assert source.export_folder(bench, tmp_path) == first  # unchanged: reused
    assert (first / "manifest.json").stat().st_mtime_ns == written
    monkeypatch.setattr(source, "code_digest", lambda: "0ther0de")
    second = source.export_folder(bench, tmp_path)
    assert second != first and (second / "manifest.json").is_file()
