"""IoU metrics against hand counts: pooled class-IoU and FB-IoU, ignore pixels, empty unions."""

from __future__ import annotations

import pytest
import torch

from vpi.data.episode import IGNORE_INDEX
from vpi.metrics import IoUAccumulator, episode_counts

IGN = IGNORE_INDEX


def _row(*values: int) -> torch.Tensor:
    """A one-row (1, W) mask: every count below is a count of entries."""
    return torch.tensor([values], dtype=torch.int64)


def test_episode_counts_by_hand() -> None:
    target = _row(1, 1, 1, 1, 0, 0, 0, IGN)
    pred = _row(1, 1, 0, 0, 1, 0, 0, 1)
    counts = episode_counts(pred, target)
    assert counts.shape == (1, 2, 2) and counts.dtype == torch.float64
    # foreground: I = 2, U = 4 + 3 - 2 = 5; background: pred bg {2,3,5,6}, gt bg {4,5,6}: I 2, U 5
    assert counts[0].tolist() == [[2.0, 5.0], [2.0, 5.0]]


def test_counts_of_a_batch_and_of_bool_predictions_agree() -> None:
    target = torch.stack([_row(1, 0, 0, 1), _row(0, 0, 1, 1)])
    pred = torch.stack([_row(1, 1, 0, 0), _row(0, 0, 1, 1)])
    counts = episode_counts(pred, target)
    assert counts.shape == (2, 2, 2)
    assert counts[1].tolist() == [[2.0, 2.0], [2.0, 2.0]]
    assert torch.equal(episode_counts(pred.bool(), target), counts)


def test_ignore_pixels_never_count() -> None:
    target = _row(1, 1, IGN, IGN, 0, 0)
    base = _row(1, 0, 0, 0, 1, 0)
    on_ignore = _row(1, 0, 1, 1, 1, 0)  # differs from base only where the target is ignored
    assert torch.equal(episode_counts(base, target), episode_counts(on_ignore, target))
    a, b = IoUAccumulator(), IoUAccumulator()
    a.update(base, target, [3])
    b.update(on_ignore, target, [3])
    assert a.compute() == b.compute()
    assert torch.equal(a.state()[1], b.state()[1])


def test_all_ignored_episode_counts_nothing() -> None:
    counts = episode_counts(_row(1, 0, 1), _row(IGN, IGN, IGN))
    assert counts.abs().sum() == 0


def test_empty_union_counts_as_zero_as_in_hsnet() -> None:
    # No foreground in target nor prediction: foreground union 0, IoU = I / max(U, 1) = 0.
    acc = IoUAccumulator()
    acc.update(_row(0, 0, 0), _row(0, 0, 0), [7])
    result = acc.compute()
    assert result["per_class_iou"] == {7: 0.0}
    assert result["fb_iou"] == 0.5  # background 3 / 3, foreground 0


def test_class_iou_averages_over_every_class_of_the_fold() -> None:
    # Class 2 got no episode: it scores 0 and still counts in the mean.
    acc = IoUAccumulator(class_ids=[1, 2])
    acc.update(_row(1, 0), _row(1, 0), [1])
    result = acc.compute()
    assert result["per_class_iou"] == {1: 1.0, 2: 0.0}
    assert result["class_iou"] == pytest.approx(0.5)


def test_pooled_class_iou_and_fb_iou_on_three_episodes() -> None:
    # Class 1: A (I 2, U 4) and B (I 0, U 1); class 2: C (I 3, U 3).
    a_target, a_pred = _row(1, 1, 1, 1, 0, 0), _row(1, 1, 0, 0, 0, 0)
    b_target, b_pred = _row(1, 0, 0, 0, 0, 0), _row(0, 0, 0, 0, 0, 0)
    c_target = _row(0, 0, 0, 1, 1, 1)
    acc = IoUAccumulator()
    acc.update(torch.stack([a_pred, b_pred]), torch.stack([a_target, b_target]), [1, 1])
    acc.update(c_target, c_target, [2])
    result = acc.compute()
    # Pooled per class: class 1 = (2 + 0) / (4 + 1) = 0.4, class 2 = 1; mean 0.7.
    assert result["per_class_iou"] == {1: pytest.approx(0.4), 2: pytest.approx(1.0)}
    assert result["class_iou"] == pytest.approx(0.7)
    assert result["positive_iou"] == pytest.approx(0.7)
    # Episode-averaged foreground IoU would be (0.5 + 0 + 1) / 3 = 0.5: the pooled form differs.
    episode_fg = [float(c[1, 0] / c[1, 1]) for c in episode_counts(
        torch.stack([a_pred, b_pred, c_target]), torch.stack([a_target, b_target, c_target]))]
    assert sum(episode_fg) / 3 == pytest.approx(0.5)
    # FB-IoU: foreground I 5 / U 8; background A (2, 4) + B (5, 6) + C (3, 3) = 10 / 13.
    assert result["fb_iou"] == pytest.approx((5 / 8 + 10 / 13) / 2)
    assert result["episodes"] == 3


def test_state_round_trips_through_add_counts() -> None:
    acc = IoUAccumulator()
    acc.update(_row(1, 0, 1, 0), _row(1, 1, 0, 0), [4])
    acc.update(_row(1, 1, 1, 0), _row(1, 1, 0, 0), [9])
    ids, counts = acc.state()
    assert ids == [4, 9] and counts.shape == (2, 2, 2)
    merged = IoUAccumulator()
    for class_id, c in zip(ids, counts, strict=True):
        merged.add_counts(class_id, c)
    assert merged.compute()["per_class_iou"] == acc.compute()["per_class_iou"]
    assert merged.compute()["fb_iou"] == acc.compute()["fb_iou"]


def test_bad_inputs_are_named() -> None:
    acc = IoUAccumulator()
    with pytest.raises(ValueError, match="no episodes"):
        acc.compute()
    with pytest.raises(ValueError, match=r"prediction is \(1, 3\) but target is \(1, 4\)"):
        episode_counts(_row(1, 0, 1), _row(1, 0, 1, 0))
    with pytest.raises(ValueError, match="1 episodes but 2 class ids"):
        acc.update(_row(1, 0), _row(1, 0), [1, 2])
