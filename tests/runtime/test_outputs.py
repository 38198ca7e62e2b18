"""The PNGs `vpi segment` writes: a 0/255 mask, a tinted overlay, a fixed-scale heat map."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image

from vpi.runtime.outputs import COLORMAP, heat_map, overlay, write_query_outputs


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
    files = write_query_outputs(tmp_path, tmp_path / "dog.jpg", image, mask, np.zeros((5, 7)))
    assert files == {"mask": "dog_mask.png", "overlay": "dog_overlay.png",
                     "uncertainty": "dog_uncertainty.png"}
    written = np.asarray(Image.open(tmp_path / "dog_mask.png"))
    np.testing.assert_array_equal(written, mask.astype(np.uint8) * 255)
