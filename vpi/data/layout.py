"""Where each benchmark keeps its files, and the checks that run before any episode is built.

A wrong path should fail in the first second with one line that names what is missing and where
it was looked for, not after an hour of training when a worker first opens the file. Every check
is an existence test (one directory listing per folder), so all split lines are checked up front.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from vpi.data.splits import Line, resolve_split_dir
from vpi.errors import DataError

NAMES = {"pascal": "PASCAL-5i", "coco": "COCO-20i", "fss": "FSS-1000"}
_ROOT_HINT = {
    "pascal": "the VOC2012 folder holding JPEGImages/ and SegmentationClassAug/",
    "coco": "the COCO 2014 folder holding train2014/, val2014/ and annotations/",
    "fss": "the FSS-1000 folder holding one folder per class",
}

PASCAL_IMAGES = "JPEGImages"
PASCAL_MASKS = "SegmentationClassAug"
PASCAL_IMAGE_SETS = "ImageSets/Segmentation"
# The augmented (SBD) train list under its common names, then VOC's own train list.
PASCAL_TRAIN_LISTS = ("train_aug.txt", "trainaug.txt", "train.txt")
COCO_IMAGE_SETS = {"train": "train2014", "test": "val2014"}


def coco_annotation_file(image_set: str) -> str:
    return f"annotations/instances_{image_set}.json"


def pascal_train_list(root: Path) -> str:
    """The image list that built PASCAL train pairs come from: the SBD aug list where present."""
    for name in PASCAL_TRAIN_LISTS:
        if (root / PASCAL_IMAGE_SETS / name).is_file():
            return f"{PASCAL_IMAGE_SETS}/{name}"
    return f"{PASCAL_IMAGE_SETS}/{PASCAL_TRAIN_LISTS[-1]}"


def coco_image(stem: str) -> str:
    """``COCO_val2014_000000000042`` -> ``val2014/COCO_val2014_000000000042.jpg``."""
    return f"{stem.split('_')[1]}/{stem}.jpg"


def split_files(dataset: str, split: str, fold: int, folder: Path) -> list[str]:
    """The split lists a run reads from ``folder`` (see vpi.data.splits for the format)."""
    if dataset == "fss":
        return [{"train": "trn.txt", "val": "val.txt"}.get(split, "test.txt")]
    kind = "trn" if split == "train" else "val"
    if dataset == "coco" and (folder / kind / f"fold{fold}.pkl").is_file():
        return [f"{kind}/fold{fold}.pkl"]
    folds = [j for j in range(4) if j != fold] if split == "train" else [fold]
    return [f"{kind}/fold{j}.txt" for j in folds]


def check_layout(
    dataset: str,
    root: str | Path | None,
    *,
    split: str,
    fold: int = 0,
    splits: str | Path | None = None,
) -> Path:
    """Check the dataset folder, its fixed entries and the split lists; return the root.

    Split lines are checked next by ``check_split_lines`` once the lists are read.
    """
    name = NAMES[dataset]
    if root is None:
        raise DataError(f"{name}: no dataset folder given; set data.root to {_ROOT_HINT[dataset]}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{name}: dataset folder {path} does not exist ({_ROOT_HINT[dataset]})")
    for what, rel in _fixed_entries(dataset, split, path, built=splits is None):
        if not (path / rel).exists():
            raise DataError(f"{name}: no {what} {rel} under {path}")
    if splits is not None:
        folder = resolve_split_dir(splits, dataset)
        if not folder.is_dir():
            raise DataError(f"{name}: split folder {folder} does not exist")
        for rel in split_files(dataset, split, fold, folder):
            if not (folder / rel).is_file():
                kind = rel.split("/")[0]
                alt = f" (nor HSNet's {kind}/fold{fold}.pkl)" if dataset == "coco" else ""
                raise DataError(f"{name}: no split list {rel}{alt} under {folder}")
    return path


def _fixed_entries(dataset: str, split: str, root: Path, built: bool) -> list[tuple[str, str]]:
    if dataset == "pascal":
        entries = [("image folder", PASCAL_IMAGES), ("mask folder", PASCAL_MASKS)]
        if built:  # val.txt is needed for train too: built train pairs leave val images out
            entries.append(("image list", f"{PASCAL_IMAGE_SETS}/val.txt"))
            if split == "train":
                entries.append(("image list", pascal_train_list(root)))
        return entries
    if dataset == "coco":
        image_set = COCO_IMAGE_SETS[split]
        return [("image folder", image_set), ("annotation file", coco_annotation_file(image_set))]
    return []


class _Listing:
    """Existence tests answered from one ``os.listdir`` per folder (fast on 100k files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folders: dict[str, set[str]] = {}

    def has(self, rel: str) -> bool:
        folder, _, name = rel.rpartition("/")
        if folder not in self.folders:
            try:
                self.folders[folder] = set(os.listdir(self.root / folder))
            except (FileNotFoundError, NotADirectoryError):
                self.folders[folder] = set()
        return name in self.folders[folder]


def check_split_lines(dataset: str, root: Path, entries: Iterable[tuple[str, Line]]) -> None:
    """Every image (and mask) that a split line names must exist under ``root``.

    ``entries`` are (image stem, line) for PASCAL-5i and COCO-20i (stems already checked to be
    COCO 2014 names).
    """
    listing = _Listing(root)
    seen: set[str] = set()
    for stem, line in entries:
        if stem in seen:
            continue
        seen.add(stem)
        if dataset == "pascal":
            files = [("image", f"{PASCAL_IMAGES}/{stem}.jpg"),
                     ("mask", f"{PASCAL_MASKS}/{stem}.png")]
        else:
            files = [("image", coco_image(stem))]
        for what, rel in files:
            if not listing.has(rel):
                raise DataError(
                    f"{NAMES[dataset]}: no {what} {rel} for split line {line.text!r} "
                    f"({line.where}) under {root}"
                )


def fss_class_images(root: Path, line: Line) -> list[str]:
    """The image stems of one FSS-1000 class folder (``1``, ``2``, ...), each with its mask."""
    folder = root / line.text
    if not folder.is_dir():
        raise DataError(
            f"FSS-1000: no class folder {line.text}/ for split line {line.text!r} ({line.where}) "
            f"under {root}"
        )
    names = set(os.listdir(folder))
    stems = sorted(
        (n[:-4] for n in names if n.endswith(".jpg")),
        key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s),
    )
    for stem in stems:
        if f"{stem}.png" not in names:
            raise DataError(f"FSS-1000: no mask {line.text}/{stem}.png for image "
                            f"{line.text}/{stem}.jpg ({line.where}) under {root}")
    if len(stems) < 2:
        raise DataError(
            f"FSS-1000: class folder {line.text}/ ({line.where}) under {root} holds "
            f"{len(stems)} image(s); an episode needs a query and another image as support"
        )
    return stems
