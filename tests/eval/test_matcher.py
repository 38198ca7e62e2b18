"""The training-free matcher: it must follow its support, run beside every model in `vpi eval`,
name classes by their names, and say why where it cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from runtime.helpers import run_cli
from torch import nn

from vpi.checkpoint import save_checkpoint
from vpi.config import apply_overrides, get_preset
from vpi.errors import ConfigError
from vpi.eval.matcher import PrototypeMatcher, build_matcher
from vpi.eval.protocol import MATCHER, models_under_matcher, run_evaluation
from vpi.model import Features, VPIModel

REALPHOTO = Path(__file__).resolve().parents[3] / "shared" / "realphoto"
RED, BLUE, GREY = (0.9, 0.1, 0.1), (0.1, 0.1, 0.9), (0.5, 0.5, 0.5)


class _ColourEncoder(nn.Module):
    """Features = the colour itself at stride 2: a stand-in for ImageNet features in which an
    object's pixels resemble each other and nothing else."""

    def forward(self, images: torch.Tensor) -> Features:
        deep = F.avg_pool2d(images, 2)
        return Features(deep, deep, deep, deep)


def _scene(left: tuple[float, ...], right: tuple[float, ...]) -> torch.Tensor:
    """A grey 32x32 image with a square of colour ``left`` and one of colour ``right``."""
    image = torch.tensor(GREY)[:, None, None].repeat(1, 32, 32)
    image[:, 8:16, 2:12] = torch.tensor(left)[:, None, None]
    image[:, 8:16, 20:30] = torch.tensor(right)[:, None, None]
    return image


def test_matcher_segments_the_object_its_support_shows() -> None:
    matcher = PrototypeMatcher(_ColourEncoder())
    query = _scene(RED, BLUE)[None]
    support = _scene(BLUE, RED)[None, None]  # the same two colours, in the other places
    mask = torch.zeros(1, 1, 1, 32, 32)
    mask[..., 8:16, 20:30] = 1  # the red square
    probability, variance, _, information = matcher.predict(support, mask, query)
    foreground = probability[0] > 0.5
    assert foreground[8:16, 2:12].all()  # the red square of the query
    assert not foreground[8:16, 20:30].any() and not foreground[:8].any()  # blue, grey
    assert not variance.any() and not information.any()  # one sample: nothing disagrees
    # The other support mask (the blue square) picks the other object of the same query.
    blue_mask = torch.zeros_like(mask)
    blue_mask[..., 8:16, 2:12] = 1
    swapped = matcher.predict(support, blue_mask, query).probability
    assert (swapped[0, 8:16, 20:30] > 0.5).all() and not (swapped[0, 8:16, 2:12] > 0.5).any()


def test_matcher_averages_shots() -> None:
    matcher = PrototypeMatcher(_ColourEncoder())
    support = torch.stack([_scene(RED, BLUE), _scene(RED, GREY)])[None]
    masks = torch.zeros(1, 2, 1, 32, 32)
    masks[..., 8:16, 2:12] = 1
    probability = matcher.predict(support, masks, _scene(BLUE, RED)[None]).probability
    assert (probability[0, 8:16, 20:30] > 0.5).all() and not (probability[0, 8:16, 2:12] > 0.5).any()


def test_an_encoder_without_imagenet_weights_has_no_matcher() -> None:
    with pytest.raises(ConfigError, match="tiny encoder has no ImageNet weights"):
        build_matcher(get_preset("tiny").model)


def test_eval_report_says_why_the_matcher_did_not_run(tiny_checkpoint: Path) -> None:
    report = run_evaluation([tiny_checkpoint])
    assert "tiny encoder has no ImageNet weights" in report["matcher_skipped"]
    assert MATCHER not in {r["label"] for r in report["runs"]}


def test_models_under_matcher_names_each_model_setting_below_it() -> None:
    def entry(label: str, iou: float, samples: int | None, shots: int = 1) -> dict:
        return {"label": label, "shots": shots, "samples": samples, "class_iou": {"mean": iou}}

    report = {"summary": [entry("model", 0.40, 6), entry("model", 0.60, 6, shots=5),
                          entry(MATCHER, 0.50, None), entry(MATCHER, 0.55, None, shots=5),
                          entry("all-foreground", 0.30, None)]}
    assert models_under_matcher(report) == ["model (k=1, L=6): 40.0 against 50.0"]


def _mobilenet_checkpoint(tmp_path: Path, **data: object) -> Path:
    """An untrained MobileNetV2 model (ImageNet encoder, random heads) on small inputs."""
    try:
        build_matcher(get_preset("demo").model)
    except ConfigError as exc:
        pytest.skip(f"MobileNetV2 ImageNet weights not installed: {exc}")
    config = apply_overrides(get_preset("demo"), {
        "model": {"decoder": "features", "projection": "learned", "decoder_skips": True,
                  "self_support": 0, "self_support_in_training": None,
                  "decoder_low_resolution": False, "blocks_per_sample": "all",
                  "background_parts": 0, "latent_dim": 16, "decoder_channels": [8, 8, 8]},
        "data": {"image_size": 64, **data}, "eval": {"episodes": 8, "samples": 2}})
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "mobilenet.pt", VPIModel(config.model, pretrained=True),
                           config, step=0)


def test_eval_scores_the_matcher_with_its_own_swapped_support(tmp_path: Path) -> None:
    report = run_evaluation([_mobilenet_checkpoint(tmp_path)])
    matcher = [r for r in report["runs"] if r["label"] == MATCHER]
    assert len(matcher) == 1 and "matcher_skipped" not in report
    run = matcher[0]
    assert 0.0 <= run["swapped_class_iou"] <= 1.0
    assert run["support_gain"] == pytest.approx(100 * (run["class_iou"] - run["swapped_class_iou"]))
    assert run["samples"] is None  # nothing is sampled
    # Classes are named, not numbered: the built-in data's held-out shapes.
    assert set(run["per_class_iou"]) == {"star5", "ring", "cross", "crescent", "heart"}


@pytest.mark.slow
def test_vpi_eval_on_two_classes_of_real_photographs(tmp_path, monkeypatch, capsys) -> None:
    if not (REALPHOTO / "msrc_cow").is_dir():
        pytest.skip(f"no real photographs at {REALPHOTO} (a clone without ../shared)")
    splits = tmp_path / "splits" / "fss"
    splits.mkdir(parents=True)
    (splits / "test.txt").write_text("msrc_cow\nweizmann_horse\n")
    for kind in ("trn", "val"):
        (splits / f"{kind}.txt").write_text("msrc_book\n")
    checkpoint = _mobilenet_checkpoint(tmp_path)
    report_path = tmp_path / "eval.json"
    code, out, _ = run_cli(monkeypatch, capsys, "eval", str(checkpoint), "--dataset", "fss", "--root",
                  str(REALPHOTO), "--splits", str(tmp_path / "splits"), "--json", str(report_path))
    assert code == 0
    report = json.loads(report_path.read_text())
    labels = {e["label"] for e in report["summary"]}
    assert {"model", MATCHER, "all-foreground"} <= labels
    matcher = next(e for e in report["summary"] if e["label"] == MATCHER)
    # ImageNet features tell cows and horses from their backgrounds: well above chance.
    assert matcher["class_iou"]["mean"] > 0.3
    model_run = next(r for r in report["runs"] if r["label"] == "model")
    assert set(model_run["per_class_iou"]) == {"msrc_cow", "weizmann_horse"}
    assert "under the training-free matcher" in out  # an untrained decoder learned nothing
    assert "msrc_cow" in out and "weizmann_horse" in out  # the per-class table, by folder name
    # FSS walks every test image once: the title counts the episodes scored, not the setting (8).
    assert model_run["episodes"] > 8 and f"{model_run['episodes']} episodes per fold" in out
