"""COCO-20i from a tiny COCO 2014 tree with a real instances json (polygons and crowd RLE)."""

from __future__ import annotations

import json
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import CROWD_ROWS, HEIGHT, WIDTH, band, write_lines

from vpi.config import DataConfig
from vpi.data.coco import CATEGORIES, CLASS_NAMES, CocoEpisodes, build_coco, fold_classes
from vpi.errors import DataError


def _build(root: Path, split: str = "test", episodes: int = 30, **kwargs) -> CocoEpisodes:
    data = DataConfig(dataset="coco", root=str(root), image_size=32, **kwargs)
    return build_coco(data, split, shots=1, episodes=episodes, seed=0, augment=False)


def test_interleaved_folds_take_every_fourth_class() -> None:
    for fold in range(4):
        assert fold_classes(fold) == list(range(fold, 80, 4))
        assert fold_classes(fold, "interleaved") == [4 * v + fold for v in range(20)]


def test_consecutive_folds_take_twenty_in_a_row() -> None:
    for fold in range(4):
        assert fold_classes(fold, "consecutive") == list(range(20 * fold, 20 * fold + 20))


def test_folds_partition_the_80_classes_under_both_conventions() -> None:
    for convention in ("interleaved", "consecutive"):
        classes = sorted(c for fold in range(4) for c in fold_classes(fold, convention))
        assert classes == list(range(80))
    with pytest.raises(ValueError, match="coco convention"):
        fold_classes(0, "random")


def test_category_table_is_cocos_80_with_contiguous_ids() -> None:
    assert len(CATEGORIES) == 80 == len({cat for cat, _ in CATEGORIES})
    assert CATEGORIES[0] == (1, "person") and CATEGORIES[-1] == (90, "toothbrush")
    assert CLASS_NAMES[16] == "dog" and CATEGORIES[16][0] == 18


def test_test_split_holds_the_folds_classes_present_in_val(coco: Path) -> None:
    interleaved = _build(coco)
    assert interleaved.class_ids == [0, 4, 16]
    assert interleaved.class_names == {0: "person", 4: "airplane", 16: "dog"}
    consecutive = _build(coco, coco_split="consecutive")
    assert consecutive.class_ids == [0, 1, 2, 4, 16]


def test_train_split_reads_train2014_other_classes(coco: Path) -> None:
    dataset = _build(coco, "train")
    assert dataset.class_ids == [1, 2]  # person (0) is fold 0's: left out of training
    assert all(key.startswith("COCO_train2014_") for key, _ in dataset.pairs)


def test_episodes_sample_a_class_then_a_query_and_never_reuse_it(coco: Path) -> None:
    dataset = _build(coco, episodes=60)
    seen = set()
    for i in range(len(dataset)):
        keys = dataset.episode_keys(i)
        assert keys.query in dataset.images[keys.class_id]
        assert keys.query not in keys.supports
        assert keys.supports[0] in dataset.images[keys.class_id]
        seen.add(keys.class_id)
    assert seen == {0, 4, 16}
    again = _build(coco, episodes=60)
    assert [again.episode_keys(i) for i in range(60)] == [
        dataset.episode_keys(i) for i in range(60)
    ]


def test_masks_are_merged_per_class_cached_and_include_crowd(coco: Path) -> None:
    dataset = _build(coco)
    cached = coco / "vpi_cache" / "masks" / "val2014" / "COCO_val2014_000000000001__01.png"
    assert cached.is_file()
    index = next(i for i in range(len(dataset))
                 if dataset.episode_keys(i).query == "COCO_val2014_000000000001")
    mask = dataset.original_query_mask(index).numpy()
    assert mask.shape == (HEIGHT, WIDTH)
    rows, cols = band(0)
    inner = mask[rows.start + 1:rows.stop - 1, cols.start + 1:cols.stop - 1]
    assert inner.all()  # the two polygons of the person merged into one region
    assert mask[CROWD_ROWS, 2:20].all()  # the crowd region counts
    rows1, cols1 = band(1)
    assert not mask[rows1.start:CROWD_ROWS.start, cols1].any()  # the bicycle does not
    assert set(np.unique(mask)) == {0, 1}


def test_cached_masks_are_reused_without_pycocotools(coco: Path, monkeypatch) -> None:
    _build(coco)
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    dataset = _build(coco)  # pairs list and masks come from vpi_cache/
    assert dataset[0].query_mask.shape == (32, 32)


def test_missing_pycocotools_says_what_to_install(coco: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(DataError, match=r"^COCO-20i needs pycocotools: install vpi\[coco\]$"):
        _build(coco)


def test_episode_tensors(coco: Path) -> None:
    episode = _build(coco)[3]
    assert episode.support_images.shape == (1, 3, 32, 32)
    assert episode.support_masks.shape == (1, 1, 32, 32)
    assert episode.query_mask.dtype == torch.int64
    assert episode.class_id in (0, 4, 16)


def test_text_split_lists_with_crlf(coco: Path, tmp_path: Path) -> None:
    lines = ["COCO_val2014_000000000005__17", "COCO_val2014_000000000006__17"]
    write_lines(tmp_path / "splits" / "coco" / "val" / "fold0.txt", lines, crlf=True)
    dataset = _build(coco, splits=str(tmp_path / "splits"))
    assert dataset.class_ids == [16]
    assert dataset.pairs == [("COCO_val2014_000000000005", 16), ("COCO_val2014_000000000006", 16)]


def test_text_list_with_another_conventions_class_is_refused(coco: Path, tmp_path: Path) -> None:
    write_lines(tmp_path / "s" / "val" / "fold0.txt", ["COCO_val2014_000000000007__02"])
    with pytest.raises(DataError, match=r"\(val/fold0.txt:1\) names class 2 \(index 1\)"):
        _build(coco, splits=str(tmp_path / "s"))


def test_hsnet_pickle_lists_are_read_and_other_classes_skipped(coco: Path, tmp_path: Path) -> None:
    first, second = "val2014/COCO_val2014_000000000001.jpg", "val2014/COCO_val2014_000000000002.jpg"
    classwise = {0: [first, second], 1: [first]}
    (tmp_path / "splits" / "coco" / "val").mkdir(parents=True)
    (tmp_path / "splits" / "coco" / "val" / "fold0.pkl").write_bytes(pickle.dumps(classwise))
    dataset = _build(coco, splits=str(tmp_path / "splits"))
    assert dataset.class_ids == [0]


def test_split_line_of_the_other_image_set_is_refused(coco: Path, tmp_path: Path) -> None:
    write_lines(tmp_path / "s" / "val" / "fold0.txt", ["COCO_train2014_000000000014__01"])
    with pytest.raises(DataError, match="does not name a val2014 image"):
        _build(coco, splits=str(tmp_path / "s"))


def test_pair_without_annotation_is_named(coco: Path, tmp_path: Path) -> None:
    write_lines(tmp_path / "s" / "val" / "fold0.txt",
                ["COCO_val2014_000000000003__01", "COCO_val2014_000000000002__01"])
    with pytest.raises(DataError, match=r"000000000003 has no 'person' annotation"):
        _build(coco, splits=str(tmp_path / "s"))


def test_unknown_category_in_annotations_is_refused(coco: Path) -> None:
    path = coco / "annotations" / "instances_val2014.json"
    doc = json.loads(path.read_text())
    doc["annotations"][0]["category_id"] = 12  # a gap in COCO's ids
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"uses category id\(s\) \[12\], not among COCO's 80"):
        _build(coco)


def test_fold_without_any_pair_says_which_lists(coco: Path) -> None:
    with pytest.raises(DataError, match=r"^COCO-20i: no \(image, class\) pair in the test lists of "
                                        rf"interleaved fold 3 under {re.escape(str(coco))}$"):
        _build(coco, fold=3)
