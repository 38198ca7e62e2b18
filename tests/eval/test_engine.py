"""`vpi eval --engine-dir`: the exported graphs scored on the checkpoint's episodes and noise."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from runtime.helpers import openvino_missing, run_cli

from vpi.checkpoint import load_model
from vpi.errors import ConfigError
from vpi.eval.engine import RunnerPredictor
from vpi.eval.protocol import run_evaluation
from vpi.runtime import OnnxRunner

BACKENDS = ["onnx", pytest.param("openvino", marks=pytest.mark.skipif(
    openvino_missing() is not None, reason=str(openvino_missing())))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_fp32_export_scores_what_its_checkpoint_scores(reading_export, backend, monkeypatch,
                                                          capsys, tmp_path):
    checkpoint, folder = reading_export
    common = ("--episodes", 16, "--samples", 3, "--device", "cpu")
    code, _, err = run_cli(monkeypatch, capsys, "eval", checkpoint, *common,
                           "--json", tmp_path / "checkpoint.json")
    assert code in (0, None), err
    code, out, err = run_cli(monkeypatch, capsys, "eval", "--engine-dir", folder, "--backend",
                             backend, *common, "--json", tmp_path / "engine.json")
    assert code in (0, None), err
    assert f"backend: {backend} (" in out
    torch_report, engine_report = (json.loads((tmp_path / f"{name}.json").read_text())
                                   for name in ("checkpoint", "engine"))
    assert engine_report["settings"] == torch_report["settings"]  # the manifest's config
    model, engine = torch_report["runs"][0], engine_report["runs"][0]
    assert model["label"] == engine["label"] == "model" and model["episodes"] == 16
    assert 0.0 < model["class_iou"] < 1.0
    for metric in ("class_iou", "fb_iou", "swapped_class_iou", "support_gain"):
        assert engine[metric] == pytest.approx(model[metric], abs=1e-3), metric
    for name, value in model["per_class_iou"].items():
        assert engine["per_class_iou"][name] == pytest.approx(value, abs=1e-3)
    assert engine_report["runs"][1:] == torch_report["runs"][1:]  # the baselines
    selection = engine_report["checkpoint_selection"][str(folder)]
    assert selection["by"] == "export" and selection["checkpoint"]["file"] == checkpoint.name


def test_the_match_comes_from_the_same_noise(reading_export):
    """Another seed's noise (on the same episodes' seed stream) moves the figures: the engine
    matches the model because it draws the model's z, not because z does not matter."""
    folder = reading_export[1]
    scores = [run_evaluation(engine_dir=folder, backend="onnx", samples=[3], device="cpu",
                             baselines=False, overrides={"eval": {"episodes": 16}},
                             seeds=[seed])["runs"][0]["class_iou"] for seed in (0, 1)]
    assert scores[0] != pytest.approx(scores[1], abs=1e-3)


def test_what_an_export_cannot_score_is_refused_before_any_work(reading_export, monkeypatch,
                                                                capsys):
    checkpoint, folder = reading_export
    with pytest.raises(ConfigError, match="the exported prior encoder fuses shots by 'variance'; "
                                          "aggregation 'mean' needs the checkpoint"):
        run_evaluation(engine_dir=folder, backend="onnx", aggregations=["variance", "mean"])
    with pytest.raises(ConfigError, match="the export's graphs take 64×64 images; "
                                          "data.image_size 128 needs the checkpoint"):
        run_evaluation(engine_dir=folder, backend="onnx", overrides={"data": {"image_size": 128}})
    with pytest.raises(ConfigError, match="--precision applies to an export"):
        run_evaluation([checkpoint], precision="int8")
    code, _, err = run_cli(monkeypatch, capsys, "eval", checkpoint, "--engine-dir", folder)
    assert code == 2 and err.count("\n") == 1
    assert "give checkpoints or an export folder (--engine-dir), not both" in err


def test_a_batch_of_episodes_runs_in_calls_of_the_graphs_batch(reading_export):
    """Episodes go through each graph B at a time, at most the export's largest B per call; the
    noise is one draw for the whole batch, as the model's, so the maps are the model's."""
    checkpoint, folder = reading_export
    model, config, _ = load_model(checkpoint)
    runner = OnnxRunner(folder, device="cpu")
    runner.spec = dataclasses.replace(runner.spec, max_batch=3)
    calls = []
    for name in ("run_prior", "run_decoder"):
        run = getattr(runner, name)
        setattr(runner, name, lambda a, b, run=run, name=name: calls.append((name, len(a))) or run(a, b))
    s = config.data.image_size
    gen = torch.Generator().manual_seed(0)
    images, query = torch.rand(7, 2, 3, s, s, generator=gen), torch.rand(7, 3, s, s, generator=gen)
    masks = (torch.rand(7, 2, 1, s, s, generator=gen) > 0.5).float()
    got = RunnerPredictor(runner, config.model.aggregation).predict(
        images, masks, query, samples=4, generator=torch.Generator().manual_seed(5))
    assert calls == [("run_prior", 3), ("run_prior", 3), ("run_prior", 1),
                     ("run_decoder", 3), ("run_decoder", 3), ("run_decoder", 1)]
    want = model.predict(images, masks, query, samples=4, generator=torch.Generator().manual_seed(5))
    for a, b in zip(got, want, strict=True):
        assert a.shape == (7, s, s)
        assert (a - b).abs().max() < 1e-4
