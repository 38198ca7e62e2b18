"""COCO-20i from the user's COCO 2014 folder (``train2014/``, ``val2014/``, ``annotations/``).

Class ids are the contiguous index 0..79 of COCO's category ids in ascending order (split lines
and cached masks use index + 1). Two fold conventions (``data.coco_split``): "interleaved" (FWB,
HSNet, PFENet/BAM ``use_split_coco``) tests {c : c mod 4 == fold}; "consecutive" (PANet) tests
20*fold .. 20*fold+19. Train episodes read train2014, test episodes val2014.

A class's mask in an image is the union of all its instance masks (crowd regions included),
rendered with pycocotools on first use and cached as 0/1 PNGs under ``<root>/vpi_cache/`` (or a
per-user cache folder where the dataset folder is read-only); delete the folder to rebuild.
Without ``data.splits`` the pairs are every (image, class) with at least one annotation, cached
as ``vpi_cache/pairs_<set>.txt``. Episodes pick a class uniformly, then a query image of it
uniformly (HSNet), for training and test alike.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vpi.config import DataConfig
from vpi.data.layout import check_split_lines, dataset_root, require_entries, require_split_lists
from vpi.data.sampler import EpisodeSampler, progress
from vpi.data.splits import (
    Pair,
    fold_list_files,
    format_pair,
    read_pair_list,
    read_pair_pickle,
    resolve_split_dir,
)
from vpi.errors import DataError

NAME = "COCO-20i"
IMAGE_SETS = {"train": "train2014", "test": "val2014"}  # the image set each split reads
_ROOT_HINT = "the COCO 2014 folder holding train2014/, val2014/ and annotations/"
# COCO's 80 category ids (1..90 with gaps) and names; the position is the contiguous class id.
CATEGORIES: tuple[tuple[int, str], ...] = tuple(zip(
    [*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
     *range(72, 83), *range(84, 91)],
    "person|bicycle|car|motorcycle|airplane|bus|train|truck|boat|traffic light|fire hydrant|"
    "stop sign|parking meter|bench|bird|cat|dog|horse|sheep|cow|elephant|bear|zebra|giraffe|"
    "backpack|umbrella|handbag|tie|suitcase|frisbee|skis|snowboard|sports ball|kite|"
    "baseball bat|baseball glove|skateboard|surfboard|tennis racket|bottle|wine glass|cup|fork|"
    "knife|spoon|bowl|banana|apple|sandwich|orange|broccoli|carrot|hot dog|pizza|donut|cake|"
    "chair|couch|potted plant|bed|dining table|toilet|tv|laptop|mouse|remote|keyboard|"
    "cell phone|microwave|oven|toaster|sink|refrigerator|book|clock|vase|scissors|teddy bear|"
    "hair drier|toothbrush".split("|"),
    strict=True,
))
CLASS_NAMES = {index: name for index, (_, name) in enumerate(CATEGORIES)}
_LABELS = {category: index + 1 for index, (category, _) in enumerate(CATEGORIES)}  # line labels
CONVENTIONS = ("interleaved", "consecutive")


def fold_classes(fold: int, convention: str = "interleaved") -> list[int]:
    """The contiguous class ids (0..79) that COCO-20i fold ``fold`` tests under ``convention``."""
    if fold not in range(4):
        raise ValueError(f"fold must lie in 0..3, got {fold}")
    if convention == "interleaved":
        return [c for c in range(80) if c % 4 == fold]
    if convention == "consecutive":
        return list(range(20 * fold, 20 * fold + 20))
    raise ValueError(f"coco convention must be one of {CONVENTIONS}, got {convention!r}")


def split_classes(split: str, fold: int, convention: str) -> list[int]:
    """Test: the fold's 20 classes; train: the other 60."""
    tested = fold_classes(fold, convention)
    return tested if split == "test" else [c for c in range(80) if c not in tested]


def annotation_file(image_set: str) -> str:
    return f"annotations/instances_{image_set}.json"


def image_file(stem: str) -> str:
    """``COCO_val2014_000000000042`` -> ``val2014/COCO_val2014_000000000042.jpg``."""
    return f"{stem.split('_')[1]}/{stem}.jpg"


def split_files(split: str, fold: int, folder: Path) -> list[str]:
    """The lists a run on ``split`` of ``fold`` reads from ``folder``: HSNet's pickle where
    present, else the text lists (see vpi.data.splits)."""
    kind = "trn" if split == "train" else "val"
    if (folder / kind / f"fold{fold}.pkl").is_file():
        return [f"{kind}/fold{fold}.pkl"]
    return fold_list_files(split, fold)


def check_layout(
    root: str | Path | None, *, split: str, fold: int = 0, splits: str | Path | None = None
) -> Path:
    """The COCO folder, the image set and annotation file of ``split``, and the split lists a run
    on ``fold`` reads where ``splits`` is given; returns the root.

    The images that split lines name are checked next, once the lists are read.
    """
    path = dataset_root(NAME, root, _ROOT_HINT)
    image_set = IMAGE_SETS[split]
    require_entries(NAME, path, [("image folder", image_set),
                                 ("annotation file", annotation_file(image_set))])
    if splits is not None:
        folder = resolve_split_dir(splits, "coco")
        kind = "trn" if split == "train" else "val"
        require_split_lists(NAME, folder, split_files(split, fold, folder),
                            f" (nor HSNet's {kind}/fold{fold}.pkl)")
    return path


def _files(stem: str) -> list[tuple[str, str]]:
    """The image of one split line's image stem, under the root."""
    return [("image", image_file(stem))]


class CocoEpisodes(EpisodeSampler):
    """COCO-20i episodes; see ``EpisodeSampler`` for sampling and ``original_query_mask``."""

    name = NAME

    def __init__(self, root: Path, cache: Path, pairs: list[Pair], **kwargs: Any) -> None:
        self.cache = cache
        super().__init__(root, [(p.stem, p.label - 1) for p in pairs], class_names=CLASS_NAMES,
                         **kwargs)

    def image_path(self, key: str) -> Path:
        return self.root / image_file(key)

    def mask_path(self, key: str, class_id: int) -> Path:
        return _mask_file(self.cache, key, class_id + 1)

    def binary_mask(self, stored: np.ndarray, class_id: int) -> np.ndarray:
        return stored.astype(np.uint8)


def build_coco(
    data: DataConfig, split: str, *, shots: int, episodes: int, seed: int, augment: bool
) -> CocoEpisodes:
    """Train: the 60 other classes on train2014; test: fold ``data.fold``'s 20 on val2014.

    The first run renders the masks it needs into the cache (a progress bar shows it).
    """
    root = check_layout(data.root, split=split, fold=data.fold, splits=data.splits)
    annotations = _Annotations(root, IMAGE_SETS[split])
    pairs = split_pairs(root, data.splits, split, data.fold, data.coco_split, annotations)
    cache = cache_dir(root)
    cache_masks(cache, pairs, annotations)
    return CocoEpisodes(
        root, cache, pairs, split=f"{split} lists of {data.coco_split} fold {data.fold}",
        shots=shots, image_size=data.image_size, length=episodes, seed=seed, augment=augment,
        sampling="class",
    )


def cache_dir(root: Path) -> Path:
    """``<root>/vpi_cache`` where the dataset folder is writable, else one under ~/.cache/vpi."""
    local = root / "vpi_cache"
    if local.is_dir() or os.access(root, os.W_OK):
        return local
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vpi" / f"coco-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]}"


class _Annotations:
    """One image set's instance annotations, loaded on first need (they take GBs for train)."""

    def __init__(self, root: Path, image_set: str) -> None:
        self.root, self.image_set = root, image_set
        self._coco: Any = None

    @property
    def file(self) -> str:
        return annotation_file(self.image_set)

    def get(self) -> Any:
        if self._coco is None:
            try:
                from pycocotools.coco import COCO
            except ImportError:
                raise DataError("COCO-20i needs pycocotools: install vpi[coco]") from None
            with redirect_stdout(io.StringIO()):  # pycocotools prints its timings
                self._coco = COCO(str(self.root / self.file))
        return self._coco


def split_pairs(
    root: Path,
    splits: str | None,
    split: str,
    fold: int,
    convention: str,
    annotations: _Annotations | None = None,
) -> list[Pair]:
    """The split's pairs: read from ``splits``, or built from (and cached beside) the annotations.

    Every line is checked to name an existing image of the split's image set.
    """
    image_set = IMAGE_SETS[split]
    classes = set(split_classes(split, fold, convention))
    if splits is None:
        listed = cache_dir(root) / f"pairs_{image_set}.txt"
        if not listed.is_file():
            annotations = annotations or _Annotations(root, image_set)
            coco = annotations.get()
            unknown = {a["category_id"] for a in coco.anns.values()} - set(_LABELS)
            if unknown:
                raise DataError(f"COCO-20i: {annotations.file} under {root} uses category id(s) "
                                f"{sorted(unknown)}, not among COCO's 80")
            found = {
                (Path(coco.imgs[a["image_id"]]["file_name"]).stem, _LABELS[a["category_id"]])
                for a in coco.anns.values()
            }
            _write_atomic(listed, "".join(f"{format_pair(*p)}\n" for p in sorted(found)))
        pairs = [p for p in read_pair_list(listed, str(listed)) if p.label - 1 in classes]
    else:
        pairs = _read_lists(resolve_split_dir(splits, "coco"), split, fold, convention, classes)
    stem = re.compile(rf"COCO_{image_set}_\d+")
    for pair in pairs:
        if stem.fullmatch(pair.stem) is None:
            raise DataError(
                f"COCO-20i: split line {pair.line.text!r} ({pair.line.where}) does not name a "
                f"{image_set} image (COCO_{image_set}_<id>); {split} episodes read {image_set}"
            )
    check_split_lines(NAME, root, [(p.stem, p.line) for p in pairs], _files)
    return pairs


def _read_lists(
    folder: Path, split: str, fold: int, convention: str, classes: set[int]
) -> list[Pair]:
    """HSNet's pickle (other classes skipped: it may list all 80) or the per-fold text lists."""
    pairs = []
    for rel in split_files(split, fold, folder):
        if rel.endswith(".pkl"):
            return [p for p in read_pair_pickle(folder / rel, rel) if p.label - 1 in classes]
        listed = int(rel[rel.index("fold") + 4])
        tested = fold_classes(listed, convention)
        for pair in read_pair_list(folder / rel, rel):
            if pair.label - 1 not in tested:
                raise DataError(
                    f"COCO-20i: split line {pair.line.text!r} ({pair.line.where}) names class "
                    f"{pair.label} (index {pair.label - 1}), not one of fold {listed}'s "
                    f"{convention} classes; check data.coco_split"
                )
            pairs.append(pair)
    return pairs


def _mask_file(cache: Path, stem: str, label: int) -> Path:
    return cache / "masks" / stem.split("_")[1] / f"{format_pair(stem, label)}.png"


def cache_masks(cache: Path, pairs: list[Pair], annotations: _Annotations) -> None:
    """Render the masks of ``pairs`` not cached yet (loads the annotations only if any)."""
    todo = sorted({(p.stem, p.label): p for p in pairs
                   if not _mask_file(cache, p.stem, p.label).is_file()}.values(),
                  key=lambda p: (p.stem, p.label))
    if not todo:
        return
    coco = annotations.get()
    ids = {Path(img["file_name"]).stem: img_id for img_id, img in coco.imgs.items()}
    with warnings.catch_warnings():  # pycocotools' decode warns about numpy 2's copy keyword
        warnings.simplefilter("ignore", DeprecationWarning)
        for pair in progress(todo, f"COCO-20i: caching {len(todo)} masks"):
            _render(coco, ids, cache, pair, annotations.file)


def _render(coco: Any, ids: dict[str, int], cache: Path, pair: Pair, file: str) -> None:
    """One pair's mask: the union of its class's instance masks, crowd included, a 0/1 PNG."""
    where = f"split line {pair.line.text!r} ({pair.line.where})"
    if pair.stem not in ids:
        raise DataError(f"COCO-20i: {where}: no image {pair.stem} in {file}")
    category = CATEGORIES[pair.label - 1][0]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=ids[pair.stem], catIds=category, iscrowd=None))
    if not anns:
        raise DataError(f"COCO-20i: {where}: image {pair.stem} has no "
                        f"{CLASS_NAMES[pair.label - 1]!r} annotation in {file}")
    image = coco.imgs[ids[pair.stem]]
    mask = np.zeros((image["height"], image["width"]), np.uint8)
    for ann in anns:
        mask |= coco.annToMask(ann).astype(np.uint8)
    path = _mask_file(cache, pair.stem, pair.label)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    Image.fromarray(mask).save(tmp, format="PNG")
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    """Write beside and rename, so a crash or a second process never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def all_split_lists(data: DataConfig) -> dict[str, list[str]]:
    """Every list file (``{trn,val}/fold{j}.txt``) of the data the loader reads, by name.

    Writes text lists also where the source was HSNet's pickles: fold j's trn list is taken
    from the run that tests fold (j + 1) % 4, whose train classes include fold j's.
    """
    lists = {}
    for fold in range(4):
        tested = set(fold_classes(fold, data.coco_split))
        for split, kind, run_fold in (("test", "val", fold), ("train", "trn", (fold + 1) % 4)):
            root = check_layout(data.root, split=split, fold=run_fold, splits=data.splits)
            pairs = split_pairs(root, data.splits, split, run_fold, data.coco_split)
            lists[f"{kind}/fold{fold}.txt"] = [
                format_pair(p.stem, p.label) for p in pairs if p.label - 1 in tested
            ]
    return lists
