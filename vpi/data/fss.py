"""FSS-1000 from the user's copy: one folder per class, ``1.jpg`` .. with masks ``1.png`` beside.

Class ids are the index of the class folder in the sorted list of the root's class folders. A mask
pixel is foreground where its grey value is >= 128. There are no folds (``data.fold`` is unused):
training reads the ``trn`` classes, testing the ``test`` classes.

Split lists come from ``data.splits`` (``fss/{trn,val,test}.txt``, HSNet's; only the 240-class
test list is official, from the dataset's authors) or are built by this rule: order the class
folders by the SHA-256 of their name; the first 24% (rounded) are test, the next 24% val, the rest
train (240 / 240 / 520 of 1,000); each list sorted by name. The built test list is not the
official one, so its scores do not compare with published numbers.

Test episodes: every image of every test class is a query once, classes in sorted order, images
in numeric order (2,400 on the full data; the ``episodes`` argument is ignored), supports drawn
from the same class's other images. Training draws a random (image, class) pair per episode.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from vpi.config import DataConfig
from vpi.data.layout import dataset_root, require_split_lists
from vpi.data.sampler import EpisodeSampler
from vpi.data.splits import Line, read_lines, resolve_split_dir
from vpi.errors import DataError

NAME = "FSS-1000"
KINDS = ("trn", "val", "test")
_ROOT_HINT = "the FSS-1000 folder holding one folder per class"
_SHARE = 0.24  # of the classes for each of test and val: 240 / 240 / 520 of 1,000


def split_kind(split: str) -> str:
    """The list a split reads: "trn" for "train", "val" for "val", else "test"."""
    return {"train": "trn", "val": "val"}.get(split, "test")


def check_layout(
    root: str | Path | None, *, split: str, fold: int = 0, splits: str | Path | None = None
) -> Path:
    """The FSS-1000 folder and, where ``splits`` is given, the list ``split`` reads; returns the
    root. ``fold`` is unused: FSS-1000 has no folds. Class folders are checked as lines are read."""
    path = dataset_root(NAME, root, _ROOT_HINT)
    if splits is not None:
        require_split_lists(NAME, resolve_split_dir(splits, "fss"), [f"{split_kind(split)}.txt"])
    return path


def class_images(root: Path, line: Line) -> list[str]:
    """The image stems of one class folder (``1``, ``2``, ...), each with its mask."""
    folder = root / line.text
    if not folder.is_dir():
        raise DataError(
            f"{NAME}: no class folder {line.text}/ for split line {line.text!r} ({line.where}) "
            f"under {root}"
        )
    names = set(os.listdir(folder))
    stems = sorted(
        (n[:-4] for n in names if n.endswith(".jpg")),
        key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s),
    )
    for stem in stems:
        if f"{stem}.png" not in names:
            raise DataError(f"{NAME}: no mask {line.text}/{stem}.png for image "
                            f"{line.text}/{stem}.jpg ({line.where}) under {root}")
    if len(stems) < 2:
        raise DataError(
            f"{NAME}: class folder {line.text}/ ({line.where}) under {root} holds "
            f"{len(stems)} image(s); an episode needs a query and another image as support"
        )
    return stems


class FssEpisodes(EpisodeSampler):
    """FSS-1000 episodes; see ``EpisodeSampler`` for sampling and ``original_query_mask``."""

    name = NAME
    mask_mode = "L"  # some masks are stored as RGB

    def image_path(self, key: str) -> Path:
        return self.root / f"{key}.jpg"

    def mask_path(self, key: str, class_id: int) -> Path:
        return self.root / f"{key}.png"

    def binary_mask(self, stored: np.ndarray, class_id: int) -> np.ndarray:
        return (stored >= 128).astype(np.uint8)


def class_folders(root: Path) -> list[str]:
    """The sorted class folder names under ``root`` (hidden folders and vpi's cache left out)."""
    return sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name != "vpi_cache"
    )


def built_split_lists(classes: list[str]) -> dict[str, list[str]]:
    """The documented rule: SHA-256 order, 24% test, 24% val, the rest train; sorted by name."""
    order = sorted(classes, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
    test = val = round(_SHARE * len(order))
    return {
        "trn": sorted(order[test + val:]),
        "val": sorted(order[test:test + val]),
        "test": sorted(order[:test]),
    }


def split_lines(root: Path, splits: str | None, kind: str) -> list[Line]:
    """The class names of the ``kind`` list, read from ``splits`` or built from ``root``."""
    if splits is not None:
        return read_lines(resolve_split_dir(splits, "fss") / f"{kind}.txt")
    names = built_split_lists(class_folders(root))[kind]
    return [Line(name, f"built {kind} list, entry {i}") for i, name in enumerate(names, 1)]


def build_fss(
    data: DataConfig, split: str, *, shots: int, episodes: int, seed: int, augment: bool
) -> FssEpisodes:
    """Train: ``episodes`` random pairs of the trn classes; test (val): each test (val) image once."""
    root = check_layout(data.root, split=split, splits=data.splits)
    folders = class_folders(root)
    if not folders:
        raise DataError(f"FSS-1000: no class folders (<class>/1.jpg, 1.png, ...) under {root}")
    index = {name: i for i, name in enumerate(folders)}
    kind = split_kind(split)
    lines = {ln.text: ln for ln in split_lines(root, data.splits, kind)}
    pairs = []
    for name in sorted(lines):
        stems = class_images(root, lines[name])
        if name not in index:
            raise DataError(f"FSS-1000: split line {name!r} ({lines[name].where}) is not a class "
                            f"folder directly under {root}")
        pairs += [(f"{name}/{stem}", index[name]) for stem in stems]
    return FssEpisodes(
        root, pairs, split=f"{kind} list", class_names=dict(enumerate(folders)), shots=shots,
        image_size=data.image_size, length=episodes if split == "train" else len(pairs), seed=seed,
        augment=augment, sampling="pair" if split == "train" else "walk",
    )


def all_split_lists(data: DataConfig) -> dict[str, list[str]]:
    """The three list files (``trn.txt``, ``val.txt``, ``test.txt``; val where there is one)."""
    root = check_layout(data.root, split="train", splits=data.splits)
    check_layout(data.root, split="test", splits=data.splits)
    lists = {}
    for kind in KINDS:
        if data.splits is None or (resolve_split_dir(data.splits, "fss") / f"{kind}.txt").is_file():
            lists[f"{kind}.txt"] = sorted({ln.text for ln in split_lines(root, data.splits, kind)})
    return lists
