"""The controls that expose a model ignoring its support: swap partners, the swapped-support
dataset, the support gain in reports and the warning, the class-agnostic oracle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from runtime.helpers import run_cli, support_reading_model

from vpi.checkpoint import save_checkpoint
from vpi.config import get_preset
from vpi.data import build_episodes
from vpi.errors import DataError
from vpi.eval.controls import CachedEpisodes, SwappedSupport, episode_classes, swap_partners
from vpi.eval.protocol import run_evaluation
from vpi.model import VPIModel


def test_pairs_swap_with_each_other_and_runs_with_the_next_other_class() -> None:
    # Built-in pairs ask for two classes of one query: each gets its partner's support.
    assert swap_partners([3, 1, 4, 0, 2, 4]) == [1, 0, 3, 2, 5, 4]
    # FSS-1000 walks one class after another: the next episode of another class.
    assert swap_partners([7, 7, 7, 8, 8, 9]) == [3, 3, 3, 2, 5, 4]
    with pytest.raises(DataError, match="two classes"):
        swap_partners([5, 5, 5])


def test_swapped_support_keeps_the_query_and_takes_the_partners_support() -> None:
    data = get_preset("tiny").data
    episodes = build_episodes(data, "test", shots=2, episodes=6, seed=0)
    swapped = SwappedSupport(episodes)
    assert len(swapped) == 6 and swapped.class_ids == episodes.class_ids
    for i in range(6):
        own, control = episodes[i], swapped[i]
        partner = episodes[swapped.partners[i]]
        assert partner.class_id != own.class_id
        assert control.class_id == own.class_id
        assert torch.equal(control.query_image, own.query_image)
        assert torch.equal(control.query_mask, own.query_mask)
        assert torch.equal(control.support_images, partner.support_images)
        assert torch.equal(control.support_masks, partner.support_masks)
    assert episode_classes(episodes) == [episodes[i].class_id for i in range(6)]


def test_cached_episodes_prepare_each_episode_once() -> None:
    episodes = build_episodes(get_preset("tiny").data, "test", shots=1, episodes=4, seed=0)
    cached = CachedEpisodes(episodes)
    assert cached[2] is cached[2]
    assert torch.equal(cached[2].query_image, episodes[2].query_image)
    small = CachedEpisodes(episodes, max_bytes=0)
    assert small[1] is not small[1] and not small.cache


def _blind_checkpoint(path: Path) -> Path:
    """A tiny model whose decoder ignores z: its answer cannot depend on the support."""
    config = get_preset("tiny")
    torch.manual_seed(0)
    model = VPIModel(config.model).eval()
    with torch.no_grad():
        model.decoder.prototype_proj.weight.zero_()
    return save_checkpoint(path, model, config, step=0)


def test_a_model_that_ignores_its_support_gains_nothing_and_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = _blind_checkpoint(tmp_path / "blind.pt")
    report_path = tmp_path / "eval.json"
    code, out, _ = run_cli(monkeypatch, capsys, "eval", checkpoint, "--episodes", "6",
                           "--samples", "2", "--json", report_path)
    assert code in (0, None)
    report = json.loads(report_path.read_text())
    model = report["summary"][0]
    assert model["label"] == "model"
    assert model["swapped_class_iou"]["mean"] == pytest.approx(model["class_iou"]["mean"])
    assert model["support_gain"]["mean"] == pytest.approx(0.0)
    run = report["runs"][0]
    assert {"swapped_class_iou", "swapped_fb_iou", "support_gain"} <= set(run)
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "support gain" in warnings[0]


def test_a_model_that_reads_its_support_has_a_gain_and_the_oracle_is_scored(tmp_path: Path) -> None:
    """Swapping the support changes what a support-reading model predicts; the report says so."""
    checkpoint = save_checkpoint(tmp_path / "reads.pt", support_reading_model(), get_preset("tiny"),
                                 step=0)
    report = run_evaluation([checkpoint], overrides={"eval": {"episodes": 8}}, samples=[1])
    entry = report["summary"][0]
    assert entry["swapped_class_iou"]["mean"] != pytest.approx(entry["class_iou"]["mean"])
    assert entry["support_gain"]["mean"] == pytest.approx(
        100 * (entry["class_iou"]["mean"] - entry["swapped_class_iou"]["mean"]))
    oracle = next(e for e in report["summary"] if e["label"] == "class-agnostic oracle")
    assert 0.2 < oracle["class_iou"]["mean"] < 0.8  # every object of the query, perfectly
    assert "support_gain" not in oracle
    assert report["checkpoint_selection"] == {str(checkpoint): {"by": "not recorded"}}
