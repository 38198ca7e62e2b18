"""The accuracy gate of reduced precisions: class-IoU of the engine against PyTorch fp32.

A parity tolerance says how far the outputs may move; it cannot say whether the masks are still
right. So every reduced precision an export writes (fp16/bf16/int8 for OpenVINO, fp16/bf16 for
TensorRT) is scored like `vpi eval` scores a model, on held-out episodes: the validation split
where the dataset has one (``vpi.data.VALIDATION``), else the train split; never the reported
test episodes. The engine and PyTorch see the same episodes and the same noise, so the figure
that decides is the class-IoU lost to the precision alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Subset

from vpi.config import GATE_EPISODES, GATE_MARGIN, Config
from vpi.data import VALIDATION, build_episodes
from vpi.errors import AccuracyError, ConfigError
from vpi.eval.controls import CachedEpisodes
from vpi.eval.engine import RunnerPredictor
from vpi.eval.scoring import Predictor, score_model
from vpi.model import VPIModel
from vpi.runtime.base import Runner


@dataclass(frozen=True)
class GateSettings:
    """How many held-out episodes decide, and how many class-IoU points may be lost."""

    episodes: int = GATE_EPISODES
    margin: float = GATE_MARGIN

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--gate-episodes is {self.episodes}; it must be 1 or more")


class AccuracyGate:
    """PyTorch fp32's class-IoU on the gate's episodes, scored once; each candidate engine is
    then judged against it (``judge``), and ``record`` is the manifest's ``gate`` section."""

    def __init__(self, model: VPIModel, config: Config, settings: GateSettings) -> None:
        started = time.perf_counter()
        self.settings = settings
        self.split = "val" if config.data.dataset in VALIDATION else "train"
        episodes = build_episodes(config.data, self.split, shots=config.eval.shots,
                                  episodes=settings.episodes, seed=config.eval.seed)
        count = min(settings.episodes, len(episodes))  # a walk over a split may be longer
        self.dataset = Subset(CachedEpisodes(episodes),
                              [i * len(episodes) // count for i in range(count)])
        self.config = config
        self.aggregation = config.model.aggregation
        self.reference = self._score(model)
        self.candidates: list[dict[str, Any]] = []
        self.seconds = time.perf_counter() - started

    def _score(self, predictor: Predictor) -> float:
        e = self.config.eval
        return score_model(predictor, self.dataset, samples=e.samples, seed=e.seed,
                           threshold=e.threshold).compute()["class_iou"]

    def judge(self, runner: Runner, precision: str) -> bool:
        """Score ``runner`` on the gate's episodes; whether it keeps within the margin."""
        started = time.perf_counter()
        class_iou = self._score(RunnerPredictor(runner, self.aggregation))
        lost = 100.0 * (self.reference - class_iou)
        passed = lost <= self.settings.margin
        self.candidates.append({"precision": precision, "runner": runner.name,
                                "class_iou": class_iou, "points_lost": round(lost, 3),
                                "passed": passed})
        self.seconds += time.perf_counter() - started
        return passed

    def refusal(self, library: str) -> AccuracyError:
        """The one line that refuses the last candidate."""
        last = self.candidates[-1]
        return AccuracyError(
            f"{library} {last['precision']} loses {last['points_lost']:.2f} class-IoU points "
            f"against PyTorch fp32 ({100 * last['class_iou']:.2f} vs {100 * self.reference:.2f} "
            f"on {len(self.dataset)} {self.split} episodes), more than the "
            f"{self.settings.margin:g} allowed (--gate-margin): the export was not written"
        )

    def record(self) -> dict[str, Any]:
        data, e = self.config.data, self.config.eval
        return {
            "metric": "class_iou",
            "margin_points": self.settings.margin,
            "episodes": len(self.dataset),
            "episodes_from": {"dataset": data.dataset, "root": data.root, "fold": data.fold,
                              "split": self.split, "seed": e.seed, "shots": e.shots,
                              "samples": e.samples},
            "reference": {"backend": "torch", "precision": "fp32", "class_iou": self.reference},
            "candidates": self.candidates,
            "gate_s": round(self.seconds, 3),
        }
