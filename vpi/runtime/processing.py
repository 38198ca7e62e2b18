"""Pre- and post-processing shared by every backend: files -> graph inputs -> maps at full size.

Images become float RGB in [0, 1] at the graphs' square input side (the encoder normalises them
itself); masks become soft [0, 1] maps at that side (area-style resizing keeps a thin object from
vanishing). Probability and uncertainty go back to the image's own size bilinearly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from vpi.errors import DataError
from vpi.io import image_size_guard

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def _open(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise DataError(f"{what} {str(path)!r} does not exist")
    try:
        with image_size_guard(path, what):
            image = Image.open(path)
            image.load()
    except UnidentifiedImageError:
        raise DataError(f"{what} {str(path)!r} is not an image PIL can read") from None
    except (OSError, ValueError) as exc:  # truncated or corrupt files
        raise DataError(f"{what} {str(path)!r} cannot be read: {exc}") from None
    return ImageOps.exif_transpose(image)  # as viewers show it, so image and mask line up


def load_image(path: str | Path, what: str = "image") -> np.ndarray:
    """An image file as an (H, W, 3) uint8 RGB array; anything unreadable names the file."""
    return np.asarray(_open(Path(path), what).convert("RGB"))


def load_mask(path: str | Path) -> np.ndarray:
    """A mask file as an (H, W) uint8 array in {0, 1}: any non-zero pixel is foreground."""
    mask = _open(Path(path), "support mask")
    if mask.mode in ("P", "1", "L", "I", "I;16", "F"):
        values = np.asarray(mask) != 0  # palette masks: index 0 is background
    else:
        values = np.asarray(mask.convert("RGB")).any(axis=2)
    return values.astype(np.uint8)


def check_image_file(path: str | Path, what: str = "image") -> None:
    """Fail early on a file that is not a readable image, without decoding all of it."""
    path = Path(path)
    try:
        with image_size_guard(path, what), Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise DataError(f"{what} {str(path)!r} is not an image PIL can read") from None


def check_support_pair(
    image: np.ndarray, mask: np.ndarray, image_name: str, mask_name: str
) -> None:
    """A mask must have its image's size and mark some foreground, or the prior is meaningless."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(
            f"support image {image_name!r} must be (H, W, 3) uint8, got {image.dtype} {image.shape}"
        )
    if mask.shape != image.shape[:2]:
        got = f"{mask.shape[1]}×{mask.shape[0]}" if mask.ndim == 2 else f"shape {mask.shape}"
        raise DataError(
            f"support mask {mask_name!r} is {got} but its image {image_name!r} is "
            f"{image.shape[1]}×{image.shape[0]}"
        )
    if not mask.any():
        raise DataError(
            f"support mask {mask_name!r} has no foreground (every pixel is 0): mark the object "
            "with non-zero pixels"
        )


def image_tensor(image: np.ndarray, side: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, side, side) float32 in [0, 1], anti-aliased bilinear."""
    tensor = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
    return _resize(tensor[None], (side, side))[0].clamp(0.0, 1.0)


def mask_tensor(mask: np.ndarray, side: int) -> torch.Tensor:
    """(H, W) {0, 1} -> (1, side, side) float32 in [0, 1] (soft at the edges)."""
    tensor = torch.from_numpy(np.array(mask, dtype=np.float32))[None, None]
    return _resize(tensor, (side, side))[0].clamp(0.0, 1.0)


def to_original(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """One (s, s) map -> (H, W) float32 array at ``size`` = (height, width), bilinear."""
    resized = F.interpolate(maps.float()[None, None], size=size, mode="bilinear", align_corners=False)
    return resized[0, 0].numpy().astype(np.float32)


def _resize(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(batch.shape[-2:]) == size:
        return batch
    return F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=True)
