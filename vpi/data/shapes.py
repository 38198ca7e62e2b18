"""The 20 object classes of the built-in data: a silhouette and a surface pattern each.

Both are implicit functions of the object's own frame ``(u, v)`` (the object fits the unit disc),
so rotating or stretching an instance rotates and stretches its pattern with it. Colours are not
part of a class: every instance is painted with a random palette, so only shape and texture tell
the classes apart. Each silhouette and each pattern belongs to exactly one class, so the classes of
a held-out fold show shapes and textures that training never saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Silhouette = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (u, v) -> bool, inside the shape
Pattern = Callable[[np.ndarray, np.ndarray, float, Silhouette], np.ndarray]  # -> t in [0, 1]

_TAU = 2.0 * np.pi


@dataclass(frozen=True)
class ObjectClass:
    """One class: its name, the shape of its outline and the two-tone pattern on its surface."""

    name: str
    silhouette: Silhouette
    pattern_name: str
    pattern: Pattern


def _polar(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.hypot(u, v), np.arctan2(v, u)


def _disc(u: np.ndarray, v: np.ndarray, cu: float, cv: float, radius: float) -> np.ndarray:
    return (u - cu) ** 2 + (v - cv) ** 2 < radius**2


def _star5(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r, a = _polar(u, v)
    half = np.pi / 5
    inner = 0.42  # radius of the valleys between the tips (the tips sit at radius 0.97)
    # Angle from the nearest tip; the edge is the straight line from that tip to the valley.
    phi = np.abs((a + np.pi / 2 + half) % (2 * half) - half)
    sin_h, cos_h = inner * np.sin(half), inner * np.cos(half)
    edge = 0.97 * sin_h / (sin_h * np.cos(phi) - np.sin(phi) * (cos_h - 0.97))
    return r < edge


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.hypot(u, v)
    return (r > 0.55) & (r < 0.97)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au < 0.3) & (av < 0.92)) | ((av < 0.3) & (au < 0.92))


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _disc(u, v, 0.0, 0.0, 0.97) & ~_disc(u, v, 0.5, -0.15, 0.8)


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = 1.15 * u, -1.15 * v + 0.15
    return (x * x + y * y - 1.0) ** 3 - x * x * y**3 < 0.0


def _arrow(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    shaft = (np.abs(v) < 0.2) & (u > -0.95) & (u < 0.1)
    head = (u >= 0.1) & (u < 0.95) & (np.abs(v) < (0.95 - u) * 0.8)
    return shaft | head


def _lshape(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    upright = (u > -0.7) & (u < -0.15) & (v > -0.7) & (v < 0.7)
    foot = (u > -0.7) & (u < 0.7) & (v > 0.2) & (v < 0.7)
    return upright | foot


def _notched_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    ellipse = u * u + (v / 0.6) ** 2 < 0.95
    notch = (u > 0.05) & (np.abs(v) < (u - 0.05) * 0.7)
    return ellipse & ~notch


def _gear(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r, a = _polar(u, v)
    teeth = np.cos(8 * a) > 0.0
    return (r > 0.25) & (r < np.where(teeth, 0.95, 0.72))


def _hexagon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return (av < 0.82) & (0.866 * au + 0.5 * av < 0.82)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Three half-planes whose normals point at 90, 210 and 330 degrees; circumradius 0.96.
    inside = np.ones(u.shape, dtype=bool)
    for angle in (np.pi / 2, np.pi / 2 + _TAU / 3, np.pi / 2 + 2 * _TAU / 3):
        inside &= u * np.cos(angle) + v * np.sin(angle) < 0.48
    return inside


def _keyhole(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    head = _disc(u, v, 0.0, -0.4, 0.48)
    foot = (v > -0.3) & (v < 0.92) & (np.abs(u) < 0.14 + 0.3 * (v + 0.3))
    return head | foot


def _hourglass(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    av = np.abs(v)
    return (av < 0.88) & (np.abs(u) < 0.08 + 0.7 * av)


def _horseshoe(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.hypot(u, v)
    arch = (v >= 0.0) & (r > 0.45) & (r < 0.92)
    legs = (v < 0.0) & (v > -0.9) & (np.abs(u) > 0.45) & (np.abs(u) < 0.92)
    return arch | legs


def _clover(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    inside = np.zeros(u.shape, dtype=bool)
    for angle in (-np.pi / 2, -np.pi / 2 + _TAU / 3, -np.pi / 2 + 2 * _TAU / 3):
        inside |= _disc(u, v, 0.5 * np.cos(angle), 0.5 * np.sin(angle), 0.45)
    return inside


def _square_frame(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    m = np.maximum(np.abs(u), np.abs(v))
    return (m < 0.68) & (m > 0.36)


def _teardrop(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    bulb = _disc(u, v, 0.0, 0.35, 0.58)
    tip = (v > -0.95) & (v <= 0.35) & (np.abs(u) < 0.58 * (v + 0.95) / 1.3)
    return bulb | tip


def _dumbbell(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    ends = _disc(u, v, -0.55, 0.0, 0.4) | _disc(u, v, 0.55, 0.0, 0.4)
    return ends | ((np.abs(u) < 0.6) & (np.abs(v) < 0.14))


def _tshape(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    bar = (np.abs(u) < 0.85) & (v > -0.75) & (v < -0.35)
    stem = (np.abs(u) < 0.2) & (v >= -0.35) & (v < 0.85)
    return bar | stem


def _half_disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _disc(u, v, 0.0, -0.4, 0.95) & (v > -0.4)


def _wave(x: np.ndarray) -> np.ndarray:
    """A sine of period 1 sharpened towards a square wave: crisp stripes that still anti-alias."""
    return np.clip(0.5 + 1.5 * np.sin(_TAU * x), 0.0, 1.0)


def _stripes(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return _wave(1.5 * v + phase)


def _diagonal(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return _wave(1.8 * (u + v) + phase)


def _dots(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    field = np.cos(_TAU * (2.0 * u + phase)) + np.cos(_TAU * (2.0 * v + phase))
    return np.clip(2.0 * (field - 0.8), 0.0, 1.0)


def _checker(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    product = np.sin(_TAU * (1.25 * u + phase)) * np.sin(_TAU * (1.25 * v + phase))
    return np.clip(0.5 + 3.0 * product, 0.0, 1.0)


def _rings(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return _wave(2.2 * np.hypot(u, v) + phase)


def _outline(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    # A solid fill with a border: the silhouette shrunk about its centre marks the interior.
    return (~shape(u / 0.7, v / 0.7)).astype(np.float32)


def _gradient(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return np.clip(0.5 + 0.6 * u, 0.0, 1.0)


def _radial(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return np.clip(1.1 * np.hypot(u, v), 0.0, 1.0)


def _zigzag(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    triangle = np.abs((2.0 * u) % 1.0 - 0.5)
    return _wave(1.6 * v + 0.8 * triangle + phase)


def _waves(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return _wave(1.6 * u + 0.25 * np.sin(_TAU * 1.2 * v) + phase)


def _grid(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    lines = np.maximum(np.abs(np.cos(np.pi * 3.0 * u)), np.abs(np.cos(np.pi * 3.0 * v)))
    return np.clip(5.0 * (lines - 0.75), 0.0, 1.0)


def _mosaic(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    # Random-looking tiles from a coordinate hash, so the tiles move and turn with the object.
    cell = np.floor(3.0 * u) * 12.9898 + np.floor(3.0 * v) * 78.233 + 31.4 * phase
    return ((np.sin(cell) * 43758.5453) % 1.0 > 0.5).astype(np.float32)


def _spiral(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    r, a = _polar(u, v)
    return _wave(2.0 * a / _TAU + 1.5 * r + phase)


def _sectors(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return _wave(3.0 * np.arctan2(v, u) / _TAU + phase)


def _halves(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return np.clip(0.5 + 8.0 * v, 0.0, 1.0)


def _plaid(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return 0.5 * (_wave(1.2 * u + phase) + _wave(0.8 * v))


def _diamonds(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    product = np.sin(_TAU * (u + v + phase)) * np.sin(_TAU * (u - v))
    return np.clip(0.5 + 3.0 * product, 0.0, 1.0)


def _spot(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return np.clip(6.0 * (np.hypot(u - 0.1, v) - 0.35), 0.0, 1.0)


def _bricks(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    row = 2.5 * v + phase
    shift = 0.5 * (np.floor(row) % 2.0)
    mortar = (np.abs(row % 1.0 - 0.5) > 0.38) | (np.abs((1.5 * u + shift) % 1.0 - 0.5) > 0.42)
    return mortar.astype(np.float32)


def _fine_stripes(u: np.ndarray, v: np.ndarray, phase: float, shape: Silhouette) -> np.ndarray:
    return _wave(3.0 * u + phase)


CLASSES: tuple[ObjectClass, ...] = tuple(
    ObjectClass(name, silhouette, pattern_name, pattern)
    for name, silhouette, pattern_name, pattern in (
        ("star5", _star5, "stripes", _stripes),
        ("ring", _ring, "diagonal", _diagonal),
        ("cross", _cross, "dots", _dots),
        ("crescent", _crescent, "checker", _checker),
        ("heart", _heart, "rings", _rings),
        ("arrow", _arrow, "outline", _outline),
        ("lshape", _lshape, "gradient", _gradient),
        ("notched_ellipse", _notched_ellipse, "radial", _radial),
        ("gear", _gear, "zigzag", _zigzag),
        ("hexagon", _hexagon, "waves", _waves),
        ("triangle", _triangle, "grid", _grid),
        ("keyhole", _keyhole, "mosaic", _mosaic),
        ("hourglass", _hourglass, "spiral", _spiral),
        ("horseshoe", _horseshoe, "sectors", _sectors),
        ("clover", _clover, "halves", _halves),
        ("square_frame", _square_frame, "plaid", _plaid),
        ("teardrop", _teardrop, "diamonds", _diamonds),
        ("dumbbell", _dumbbell, "spot", _spot),
        ("tshape", _tshape, "bricks", _bricks),
        ("half_disc", _half_disc, "fine_stripes", _fine_stripes),
    )
)
