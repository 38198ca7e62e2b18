"""Finding support pairs and query images on disk.

Support-folder naming rule (one folder, not searched recursively):

- an image is ``NAME.jpg``, ``.jpeg``, ``.png`` or ``.bmp`` (any letter case);
- its mask lies beside it as ``NAME_mask.png`` or, for an image that is not a PNG, ``NAME.png``
  (``dog1.jpg`` + ``dog1.png``, or ``dog1.png`` + ``dog1_mask.png``);
- a mask has the image's size; any non-zero pixel is foreground (0/1, 0/255 and palette PNGs
  all work), and it must mark at least one pixel;
- other files (a README, hidden files) are ignored.

An image without a mask, a mask without an image, an image with two masks and an empty folder
are each one clear error, raised before anything is computed or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vpi.errors import DataError
from vpi.runtime.processing import IMAGE_SUFFIXES, check_support_pair, load_image, load_mask

MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class SupportPair:
    image: Path
    mask: Path


def find_support_pairs(folder: str | Path) -> list[SupportPair]:
    """The folder's image/mask pairs, sorted by image name (see the module's naming rule)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"support folder {str(folder)!r} does not exist or is not a folder")
    files = {p.name: p for p in sorted(folder.iterdir()) if _is_image_file(p)}
    masks = {n for n in files if Path(n).stem.endswith(MASK_SUFFIX) and n.lower().endswith(".png")}
    masks |= {  # NAME.png beside a NAME.jpg/.jpeg/.bmp is that image's mask
        n for n in files if n.lower().endswith(".png")
        and any(Path(o).stem == Path(n).stem and not o.lower().endswith(".png") for o in files)
    }
    images = [p for n, p in files.items() if n not in masks]
    pairs, used = [], set()
    for image in images:
        candidates = [f"{image.stem}{MASK_SUFFIX}.png"]
        if image.suffix.lower() != ".png":
            candidates.append(f"{image.stem}.png")
        found = [c for c in candidates if c in files]
        if not found:
            raise DataError(
                f"support image {image.name!r} has no mask: put {candidates[0]!r} beside it "
                "(non-zero pixels = foreground)"
            )
        if len(found) > 1:
            raise DataError(f"support image {image.name!r} has two masks: {found[0]!r} and "
                            f"{found[1]!r}; keep one")
        used.add(found[0])
        pairs.append(SupportPair(image, folder / found[0]))
    stems = [p.image.stem for p in pairs]
    if len(set(stems)) != len(stems):
        twin = next(s for s in stems if stems.count(s) > 1)
        raise DataError(f"two support images share the name {twin!r}; rename one")
    orphans = sorted(masks - used)
    if orphans:
        raise DataError(f"support mask {orphans[0]!r} has no image beside it")
    if not pairs:
        raise DataError(
            f"support folder {str(folder)!r} holds no image/mask pairs: put images with masks "
            "beside them, e.g. dog1.jpg + dog1.png or dog1.png + dog1_mask.png"
        )
    return pairs


def load_support(pairs: Sequence[SupportPair]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every pair read and checked: images (H, W, 3) uint8 and masks (H, W) in {0, 1}."""
    images, masks = [], []
    for pair in pairs:
        image, mask = load_image(pair.image, "support image"), load_mask(pair.mask)
        check_support_pair(image, mask, pair.image.name, pair.mask.name)
        images.append(image)
        masks.append(mask)
    return images, masks


def find_queries(paths: Sequence[str | Path]) -> list[Path]:
    """Query files in the given order; a folder contributes its images (not ``*_mask.png``)."""
    if not paths:
        raise DataError("no query image given")
    queries: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = [p for p in sorted(path.iterdir())
                     if _is_image_file(p) and not p.stem.endswith(MASK_SUFFIX)]
            if not found:
                raise DataError(f"query folder {str(path)!r} holds no image files")
            queries += found
        elif path.is_file():
            queries.append(path)
        else:
            raise DataError(f"query {str(path)!r} does not exist")
    stems = [q.stem for q in queries]
    if len(set(stems)) != len(stems):
        twin = next(s for s in stems if stems.count(s) > 1)
        raise DataError(f"two queries are named {twin!r}: their outputs would overwrite each other")
    return queries


def _is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES
