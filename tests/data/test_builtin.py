"""The built-in generated episodes: folds, determinism, paired episodes that need the support, and
hardness (the Episode contract is tests/data/test_contract.py's, for every dataset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpi.config import Config, DataConfig
from vpi.data import Episode, build_episodes
from vpi.data.builtin import (
    NUM_CLASSES,
    BuiltinEpisodes,
    fold_classes,
    render_sample,
    render_scene,
)
from vpi.data.shapes import CLASSES
from vpi.errors import ConfigError


def _episodes(**overrides: object) -> BuiltinEpisodes:
    args: dict = dict(
        split="test", fold=0, shots=1, image_size=64, length=20, seed=0, augment=False
    )
    args.update(overrides)
    return BuiltinEpisodes(**args)


def _assert_same(a: Episode, b: Episode) -> None:
    assert a.class_id == b.class_id
    for name in ("support_images", "support_masks", "query_image", "query_mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_folds_partition_the_classes() -> None:
    folds = [fold_classes(f) for f in range(4)]
    assert all(len(f) == 5 for f in folds)
    assert sorted(c for f in folds for c in f) == list(range(NUM_CLASSES))
    assert fold_classes(1) == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="fold"):
        fold_classes(4)


def test_every_class_has_its_own_silhouette_and_pattern() -> None:
    assert len(CLASSES) == NUM_CLASSES == 20
    assert len({c.name for c in CLASSES}) == 20
    assert len({c.silhouette for c in CLASSES}) == 20
    assert len({c.pattern for c in CLASSES}) == 20


@pytest.mark.parametrize("fold", range(4))
def test_splits_hold_the_right_classes(fold: int) -> None:
    test = _episodes(split="test", fold=fold)
    train = _episodes(split="train", fold=fold)
    assert test.class_ids == fold_classes(fold)
    assert train.class_ids == sorted(set(range(NUM_CLASSES)) - set(fold_classes(fold)))
    assert set(test.class_names) == set(test.class_ids)
    assert test.class_names[fold_classes(fold)[0]] == CLASSES[5 * fold].name


@pytest.mark.parametrize("fold", range(4))
def test_train_split_never_yields_a_test_class(fold: int) -> None:
    train = _episodes(split="train", fold=fold, image_size=32, length=40, seed=fold)
    seen = {train[i].class_id for i in range(len(train))}
    assert seen.isdisjoint(fold_classes(fold))
    assert len(seen) > 5  # the draw spreads over the fifteen training classes


def test_same_arguments_give_identical_episodes() -> None:
    for augment in (False, True):
        a, b = _episodes(shots=2, augment=augment), _episodes(shots=2, augment=augment)
        for i in (0, 7, 19):
            _assert_same(a[i], b[i])


def test_episodes_differ_by_seed_index_and_instance() -> None:
    a, b = _episodes(seed=0), _episodes(seed=1)
    assert not torch.equal(a[0].query_image, b[0].query_image)
    assert torch.equal(a[0].query_image, a[1].query_image)  # one pair, one query scene
    assert not torch.equal(a[0].query_image, a[2].query_image)
    e = _episodes(shots=3)[0]  # every support and the query is its own render
    images = [*e.support_images, e.query_image]
    assert all(not torch.equal(x, y) for i, x in enumerate(images) for y in images[i + 1 :])


def test_augmentation_keeps_the_class_and_changes_the_geometry() -> None:
    plain, augmented = _episodes(length=5), _episodes(length=5, augment=True)
    for i in range(5):
        assert plain[i].class_id == augmented[i].class_id
        images = (plain[i].support_images, augmented[i].support_images)
        assert not torch.equal(*images) or not torch.equal(
            plain[i].query_image, augmented[i].query_image
        )


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="split"):
        _episodes(split="valid")
    with pytest.raises(ValueError, match="fold"):
        _episodes(fold=4)
    with pytest.raises(ValueError, match="shots"):
        _episodes(shots=0)
    with pytest.raises(ValueError, match="seed"):
        _episodes(seed=-1)
    with pytest.raises(IndexError):
        _episodes(length=3)[3]


def test_build_episodes_returns_builtin_data() -> None:
    data = DataConfig(dataset="builtin", fold=2, image_size=32)
    episodes = build_episodes(data, "test", shots=2, episodes=4, seed=3)
    assert isinstance(episodes, BuiltinEpisodes)
    assert len(episodes) == 4 and episodes.class_ids == fold_classes(2)
    assert episodes[0].support_images.shape == (2, 3, 32, 32)


def test_render_sample_gives_one_visible_object() -> None:
    for class_id in range(NUM_CLASSES):
        image, mask = render_sample(class_id, np.random.default_rng(class_id), 48)
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert mask.shape == (48, 48) and mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) == {0, 1}
        assert mask.mean() > 0.01  # "substantially visible", not a sliver at the border
    with pytest.raises(ValueError, match="class_id"):
        render_sample(NUM_CLASSES, np.random.default_rng(0), 48)


def test_scene_keeps_every_object_visible_and_disjoint() -> None:
    for seed in range(30):
        scene = render_scene([0, 3, 4], np.random.default_rng(seed), 64)
        assert scene.masks.shape == (3, 64, 64) and scene.class_ids == (0, 3, 4)
        assert (scene.masks.sum((1, 2)) > 0).all()  # never empty
        assert scene.masks.sum(0).max() == 1  # a pixel shows one object at most
        assert np.array_equal(scene.mask_of(3), scene.masks[1].astype(np.uint8))
    with pytest.raises(ValueError, match="distinct"):
        render_scene([1, 1], np.random.default_rng(0), 64)


def test_objects_share_one_size_distribution() -> None:
    """No size cue: the target outsizes the other objects together in a third of the queries (half
    of the two-object scenes, fewer of the three-object ones), not always as it once did."""
    episodes = _episodes(length=200, seed=5)
    larger = 0
    for i in range(len(episodes)):
        e = episodes[i]
        target = int((e.query_mask == 1).sum())
        larger += target > int((e.query_objects == 1).sum()) - target
    assert 0.2 < larger / len(episodes) < 0.6


def test_every_query_holds_another_class_and_pairs_share_their_query() -> None:
    episodes = _episodes(length=40, seed=2)
    for j in range(0, len(episodes), 2):
        a, b = episodes[j], episodes[j + 1]
        assert torch.equal(a.query_image, b.query_image)  # one scene, asked for two classes
        assert a.class_id != b.class_id
        assert {a.class_id, b.class_id} <= set(fold_classes(0))
        assert not ((a.query_mask == 1) & (b.query_mask == 1)).any()
        for e in (a, b):
            assert (e.query_mask == 1).any()
            assert (e.query_objects.bool() & (e.query_mask == 0)).any()  # another object too
            assert ((e.query_mask == 1) <= e.query_objects.bool()).all()
        assert not torch.equal(a.support_images, b.support_images)
    assert [episodes.episode_class(i) for i in range(6)] == [episodes[i].class_id for i in range(6)]


def test_ignoring_the_support_scores_about_half_at_most() -> None:
    """The best support-blind answer of a pair is one mask for both: every object (the oracle)."""
    episodes = _episodes(length=60, seed=4)
    intersection = union = 0
    for i in range(len(episodes)):
        e = episodes[i]
        predicted, truth = e.query_objects == 1, e.query_mask == 1
        intersection += int((predicted & truth).sum())
        union += int((predicted | truth).sum())
    assert 0.3 < intersection / union < 0.6


def test_validation_stream_differs_from_test() -> None:
    test, val = _episodes(split="test"), _episodes(split="val")
    assert val.class_ids == test.class_ids
    assert not any(torch.equal(test[i].query_image, val[i].query_image) for i in range(4))


def test_augmented_episodes_carry_no_object_masks() -> None:
    assert _episodes(augment=True)[0].query_objects is None
    assert _episodes()[0].query_objects.shape == (64, 64)


def test_colour_alone_does_not_find_the_object() -> None:
    """Instances get random palettes, so "nearest mean colour of support fg vs bg" is near chance.

    Pooled foreground IoU over 50 test episodes; labelling every pixel foreground scores the
    foreground fraction (about 0.08), a shape-blind colour rule should not do much better.
    """
    episodes = _episodes(fold=1, length=50, seed=11)
    intersection = union = 0
    for i in range(len(episodes)):
        e = episodes[i]
        support = e.support_images[0].flatten(1)
        fg = e.support_masks[0, 0].flatten() > 0.5
        fg_colour, bg_colour = support[:, fg].mean(1), support[:, ~fg].mean(1)
        query = e.query_image.flatten(1)
        predicted = (query - fg_colour[:, None]).square().sum(0) < (
            query - bg_colour[:, None]
        ).square().sum(0)
        truth = e.query_mask.flatten() == 1
        intersection += (predicted & truth).sum().item()
        union += (predicted | truth).sum().item()
    assert intersection / union < 0.35


def test_photo_surfaces_cover_objects_with_their_class_photograph() -> None:
    """With "photo" surfaces an instance shows a crop of its class's own photograph: two scenes
    of the same classes look alike in colour where palettes would paint them anew, and the
    rendering stays deterministic."""
    a = render_scene([2, 7], np.random.default_rng(3), 64, "photo")
    again = render_scene([2, 7], np.random.default_rng(3), 64, "photo")
    assert np.array_equal(a.image, again.image) and np.array_equal(a.masks, again.masks)
    palette = render_scene([2, 7], np.random.default_rng(3), 64, "palette")
    assert not np.array_equal(a.image, palette.image)
    with pytest.raises(ValueError, match="surfaces must be one of"):
        render_scene([2, 7], np.random.default_rng(3), 64, "Photo")
    episodes = _episodes(surfaces="photo", sizes=(0.6, 0.9), length=4)
    for i in range(4):
        e = episodes[i]
        assert e.support_masks.sum() > 0 and (e.query_mask == 1).any()
    # Larger objects: the target covers more of the image than with the default sizes.
    small = _episodes(length=20)
    cover = [float((episodes[i].query_mask == 1).float().mean()) for i in range(4)]
    default = [float((small[i].query_mask == 1).float().mean()) for i in range(20)]
    assert np.mean(cover) > 2 * np.mean(default)


def test_objects_may_overflow_the_frame_and_stay_visible() -> None:
    """Sizes over 1 (close-ups) still leave every object of a scene visible in part: three objects
    of 1.5 times the image side fit nowhere, so they shrink until they do."""
    for seed in range(3):
        scene = render_scene([1, 4, 9], np.random.default_rng(seed), 64, "photo", (1.5, 1.5))
        assert scene.masks.shape == (3, 64, 64)
        assert all(mask.sum() > 0 for mask in scene.masks)
        assert scene.masks.any(0).mean() > 0.5


@pytest.mark.parametrize(("data", "message"), [
    ({"surfaces": "paint"}, "data.surfaces is 'paint'; choose one of: palette, photo"),
    ({"object_sizes": (0.6, 0.3)}, "data.object_sizes must be two fractions"),
    ({"object_sizes": (0.7, 1.6)}, r"high <= 1.5, got \(0.7, 1.6\)"),
])
def test_bad_builtin_options_are_one_clear_error(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(data=DataConfig(**data))
