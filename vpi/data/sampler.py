"""The episode sampler the readers of files share: episodes over (image, class) pairs, and reading.

A reader's subclass (PASCAL-5i, COCO-20i, FSS-1000) only says where an image and its mask live and
how a stored mask becomes a binary mask of one class; sampling, resizing, augmentation and the
original-size query mask are the same for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.progress import track
from torch.utils.data import Dataset

from vpi.data.episode import IGNORE_INDEX, Episode
from vpi.data.transforms import augment_pair, resize_pair, to_tensor_image, to_tensor_mask
from vpi.errors import DataError
from vpi.io import image_size_guard

SAMPLINGS = ("walk", "pair", "class")
T = TypeVar("T")


@dataclass(frozen=True)
class EpisodeKeys:
    """The images of one episode: the query's key, its class and the supports' keys."""

    query: str
    class_id: int
    supports: tuple[str, ...]


class EpisodeSampler(Dataset[Episode]):
    """Episodes over (image key, class id) pairs of a benchmark's split lists.

    ``split`` names the lists in messages ("test lists of fold 0"). ``sampling`` says how item i
    picks its query:
      - "walk": ``pairs[i % len(pairs)]``, in list order (the test protocol of PASCAL-5i and
        FSS-1000);
      - "pair": a pair uniformly at random (training);
      - "class": a class uniformly, then one of its images uniformly (HSNet's COCO-20i).
    The ``shots`` supports are other images of the query's class (never the query itself), drawn
    without replacement unless the class has fewer other images than shots. Item i depends only
    on ``(seed, i)``: every draw, augmentation included, comes from ``default_rng([seed, i])``.

    Query masks come at network resolution with ``IGNORE_INDEX`` kept; for scoring at the
    original image size (``data.score_at="original"``) the evaluator resizes its prediction to
    ``original_query_mask(i)``, the query's mask as stored, ``(H0, W0)`` int64.
    """

    name = "dataset"
    mask_mode: str | None = None  # PIL mode to convert a stored mask to before reading values

    def __init__(
        self,
        root: Path,
        pairs: Sequence[tuple[str, int]],
        *,
        split: str,
        class_names: dict[int, str],
        shots: int,
        image_size: int,
        length: int,
        seed: int,
        augment: bool,
        sampling: str,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if not pairs:
            raise DataError(f"{self.name}: no (image, class) pair in the {split} under {root}")
        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        images: dict[int, dict[str, None]] = {}
        for key, class_id in pairs:
            images.setdefault(class_id, {})[key] = None
        self.images = {c: list(keys) for c, keys in sorted(images.items())}
        lonely = [c for c, keys in self.images.items() if len(keys) < 2]
        if lonely:
            raise DataError(
                f"{self.name}: class {lonely[0]} ({class_names[lonely[0]]}) has a single image "
                f"({self.images[lonely[0]][0]}) in the split; an episode needs another as support"
            )
        self.root, self.pairs = root, list(pairs)
        self._position = {(k, c): j for c, keys in self.images.items() for j, k in enumerate(keys)}
        self.class_ids = list(self.images)
        self.class_names = {c: class_names[c] for c in self.class_ids}
        self.shots, self.image_size, self.length = shots, image_size, length
        self.seed, self.augment, self.sampling = seed, augment, sampling

    def image_path(self, key: str) -> Path:
        raise NotImplementedError

    def mask_path(self, key: str, class_id: int) -> Path:
        raise NotImplementedError

    def binary_mask(self, stored: np.ndarray, class_id: int) -> np.ndarray:
        """A stored mask -> uint8 (H, W) in {0, 1, IGNORE_INDEX} for ``class_id``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.length

    def episode_keys(self, index: int) -> EpisodeKeys:
        """Which images item ``index`` uses, without reading them."""
        return self._plan(index, self._rng(index))

    def episode_class(self, index: int) -> int:
        """The class item ``index`` asks for, without reading its images."""
        return self.episode_keys(index).class_id

    def __getitem__(self, index: int) -> Episode:
        rng = self._rng(index)
        keys = self._plan(index, rng)
        query_image, query_mask = self._prepare(keys.query, keys.class_id, rng, IGNORE_INDEX)
        supports = [self._prepare(key, keys.class_id, rng, 0) for key in keys.supports]
        return Episode(
            support_images=torch.stack([image for image, _ in supports]),
            support_masks=torch.stack([mask for _, mask in supports])[:, None].float(),
            query_image=query_image,
            query_mask=query_mask,
            class_id=keys.class_id,
        )

    def original_query_mask(self, index: int) -> torch.Tensor:
        """Item ``index``'s query mask at the image's own size: (H0, W0) int64 in {0, 1, 255}."""
        keys = self.episode_keys(index)
        return torch.from_numpy(self._read_mask(keys.query, keys.class_id).astype(np.int64))

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.length:
            raise IndexError(f"episode {index} out of range for {self.length} episodes")
        return np.random.default_rng([self.seed, index])

    def _plan(self, index: int, rng: np.random.Generator) -> EpisodeKeys:
        if self.sampling == "class":
            class_id = self.class_ids[int(rng.integers(len(self.class_ids)))]
            position = int(rng.integers(len(self.images[class_id])))
        else:
            walk = self.sampling == "walk"
            pick = index % len(self.pairs) if walk else int(rng.integers(len(self.pairs)))
            key, class_id = self.pairs[pick]
            position = self._position[(key, class_id)]
        images = self.images[class_id]
        others = len(images) - 1
        picks = rng.choice(others, size=self.shots, replace=others < self.shots)
        picks[picks >= position] += 1  # skip the query: index the class list without it
        return EpisodeKeys(images[position], class_id, tuple(images[int(j)] for j in picks))

    def _prepare(
        self, key: str, class_id: int, rng: np.random.Generator, ignore_value: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Read, (augment,) resize: image (3, S, S) float, mask (S, S) int64."""
        path = self.image_path(key)
        pixels = np.array(open_image(path, self.name).convert("RGB"))
        mask = self._read_mask(key, class_id)
        if mask.shape != pixels.shape[:2]:
            raise DataError(
                f"{self.name}: mask {self.mask_path(key, class_id)} is {mask.shape[1]}x"
                f"{mask.shape[0]} but its image {path} is {pixels.shape[1]}x{pixels.shape[0]}"
            )
        if ignore_value != IGNORE_INDEX:  # support masks: unscored pixels count as background
            mask = np.where(mask == IGNORE_INDEX, 0, mask)
        image, label = to_tensor_image(pixels), to_tensor_mask(mask)
        if self.augment:
            image, label = augment_pair(image, label, rng, ignore_value=ignore_value)
        return resize_pair(image, label, self.image_size)

    def _read_mask(self, key: str, class_id: int) -> np.ndarray:
        stored = read_label(self.mask_path(key, class_id), self.name, self.mask_mode)
        return self.binary_mask(stored, class_id)


def progress(items: Sequence[T], description: str) -> Iterable[T]:
    """A rich progress bar on stderr (stdout may carry a command's output), on terminals only."""
    console = Console(stderr=True)
    return track(items, description=description, transient=True, console=console,
                 disable=not console.is_terminal)


def read_label(path: Path, name: str, mode: str | None = None) -> np.ndarray:
    """A stored mask as an (H, W) array of its values (palette indices for "P" images)."""
    image = open_image(path, name)
    if mode is not None:
        image = image.convert(mode)
    if image.mode not in ("1", "L", "P", "I", "I;16"):
        raise DataError(f"{name}: mask {path} is stored as {image.mode}; expected one value per "
                        "pixel (a grey or palette PNG of class indices)")
    return np.asarray(image)


def open_image(path: Path, name: str) -> Image.Image:
    """An image file, fully read, or a DataError naming it (``name``: the dataset's)."""
    try:
        with image_size_guard(path, f"{name}: image"), Image.open(path) as image:
            image.load()
            return image
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{name}: cannot read {path}: {exc}") from None
