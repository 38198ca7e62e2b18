"""FSS-1000 from a tiny tree of class folders: split rule, test protocol, mask threshold."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from fixtures import FSS_CLASSES, FSS_IMAGES, fss_foreground, write_lines

from vpi.config import DataConfig
from vpi.data import build_episodes
from vpi.data.fss import FssEpisodes, build_fss, built_split_lists
from vpi.errors import DataError


def _build(root: Path, split: str = "test", **kwargs) -> FssEpisodes:
    data = DataConfig(dataset="fss", root=str(root), image_size=32, **kwargs)
    return build_fss(data, split, shots=2, episodes=1000, seed=0, augment=False)


def test_built_split_of_1000_classes_is_520_240_240_and_deterministic() -> None:
    names = [f"class{i:04d}" for i in range(1000)]
    lists = built_split_lists(names)
    assert [len(lists[k]) for k in ("trn", "val", "test")] == [520, 240, 240]
    assert sorted(sum(lists.values(), [])) == names
    assert built_split_lists(list(reversed(names))) == lists
    by_hash = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    assert lists["test"] == sorted(by_hash[:240])
    assert lists["val"] == sorted(by_hash[240:480])


def test_every_test_image_is_a_query_once_with_other_images_as_supports(fss: Path) -> None:
    dataset = _build(fss)
    test = built_split_lists(FSS_CLASSES)["test"]
    assert len(dataset) == len(test) * FSS_IMAGES  # `episodes` is ignored
    queries = [dataset.episode_keys(i).query for i in range(len(dataset))]
    assert queries == [f"{name}/{i}" for name in test for i in range(1, FSS_IMAGES + 1)]
    for i in range(len(dataset)):
        keys = dataset.episode_keys(i)
        assert keys.query not in keys.supports
        assert all(s.split("/")[0] == keys.query.split("/")[0] for s in keys.supports)


def test_class_ids_index_the_sorted_class_folders(fss: Path) -> None:
    dataset = _build(fss, split="train")
    trn = built_split_lists(FSS_CLASSES)["trn"]
    assert dataset.class_ids == [FSS_CLASSES.index(name) for name in trn]
    assert dataset.class_names == {FSS_CLASSES.index(name): name for name in trn}
    assert len(dataset) == 1000


def test_foreground_is_grey_value_128_and_above(fss: Path) -> None:
    dataset = _build(fss)
    expected = torch.from_numpy(fss_foreground())
    for i in range(len(dataset)):  # includes the class whose masks are stored as RGB
        assert torch.equal(dataset.original_query_mask(i), expected)
    episode = dataset[0]
    assert set(episode.query_mask.unique().tolist()) == {0, 1}
    assert episode.support_masks.shape == (2, 1, 32, 32)


def test_split_files_with_crlf_are_read(fss: Path, tmp_path: Path) -> None:
    write_lines(tmp_path / "splits" / "fss" / "test.txt", ["fig", "abacus"], crlf=True)
    dataset = _build(fss, splits=str(tmp_path / "splits"))
    assert dataset.class_ids == [0, 5]
    assert len(dataset) == 2 * FSS_IMAGES


def test_split_line_naming_a_nested_folder_is_refused(fss: Path, tmp_path: Path) -> None:
    (fss / "abacus" / "inner").mkdir()
    for name in ("1.jpg", "1.png", "2.jpg", "2.png"):
        (fss / "abacus" / "inner" / name).write_bytes((fss / "abacus" / name).read_bytes())
    write_lines(tmp_path / "splits" / "test.txt", ["abacus/inner"])
    with pytest.raises(DataError, match="is not a class folder directly under"):
        _build(fss, splits=str(tmp_path / "splits"))


def test_augmented_training_episodes_through_build_episodes(fss: Path) -> None:
    data = DataConfig(dataset="fss", root=str(fss), image_size=32)
    dataset = build_episodes(data, "train", shots=1, episodes=5, seed=2, augment=True)
    episode = dataset[4]
    assert episode.query_image.shape == (3, 32, 32)
    assert set(episode.query_mask.unique().tolist()) <= {0, 1, 255}
