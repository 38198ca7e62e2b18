"""IoU accumulators shared by training, eval and bench, pooled the way the field pools them.

Per episode we count, for background and foreground, the intersection I and the union U
(ignore pixels removed first). Class-IoU (mIoU) sums the foreground I and U over all episodes of a
class, divides, and averages over classes; FB-IoU sums I and U over every episode for each of
background and foreground and averages the two ratios. Episode-averaged IoU gives other numbers.
As in HSNet, an empty pooled union counts as IoU 0 (I / max(U, 1)), and class-IoU averages over
every class the accumulator was made for, so a class that got no episode scores 0, not 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch

from vpi.data.episode import IGNORE_INDEX


def episode_counts(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersections and unions of one or more episodes.

    pred: (B, H, W) or (H, W) binary prediction (bool or {0, 1}).
    target: same shape, int with {0, 1, IGNORE_INDEX}.
    Returns (B, 2, 2) float64: [..., c, 0] = intersection, [..., c, 1] = union for class c
    (0 = background, 1 = foreground).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction is {tuple(pred.shape)} but target is {tuple(target.shape)}")
    if pred.dim() == 2:
        pred, target = pred[None], target[None]
    valid = target != IGNORE_INDEX
    pred = pred.bool() & valid
    fg = (target == 1) & valid
    bg = (target == 0) & valid
    pred_bg = ~pred & valid
    dims = (1, 2)
    inter_fg = (pred & fg).sum(dims)
    union_fg = (pred | fg).sum(dims)
    inter_bg = (pred_bg & bg).sum(dims)
    union_bg = (pred_bg | bg).sum(dims)
    counts = torch.stack(
        [torch.stack([inter_bg, union_bg], -1), torch.stack([inter_fg, union_fg], -1)], 1
    )
    return counts.cpu().to(torch.float64)  # float64 after .cpu(): some devices lack it


class IoUAccumulator:
    """Pools intersections and unions over episodes; ``compute`` gives the three metrics.

    ``class_ids`` are the classes class-IoU averages over (a fold's classes), whether or not an
    episode of each was scored; classes seen in ``update`` join them.
    """

    def __init__(self, class_ids: Iterable[int] = ()) -> None:
        self.per_class: dict[int, torch.Tensor] = defaultdict(_zero_counts)
        for class_id in class_ids:
            self.per_class[int(class_id)] = _zero_counts()
        self.episodes = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor, class_ids: Iterable[int]) -> None:
        """Add a batch: pred and target (B, H, W), one class id per episode."""
        counts = episode_counts(pred, target)
        ids = [int(c) for c in class_ids]
        if len(ids) != counts.shape[0]:
            raise ValueError(f"{counts.shape[0]} episodes but {len(ids)} class ids")
        for class_id, c in zip(ids, counts, strict=True):
            self.per_class[class_id] += c
        self.episodes += len(ids)

    def add_counts(self, class_id: int, counts: torch.Tensor) -> None:
        """Add pooled (2, 2) counts of one class, e.g. gathered from another process."""
        self.per_class[int(class_id)] += counts.to(torch.float64).cpu()

    def state(self) -> tuple[list[int], torch.Tensor]:
        """Class ids and their (C, 2, 2) pooled counts, to sum across processes."""
        ids = sorted(self.per_class)
        if not ids:
            return [], torch.zeros(0, 2, 2, dtype=torch.float64)
        return ids, torch.stack([self.per_class[i] for i in ids])

    def compute(self) -> dict[str, object]:
        """class_iou (mIoU), fb_iou, positive_iou and per-class IoU, all in [0, 1]."""
        if not self.per_class:
            raise ValueError("no episodes were scored")
        per_class = {c: _ratio(v[1, 0], v[1, 1]) for c, v in sorted(self.per_class.items())}
        total = torch.stack(list(self.per_class.values())).sum(0)
        fb = (_ratio(total[0, 0], total[0, 1]) + _ratio(total[1, 0], total[1, 1])) / 2
        class_iou = sum(per_class.values()) / len(per_class)
        return {
            "class_iou": class_iou,
            "fb_iou": fb,
            # FSS-1000's positive IoU: foreground IoU pooled per class, averaged over classes.
            "positive_iou": class_iou,
            "per_class_iou": per_class,
            "episodes": self.episodes,
        }


def _zero_counts() -> torch.Tensor:
    return torch.zeros(2, 2, dtype=torch.float64)


def _ratio(inter: torch.Tensor, union: torch.Tensor) -> float:
    return float(inter) / max(float(union), 1.0)
