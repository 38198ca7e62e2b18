"""The Episode contract (vpi.data.episode), checked the same way for every entry of the table."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch
from fixtures import FSS_IMAGES

from vpi.config import DataConfig
from vpi.data import DATASETS, IGNORE_INDEX, Episode, build_episodes

# The pytest fixture (tests/data/conftest.py) that writes each dataset's files; None: no files.
ROOTS = {"builtin": None, "pascal": "voc", "coco": "coco", "fss": "fss"}
SIZE, EPISODES = 64, 6
STORED_IGNORE = {"pascal"}  # query masks carry IGNORE_INDEX unaugmented too: VOC's boundaries


def _build(request: pytest.FixtureRequest, name: str, split: str, shots: int, augment: bool):
    fixture = ROOTS[name]
    root = None if fixture is None else str(request.getfixturevalue(fixture))
    data = DataConfig(dataset=name, root=root, image_size=SIZE)
    return build_episodes(data, split, shots=shots, episodes=EPISODES, seed=0, augment=augment)


def test_every_dataset_has_files_to_check() -> None:
    assert set(ROOTS) == set(DATASETS)


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("shots", [1, 3])
@pytest.mark.parametrize("augment", [False, True])
def test_episode_contract(
    request: pytest.FixtureRequest, name: str, split: str, shots: int, augment: bool
) -> None:
    episodes = _build(request, name, split, shots, augment)
    assert episodes.class_ids and episodes.class_ids == sorted(set(episodes.class_ids))
    assert set(episodes.class_names) == set(episodes.class_ids)
    # FSS-1000's test protocol walks every test image once, whatever ``episodes`` says.
    walks_all = name == "fss" and split == "test"
    assert len(episodes) == (FSS_IMAGES * len(episodes.class_ids) if walks_all else EPISODES)
    allowed = {0, 1, IGNORE_INDEX} if augment or name in STORED_IGNORE else {0, 1}
    for i in range(len(episodes)):
        e = episodes[i]
        assert e.support_images.shape == (shots, 3, SIZE, SIZE)
        assert e.support_images.dtype == torch.float32
        assert e.support_masks.shape == (shots, 1, SIZE, SIZE)
        assert e.support_masks.dtype == torch.float32
        assert e.query_image.shape == (3, SIZE, SIZE)
        assert e.query_image.dtype == torch.float32
        assert e.query_mask.shape == (SIZE, SIZE)
        assert e.query_mask.dtype == torch.int64
        for image in (e.support_images, e.query_image):
            assert image.min() >= 0.0 and image.max() <= 1.0
        assert set(e.support_masks.unique().tolist()) <= {0.0, 1.0}
        assert set(e.query_mask.unique().tolist()) <= allowed
        assert (e.support_masks.flatten(1).sum(1) > 0).all()
        assert (e.query_mask == 1).any()
        assert e.class_id in episodes.class_ids
        if e.query_objects is not None:
            assert e.query_objects.shape == (SIZE, SIZE)
            assert set(e.query_objects.unique().tolist()) <= {0, 1}
    # Item i depends only on the seed and i: a second build gives the same tensors.
    again = _build(request, name, split, shots, augment)[len(episodes) - 1]
    last = episodes[len(episodes) - 1]
    for field in fields(Episode):
        a, b = getattr(last, field.name), getattr(again, field.name)
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, field.name
