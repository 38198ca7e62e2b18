"""Shared image/mask transforms: conversions, resizing and the paired augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vpi.data import IGNORE_INDEX
from vpi.data.transforms import augment_pair, resize_pair, to_tensor_image, to_tensor_mask


def _blocky_mask(seed: int, size: tuple[int, int] = (48, 64)) -> torch.Tensor:
    """A random {0, 1} label map of 8x8 blocks: mostly interior pixels, some edges."""
    blocks = np.random.default_rng(seed).integers(0, 2, size=(size[0] // 8, size[1] // 8))
    return torch.from_numpy(np.kron(blocks, np.ones((8, 8), dtype=np.int64)))


def test_to_tensor_image_scales_and_transposes() -> None:
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    image = to_tensor_image(array)
    assert image.shape == (3, 2, 3) and image.dtype == torch.float32
    assert torch.equal(image[1, 0, 2], torch.tensor(array[0, 2, 1] / 255.0, dtype=torch.float32))
    with pytest.raises(ValueError, match="uint8"):
        to_tensor_image(array.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_tensor_image(array[:, :, :2])


def test_to_tensor_mask_keeps_labels() -> None:
    array = np.array([[0, 1], [255, 1]], dtype=np.uint8)
    mask = to_tensor_mask(array)
    assert mask.dtype == torch.int64
    assert mask.tolist() == [[0, 1], [255, 1]]
    with pytest.raises(ValueError, match="mask"):
        to_tensor_mask(np.zeros((2, 2, 1), dtype=np.uint8))


def test_resize_pair_keeps_labels_and_range() -> None:
    mask = _blocky_mask(0)
    mask[0, 0] = IGNORE_INDEX
    image = torch.rand(3, 48, 64)
    out_image, out_mask = resize_pair(image, mask, (24, 40))
    assert out_image.shape == (3, 24, 40) and out_mask.shape == (24, 40)
    assert out_mask.dtype == torch.int64
    assert set(out_mask.unique().tolist()) <= {0, 1, IGNORE_INDEX}
    assert 0.0 <= out_image.min() and out_image.max() <= 1.0
    square_image, square_mask = resize_pair(image, mask, 32)
    assert square_image.shape == (3, 32, 32) and square_mask.shape == (32, 32)
    same_image, same_mask = resize_pair(image, mask, (48, 64))
    assert torch.equal(same_image, image) and torch.equal(same_mask, mask)
    # Nearest-neighbour halving of 8x8 blocks keeps every block: the labels are exact.
    _, half_mask = resize_pair(image, _blocky_mask(0), (24, 32))
    assert torch.equal(half_mask, _blocky_mask(0)[::2, ::2])


def test_mismatched_pair_is_rejected() -> None:
    with pytest.raises(ValueError, match="mask"):
        resize_pair(torch.rand(3, 8, 8), torch.zeros(8, 9, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="image"):
        augment_pair(
            torch.rand(8, 8), torch.zeros(8, 8, dtype=torch.int64), np.random.default_rng(0),
            ignore_value=0,
        )


@pytest.mark.parametrize("seed", range(12))
def test_augment_pair_keeps_image_and_mask_aligned(seed: int) -> None:
    """An image whose pixels equal its mask still does after the warp, except on block edges."""
    mask = _blocky_mask(seed)
    image = mask.float().expand(3, -1, -1).clone()
    out_image, out_mask = augment_pair(
        image, mask, np.random.default_rng(seed), ignore_value=IGNORE_INDEX
    )
    assert out_image.shape == image.shape and out_mask.shape == mask.shape
    assert set(out_mask.unique().tolist()) <= {0, 1, IGNORE_INDEX}
    assert torch.equal(out_image[0], out_image[1]) and torch.equal(out_image[0], out_image[2])
    valid = out_mask != IGNORE_INDEX
    agree = ((out_image[0] > 0.5) == (out_mask == 1))[valid].float().mean()
    assert agree > 0.97
    # Where nearest sampling says "outside the image", bilinear sampling sees mostly padding.
    if (~valid).any():
        assert out_image[0][~valid].mean() < 0.3


def test_augment_pair_fills_outside_with_the_given_value() -> None:
    image = torch.ones(3, 64, 64)
    mask = torch.ones(64, 64, dtype=torch.int64)
    rng = np.random.default_rng(0)
    out_image, out_mask = augment_pair(image, mask, rng, ignore_value=0, scale=(1.0, 1.0))
    assert set(out_mask.unique().tolist()) <= {0, 1}
    outside = out_mask == 0
    assert outside.any()  # any turn of the uncropped image brings in its corners' outside
    assert ((out_image[0] > 0.5) == ~outside).float().mean() > 0.98


def test_augment_pair_without_change_is_the_identity() -> None:
    mask = _blocky_mask(3)
    image = torch.rand(3, 48, 64)
    rng = np.random.default_rng(0)
    out_image, out_mask = augment_pair(
        image, mask, rng, ignore_value=IGNORE_INDEX, scale=(1.0, 1.0), max_degrees=0.0,
        flip_prob=0.0,
    )
    assert torch.allclose(out_image, image, atol=1e-5)
    assert torch.equal(out_mask, mask)
    flipped_image, flipped_mask = augment_pair(
        image, mask, rng, ignore_value=IGNORE_INDEX, scale=(1.0, 1.0), max_degrees=0.0,
        flip_prob=1.0,
    )
    assert torch.allclose(flipped_image, image.flip(-1), atol=1e-5)
    assert torch.equal(flipped_mask, mask.flip(-1))


def test_augment_pair_is_reproducible() -> None:
    mask, image = _blocky_mask(1), torch.rand(3, 48, 64)
    a = augment_pair(image, mask, np.random.default_rng(5), ignore_value=IGNORE_INDEX)
    b = augment_pair(image, mask, np.random.default_rng(5), ignore_value=IGNORE_INDEX)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_augment_pair_never_crops_the_object_to_a_sliver() -> None:
    """A crop that would drop most of the foreground gives the pair back unchanged."""
    image = torch.rand(3, 64, 64)
    mask = torch.zeros(64, 64, dtype=torch.int64)
    # A one-pixel frame: a crop of 0.6 of the side sees at most two of its sides in part,
    # about 0.3 of it, below the 0.5 that augment_pair asks to keep.
    mask[[0, -1], :] = 1
    mask[:, [0, -1]] = 1
    for seed in range(5):
        out_image, out_mask = augment_pair(
            image, mask, np.random.default_rng(seed), ignore_value=0, scale=(0.6, 0.6)
        )
        assert torch.equal(out_mask, mask) and torch.equal(out_image, image)
