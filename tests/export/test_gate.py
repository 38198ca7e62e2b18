"""Reduced precisions and the accuracy gate: int8 IR by NNCF, the choice of OpenVINO's default
precision, refusals that leave an earlier export intact, and TensorRT's gate with a stand-in."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys

import pytest
import torch
from runtime.helpers import (
    blob_pair,
    copy_export,
    matching_checkpoint,
    openvino_missing,
    run_cli,
    snapshot,
    write_pair,
)

from vpi.checkpoint import load_model
from vpi.errors import AccuracyError, BackendError, ConfigError
from vpi.export import export_model, pipeline
from vpi.export.calibration import CalibrationSource, calibration_inputs
from vpi.export.engines import EXPORT_ENGINES
from vpi.export.gate import AccuracyGate, GateSettings
from vpi.export.openvino import NNCF_MISSING, faster_precisions, quantized_ops
from vpi.export.parity import check_parity, parity_report, parity_tolerance
from vpi.export.tensorrt import precision_plan
from vpi.graphs import GraphSpec
from vpi.runtime import BACKENDS, OnnxRunner, OpenVinoRunner, TorchRunner

QUICK = {"gate": GateSettings(episodes=12), "calibration": CalibrationSource(episodes=12)}
PASS_ANYTHING, FAIL_EVERYTHING = 100.0, -100.0  # margins, in class-IoU points


def _nncf_missing() -> str | None:
    try:
        import nncf  # noqa: F401
    except ImportError:
        return NNCF_MISSING
    return openvino_missing()


needs_nncf = pytest.mark.skipif(_nncf_missing() is not None, reason=str(_nncf_missing()))


@pytest.fixture
def reuse_graphs(reading_export, monkeypatch):
    """Skip the slow ONNX exporter: copy the session's graphs of the support-reading model."""
    def copy_graphs(model, spec, paths, *, opset=None):
        for path in paths.values():
            shutil.copy(reading_export[1] / path.name, path)
        return {name: 20 for name in paths}

    monkeypatch.setattr(pipeline, "export_graphs", copy_graphs)


@pytest.fixture(scope="module")
def int8_export(reading_export, tmp_path_factory):
    """The support-reading checkpoint exported as int8 IR, with a gate that any figure passes."""
    if _nncf_missing():
        pytest.skip(_nncf_missing())
    folder = tmp_path_factory.mktemp("int8") / "export"
    export_model(reading_export[0], folder, engine="openvino", precision="int8",
                 gate=GateSettings(episodes=12, margin=PASS_ANYTHING),
                 calibration=CalibrationSource(episodes=12))
    return folder


@needs_nncf
def test_int8_keeps_the_refinements_guide_fp32(tiny_config, tmp_path):
    """The edge-aware refinement's colour covariances are differences of window means of the
    query's pixels (E[xy] - E[x]E[y]); quantised, they were noise, and the demo's int8 export
    scored 1.5 class-IoU against fp32's 45.6. What the pixels reach before any convolution
    computes in fp32: no FakeQuantize feeds it."""
    ov = BACKENDS["openvino"].require()
    checkpoint = matching_checkpoint(tiny_config, tmp_path, decoder_low_resolution=True,
                                     refine_passes=2)
    folder = tmp_path / "export"
    export_model(checkpoint, folder, engine="openvino", precision="int8",
                 gate=GateSettings(episodes=12, margin=PASS_ANYTHING),
                 calibration=CalibrationSource(episodes=12))
    model = ov.Core().read_model(str(folder / "segmentation_decoder.int8.xml"))
    guide = [op for op in model.get_ops()
             if op.get_type_name() == "AvgPool" and _pixels_only(op)]
    assert guide  # the window means of the guide and of its products
    for op in guide:
        assert op.input_value(0).get_node().get_type_name() != "FakeQuantize", op.get_friendly_name()


def _pixels_only(op) -> bool:
    """Whether ``op`` is computed from the query's pixels with no convolution on the way."""
    front, seen = [op], set()
    while front:
        node = front.pop()
        if node.get_type_name() in ("Convolution", "GroupConvolution"):
            return False
        for value in node.input_values():
            parent = value.get_node()
            if parent.get_friendly_name() not in seen:
                seen.add(parent.get_friendly_name())
                front.append(parent)
    return True


@needs_nncf
def test_int8_round_trip_quantises_both_graphs_and_keeps_the_fragile_ops_fp32(int8_export,
                                                                             reading_export):
    ov = BACKENDS["openvino"].require()
    manifest = json.loads((int8_export / "manifest.json").read_text())
    section = manifest["openvino"]
    assert section["precision"] == "int8"
    int8 = section["int8"]
    assert int8["calibration"].pop("prepare_s") > 0
    assert int8["calibration"] == {
        "source": "episodes", "dataset": "builtin", "root": None, "fold": 0, "split": "train",
        "seed": 1, "episodes": 12, "shots": 1, "samples": 4,
        "inputs": {"prior_encoder": 12, "segmentation_decoder": 12}}
    for name, file in int8["files"].items():
        model = ov.Core().read_model(str(int8_export / file))
        counted = quantized_ops(model)
        assert counted == int8["quantized"][name]
        assert counted["FakeQuantize"] > 0 and counted["Convolution (int8 weights)"] > 0
        assert int8["kept_in_fp32"][name]["ops"] > 0
        fragile = [op for op in model.get_ops()
                   if op.get_type_name() in ("Exp", "Softmax", "Sigmoid", "ReduceMean", "Divide")]
        assert fragile
        for op in fragile:  # no FakeQuantize on their inputs: they compute in fp32
            assert all(op.input_value(i).get_node().get_type_name() != "FakeQuantize"
                       for i in range(op.get_input_size())), op.get_friendly_name()
    assert "MatMul (int8 weights)" not in int8["quantized"]["prior_encoder"]  # the prior heads
    runner = OpenVinoRunner(int8_export)
    assert runner.name == "openvino (IR, int8)" and runner.precision == "int8"
    assert OpenVinoRunner(int8_export, precision="fp32").name == "openvino (IR, fp32)"
    gate = manifest["gate"]
    assert gate["chosen"] == "int8" and gate["asked"] == "int8"
    assert gate["episodes"] == 12 and gate["episodes_from"]["split"] == "val"
    (candidate,) = gate["candidates"]
    assert candidate["runner"] == "openvino (IR, int8)" and candidate["passed"]
    assert candidate["points_lost"] == pytest.approx(
        100 * (gate["reference"]["class_iou"] - candidate["class_iou"]), abs=1e-3)
    assert manifest["parity"]["openvino"]["max_error"]["probability"] <= 1e-4  # fp32, as before


@needs_nncf
def test_the_int8_ir_keeps_the_batch_axis(int8_export):
    """Calibrated on B = 1 items, the int8 IR still takes 1..MAX_BATCH of them, and an item's
    answer does not depend on what else is in its batch (parity's batch cases, int8 against
    itself one by one)."""
    ov = BACKENDS["openvino"].require()
    manifest = json.loads((int8_export / "manifest.json").read_text())
    for file in manifest["openvino"]["int8"]["files"].values():
        for tensor in ov.Core().read_model(str(int8_export / file)).inputs:
            assert tensor.get_partial_shape()[0].is_dynamic, (file, tensor.get_any_name())
    runner = OpenVinoRunner(int8_export, precision="int8")
    report = parity_report(runner, runner, runner.spec, parity_tolerance("fp32", "cpu"))
    assert {case["B"] for case in report["cases"]} == {1, 2}
    check_parity(report, "OpenVINO int8")


@needs_nncf
def test_eval_scores_the_int8_engine_by_default(int8_export):
    from vpi.eval.protocol import run_evaluation

    report = run_evaluation(engine_dir=int8_export, backend="openvino", samples=[4],
                            overrides={"eval": {"episodes": 8}}, baselines=False)
    assert report["checkpoint_selection"][str(int8_export)]["backend"] == "openvino (IR, int8)"
    assert 0.0 <= report["runs"][0]["class_iou"] <= 1.0


@needs_nncf
def test_the_default_is_the_fastest_precision_that_passes(reading_export, reuse_graphs, tmp_path):
    tried, skipped, cpu = faster_precisions()
    if not tried:
        pytest.skip(f"this CPU ({cpu['cpu']}) offers no reduced precision: {skipped}")
    passing = json.loads(export_model(
        reading_export[0], tmp_path / "fast", engine="openvino",
        gate=GateSettings(episodes=12, margin=PASS_ANYTHING), calibration=QUICK["calibration"]
    ).read_text())
    assert passing["openvino"]["precision"] == tried[0] == passing["gate"]["chosen"]
    assert passing["gate"]["why"] == (f"{tried[0]} is the fastest precision this CPU offers that "
                                      f"keeps class-IoU within {PASS_ANYTHING:g} points of PyTorch fp32")
    assert passing["gate"]["skipped"] == skipped and passing["gate"]["cpu"] == cpu["cpu"]
    assert [c["precision"] for c in passing["gate"]["candidates"]] == [tried[0]]
    failing = json.loads(export_model(
        reading_export[0], tmp_path / "safe", engine="openvino",
        gate=GateSettings(episodes=12, margin=FAIL_EVERYTHING), calibration=QUICK["calibration"]
    ).read_text())
    assert failing["openvino"]["precision"] == "fp32" == failing["gate"]["chosen"]
    assert [c["precision"] for c in failing["gate"]["candidates"]] == tried
    assert not any(c["passed"] for c in failing["gate"]["candidates"])
    assert failing["gate"]["why"] == f"{', '.join(tried)} lost more than -100 points; fp32 needs no gate"
    assert "int8" not in failing["openvino"] and not list((tmp_path / "safe").glob("*.int8.*"))
    assert OpenVinoRunner(tmp_path / "safe").name == "openvino (IR, fp32)"


@needs_nncf
def test_a_failing_gate_refuses_in_one_line_and_leaves_the_earlier_export(
        int8_export, reading_export, reuse_graphs, monkeypatch, capsys, tmp_path):
    folder = copy_export(int8_export, tmp_path / "export")
    before = snapshot(folder)
    code, _, err = run_cli(monkeypatch, capsys, "export", reading_export[0], "--out", folder,
                           "--engine", "openvino", "--precision", "int8", "--gate-episodes", 12,
                           "--calibration-episodes", 12, "--gate-margin", FAIL_EVERYTHING)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: OpenVINO int8 loses ")
    assert lines[0].endswith(" on 12 val episodes), more than the -100 allowed (--gate-margin): "
                             "the export was not written")
    assert snapshot(folder) == before
    assert not list(folder.glob(".staging-*"))


def test_the_gate_refuses_a_degraded_engine(reading_export):
    model, config, _ = load_model(reading_export[0])
    gate = AccuracyGate(model, config, GateSettings(episodes=8))
    faithful = OnnxRunner(reading_export[1], device="cpu")
    assert gate.judge(faithful, "fp32")  # the same graphs at fp32: nothing lost

    class AllBackground(OnnxRunner):
        def _run_decoder(self, query, prototypes):
            probability, *uncertainty = super()._run_decoder(query, prototypes)
            return torch.zeros_like(probability), *uncertainty

    assert gate.reference > 0.005
    assert not gate.judge(AllBackground(reading_export[1], device="cpu"), "fp16")
    lost = gate.candidates[-1]["points_lost"]
    assert lost == pytest.approx(100 * gate.reference, abs=1e-3)
    message = str(gate.refusal("TensorRT"))
    assert message == (f"TensorRT fp16 loses {lost:.2f} class-IoU points against PyTorch fp32 "
                       f"(0.00 vs {100 * gate.reference:.2f} on 8 val episodes), more than the 0.5 "
                       "allowed (--gate-margin): the export was not written")
    assert gate.record()["candidates"][0]["points_lost"] == pytest.approx(0.0, abs=1e-2)


@pytest.fixture
def fake_tensorrt(monkeypatch, tmp_path):
    """TensorRT's builder and runner stood in for: the "engines" are the staged ONNX graphs run by
    ONNX Runtime, reported as fp16, so the gate's wiring runs without TensorRT."""
    class FakeEngines(OnnxRunner):
        backend = "trt"
        precision = "fp16"

    def build(model, spec, stage, plan, opset):
        return {"precision": plan.precision, "files": {}, "profiles": {}}

    monkeypatch.setitem(EXPORT_ENGINES, "trt", dataclasses.replace(
        EXPORT_ENGINES["trt"], check=lambda precision: precision_plan("10.3.0", precision or "fp16"),
        write=build))
    monkeypatch.setitem(BACKENDS, "trt", dataclasses.replace(
        BACKENDS["trt"], opener=lambda folder, options: FakeEngines(folder, device="cpu")))


def test_tensorrt_fp16_passes_the_gate_and_records_its_figures(reading_export, reuse_graphs,
                                                                fake_tensorrt, tmp_path):
    manifest = json.loads(export_model(reading_export[0], tmp_path / "trt", engine="trt",
                                       **QUICK).read_text())
    assert manifest["tensorrt"]["precision"] == "fp16"
    gate = manifest["gate"]
    assert gate["asked"] == "fp16" and gate["chosen"] == "fp16" and gate["margin_points"] == 0.5
    assert gate["why"] == "fp16 was asked for and keeps class-IoU within 0.5 points of PyTorch fp32"
    (candidate,) = gate["candidates"]
    assert candidate["passed"] and candidate["points_lost"] == pytest.approx(0.0, abs=1e-2)
    assert gate["reference"] == {"backend": "torch", "precision": "fp32",
                                 "class_iou": gate["reference"]["class_iou"]}
    assert gate["episodes"] == 12 and gate["episodes_from"] == {
        "dataset": "builtin", "root": None, "fold": 0, "split": "val", "seed": 0, "shots": 1,
        "samples": 4}
    fp32 = json.loads(export_model(reading_export[0], tmp_path / "trt32", engine="trt",
                                   precision="fp32", **QUICK).read_text())
    assert "gate" not in fp32  # fp32 needs no gate


def test_tensorrt_fp16_that_fails_the_gate_is_refused(reading_export, reuse_graphs, fake_tensorrt,
                                                      tmp_path):
    folder = tmp_path / "trt"
    export_model(reading_export[0], folder, engine="trt", **QUICK)
    before = snapshot(folder)
    with pytest.raises(AccuracyError, match="^TensorRT fp16 loses .* class-IoU points .* more than "
                                            "the -100 allowed"):
        export_model(reading_export[0], folder, engine="trt",
                     gate=GateSettings(episodes=12, margin=FAIL_EVERYTHING))
    assert snapshot(folder) == before


def test_calibration_from_a_support_folder(reading_export, tmp_path):
    for i in range(3):
        write_pair(tmp_path / "support", f"s{i}.png", *blob_pair(i))
    write_pair(tmp_path / "queries", "q.png", *blob_pair(7))
    model, config, _ = load_model(reading_export[0])
    reference = TorchRunner(model, GraphSpec.from_config(config), device="cpu", amp=False)
    own = calibration_inputs(CalibrationSource(support_dir=tmp_path / "support"), config, reference)
    assert own.record["inputs"] == {"prior_encoder": 4, "segmentation_decoder": 3}
    assert own.record["queries"] == "the support images"
    shapes = [feeds["support_images"].shape[:2] for feeds in own.inputs["prior_encoder"]]
    assert shapes == [(1, 1), (1, 1), (1, 1), (1, 3)]  # B = 1: each pair alone, then all three
    assert all(feeds["support_masks"].shape[:2] == feeds["support_images"].shape[:2]
               for feeds in own.inputs["prior_encoder"])
    decoder = own.inputs["segmentation_decoder"][0]
    assert decoder["query_image"].shape == (1, 3, 64, 64)
    assert decoder["prototypes"].shape == (1, 4, 16)
    with pytest.raises(ConfigError, match="--calibration-episodes is 0; it must be 1 or more"):
        CalibrationSource(episodes=0)
    with pytest.raises(ConfigError, match="--gate-episodes is 0; it must be 1 or more"):
        GateSettings(episodes=0)
    given = calibration_inputs(CalibrationSource(support_dir=tmp_path / "support",
                                                 queries=(tmp_path / "queries",)), config, reference)
    assert given.record["inputs"] == {"prior_encoder": 4, "segmentation_decoder": 1}


def test_missing_nncf_is_one_line(reading_export, monkeypatch, tmp_path):
    if openvino_missing():
        pytest.skip(openvino_missing())
    monkeypatch.setitem(sys.modules, "nncf", None)  # its import fails, as if not installed
    with pytest.raises(BackendError) as info:
        export_model(reading_export[0], tmp_path / "int8", engine="openvino", precision="int8")
    assert str(info.value) == NNCF_MISSING and "\n" not in NNCF_MISSING
    assert not (tmp_path / "int8").exists()
    tried, skipped, _ = faster_precisions()
    assert "int8" not in tried and skipped["int8"] == NNCF_MISSING
