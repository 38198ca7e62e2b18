"""What the demo page receives, turned into checked arrays or one clear DataError.

A support example comes from the page's image editor: a photo with the object painted over it
with the brush (a mask is where any painted layer is not transparent), or the photo and a mask
PNG uploaded beside it. Queries are uploaded files, read as `vpi segment` reads them. The page
takes at most ``MAX_SUPPORT`` examples, ``MAX_QUERIES`` queries and ``MAX_PIXELS`` per image: a
demo on a shared machine should answer in seconds, and the graphs resize every image to their
input side anyway.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vpi.errors import DataError
from vpi.io import image_size_guard
from vpi.runtime.processing import check_image_file, check_support_pair, load_image, load_mask

MAX_SUPPORT = 5
MAX_QUERIES = 8
MAX_PIXELS = 25_000_000  # a 24-megapixel camera's photo passes


@dataclass(frozen=True)
class SupportExample:
    """One support pair: image (H, W, 3) uint8, mask (H, W) uint8 in {0, 1}, and their names."""

    image: np.ndarray
    mask: np.ndarray
    name: str
    mask_name: str


@dataclass(frozen=True)
class Query:
    """One query photo (H, W, 3) uint8, its file name and how long reading it took."""

    image: np.ndarray
    name: str
    load_ms: float = 0.0


def check_pixels(width: int, height: int, what: str, limit: int = MAX_PIXELS) -> None:
    if width * height > limit:
        raise DataError(f"{what} is {width}×{height} ({width * height / 1e6:.1f} megapixels); the "
                        f"demo takes at most {limit / 1e6:g} megapixels: resize it")


def support_from_editor(
    editor: dict[str, Any] | None,
    mask_file: str | Path | None,
    name: str,
    *,
    limit: int = MAX_PIXELS,
) -> SupportExample:
    """A support pair from the image editor's value and an optional uploaded mask.

    ``editor`` is what Gradio's ImageEditor gives with ``type="numpy"``: ``background`` (H, W, 3
    or 4) uint8 and ``layers``, RGBA (H, W, 4) arrays of what was painted. ``mask_file`` is a mask
    PNG, any non-zero pixel foreground, as `vpi segment` reads it. Painting and uploading a mask
    for the same photo is refused, not merged: which one was meant is the user's to say.
    """
    background = None if editor is None else editor.get("background")
    if background is None:
        raise DataError(f"{name}: drop a photo into the editor first, then paint the object on it")
    background = np.asarray(background)
    if background.ndim == 2:
        background = np.repeat(background[..., None], 3, axis=2)
    if background.ndim != 3 or background.shape[2] not in (3, 4) or background.dtype != np.uint8:
        raise DataError(f"{name} must be an RGB photo, got {background.dtype} {background.shape}")
    image = np.ascontiguousarray(background[..., :3])  # as PIL's RGBA -> RGB: the alpha dropped
    check_pixels(image.shape[1], image.shape[0], name, limit)
    painted = _painted(editor.get("layers") or [], image.shape[:2], name)  # type: ignore[union-attr]
    if mask_file is not None:
        if painted is not None:
            raise DataError(f"{name} has a painted mask and an uploaded one: keep one (the eraser, "
                            "or the mask file's ×)")
        check_image_file(mask_file, "support mask")
        mask, mask_name = load_mask(mask_file), Path(mask_file).name
    elif painted is None:
        raise DataError(f"{name} has no painted mask: paint the object with the brush, or upload "
                        "its mask as a PNG")
    else:
        mask, mask_name = painted, "painted"
    check_support_pair(image, mask, name, mask_name if mask_name != "painted" else f"painted on {name}")
    return SupportExample(image, mask, name, mask_name)


def _painted(layers: Sequence[Any], size: tuple[int, int], name: str) -> np.ndarray | None:
    """Union of the layers' painted pixels (alpha > 0) as (H, W) uint8, or None if none is."""
    mask = np.zeros(size, dtype=bool)
    for layer in layers:
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            raise DataError(f"{name}: a painted layer must be RGBA, got shape {layer.shape}")
        if layer.shape[:2] != size:
            raise DataError(f"{name}: a painted layer is {layer.shape[1]}×{layer.shape[0]} but the "
                            f"photo is {size[1]}×{size[0]}")
        mask |= layer[..., 3] > 0
    return mask.astype(np.uint8) if mask.any() else None


def add_support(
    support: Sequence[SupportExample], example: SupportExample, limit: int = MAX_SUPPORT
) -> list[SupportExample]:
    """``support`` with ``example`` appended, up to ``limit`` examples."""
    if len(support) >= limit:
        raise DataError(f"the support holds {len(support)} photos, the most the demo takes: clear it "
                        f"to start again (at most {limit} examples)")
    return [*support, example]


def check_support(support: Sequence[SupportExample], limit: int = MAX_SUPPORT) -> None:
    if not support:
        raise DataError("no support yet: add 1 to 5 example photos with the object painted on them")
    if len(support) > limit:
        raise DataError(f"got {len(support)} support photos; the demo takes 1 to {limit}")


def read_queries(
    paths: Sequence[str | Path] | None, *, limit: int = MAX_PIXELS, most: int = MAX_QUERIES
) -> list[Query]:
    """Uploaded query files, each checked and read as `vpi segment` reads it, with unique stems
    (``photo.png`` twice becomes ``photo.png`` and ``photo-2.png``: their outputs are named after
    them)."""
    if not paths:
        raise DataError("no query: drop one or more photos to segment")
    if len(paths) > most:
        raise DataError(f"got {len(paths)} queries; the demo segments at most {most} at a time")
    queries, stems = [], set()
    for raw in paths:
        path = Path(raw)
        check_image_file(path, "query")
        with image_size_guard(path, "query"), Image.open(path) as header:
            width, height = header.size  # the header only: nothing decoded yet
        check_pixels(width, height, f"query {path.name!r}", limit)
        name, count = path.name, 1
        while Path(name).stem in stems:
            count += 1
            name = f"{path.stem}-{count}{path.suffix}"
        stems.add(Path(name).stem)
        started = time.perf_counter()
        image = load_image(path, "query")
        queries.append(Query(image, name, round((time.perf_counter() - started) * 1000.0, 3)))
    return queries
