"""Whether the uncertainty maps earn their place: do they flag the pixels and episodes that fail?

`vpi eval --uncertainty` scores, for each model, the three maps the decoder ships
(``vpi.graphs.SampleMaps``): the variance of the L probability maps, their mutual information
(both measure only how much the samples disagree) and the entropy of their mean (one deterministic
pass gives it). For each map:

- **pixel-error AUROC and AUPR**: how well the map ranks the wrongly labelled pixels (at the
  model's threshold) above the right ones, pooled over the episodes;
- **failed-episode AUROC**: how well the map's ``failure_score`` (its mean over the pixels the
  model gives over ``CONSIDERED``) ranks the episodes whose foreground IoU is under
  ``FAILED_IOU`` above the others, i.e. whether it could tell a user which answers not to trust;
- **correction curve**: class-IoU after the 1, 2, 5 and 10% most uncertain pixels of each episode
  are set to the truth, beside the same shares in a seeded random order.

Beside them, the expected calibration error of the mean probability (``ECE_BINS`` equal bins of
the foreground probability against the observed foreground frequency) and its reliability curve.
Pixel rankings are pooled in ``HISTOGRAM_BINS`` bins per map on a square-root scale, so memory
does not grow with the dataset and small variances are still told apart.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vpi.data.episode import IGNORE_INDEX
from vpi.graphs import SampleMaps, failure_score
from vpi.metrics import IoUAccumulator

MAPS = ("variance", "mutual_information", "entropy")
MAP_RANGES = {"variance": 0.25, "mutual_information": math.log(2), "entropy": math.log(2)}
RANDOM = "random"  # the correction curve's reference order
CORRECTED_SHARES = (0.01, 0.02, 0.05, 0.10)
ECE_BINS = 15
HISTOGRAM_BINS = 4096
FAILED_IOU = 0.5  # an episode whose foreground IoU is under this has failed
FLAG_MAP = "entropy"  # the map whose failure score flags queries in `vpi segment`


class UncertaintyAccumulator:
    """Pooled over batches of episodes; ``compute`` gives the report of one model's run."""

    def __init__(self, class_ids: tuple[int, ...] | list[int], threshold: float, seed: int = 0):
        self.threshold = threshold
        self.generator = torch.Generator().manual_seed(seed)
        self.errors = {m: torch.zeros(HISTOGRAM_BINS, dtype=torch.float64) for m in MAPS}
        self.corrects = {m: torch.zeros(HISTOGRAM_BINS, dtype=torch.float64) for m in MAPS}
        self.calibration = torch.zeros(3, ECE_BINS, dtype=torch.float64)  # count, sum p, sum y
        self.episode_iou: list[float] = []
        self.episode_scores: dict[str, list[float]] = {m: [] for m in MAPS}
        self.corrected = {
            order: {share: IoUAccumulator(class_ids) for share in CORRECTED_SHARES}
            for order in (*MAPS, RANDOM)
        }

    def update(self, maps: SampleMaps, truth: torch.Tensor, class_ids: list[int]) -> None:
        """A batch: maps (B, H, W) each, truth (B, H, W) with 0/1 and ``IGNORE_INDEX``."""
        probability = maps.probability.float().cpu()
        truth = truth.cpu()
        valid = truth != IGNORE_INDEX
        foreground = truth == 1
        predicted = probability > self.threshold
        wrong = predicted != foreground
        self._calibrate(probability[valid], foreground[valid])
        for name in MAPS:
            values = getattr(maps, name).float().cpu()
            bins = _bin(values[valid], MAP_RANGES[name])
            self.errors[name] += torch.bincount(bins[wrong[valid]], minlength=HISTOGRAM_BINS)
            self.corrects[name] += torch.bincount(bins[~wrong[valid]], minlength=HISTOGRAM_BINS)
        for i, class_id in enumerate(class_ids):
            self._episode(maps, i, probability[i], predicted[i], foreground[i], valid[i], class_id)

    def _calibrate(self, probability: torch.Tensor, foreground: torch.Tensor) -> None:
        bins = (probability * ECE_BINS).long().clamp(max=ECE_BINS - 1)
        self.calibration[0] += torch.bincount(bins, minlength=ECE_BINS)
        self.calibration[1] += torch.bincount(bins, weights=probability.double(), minlength=ECE_BINS)
        self.calibration[2] += torch.bincount(bins, weights=foreground.double(), minlength=ECE_BINS)

    def _episode(
        self, maps: SampleMaps, index: int, probability: torch.Tensor, predicted: torch.Tensor,
        foreground: torch.Tensor, valid: torch.Tensor, class_id: int,
    ) -> None:
        union = ((predicted | foreground) & valid).sum()
        overlap = (predicted & foreground & valid).sum()
        self.episode_iou.append(1.0 if union == 0 else float(overlap / union))
        tiebreak = torch.rand(probability.shape, generator=self.generator)
        truth = torch.where(valid, foreground.long(), torch.full_like(foreground.long(), IGNORE_INDEX))
        orders = {name: getattr(maps, name)[index].float().cpu() for name in MAPS}
        for name, values in orders.items():
            self.episode_scores[name].append(float(failure_score(probability, values)))
        orders[RANDOM] = tiebreak
        count = int(valid.sum())
        for order, values in orders.items():
            # Ties (a deterministic model's zero variance) fall in the random order.
            ranked = torch.where(valid, values + 1e-9 * tiebreak, torch.full_like(values, -1.0))
            ranking = ranked.flatten().argsort(descending=True)
            for share in CORRECTED_SHARES:
                fixed = predicted.flatten().clone()
                top = ranking[: int(round(share * count))]
                fixed[top] = foreground.flatten()[top]
                self.corrected[order][share].update(fixed.view_as(predicted)[None], truth[None],
                                                    [class_id])

    def compute(self, failure_threshold: float | None = None) -> dict[str, Any]:
        """Per map: pixel-error AUROC/AUPR, failed-episode AUROC, the correction curve; the random
        order's curve, the ECE and the reliability curve; the share of failed episodes; with a
        ``failure_threshold`` (the model's), how well it flags the failed episodes here."""
        failed = [iou < FAILED_IOU for iou in self.episode_iou]
        report: dict[str, Any] = {
            "maps": {
                name: {
                    "pixel_error_auroc": _auroc_from_histograms(self.errors[name], self.corrects[name]),
                    "pixel_error_aupr": _aupr_from_histograms(self.errors[name], self.corrects[name]),
                    "failed_episode_auroc": _auroc(self.episode_scores[name], failed),
                    "corrected_class_iou": self._curve(name),
                }
                for name in MAPS
            },
            "random_corrected_class_iou": self._curve(RANDOM),
            "pixel_error_rate": float(self.errors[MAPS[0]].sum()
                                      / max(1.0, float(self.calibration[0].sum()))),
            "failed_episodes": sum(failed),
            "episodes": len(failed),
            "failed_iou": FAILED_IOU,
            **_calibration(self.calibration),
        }
        if failure_threshold is not None:
            report["failure_flag"] = _flag_scores(self.episode_scores[FLAG_MAP], failed,
                                                  failure_threshold)
        return report

    def failure_flag(self) -> dict[str, Any] | None:
        """The threshold on ``FLAG_MAP``'s failure score that flags the failed episodes best (F1),
        with its precision and recall on these episodes; None without a failed and a fine one."""
        return choose_failure_threshold(self.episode_scores[FLAG_MAP],
                                        [iou < FAILED_IOU for iou in self.episode_iou])

    def _curve(self, order: str) -> dict[str, float]:
        return {f"{share:g}": self.corrected[order][share].compute()["class_iou"]
                for share in CORRECTED_SHARES}


def _flag_scores(scores: list[float], failed: list[bool], threshold: float) -> dict[str, Any]:
    """Precision and recall of flagging score > ``threshold`` as failed (None where undefined)."""
    flagged = [s > threshold for s in scores]
    hits = sum(f and y for f, y in zip(flagged, failed, strict=True))
    return {"map": FLAG_MAP, "threshold": threshold, "flagged": sum(flagged),
            "precision": hits / sum(flagged) if any(flagged) else None,
            "recall": hits / sum(failed) if any(failed) else None}


def choose_failure_threshold(scores: list[float], failed: list[bool]) -> dict[str, Any] | None:
    """The score threshold (flag: score > threshold) with the best F1 at flagging ``failed``."""
    if not any(failed) or all(failed):
        return None
    best: dict[str, Any] | None = None
    for threshold in sorted(set(scores))[:-1]:  # each flags at least the highest score
        flag = _flag_scores(scores, failed, threshold)
        precision, recall = flag["precision"], flag["recall"]
        f1 = 2 * precision * recall / max(1e-12, precision + recall)
        if best is None or f1 > best["f1"]:
            best = {"threshold": threshold, "precision": precision, "recall": recall, "f1": f1}
    if best is None:
        return None
    return {"map": FLAG_MAP, **{k: round(v, 6) for k, v in best.items()},
            "episodes": len(scores), "failed": sum(failed), "failed_iou": FAILED_IOU}


def _bin(values: torch.Tensor, top: float) -> torch.Tensor:
    """Bins on a square-root scale of [0, top]: small values (a variance of 1e-4) keep apart."""
    scaled = (values.clamp(min=0.0) / top).clamp(max=1.0).sqrt()
    return (scaled * HISTOGRAM_BINS).long().clamp(max=HISTOGRAM_BINS - 1)


def _auroc_from_histograms(positives: torch.Tensor, negatives: torch.Tensor) -> float | None:
    """P(a positive's value > a negative's), ties counted half: the trapezoid ROC area."""
    p, n = positives.sum(), negatives.sum()
    if p == 0 or n == 0:
        return None
    tpr = torch.cat([torch.zeros(1, dtype=p.dtype), positives.flip(0).cumsum(0) / p])
    fpr = torch.cat([torch.zeros(1, dtype=n.dtype), negatives.flip(0).cumsum(0) / n])
    return float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2).sum())


def _aupr_from_histograms(positives: torch.Tensor, negatives: torch.Tensor) -> float | None:
    """Average precision with the bins as thresholds, from the most uncertain down."""
    total = positives.sum()
    if total == 0:
        return None
    hits = positives.flip(0).cumsum(0)
    flagged = hits + negatives.flip(0).cumsum(0)
    precision = hits / flagged.clamp(min=1)
    return float((positives.flip(0) / total * precision).sum())


def _auroc(scores: list[float], labels: list[bool]) -> float | None:
    """Mann-Whitney AUROC of ``scores`` for the True ``labels``, ties counted half."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not positives or not negatives:
        return None
    pos, neg = torch.tensor(positives)[:, None], torch.tensor(negatives)[None, :]
    return float(((pos > neg).double() + 0.5 * (pos == neg).double()).mean())


def _calibration(bins: torch.Tensor) -> dict[str, Any]:
    count, total_p, total_y = bins
    filled = count > 0
    confidence = torch.where(filled, total_p / count.clamp(min=1), torch.zeros_like(total_p))
    frequency = torch.where(filled, total_y / count.clamp(min=1), torch.zeros_like(total_y))
    ece = float((count / count.sum().clamp(min=1) * (confidence - frequency).abs()).sum())
    return {"ece": ece, "reliability": {
        "bin_edges": [i / ECE_BINS for i in range(ECE_BINS + 1)],
        "mean_probability": [float(v) if f else None for v, f in zip(confidence, filled, strict=True)],
        "foreground_frequency": [float(v) if f else None for v, f in zip(frequency, filled, strict=True)],
        "pixels": [int(c) for c in count],
    }}
