"""PASCAL-5i from the user's VOC2012 folder: ``JPEGImages/`` and SBD's ``SegmentationClassAug/``.

Class ids are VOC's own, 1..20; fold i tests classes 5i+1 .. 5i+5. A stored mask holds the class
per pixel (0 background, 255 boundary): a query mask keeps 255 as IGNORE_INDEX, a support mask
counts it as background. Split lists come from ``data.splits`` (HSNet's, see vpi.data.splits) or
are built from the annotations:

Built lists (no ``data.splits``): the val pairs are every (image, class) with the class present
in the image's mask, for the images of ``ImageSets/Segmentation/val.txt``; the train pairs the
same for the SBD augmented train list (``train_aug.txt`` or ``trainaug.txt`` beside it) or, where
there is none, ``train.txt``, leaving out any val image. No minimum object size is applied
(PFENet-style loaders drop classes with fewer than 2*32*32 pixels). Pairs are sorted by
(image, class), which is the order the test queries walk.
"""

from __future__ import annotations

import functools
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from vpi.config import DataConfig
from vpi.data.episode import IGNORE_INDEX
from vpi.data.layout import check_split_lines, dataset_root, require_entries, require_split_lists
from vpi.data.sampler import EpisodeSampler, progress, read_label
from vpi.data.splits import (
    Pair,
    built_pairs,
    fold_list_files,
    format_pair,
    read_lines,
    read_pair_list,
    resolve_split_dir,
)
from vpi.errors import DataError

NAME = "PASCAL-5i"
IMAGES = "JPEGImages"
MASKS = "SegmentationClassAug"
IMAGE_SETS = "ImageSets/Segmentation"
# The augmented (SBD) train list under its common names, then VOC's own train list.
TRAIN_LISTS = ("train_aug.txt", "trainaug.txt", "train.txt")
_ROOT_HINT = "the VOC2012 folder holding JPEGImages/ and SegmentationClassAug/"
CLASS_NAMES = {
    i + 1: name
    for i, name in enumerate(
        "aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike "
        "person pottedplant sheep sofa train tvmonitor".split()
    )
}


def fold_classes(fold: int) -> list[int]:
    """The VOC classes (1-based) that PASCAL-5i fold ``fold`` tests: 5*fold+1 .. 5*fold+5."""
    if fold not in range(4):
        raise ValueError(f"fold must lie in 0..3, got {fold}")
    return list(range(5 * fold + 1, 5 * fold + 6))


def train_list(root: Path) -> str:
    """The image list that built train pairs come from: the SBD aug list where present."""
    for name in TRAIN_LISTS:
        if (root / IMAGE_SETS / name).is_file():
            return f"{IMAGE_SETS}/{name}"
    return f"{IMAGE_SETS}/{TRAIN_LISTS[-1]}"


def check_layout(
    root: str | Path | None, *, split: str, fold: int = 0, splits: str | Path | None = None
) -> Path:
    """The VOC folder, its image and mask folders, and the lists a run on ``split`` of ``fold``
    reads (the image lists where the pairs are built, else the split lists); returns the root.

    The images and masks that split lines name are checked next, once the lists are read.
    """
    path = dataset_root(NAME, root, _ROOT_HINT)
    entries = [("image folder", IMAGES), ("mask folder", MASKS)]
    if splits is None:  # val.txt is needed for train too: built train pairs leave val images out
        entries.append(("image list", f"{IMAGE_SETS}/val.txt"))
        if split == "train":
            entries.append(("image list", train_list(path)))
    require_entries(NAME, path, entries)
    if splits is not None:
        require_split_lists(NAME, resolve_split_dir(splits, "pascal"), fold_list_files(split, fold))
    return path


def _files(stem: str) -> list[tuple[str, str]]:
    """The image and mask of one split line's image stem, under the root."""
    return [("image", f"{IMAGES}/{stem}.jpg"), ("mask", f"{MASKS}/{stem}.png")]


class PascalEpisodes(EpisodeSampler):
    """PASCAL-5i episodes; see ``EpisodeSampler`` for sampling and ``original_query_mask``."""

    name = NAME

    def __init__(self, root: Path, pairs: list[Pair], **kwargs: Any) -> None:
        super().__init__(root, [(p.stem, p.label) for p in pairs], class_names=CLASS_NAMES,
                         **kwargs)

    def image_path(self, key: str) -> Path:
        return self.root / IMAGES / f"{key}.jpg"

    def mask_path(self, key: str, class_id: int) -> Path:
        return self.root / MASKS / f"{key}.png"

    def binary_mask(self, stored: np.ndarray, class_id: int) -> np.ndarray:
        mask = (stored == class_id).astype(np.uint8)
        mask[stored == IGNORE_INDEX] = IGNORE_INDEX
        return mask


def build_pascal(
    data: DataConfig, split: str, *, shots: int, episodes: int, seed: int, augment: bool
) -> PascalEpisodes:
    """Train: the train pairs of the three other folds; test: fold ``data.fold``'s val pairs.

    Test queries walk the val pairs in order (``episodes`` of them, 1,000 in the protocol);
    training draws a pair at random per episode.
    """
    root = check_layout(data.root, split=split, fold=data.fold, splits=data.splits)
    folds = [data.fold] if split == "test" else [j for j in range(4) if j != data.fold]
    kind = "val" if split == "test" else "trn"
    pairs = [p for j in folds for p in fold_pairs(root, data.splits, kind, j)]
    return PascalEpisodes(
        root, pairs, split=f"{split} lists of fold {data.fold}", shots=shots,
        image_size=data.image_size, length=episodes, seed=seed, augment=augment,
        sampling="walk" if split == "test" else "pair",
    )


def fold_pairs(root: Path, splits: str | None, kind: str, fold: int) -> list[Pair]:
    """The ``kind`` ("trn" or "val") pairs of fold ``fold``'s classes, lines checked."""
    classes = fold_classes(fold)
    if splits is None:
        return [p for p in _built_pairs(root, kind) if p.label in classes]
    folder = resolve_split_dir(splits, "pascal")
    rel = f"{kind}/fold{fold}.txt"
    pairs = read_pair_list(folder / rel, rel)
    for pair in pairs:
        if pair.label not in classes:
            raise DataError(
                f"PASCAL-5i: split line {pair.line.text!r} ({pair.line.where}) names class "
                f"{pair.label}, but fold {fold} holds classes {classes[0]}..{classes[-1]}"
            )
    check_split_lines(NAME, root, [(p.stem, p.line) for p in pairs], _files)
    return pairs


@functools.lru_cache(maxsize=4)
def _built_pairs(root: Path, kind: str) -> tuple[Pair, ...]:
    """Every (image, class present in its mask) pair of the val or train image list."""
    val_list = f"{IMAGE_SETS}/val.txt"
    image_list = val_list if kind == "val" else train_list(root)
    # Lists may hold bare stems or DeepLab's "/JPEGImages/x.jpg /SegmentationClassAug/x.png".
    entries = [(PurePosixPath(ln.text.split()[0]).stem, ln) for ln in read_lines(root / image_list)]
    if kind == "trn":
        val = {PurePosixPath(ln.text.split()[0]).stem for ln in read_lines(root / val_list)}
        entries = [(stem, line) for stem, line in entries if stem not in val]
    check_split_lines(NAME, root, entries, _files)
    found = []
    for stem, _ in progress(entries, f"PASCAL-5i: reading the masks of {image_list}"):
        labels = np.unique(read_label(root / MASKS / f"{stem}.png", NAME))
        found += [(stem, int(c)) for c in labels if int(c) in CLASS_NAMES]
    return tuple(built_pairs(found, f"built from {image_list}"))


def all_split_lists(data: DataConfig) -> dict[str, list[str]]:
    """Every list file (``{trn,val}/fold{j}.txt``) of the data the loader reads, by name."""
    lists = {}
    for fold in range(4):
        for split in ("train", "test"):
            root = check_layout(data.root, split=split, fold=fold, splits=data.splits)
        for kind in ("trn", "val"):
            pairs = fold_pairs(root, data.splits, kind, fold)
            lists[f"{kind}/fold{fold}.txt"] = [format_pair(p.stem, p.label) for p in pairs]
    return lists
