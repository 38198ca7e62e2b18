"""The built-in few-shot data: generated objects pasted onto real photographs, fully offline.

Twenty classes (``vpi.data.shapes``) in four folds of five, like PASCAL-5i: fold ``f`` tests
classes ``5f .. 5f+4`` and trains on the other fifteen. Each image holds one object of the
episode's class (foreground) on a random crop of a photograph that ships inside scikit-image,
often with objects of other classes of the same split as distractors (background). Every instance
gets a random palette, position, scale, rotation and stretch, so colour says nothing about the
class: a support example shows which silhouette and texture to find, not which colour.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vpi.data.episode import IGNORE_INDEX, Episode
from vpi.data.shapes import CLASSES, ObjectClass
from vpi.data.transforms import augment_pair, to_tensor_image, to_tensor_mask

NUM_CLASSES = len(CLASSES)
NUM_FOLDS = 4
_SPLIT_CODES = {"train": 0, "test": 1}

# Photographs stored inside the scikit-image wheel (no download). Names that fail to load are
# skipped, so an older or newer scikit-image still works with whatever it carries.
_PHOTO_NAMES = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "brick", "grass", "gravel", "moon",
    "hubble_deep_field", "immunohistochemistry", "coins", "clock", "retina", "stereo_motorcycle",
)
_PHOTO_SIDE = 256  # cached photos keep their shorter side at most this long: ~4 MB in all

_TARGET_DIAMETER = (0.3, 0.6)  # of the image side
_DISTRACTOR_DIAMETER = (0.2, 0.45)
_DISTRACTOR_PROB = 0.6
_SAME_PALETTE_PROB = 0.3  # a distractor painted like the target: colour cannot separate them
_MIN_VISIBLE = 0.75  # fraction of the target that must lie inside the image
_NOISE = 6.0  # uniform sensor noise, in uint8 levels


def fold_classes(fold: int) -> list[int]:
    """The five class ids that fold ``fold`` (0..3) holds out for testing."""
    if not 0 <= fold < NUM_FOLDS:
        raise ValueError(f"fold must lie in 0..{NUM_FOLDS - 1}, got {fold}")
    per_fold = NUM_CLASSES // NUM_FOLDS
    return list(range(per_fold * fold, per_fold * (fold + 1)))


@functools.cache
def _photos() -> tuple[Image.Image, ...]:
    """The background photographs as RGB PIL images, loaded once per process (loading is slow)."""
    import skimage.data

    photos = []
    for name in _PHOTO_NAMES:
        try:
            array = getattr(skimage.data, name)()
        except Exception:  # a name this scikit-image lacks or would have to download
            continue
        if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
            array = array[0]
        array = np.asarray(array)
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        photo = Image.fromarray(np.ascontiguousarray(array[:, :, :3]).astype(np.uint8))
        shrink = _PHOTO_SIDE / min(photo.size)
        if shrink < 1.0:
            photo = photo.resize(
                (round(photo.width * shrink), round(photo.height * shrink)), Image.LANCZOS
            )
        photos.append(photo)
    if not photos:
        raise RuntimeError("no background photograph of scikit-image.data could be loaded")
    return tuple(photos)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a random photo, flipped and colour-jittered: ``(size, size, 3)`` float32."""
    photos = _photos()
    photo = photos[rng.integers(len(photos))]
    width, height = photo.size
    side = min(width, height) * rng.uniform(0.35, 1.0)
    left = rng.uniform(0.0, width - side)
    top = rng.uniform(0.0, height - side)
    crop = photo.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side))
    image = np.asarray(crop, dtype=np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    # One 3x3 colour matrix: a channel permutation (backgrounds of every hue), a saturation
    # change and per-channel gains, plus a brightness offset.
    permute = np.eye(3, dtype=np.float32)[rng.permutation(3)].T
    saturation = rng.uniform(0.6, 1.4)
    saturate = saturation * np.eye(3, dtype=np.float32) + (1.0 - saturation) / 3.0
    gains = rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, size=3)
    matrix = (permute @ saturate * gains).astype(np.float32)
    return image @ matrix + np.float32(rng.uniform(-20.0, 20.0))


def _palette(rng: np.random.Generator) -> np.ndarray:
    """Two colours of random hues, one light and one dark, so the pattern always shows: (2, 3)."""
    hue = rng.random()
    light = colorsys.hsv_to_rgb(hue, rng.uniform(0.25, 1.0), rng.uniform(0.7, 1.0))
    dark_hue = (hue + rng.uniform(0.15, 0.85)) % 1.0
    dark = colorsys.hsv_to_rgb(dark_hue, rng.uniform(0.25, 1.0), rng.uniform(0.08, 0.45))
    colours = np.array([light, dark] if rng.random() < 0.5 else [dark, light], dtype=np.float32)
    return colours * 255.0


@dataclass
class _Sprite:
    """One rasterised instance: its colours and coverage over the part of the box on the canvas."""

    rows: slice
    cols: slice
    coverage: np.ndarray  # (h, w) float32 in [0, 1]
    colour: np.ndarray  # (h, w, 3) float32
    visible: float  # fraction of the instance's pixels that lie on the canvas

    def paste(self, canvas: np.ndarray) -> None:
        region = canvas[self.rows, self.cols]
        region += self.coverage[:, :, None] * (self.colour - region)

    def mask(self, size: int) -> np.ndarray:
        """(size, size) bool, where the instance covers at least half a pixel."""
        mask = np.zeros((size, size), dtype=bool)
        mask[self.rows, self.cols] = self.coverage >= 0.5
        return mask


def _rasterise(
    obj: ObjectClass,
    centre: np.ndarray,
    radius: float,
    size: int,
    palette: np.ndarray,
    rng: np.random.Generator,
) -> _Sprite:
    """Draw one instance at a random rotation and stretch, with anti-aliased edges."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    stretch = np.exp(rng.uniform(-0.15, 0.15, size=2)) * radius
    phase = float(rng.random())
    light = rng.normal(0.0, 0.15, size=2)
    cx, cy = centre
    x0, y0 = int(np.floor(cx - stretch.max())), int(np.floor(cy - stretch.max()))
    span = int(np.ceil(2 * stretch.max())) + 1
    cos, sin = np.cos(angle), np.sin(angle)

    def frame(step: float) -> tuple[np.ndarray, np.ndarray]:
        # Object-frame coordinates (u, v) of sample points ``step`` pixels apart over the box.
        offsets = np.arange(step / 2, span, step, dtype=np.float32)
        dx = (x0 + offsets - cx)[None, :]
        dy = (y0 + offsets - cy)[:, None]
        return (cos * dx + sin * dy) / stretch[0], (cos * dy - sin * dx) / stretch[1]

    # Coverage from 2x2 supersampling softens the edge at the cost of one extra evaluation.
    inside = obj.silhouette(*frame(0.5)).view(np.uint8)
    hits = inside[0::2, 0::2] + inside[0::2, 1::2] + inside[1::2, 0::2] + inside[1::2, 1::2]
    coverage = hits.astype(np.float32) / 4.0
    u, v = frame(1.0)
    t = obj.pattern(u, v, phase, obj.silhouette).astype(np.float32)[:, :, None]
    shade = (1.0 + light[0] * u + light[1] * v)[:, :, None]
    colour = (palette[1] + (palette[0] - palette[1]) * t) * shade

    rows = slice(max(y0, 0), min(y0 + span, size))
    cols = slice(max(x0, 0), min(x0 + span, size))
    local = (slice(rows.start - y0, rows.stop - y0), slice(cols.start - x0, cols.stop - x0))
    total = int((coverage >= 0.5).sum())
    shown = int((coverage[local] >= 0.5).sum())
    return _Sprite(rows, cols, coverage[local], colour[local], shown / total if total else 0.0)


def render_sample(
    class_id: int,
    rng: np.random.Generator,
    image_size: int,
    distractors: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One photo with one object of ``class_id`` and, often, distractors of other classes.

    ``distractors`` are the classes distractors may come from (``class_id`` itself is never
    used); by default the other classes of ``class_id``'s fold, so a test-fold image shows only
    test-fold shapes. Returns the image ``(H, W, 3)`` uint8 and its mask ``(H, W)`` uint8 in
    {0, 1}, with 1 on the visible part of the ``class_id`` object (never empty).
    """
    if not 0 <= class_id < NUM_CLASSES:
        raise ValueError(f"class_id must lie in 0..{NUM_CLASSES - 1}, got {class_id}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, got {image_size}")
    if distractors is None:
        distractors = fold_classes(class_id // (NUM_CLASSES // NUM_FOLDS))
    others = [c for c in distractors if c != class_id]

    canvas = _background(rng, image_size)
    palette = _palette(rng)
    radius = rng.uniform(*_TARGET_DIAMETER) * image_size / 2
    # The target may poke out of the frame a little; place it again until most of it shows.
    while True:
        centre = rng.uniform(0.2 * radius, image_size - 0.2 * radius, size=2)
        target = _rasterise(CLASSES[class_id], centre, radius, image_size, palette, rng)
        if target.visible >= _MIN_VISIBLE:
            break
    count = int(rng.integers(1, 3)) if others and rng.random() < _DISTRACTOR_PROB else 0
    for _ in range(count):
        d_radius = rng.uniform(*_DISTRACTOR_DIAMETER) * image_size / 2
        d_centre = rng.uniform(0.0, image_size, size=2)
        if np.hypot(*(d_centre - centre)) < 0.8 * (radius + d_radius):
            continue  # it would sit under much of the target
        d_palette = palette if rng.random() < _SAME_PALETTE_PROB else _palette(rng)
        d_class = CLASSES[others[rng.integers(len(others))]]
        _rasterise(d_class, d_centre, d_radius, image_size, d_palette, rng).paste(canvas)
    target.paste(canvas)  # last, so nothing hides the foreground
    canvas += (rng.random(canvas.shape, dtype=np.float32) - 0.5) * (2.0 * _NOISE)
    image = np.clip(canvas + 0.5, 0.0, 255.0).astype(np.uint8)
    return image, target.mask(image_size).astype(np.uint8)


class BuiltinEpisodes(Dataset[Episode]):
    """Few-shot episodes of the generated data: ``shots`` supports and one query of one class.

    ``split="test"`` draws from the five classes of ``fold``, ``"train"`` from the other fifteen
    (distractors too, so training never shows a test-fold shape). Item ``i`` depends only on
    (seed, split, fold, shots, image_size, i): the same arguments give bit-identical tensors, and
    ``augment`` changes the geometry of an episode but not what was rendered.
    """

    def __init__(
        self,
        split: str,
        fold: int,
        shots: int,
        image_size: int,
        length: int,
        seed: int,
        augment: bool,
    ) -> None:
        if split not in _SPLIT_CODES:
            raise ValueError(f"split must be one of {tuple(_SPLIT_CODES)}, got {split!r}")
        held_out = fold_classes(fold)
        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {image_size}")
        if length < 0:
            raise ValueError(f"length must be zero or more, got {length}")
        if seed < 0:
            raise ValueError(f"seed must be zero or more, got {seed}")
        self.split, self.fold, self.shots = split, fold, shots
        self.image_size, self.length, self.seed, self.augment = image_size, length, seed, augment
        self.class_ids: list[int] = (
            held_out if split == "test" else [c for c in range(NUM_CLASSES) if c not in held_out]
        )
        self.class_names: dict[int, str] = {c: CLASSES[c].name for c in self.class_ids}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Episode:
        if not 0 <= index < self.length:
            raise IndexError(f"episode index {index} is out of range for {self.length} episodes")
        key = [self.seed, _SPLIT_CODES[self.split], self.fold, self.shots, self.image_size, index]
        # Separate streams: turning augmentation on must not change what gets rendered.
        render_seed, augment_seed = np.random.SeedSequence(key).spawn(2)
        rng, augment_rng = np.random.default_rng(render_seed), np.random.default_rng(augment_seed)
        class_id = self.class_ids[rng.integers(len(self.class_ids))]
        pairs = []
        for k in range(self.shots + 1):
            array, label = render_sample(class_id, rng, self.image_size, self.class_ids)
            image, mask = to_tensor_image(array), to_tensor_mask(label)
            if self.augment:
                fill = 0 if k < self.shots else IGNORE_INDEX
                image, mask = augment_pair(image, mask, augment_rng, ignore_value=fill)
            pairs.append((image, mask))
        *support, (query_image, query_mask) = pairs
        return Episode(
            support_images=torch.stack([image for image, _ in support]),
            support_masks=torch.stack([mask for _, mask in support])[:, None].float(),
            query_image=query_image,
            query_mask=query_mask,
            class_id=class_id,
        )
