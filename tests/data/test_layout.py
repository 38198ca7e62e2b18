"""The layout check: one line naming exactly what is missing and where it was looked for."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fixtures import make_coco, make_fss, make_voc, make_voc_splits, write_lines

from vpi.config import DataConfig
from vpi.data import DATASETS, build_episodes
from vpi.errors import DataError


def _fails(message: str, dataset: str, root: Path | None, split: str = "test", **kwargs) -> None:
    data = DataConfig(dataset=dataset, root=None if root is None else str(root), image_size=32,
                      **kwargs)
    with pytest.raises(DataError) as info:
        build_episodes(data, split, shots=1, episodes=4, seed=0)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_no_root_given() -> None:
    with pytest.raises(DataError, match=r"^PASCAL-5i: no dataset folder given; set data.root"):
        DATASETS["pascal"].check_layout(None, split="test")


def test_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"^COCO-20i: dataset folder {re.escape(str(root))} "
                                        r"does not exist \(the COCO 2014 folder"):
        DATASETS["coco"].check_layout(root, split="test")


def test_missing_jpegimages(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    shutil.rmtree(root / "JPEGImages")
    _fails(f"PASCAL-5i: no image folder JPEGImages under {root}", "pascal", root)


def test_missing_segmentation_class_aug(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    shutil.rmtree(root / "SegmentationClassAug")
    _fails(f"PASCAL-5i: no mask folder SegmentationClassAug under {root}", "pascal", root)


def test_missing_image_list_when_lists_are_built(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    (root / "ImageSets/Segmentation/train.txt").unlink()
    _fails(f"PASCAL-5i: no image list ImageSets/Segmentation/train.txt under {root}",
           "pascal", root, split="train")


def test_missing_mask_for_a_split_line(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    splits = make_voc_splits(tmp_path / "splits")
    (root / "SegmentationClassAug" / "2008_000003.png").unlink()
    _fails(f"PASCAL-5i: no mask SegmentationClassAug/2008_000003.png for split line "
           f"'2008_000003__02' (val/fold0.txt:3) under {root}", "pascal", root,
           splits=str(splits))


def test_missing_image_for_a_line_of_a_built_list(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    (root / "JPEGImages" / "2008_000002.jpg").unlink()
    _fails(f"PASCAL-5i: no image JPEGImages/2008_000002.jpg for split line '2008_000002' "
           f"(val.txt:2) under {root}", "pascal", root)


def test_missing_split_list(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    splits = make_voc_splits(tmp_path / "splits")
    (splits / "pascal" / "trn" / "fold2.txt").unlink()
    _fails(f"PASCAL-5i: no split list trn/fold2.txt under {splits / 'pascal'}", "pascal", root,
           split="train", splits=str(splits))


def test_missing_split_folder(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    _fails(f"PASCAL-5i: split folder {tmp_path / 'nope'} does not exist", "pascal", root,
           splits=str(tmp_path / "nope"))


def test_missing_annotation_json(tmp_path: Path) -> None:
    root = make_coco(tmp_path / "coco")
    (root / "annotations" / "instances_val2014.json").unlink()
    _fails(f"COCO-20i: no annotation file annotations/instances_val2014.json under {root}",
           "coco", root)


def test_missing_coco_image_folder(tmp_path: Path) -> None:
    root = make_coco(tmp_path / "coco")
    shutil.rmtree(root / "train2014")
    _fails(f"COCO-20i: no image folder train2014 under {root}", "coco", root, split="train")


def test_missing_coco_image_of_a_split_line(tmp_path: Path) -> None:
    root = make_coco(tmp_path / "coco")
    write_lines(tmp_path / "s" / "val" / "fold0.txt",
                ["COCO_val2014_000000000001__01", "COCO_val2014_000000000099__01"], crlf=True)
    _fails(f"COCO-20i: no image val2014/COCO_val2014_000000000099.jpg for split line "
           f"'COCO_val2014_000000000099__01' (val/fold0.txt:2) under {root}", "coco", root,
           splits=str(tmp_path / "s"))


def test_missing_fss_class_folder(tmp_path: Path) -> None:
    root = make_fss(tmp_path / "fss")
    write_lines(tmp_path / "s" / "test.txt", ["abacus", "zither"])
    _fails(f"FSS-1000: no class folder zither/ for split line 'zither' (test.txt:2) under {root}",
           "fss", root, splits=str(tmp_path / "s"))


def test_fss_image_without_mask(tmp_path: Path) -> None:
    root = make_fss(tmp_path / "fss")
    (root / "drum" / "2.png").unlink()
    _fails(f"FSS-1000: no mask drum/2.png for image drum/2.jpg (built test list, entry 2) "
           f"under {root}", "fss", root)


def test_empty_fss_folder(tmp_path: Path) -> None:
    (tmp_path / "fss").mkdir()
    _fails(f"FSS-1000: no class folders (<class>/1.jpg, 1.png, ...) under {tmp_path / 'fss'}",
           "fss", tmp_path / "fss")


def test_missing_coco_split_list_names_both_forms(tmp_path: Path) -> None:
    root = make_coco(tmp_path / "coco")
    (tmp_path / "s").mkdir()
    _fails(f"COCO-20i: no split list trn/fold0.txt (nor HSNet's trn/fold1.pkl) under "
           f"{tmp_path / 's'}", "coco", root, split="train", fold=1, splits=str(tmp_path / "s"))
