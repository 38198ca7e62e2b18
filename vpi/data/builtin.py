"""The built-in few-shot data: generated objects pasted onto real photographs, fully offline.

Twenty classes (``vpi.data.shapes``) in four folds of five, like PASCAL-5i: fold ``f`` tests
classes ``5f .. 5f+4`` and trains on the other fifteen. Every image is a scene of two or three
objects of different classes of one split, on a random crop of a photograph that ships inside
scikit-image. All objects come from one size distribution and are pasted in random order, so an
object may be partly covered; its mask is the part that stays visible. Every instance gets a
random palette (or, with photographic surfaces, a random crop of its class's own photograph),
position, scale, rotation and stretch. So neither size, paste order nor count says which object is
the target, and with palettes neither does colour: only the support does.

Episodes come in pairs that share one query scene: episode ``2j`` asks for one of its objects and
episode ``2j + 1`` for another, each with its own supports. A predictor that ignores the support
gives both the same mask, so it can do no better than the class-agnostic oracle (every object of
the query): about 40 class-IoU, where a perfect few-shot model scores 100.
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

from vpi.config import OBJECT_SIZES, SURFACES, DataConfig
from vpi.data.episode import IGNORE_INDEX, Episode
from vpi.data.shapes import CLASSES, ObjectClass
from vpi.data.transforms import augment_pair, to_tensor_image, to_tensor_mask

NUM_CLASSES = len(CLASSES)
NUM_FOLDS = 4
_SPLIT_CODES = {"train": 0, "test": 1, "val": 2}

# Photographs stored inside the scikit-image wheel (no download). Names that fail to load are
# skipped, so an older or newer scikit-image still works with whatever it carries.
_PHOTO_NAMES = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "brick", "grass", "gravel", "moon",
    "hubble_deep_field", "immunohistochemistry", "coins", "clock", "retina", "stereo_motorcycle",
)
_PHOTO_SIDE = 256  # cached photos keep their shorter side at most this long: ~4 MB in all

_OBJECTS = (2, 3)  # objects per image: the target and one or two of other classes
_SAME_PALETTE_PROB = 0.3  # an object painted like another: colour cannot separate them
_MIN_VISIBLE = 0.4  # fraction of every object that stays visible: inside the frame, not covered
_PLACEMENT_TRIES = 100
# Objects that overflow the frame (sizes over 1) may leave no placement that keeps each visible:
# after each _PLACEMENT_TRIES failures every object is drawn _SHRINK times smaller.
_SHRINK, _SHRINK_ROUNDS = 0.85, 6
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
        photos.append(_as_rgb_photo(array))
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


# "photo" surfaces: class c is covered with a crop of photograph c, which no other class uses,
# so ImageNet features see photographic texture on an object as they do in a photograph.
_SURFACE_NAMES = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "brick", "grass", "gravel", "moon",
    "hubble_deep_field", "immunohistochemistry", "coins", "clock", "retina", "stereo_motorcycle",
    "cell", "page", "text", "microaneurysms", "colorwheel",
)
_SURFACE_CROP = (0.15, 0.35)  # half the side of an instance's crop, of the photo's shorter side
_PATTERN_CONTRAST = 0.3  # how much the class's two-tone pattern still shades a photo surface


@functools.cache
def _surfaces() -> tuple[np.ndarray, ...]:
    """One photograph per class, as float32 (H, W, 3) arrays, loaded once per process."""
    import skimage.data

    return tuple(np.asarray(_as_rgb_photo(getattr(skimage.data, name)()), dtype=np.float32)
                 for name in _SURFACE_NAMES)


def _as_rgb_photo(array: np.ndarray | tuple) -> Image.Image:
    """A scikit-image sample as an RGB PIL image whose shorter side is at most _PHOTO_SIDE."""
    if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
        array = array[0]
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    photo = Image.fromarray(np.ascontiguousarray(array[:, :, :3]).astype(np.uint8))
    shrink = _PHOTO_SIDE / min(photo.size)
    if shrink < 1.0:
        photo = photo.resize((round(photo.width * shrink), round(photo.height * shrink)),
                             Image.LANCZOS)
    return photo


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
    area: int  # pixels of the whole instance, on the canvas or not

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
    palette: np.ndarray | None,
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
    if palette is None:  # a photographic surface, shaded by the class's pattern
        pattern = 1.0 - _PATTERN_CONTRAST / 2 + _PATTERN_CONTRAST * t
        colour = _photo_surface(CLASSES.index(obj), u, v, rng) * pattern * shade
    else:
        colour = (palette[1] + (palette[0] - palette[1]) * t) * shade

    rows = slice(max(y0, 0), min(y0 + span, size))
    cols = slice(max(x0, 0), min(x0 + span, size))
    local = (slice(rows.start - y0, rows.stop - y0), slice(cols.start - x0, cols.stop - x0))
    area = int((coverage >= 0.5).sum())
    return _Sprite(rows, cols, coverage[local], colour[local], area)


def _photo_surface(
    class_id: int, u: np.ndarray, v: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The colours of a random crop of the class's photograph at object-frame points (u, v), so
    that the surface turns and stretches with the instance; a random gain per instance."""
    photo = _surfaces()[class_id]
    height, width = photo.shape[:2]
    half = min(height, width) * rng.uniform(*_SURFACE_CROP)
    top, left = rng.uniform(half, height - half), rng.uniform(half, width - half)
    rows = np.clip((top + v * half).astype(np.int64), 0, height - 1)
    cols = np.clip((left + u * half).astype(np.int64), 0, width - 1)
    return photo[rows, cols] * np.float32(rng.uniform(0.8, 1.2))


@dataclass(frozen=True)
class Scene:
    """One rendered image and every object in it, in the order the caller named their classes.

    image: (H, W, 3) uint8; masks: (N, H, W) bool, the visible part of each object (never empty).
    """

    image: np.ndarray
    masks: np.ndarray
    class_ids: tuple[int, ...]

    def mask_of(self, class_id: int) -> np.ndarray:
        """(H, W) uint8 in {0, 1}: the visible part of the ``class_id`` object."""
        return self.masks[self.class_ids.index(class_id)].astype(np.uint8)


def render_scene(
    class_ids: Sequence[int],
    rng: np.random.Generator,
    image_size: int,
    surfaces: str = "palette",
    sizes: tuple[float, float] = OBJECT_SIZES,
) -> Scene:
    """A photo with one object of each of ``class_ids`` (distinct), pasted in random order.

    ``surfaces`` (``vpi.config.SURFACES``): "palette" paints each instance's pattern in two random
    colours; "photo" covers it with a crop of its class's own photograph (``_photo_surface``).
    ``sizes``: the range of every object's diameter, as a fraction of the image side.

    Placements are drawn again until every object keeps at least ``_MIN_VISIBLE`` of its area
    visible (inside the frame and not covered by the objects pasted after it); sizes that leave
    no such placement shrink (``_SHRINK``) every ``_PLACEMENT_TRIES`` draws.
    """
    if len(set(class_ids)) != len(class_ids) or not class_ids:
        raise ValueError(f"class_ids must be distinct and not empty, got {list(class_ids)}")
    for class_id in class_ids:
        if not 0 <= class_id < NUM_CLASSES:
            raise ValueError(f"class_id must lie in 0..{NUM_CLASSES - 1}, got {class_id}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, got {image_size}")
    if surfaces not in SURFACES:
        raise ValueError(f"surfaces must be one of {SURFACES}, got {surfaces!r}")
    canvas = _background(rng, image_size)
    palettes = [_palette(rng) for _ in class_ids]
    for i in range(1, len(palettes)):
        if rng.random() < _SAME_PALETTE_PROB:
            palettes[i] = palettes[int(rng.integers(i))]
    for attempt in range(_PLACEMENT_TRIES * _SHRINK_ROUNDS):
        shrink = _SHRINK ** (attempt // _PLACEMENT_TRIES)
        sprites = []
        for class_id, palette in zip(class_ids, palettes, strict=True):
            radius = rng.uniform(*sizes) * image_size / 2 * shrink
            centre = rng.uniform(0.2 * radius, image_size - 0.2 * radius, size=2)
            sprites.append(_rasterise(CLASSES[class_id], centre, radius, image_size,
                                      palette if surfaces == "palette" else None, rng))
        order = rng.permutation(len(sprites))
        masks = np.stack([sprite.mask(image_size) for sprite in sprites])
        for later, j in enumerate(order):  # whatever is pasted after j covers part of it
            for k in order[later + 1:]:
                masks[j] &= ~masks[k]
        areas = np.array([max(sprite.area, 1) for sprite in sprites])
        if (masks.sum((1, 2)) >= _MIN_VISIBLE * areas).all():
            break
    else:  # not reached: objects this small always fit; a guard against an endless loop
        raise RuntimeError(f"no placement of {len(class_ids)} objects left each visible")
    for j in order:
        sprites[j].paste(canvas)
    canvas += (rng.random(canvas.shape, dtype=np.float32) - 0.5) * (2.0 * _NOISE)
    image = np.clip(canvas + 0.5, 0.0, 255.0).astype(np.uint8)
    return Scene(image, masks, tuple(int(c) for c in class_ids))


def scene_classes(
    rng: np.random.Generator, pool: Sequence[int], first: Sequence[int] = ()
) -> list[int]:
    """``first`` and then random others of ``pool``: two or three distinct classes in all."""
    count = int(rng.integers(_OBJECTS[0], _OBJECTS[1] + 1))
    others = [c for c in pool if c not in first]
    extra = max(count - len(first), 0)
    return [*first, *(int(c) for c in rng.choice(others, size=extra, replace=False))]


def render_sample(
    class_id: int,
    rng: np.random.Generator,
    image_size: int,
    others: Sequence[int] | None = None,
    surfaces: str = "palette",
    sizes: tuple[float, float] = OBJECT_SIZES,
) -> tuple[np.ndarray, np.ndarray]:
    """One scene holding ``class_id`` and one or two objects of the classes ``others``.

    By default the others come from ``class_id``'s fold, so a test-fold image shows only test-fold
    shapes. Returns the image ``(H, W, 3)`` uint8 and the ``class_id`` object's visible mask
    ``(H, W)`` uint8 in {0, 1}.
    """
    if not 0 <= class_id < NUM_CLASSES:
        raise ValueError(f"class_id must lie in 0..{NUM_CLASSES - 1}, got {class_id}")
    pool = fold_classes(class_id // (NUM_CLASSES // NUM_FOLDS)) if others is None else others
    scene = render_scene(scene_classes(rng, pool, [class_id]), rng, image_size, surfaces, sizes)
    return scene.image, scene.mask_of(class_id)


class BuiltinEpisodes(Dataset[Episode]):
    """Few-shot episodes of the generated data: ``shots`` supports and one query of one class.

    ``split="test"`` and ``"val"`` draw from the five classes of ``fold``, each from its own seed
    stream, so the episodes that select a checkpoint are never the reported ones; ``"train"`` draws
    from the other fifteen (the other objects too, so training never shows a test-fold shape).
    Episodes ``2j`` and ``2j + 1`` share their query scene and ask for two different classes of it.
    Item ``i`` depends only on (seed, split, fold, shots, image_size, i): the same arguments give
    bit-identical tensors, and ``augment`` changes the geometry of an episode but not what was
    rendered. Unaugmented episodes also carry ``query_objects``, every object of the query.
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
        surfaces: str = "palette",
        sizes: tuple[float, float] = OBJECT_SIZES,
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
        self.surfaces, self.sizes = surfaces, sizes
        self.class_ids: list[int] = (
            [c for c in range(NUM_CLASSES) if c not in held_out] if split == "train" else held_out
        )
        self.class_names: dict[int, str] = {c: CLASSES[c].name for c in self.class_ids}

    def __len__(self) -> int:
        return self.length

    def _streams(self, index: int) -> tuple[np.random.Generator, ...]:
        """The pair's query stream, then this episode's support and augmentation streams."""
        if not 0 <= index < self.length:
            raise IndexError(f"episode index {index} is out of range for {self.length} episodes")
        pair, side = divmod(index, 2)
        key = [self.seed, _SPLIT_CODES[self.split], self.fold, self.shots, self.image_size, pair]
        # Separate streams: turning augmentation on must not change what gets rendered.
        streams = np.random.SeedSequence(key).spawn(5)
        return tuple(np.random.default_rng(streams[i]) for i in (0, 1 + side, 3 + side))

    def episode_class(self, index: int) -> int:
        """The class item ``index`` asks for, without rendering it."""
        query_rng = self._streams(index)[0]
        return scene_classes(query_rng, self.class_ids)[index % 2]

    def __getitem__(self, index: int) -> Episode:
        query_rng, support_rng, augment_rng = self._streams(index)
        query_classes = scene_classes(query_rng, self.class_ids)
        class_id = query_classes[index % 2]
        query = render_scene(query_classes, query_rng, self.image_size, self.surfaces, self.sizes)
        scenes = [render_scene(scene_classes(support_rng, self.class_ids, [class_id]),
                               support_rng, self.image_size, self.surfaces, self.sizes)
                  for _ in range(self.shots)]
        pairs = [(scene.image, scene.mask_of(class_id)) for scene in scenes]
        pairs.append((query.image, query.mask_of(class_id)))
        tensors = []
        for k, (array, label) in enumerate(pairs):
            image, mask = to_tensor_image(array), to_tensor_mask(label)
            if self.augment:
                fill = 0 if k < self.shots else IGNORE_INDEX
                image, mask = augment_pair(image, mask, augment_rng, ignore_value=fill)
            tensors.append((image, mask))
        *support, (query_image, query_mask) = tensors
        objects = None if self.augment else torch.from_numpy(query.masks.any(0).astype(np.int64))
        return Episode(
            support_images=torch.stack([image for image, _ in support]),
            support_masks=torch.stack([mask for _, mask in support])[:, None].float(),
            query_image=query_image,
            query_mask=query_mask,
            class_id=class_id,
            query_objects=objects,
        )


def build_builtin(
    data: DataConfig, split: str, *, shots: int, episodes: int, seed: int, augment: bool
) -> BuiltinEpisodes:
    """The ``split`` episodes of fold ``data.fold``, ``episodes`` of them, with the config's
    surfaces and object sizes."""
    return BuiltinEpisodes(
        split=split, fold=data.fold, shots=shots, image_size=data.image_size, length=episodes,
        seed=seed, augment=augment, surfaces=data.surfaces, sizes=data.object_sizes,
    )
