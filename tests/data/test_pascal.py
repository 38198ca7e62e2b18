"""PASCAL-5i from a tiny VOC2012 tree: folds, built and HSNet lists, the test protocol."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import (
    HEIGHT,
    VOC_TRAIN,
    VOC_VAL,
    WIDTH,
    label_map,
    make_voc_splits,
    voc_fold_pairs,
    write_lines,
)
from PIL import Image

from vpi.config import DataConfig
from vpi.data import IGNORE_INDEX, build_episodes
from vpi.data.pascal import PascalEpisodes, build_pascal, fold_classes, fold_pairs
from vpi.errors import DataError


def _data(root: Path, **kwargs) -> DataConfig:
    return DataConfig(dataset="pascal", root=str(root), image_size=32, **kwargs)


def _test_set(root: Path, episodes: int = 12, shots: int = 1, **kwargs) -> PascalEpisodes:
    return build_pascal(_data(root, **kwargs), "test", shots=shots, episodes=episodes, seed=0,
                        augment=False)


def test_fold_classes_are_five_consecutive_voc_classes() -> None:
    assert fold_classes(0) == [1, 2, 3, 4, 5]
    assert fold_classes(1) == [6, 7, 8, 9, 10]
    assert fold_classes(2) == [11, 12, 13, 14, 15]
    assert fold_classes(3) == [16, 17, 18, 19, 20]
    with pytest.raises(ValueError, match="0..3"):
        fold_classes(4)


def test_built_test_split_walks_val_pairs_of_the_fold_in_order(voc: Path) -> None:
    dataset = _test_set(voc)
    assert dataset.class_ids == [1, 2, 3]
    assert dataset.class_names == {1: "aeroplane", 2: "bicycle", 3: "bird"}
    expected = voc_fold_pairs(VOC_VAL, 0)
    assert len(dataset) == 12
    for i in range(len(dataset)):
        keys = dataset.episode_keys(i)
        assert f"{keys.query}__{keys.class_id:02d}" == expected[i % len(expected)]


def test_built_train_split_holds_the_other_folds_pairs(voc: Path) -> None:
    dataset = build_pascal(_data(voc), "train", shots=1, episodes=20, seed=3, augment=False)
    assert dataset.class_ids == [6, 11, 16]
    pairs = sorted(f"{s}__{c:02d}" for s, c in dataset.pairs)
    assert pairs == sorted(sum((voc_fold_pairs(VOC_TRAIN, f) for f in (1, 2, 3)), []))


def test_supports_never_include_the_query(voc: Path) -> None:
    dataset = _test_set(voc, episodes=40)
    for i in range(len(dataset)):
        keys = dataset.episode_keys(i)
        assert keys.query not in keys.supports
        assert all(s in dataset.images[keys.class_id] for s in keys.supports)


def test_more_shots_than_other_images_repeat_supports_but_never_the_query(voc: Path) -> None:
    dataset = _test_set(voc, shots=3)
    keys = dataset.episode_keys(0)
    assert len(keys.supports) == 3 and keys.query not in keys.supports


def test_same_seed_gives_the_same_episodes_and_items_are_independent(voc: Path) -> None:
    a, b = _test_set(voc, shots=2), _test_set(voc, shots=2)
    assert [a.episode_keys(i) for i in range(12)] == [b.episode_keys(i) for i in range(12)]
    first, again = a[5], b[5]
    assert torch.equal(first.support_images, again.support_images)
    assert torch.equal(first.query_mask, again.query_mask)


def test_episode_tensors_and_ignore_pixels(voc: Path) -> None:
    dataset = _test_set(voc, shots=2)
    episode = dataset[0]  # query 2008_000001, class 1 (band 0), class 6 in band 1
    assert episode.support_images.shape == (2, 3, 32, 32)
    assert episode.support_images.dtype == torch.float32
    assert episode.support_masks.shape == (2, 1, 32, 32)
    assert set(episode.support_masks.unique().tolist()) <= {0.0, 1.0}
    assert episode.query_image.shape == (3, 32, 32)
    assert episode.query_mask.dtype == torch.int64
    assert set(episode.query_mask.unique().tolist()) == {0, 1, IGNORE_INDEX}
    assert episode.class_id == 1


def test_original_query_mask_is_the_stored_mask_of_the_episode_class(voc: Path) -> None:
    dataset = _test_set(voc)
    mask = dataset.original_query_mask(0)  # 2008_000001, class 1
    assert mask.shape == (HEIGHT, WIDTH) and mask.dtype == torch.int64
    stored = label_map(VOC_VAL["2008_000001"], ring=True)
    expected = np.where(stored == 255, 255, stored == 1).astype(np.int64)
    assert torch.equal(mask, torch.from_numpy(expected))  # class 6 counts as background


def test_hsnet_split_files_with_crlf_give_the_built_episodes(voc: Path, tmp_path: Path) -> None:
    splits = make_voc_splits(tmp_path / "splits", crlf=True)
    from_files = _test_set(voc, splits=str(splits))
    built = _test_set(voc)
    assert from_files.pairs == built.pairs
    assert [from_files.episode_keys(i) for i in range(12)] == [
        built.episode_keys(i) for i in range(12)
    ]


def test_split_line_of_a_class_outside_its_fold_is_refused(voc: Path, tmp_path: Path) -> None:
    splits = make_voc_splits(tmp_path / "splits")
    write_lines(splits / "pascal" / "val" / "fold0.txt", ["2008_000001__06"])
    with pytest.raises(DataError, match=r"'2008_000001__06' \(val/fold0.txt:1\) names class 6"):
        _test_set(voc, splits=str(splits))


def test_sbd_aug_list_is_preferred_and_val_images_left_out(voc: Path) -> None:
    write_lines(voc / "ImageSets/Segmentation/train_aug.txt",
                ["/JPEGImages/2007_000001.jpg /SegmentationClassAug/2007_000001.png",
                 "2007_000002", "2008_000001"])
    pairs = [(p.stem, p.label) for f in range(4) for p in fold_pairs(voc, None, "trn", f)]
    assert pairs == [("2007_000001", 6), ("2007_000002", 6), ("2007_000002", 11)]


def test_class_with_one_image_cannot_make_an_episode(voc: Path) -> None:
    with pytest.raises(DataError, match=r"class 6 \(bus\) has a single image"):
        _test_set(voc, fold=1)


def test_augmented_training_items_keep_shapes_and_labels(voc: Path) -> None:
    dataset = build_episodes(_data(voc), "train", shots=2, episodes=6, seed=1, augment=True)
    for i in range(len(dataset)):
        episode = dataset[i]
        assert episode.support_images.shape == (2, 3, 32, 32)
        assert set(episode.query_mask.unique().tolist()) <= {0, 1, IGNORE_INDEX}
        assert set(episode.support_masks.unique().tolist()) <= {0.0, 1.0}


def test_colour_masks_are_refused_with_their_path(voc: Path) -> None:
    path = voc / "SegmentationClassAug" / "2008_000002.png"
    Image.open(path).convert("RGB").save(path)
    with pytest.raises(DataError, match=r"2008_000002.png is stored as RGB; expected one value"):
        _test_set(voc)


def test_datasets_pickle_for_dataloader_workers(voc: Path) -> None:
    dataset = _test_set(voc)
    clone = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(clone[2].query_image, dataset[2].query_image)
