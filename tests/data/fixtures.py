"""Tiny copies of the three benchmarks in their real on-disk formats, written into tmp_path.

Images are 40x32. Class k of an image fills the k-th vertical band, so every mask is known
exactly; PASCAL masks carry a 255 ring around each object like VOC's boundaries.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 40, 32

# PASCAL-5i: fold 0 tests classes 1..5, so test has classes 1, 2, 3 (two images each) and
# training (folds 1-3) has 6, 11, 16 (two images each).
VOC_VAL = {
    "2008_000001": [1, 6],
    "2008_000002": [1],
    "2008_000003": [2, 3],
    "2008_000004": [2],
    "2008_000005": [3, 11],
}
VOC_TRAIN = {
    "2007_000001": [6],
    "2007_000002": [6, 11],
    "2007_000003": [11, 16],
    "2007_000004": [16, 1],
    "2007_000005": [1],
}

# COCO-20i, COCO category ids: 1 person (index 0), 2 bicycle (1), 3 car (2), 5 airplane (4),
# 18 dog (16). Interleaved fold 0 tests indices 0, 4, 16; consecutive fold 0 tests 0..19.
COCO_IMAGES = {
    "val2014": {
        "COCO_val2014_000000000001": [1, 2],
        "COCO_val2014_000000000002": [1],
        "COCO_val2014_000000000003": [5],
        "COCO_val2014_000000000004": [5, 3],
        "COCO_val2014_000000000005": [18],
        "COCO_val2014_000000000006": [18],
        "COCO_val2014_000000000007": [2, 3],
    },
    "train2014": {
        "COCO_train2014_000000000011": [2, 3],
        "COCO_train2014_000000000012": [2],
        "COCO_train2014_000000000013": [3, 1],
        "COCO_train2014_000000000014": [1],
    },
}
COCO_NAMES = {1: "person", 2: "bicycle", 3: "car", 5: "airplane", 18: "dog"}
CROWD_ROWS = slice(26, 30)  # the crowd region added to the first class of every COCO image

FSS_CLASSES = ["abacus", "banana", "cactus", "drum", "eagle", "fig", "guitar", "harp"]
FSS_IMAGES = 3


def band(index: int) -> tuple[slice, slice]:
    """Rows and columns of the ``index``-th object band."""
    x0 = 2 + 12 * index
    return slice(6, 26), slice(x0 + 1, x0 + 9)


def label_map(classes: Sequence[int], ring: bool = False) -> np.ndarray:
    """(H, W) uint8: class k of ``classes`` in band k, optionally ringed by 255, 0 elsewhere."""
    label = np.zeros((HEIGHT, WIDTH), np.uint8)
    for index, class_id in enumerate(classes):
        rows, cols = band(index)
        if ring:
            label[rows.start - 1:rows.stop + 1, cols.start - 1:cols.stop + 1] = 255
        label[rows, cols] = class_id
    return label


def _write_image(path: Path, label: np.ndarray) -> None:
    """A JPEG whose colours follow the label map (plus noise), so images differ."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    value = label.astype(np.int64)
    base = np.stack([value * 7 % 256, value * 53 % 256, 255 - value * 11 % 256], -1)
    pixels = np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def write_lines(path: Path, lines: Sequence[str], crlf: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{ln}{chr(13) if crlf else ''}\n" for ln in lines).encode())
    return path


def make_voc(root: Path) -> Path:
    """A VOC2012 tree: JPEGImages/, palette PNGs in SegmentationClassAug/, ImageSets lists."""
    palette = [v for i in range(256) for v in (i * 37 % 256, i * 91 % 256, i * 13 % 256)]
    for stem, classes in {**VOC_VAL, **VOC_TRAIN}.items():
        label = label_map(classes, ring=True)
        _write_image(root / "JPEGImages" / f"{stem}.jpg", label)
        mask = Image.fromarray(label)
        mask.putpalette(palette)  # VOC masks are palette images: values are the indices
        (root / "SegmentationClassAug").mkdir(parents=True, exist_ok=True)
        mask.save(root / "SegmentationClassAug" / f"{stem}.png")
    write_lines(root / "ImageSets/Segmentation/val.txt", list(VOC_VAL))
    write_lines(root / "ImageSets/Segmentation/train.txt", list(VOC_TRAIN))
    return root


def voc_fold_pairs(images: Mapping[str, list[int]], fold: int) -> list[str]:
    """HSNet lines of ``images`` for fold ``fold``'s classes, sorted (the built order)."""
    classes = range(5 * fold + 1, 5 * fold + 6)
    return sorted(f"{s}__{c:02d}" for s, cs in images.items() for c in cs if c in classes)


def make_voc_splits(folder: Path, crlf: bool = True) -> Path:
    """HSNet's ``splits/pascal/{trn,val}/fold{i}.txt`` for the VOC fixture (CRLF endings)."""
    for fold in range(4):
        for kind, images in (("trn", VOC_TRAIN), ("val", VOC_VAL)):
            path = folder / "pascal" / kind / f"fold{fold}.txt"
            write_lines(path, voc_fold_pairs(images, fold), crlf)
    return folder


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's crowd encoding: run lengths of the column-major mask, starting with zeros."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"counts": runs, "size": [HEIGHT, WIDTH]}


def make_coco(root: Path) -> Path:
    """A COCO 2014 tree with a real instances json per image set.

    Each class of an image is two polygons (top and bottom halves of its band); the image's first
    class also gets a crowd region (uncompressed RLE) along the bottom rows.
    """
    for image_set, images in COCO_IMAGES.items():
        doc: dict = {"images": [], "annotations": [], "categories": [
            {"id": cid, "name": name, "supercategory": "thing"} for cid, name in COCO_NAMES.items()
        ]}
        for stem, categories in images.items():
            image_id = int(stem.rsplit("_", 1)[1])
            doc["images"].append(
                {"id": image_id, "file_name": f"{stem}.jpg", "height": HEIGHT, "width": WIDTH}
            )
            _write_image(root / image_set / f"{stem}.jpg", label_map(categories))
            for index, category in enumerate(categories):
                rows, cols = band(index)
                x0, x1 = cols.start, cols.stop
                for y0, y1 in ((rows.start, 16), (16, rows.stop)):
                    doc["annotations"].append({
                        "id": len(doc["annotations"]) + 1, "image_id": image_id,
                        "category_id": category, "iscrowd": 0, "area": (x1 - x0) * (y1 - y0),
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
                    })
            crowd = np.zeros((HEIGHT, WIDTH), np.uint8)
            crowd[CROWD_ROWS, 2:20] = 1
            doc["annotations"].append({
                "id": len(doc["annotations"]) + 1, "image_id": image_id,
                "category_id": categories[0], "iscrowd": 1, "area": int(crowd.sum()),
                "bbox": [2, CROWD_ROWS.start, 18, 4], "segmentation": _uncompressed_rle(crowd),
            })
        path = root / "annotations" / f"instances_{image_set}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
    return root


def make_fss(root: Path, classes: Sequence[str] = FSS_CLASSES, images: int = FSS_IMAGES) -> Path:
    """One folder per class, ``1.jpg`` .. with ``1.png`` masks.

    Masks hold 255 in band 0 (foreground), 200 in band 1 (foreground: >= 128) and 100 in band 2
    (background: < 128). The first class stores its masks as RGB, as some real ones are.
    """
    for c, name in enumerate(classes):
        for i in range(1, images + 1):
            grey = np.zeros((HEIGHT, WIDTH), np.uint8)
            for index, value in enumerate((255, 200, 100)):
                grey[band(index)] = value
            _write_image(root / name / f"{i}.jpg", (grey > 0).astype(np.uint8) * (c + i))
            mask = Image.fromarray(grey)
            (mask.convert("RGB") if c == 0 else mask).save(root / name / f"{i}.png")
    return root


def fss_foreground() -> np.ndarray:
    """The binary mask every fixture FSS image has: bands 0 and 1."""
    return np.isin(label_map([1, 2, 3]), [1, 2]).astype(np.int64)
