"""The uncertainty scores of `vpi eval --uncertainty` on cases whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from vpi.data.episode import IGNORE_INDEX
from vpi.eval.uncertainty import MAPS, UncertaintyAccumulator, choose_failure_threshold
from vpi.graphs import SampleMaps, binary_entropy, summarise_samples


def _maps(probability: torch.Tensor, flag: torch.Tensor) -> SampleMaps:
    """The same ``flag`` map for all three uncertainty maps (scaled into each one's range)."""
    return SampleMaps(probability, 0.25 * flag, math.log(2) * flag, math.log(2) * flag)


def _episodes(count: int = 6, size: int = 16, wrong: int = 20, seed: int = 0):
    """Truth squares, predictions right but for ``wrong`` random pixels per episode."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.zeros(count, size, size, dtype=torch.long)
    truth[:, 4:12, 4:12] = 1
    predicted = truth.clone().bool()
    for i in range(count):
        flip = torch.randperm(size * size, generator=g)[:wrong]
        predicted[i].view(-1)[flip] = ~predicted[i].view(-1)[flip]
    return truth, predicted


def test_a_map_that_marks_exactly_the_errors_scores_perfectly() -> None:
    truth, predicted = _episodes()
    wrong = (predicted != truth.bool()).float()
    accumulator = UncertaintyAccumulator([0], threshold=0.5)
    accumulator.update(_maps(predicted.float() * 0.9 + 0.05, wrong), truth, [0] * len(truth))
    report = accumulator.compute()
    error_rate = 20 / 256
    assert report["pixel_error_rate"] == pytest.approx(error_rate)
    for name in MAPS:
        scores = report["maps"][name]
        assert scores["pixel_error_auroc"] == pytest.approx(1.0)
        assert scores["pixel_error_aupr"] == pytest.approx(1.0)
        curve = scores["corrected_class_iou"]
        assert curve["0.1"] == pytest.approx(1.0)  # 10% > the 7.8% wrong: all corrected
        assert curve["0.01"] < curve["0.02"] < curve["0.05"] < 1.0
    random = report["random_corrected_class_iou"]
    assert random["0.1"] < report["maps"]["entropy"]["corrected_class_iou"]["0.1"] - 0.05


def test_an_uninformative_map_scores_half() -> None:
    truth, predicted = _episodes()
    accumulator = UncertaintyAccumulator([0], threshold=0.5)
    accumulator.update(_maps(predicted.float(), torch.full(truth.shape, 0.3)), truth, [0] * 6)
    report = accumulator.compute()
    assert report["maps"]["variance"]["pixel_error_auroc"] == pytest.approx(0.5)
    assert report["maps"]["variance"]["pixel_error_aupr"] == pytest.approx(20 / 256)
    assert report["failed_episodes"] == 0 and report["maps"]["entropy"]["failed_episode_auroc"] is None


def test_failed_episodes_are_ranked_by_the_map_over_the_considered_pixels() -> None:
    truth, _ = _episodes(count=4, wrong=0)
    predicted = truth.bool().clone()
    predicted[2:, 4:12, 4:10] = False  # episodes 2 and 3 keep 2 of 8 columns: IoU 0.25, failed
    flag = torch.zeros(truth.shape)
    flag[2:] = 1.0  # unsure where it failed
    flag[:, 0, 0] = 1.0  # a pixel nobody considers (p = 0) weighs nothing in the score
    accumulator = UncertaintyAccumulator([0], threshold=0.5)
    accumulator.update(_maps(predicted.float(), flag), truth, [0] * 4)
    report = accumulator.compute()
    assert report["failed_episodes"] == 2 and report["episodes"] == 4
    assert report["maps"]["mutual_information"]["failed_episode_auroc"] == pytest.approx(1.0)
    accumulator = UncertaintyAccumulator([0], threshold=0.5)
    accumulator.update(_maps(predicted.float(), 1.0 - flag), truth, [0] * 4)
    assert accumulator.compute()["maps"]["entropy"]["failed_episode_auroc"] == pytest.approx(0.0)


def test_calibration_error_of_calibrated_and_overconfident_probabilities() -> None:
    g = torch.Generator().manual_seed(0)
    probability = torch.rand(8, 32, 32, generator=g)
    truth = (torch.rand(8, 32, 32, generator=g) < probability).long()  # p is the frequency
    truth[:, 0] = IGNORE_INDEX  # ignored pixels count nowhere
    calibrated = UncertaintyAccumulator([0], threshold=0.5)
    calibrated.update(_maps(probability, torch.zeros_like(probability)), truth, [0] * 8)
    overconfident = UncertaintyAccumulator([0], threshold=0.5)
    sharp = (probability > 0.5).float() * 0.98 + 0.01
    overconfident.update(_maps(sharp, torch.zeros_like(probability)), truth, [0] * 8)
    good, bad = calibrated.compute(), overconfident.compute()
    assert good["ece"] < 0.03 < 0.15 < bad["ece"]
    assert sum(good["reliability"]["pixels"]) == 8 * 31 * 32
    frequency = [f for f in good["reliability"]["foreground_frequency"] if f is not None]
    assert len(frequency) == 15 and frequency == sorted(frequency)


def test_sample_maps_of_agreeing_and_disagreeing_samples() -> None:
    agree = torch.full((1, 4, 2, 2), 0.5)
    maps = summarise_samples(agree)
    assert torch.allclose(maps.entropy, torch.full((1, 2, 2), math.log(2)))
    assert maps.variance.abs().max() == 0 and maps.mutual_information.abs().max() < 1e-6
    disagree = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    maps = summarise_samples(disagree)
    assert torch.allclose(maps.variance, torch.full((1, 2, 2), 0.25))
    assert torch.allclose(maps.mutual_information, torch.full((1, 2, 2), math.log(2)), atol=1e-4)
    assert binary_entropy(torch.tensor([0.0, 1.0])).max() < 1e-4


def test_entropy_stays_finite_in_fp16() -> None:
    """A reduced-precision engine computes the maps in fp16, where 1 - 1e-6 rounds to 1: the
    entropy of a certain pixel must not become 0 x log(0)."""
    entropy = binary_entropy(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float16))
    assert torch.isfinite(entropy).all()
    torch.testing.assert_close(entropy.float(), torch.tensor([0.0, math.log(2), 0.0]),
                               atol=1e-3, rtol=0)


def test_failure_threshold_is_the_best_f1_cut() -> None:
    scores = [0.1, 0.2, 0.3, 0.5, 0.6, 0.7]
    failed = [False, False, True, False, True, True]
    flag = choose_failure_threshold(scores, failed)
    # Flagging > 0.2 catches all 3 failed with 1 false alarm: F1 6/7, the best cut.
    assert flag["threshold"] == 0.2 and flag["recall"] == 1.0 and flag["precision"] == 0.75
    assert flag["episodes"] == 6 and flag["failed"] == 3 and flag["map"] == "entropy"
    assert choose_failure_threshold(scores, [False] * 6) is None
    assert choose_failure_threshold(scores, [True] * 6) is None


def test_the_models_threshold_is_scored_on_the_evaluated_episodes() -> None:
    truth, _ = _episodes(count=4, wrong=0)
    predicted = truth.bool().clone()
    predicted[2:, 4:12, 4:10] = False  # episodes 2 and 3 fail
    flag = torch.zeros(truth.shape)
    flag[1:] = 1.0  # episode 1 is unsure too, and fine: a false alarm
    accumulator = UncertaintyAccumulator([0], threshold=0.5)
    accumulator.update(_maps(predicted.float(), flag), truth, [0] * 4)
    scored = accumulator.compute(failure_threshold=0.5)["failure_flag"]
    assert scored["flagged"] == 3 and scored["recall"] == 1.0
    assert scored["precision"] == pytest.approx(2 / 3)
    assert "failure_flag" not in accumulator.compute()
