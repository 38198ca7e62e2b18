"""Controls that expose a model which ignores its support.

A network can score well on few-shot benchmarks by segmenting "the main object" of the query,
whatever the support shows. Two figures catch it:

- **swapped support**: the same queries, each given the support of an episode of another class,
  scored against the true target. A model that uses its support loses most of its class-IoU; one
  that ignores it loses nothing. The **support gain** is the model's class-IoU minus this, in points.
- **class-agnostic oracle** (``vpi.eval.baselines``): every object of the query, perfectly
  segmented, where the dataset knows its objects (the built-in data). It says how much the data
  rewards ignoring the support.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

from torch.utils.data import Dataset

from vpi.data.episode import Episode
from vpi.errors import DataError

LOW_SUPPORT_GAIN = 5.0  # class-IoU points under which `vpi eval` warns that the support is unused


def episode_classes(dataset: Dataset[Episode]) -> list[int]:
    """The class of every episode, read without rendering where the dataset can tell it."""
    lookup = getattr(dataset, "episode_class", None)
    if lookup is None:
        return [dataset[i].class_id for i in range(len(dataset))]
    return [lookup(i) for i in range(len(dataset))]


def swap_partners(classes: Sequence[int]) -> list[int]:
    """For each episode, the episode whose support it gets in the control: its pair partner
    ``i ^ 1`` where that asks for another class (the built-in data's pairs share a query, so the
    swapped support points at another object of the same image), else the next episode, cyclically,
    whose class differs."""
    count = len(classes)
    partners = []
    for i, own in enumerate(classes):
        pair = [i ^ 1] if (i ^ 1) < count else []
        candidates = itertools.chain(pair, ((i + j) % count for j in range(1, count)))
        partner = next((j for j in candidates if classes[j] != own), None)
        if partner is None:
            raise DataError("the swapped-support control needs episodes of at least two classes")
        partners.append(partner)
    return partners


class SwappedSupport(Dataset[Episode]):
    """``dataset`` with each query's support replaced by its swap partner's (another class).

    The query, its mask and its class stay, so the episode is scored against the true target.
    """

    def __init__(self, dataset: Dataset[Episode]) -> None:
        self.dataset = dataset
        self.partners = swap_partners(episode_classes(dataset))
        self.class_ids = list(getattr(dataset, "class_ids", ()))
        self.original_query_mask = getattr(dataset, "original_query_mask", None)

    def __len__(self) -> int:
        return len(self.partners)

    def __getitem__(self, index: int) -> Episode:
        own, other = self.dataset[index], self.dataset[self.partners[index]]
        return dataclasses.replace(own, support_images=other.support_images,
                                   support_masks=other.support_masks)


class CachedEpisodes(Dataset[Episode]):
    """Keeps rendered or read episodes in memory, up to ``max_bytes``, so that a sweep over L and
    the k-shot rule, and the swapped-support control, prepare each episode once."""

    def __init__(self, dataset: Dataset[Episode], max_bytes: int = 1 << 30) -> None:
        self.dataset, self.max_bytes, self.used = dataset, max_bytes, 0
        self.cache: dict[int, Episode] = {}
        self.class_ids = list(getattr(dataset, "class_ids", ()))
        self.class_names = dict(getattr(dataset, "class_names", {}))
        for name in ("episode_class", "original_query_mask"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Episode:
        if index in self.cache:
            return self.cache[index]
        episode = self.dataset[index]
        values = (getattr(episode, f.name) for f in dataclasses.fields(episode))
        size = sum(v.nbytes for v in values if hasattr(v, "nbytes"))
        if self.used + size <= self.max_bytes:
            self.cache[index] = episode
            self.used += size
        return episode


def support_gain(model_class_iou: float, swapped_class_iou: float) -> float:
    """Class-IoU points the model loses when its support shows another class."""
    return 100.0 * (model_class_iou - swapped_class_iou)
