"""The PNGs `vpi segment` writes: a 0/255 mask, a tinted overlay, a fixed-scale heat map."""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from PIL import Image

from vpi.runtime.outputs import COLORMAP, heat_map, overlay, write_query_outputs
from vpi.runtime.segmenter import Segmentation


def test_overlay_tints_only_the_mask():
    image = np.full((4, 6, 3), 100, np.uint8)
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:4] = True
    tinted = overlay(image, mask)
    assert (tinted[~mask] == 100).all()
    assert tuple(tinted[1, 2]) == (178, 70, 70)  # halfway to the tint colour (255, 40, 40)


def test_heat_map_scale_is_fixed():
    colours = heat_map(np.array([[0.0, 0.25, 0.0625]], np.float32))
    expected = [colormaps[COLORMAP](v)[:3] for v in (0.0, 1.0, 0.5)]  # std 0, 0.5, 0.25
    np.testing.assert_array_equal(colours[0], (np.array(expected) * 255).round().astype(np.uint8))


def test_query_outputs(tmp_path):
    image = np.zeros((5, 7, 3), np.uint8)
    mask = np.eye(5, 7, dtype=bool)
    entropy = np.full((5, 7), math.log(2), np.float32)
    entropy[0, 0] = 0.0
    result = Segmentation(probability=mask.astype(np.float32), mask=mask,
                          uncertainty=np.zeros((5, 7), np.float32), entropy=entropy,
                          mutual_information=np.zeros((5, 7), np.float32), samples=2,
                          confidence=0.5, likely_failed=None)
    files = write_query_outputs(tmp_path, tmp_path / "dog.jpg", image, result)
    assert files == {"mask": "dog_mask.png", "overlay": "dog_overlay.png",
                     "uncertainty": "dog_uncertainty.png", "entropy": "dog_entropy.png",
                     "mutual_information": "dog_mutual_information.png"}
    written = np.asarray(Image.open(tmp_path / "dog_mask.png"))
    np.testing.assert_array_equal(written, mask.astype(np.uint8) * 255)
    # Entropy on its own fixed scale: ln 2 (a coin toss) is the top colour, 0 the bottom one.
    heat = np.asarray(Image.open(tmp_path / "dog_entropy.png"))
    top, bottom = (np.round(np.array(colormaps[COLORMAP](v)[:3]) * 255) for v in (1.0, 0.0))
    np.testing.assert_array_equal(heat[1, 1], top)
    np.testing.assert_array_equal(heat[0, 0], bottom)
