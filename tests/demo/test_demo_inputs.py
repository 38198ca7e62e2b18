"""The page's inputs: painted or uploaded masks, queries, and each bad input's message."""

from __future__ import annotations

import numpy as np
import pytest
from demo_helpers import QUERIES, STAR5, painted_editor, star5_pair
from PIL import Image

from vpi.demo.inputs import (
    MAX_SUPPORT,
    add_support,
    check_support,
    read_queries,
    support_from_editor,
)
from vpi.errors import DataError
from vpi.runtime.processing import load_image, load_mask


@pytest.mark.parametrize("layers", [1, 2])
def test_a_painted_mask_is_where_any_layer_is_not_transparent(layers):
    pair = star5_pair()
    example = support_from_editor(painted_editor(pair.image, pair.mask, layers=layers), None, "photo 1")
    assert np.array_equal(example.image, pair.image)  # the editor's alpha dropped, pixels exact
    assert np.array_equal(example.mask, pair.mask)
    assert (example.name, example.mask_name) == ("photo 1", "painted")


def test_an_uploaded_mask_is_read_as_vpi_segment_reads_it():
    pair = star5_pair(2)
    editor = {"background": pair.image, "layers": [], "composite": pair.image}
    example = support_from_editor(editor, str(STAR5 / "star5_2_mask.png"), "photo 1")
    assert np.array_equal(example.mask, load_mask(STAR5 / "star5_2_mask.png"))
    assert example.mask_name == "star5_2_mask.png"


def test_a_grey_photo_becomes_rgb():
    grey = np.full((20, 30), 90, np.uint8)
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 1
    example = support_from_editor(painted_editor(np.dstack([grey] * 3), mask) | {"background": grey},
                                  None, "photo 1")
    assert example.image.shape == (20, 30, 3) and (example.image == 90).all()


def _blank(width: int = 30, height: int = 20) -> dict:
    image = np.zeros((height, width, 3), np.uint8)
    return {"background": image, "layers": [np.zeros((height, width, 4), np.uint8)],
            "composite": image}


def _mask_file(tmp_path, mask: np.ndarray, name: str = "m.png") -> str:
    Image.fromarray(mask).save(tmp_path / name)
    return str(tmp_path / name)


@pytest.mark.parametrize(("case", "fragment"), [
    ("no photo", "photo 1: drop a photo into the editor first"),
    ("nothing painted", "photo 1 has no painted mask: paint the object with the brush, or upload"),
    ("empty mask file", "support mask 'empty.png' has no foreground (every pixel is 0)"),
    ("mask file of another size", "support mask 'small.png' is 10×10 but its image 'photo 1' is 30×20"),
    ("mask file not an image", "is not an image PIL can read"),
    ("painted and uploaded", "photo 1 has a painted mask and an uploaded one: keep one"),
    ("layer of another size", "photo 1: a painted layer is 10×20 but the photo is 30×20"),
    ("oversized", "photo 1 is 30×20 (0.0 megapixels); the demo takes at most 0.0005 megapixels"),
])
def test_bad_support_input_is_one_clear_message(case, fragment, tmp_path):
    editor, mask_file, limit = _blank(), None, 25_000_000
    if case == "no photo":
        editor = None
    elif case == "empty mask file":
        mask_file = _mask_file(tmp_path, np.zeros((20, 30), np.uint8), "empty.png")
    elif case == "mask file of another size":
        mask_file = _mask_file(tmp_path, np.full((10, 10), 255, np.uint8), "small.png")
    elif case == "mask file not an image":
        (tmp_path / "notes.png").write_text("not a picture")
        mask_file = str(tmp_path / "notes.png")
    elif case == "painted and uploaded":
        editor["layers"][0][2:5, 2:5, 3] = 255
        mask_file = _mask_file(tmp_path, np.full((20, 30), 255, np.uint8))
    elif case == "layer of another size":
        editor["layers"] = [np.full((20, 10, 4), 255, np.uint8)]
    elif case == "oversized":
        limit = 500
    with pytest.raises(DataError) as info:
        support_from_editor(editor, mask_file, "photo 1", limit=limit)
    assert fragment in str(info.value)


def test_six_supports_are_refused_with_the_limit_named():
    support = []
    for _ in range(MAX_SUPPORT):
        support = add_support(support, star5_pair())
    with pytest.raises(DataError, match="the support holds 5 photos, the most the demo takes"):
        add_support(support, star5_pair())
    with pytest.raises(DataError, match="got 6 support photos; the demo takes 1 to 5"):
        check_support([*support, star5_pair()])
    with pytest.raises(DataError, match="no support yet"):
        check_support([])


def test_queries_are_read_as_vpi_segment_reads_them_with_unique_names(tmp_path):
    (tmp_path / "again").mkdir()
    copy = tmp_path / "again" / "query1.png"
    copy.write_bytes((QUERIES / "query1.png").read_bytes())
    queries = read_queries([str(QUERIES / "query1.png"), str(copy), str(QUERIES / "query2.png")])
    assert [q.name for q in queries] == ["query1.png", "query1-2.png", "query2.png"]
    assert np.array_equal(queries[1].image, load_image(QUERIES / "query1.png"))
    assert all(q.load_ms >= 0.0 for q in queries)


@pytest.mark.parametrize(("case", "fragment"), [
    ("none", "no query: drop one or more photos"),
    ("not an image", "query '{path}' is not an image PIL can read"),
    ("oversized", "query 'query1.png' is 128×128 (0.0 megapixels); the demo takes at most"),
    ("too many", "got 9 queries; the demo segments at most 8 at a time"),
])
def test_bad_queries_are_one_clear_message(case, fragment, tmp_path):
    paths, limit = [str(QUERIES / "query1.png")], 25_000_000
    if case == "none":
        paths = []
    elif case == "not an image":
        (tmp_path / "notes.txt").write_text("not a picture")
        paths = [str(tmp_path / "notes.txt")]
    elif case == "oversized":
        limit = 1000
    elif case == "too many":
        paths = paths * 9
    with pytest.raises(DataError) as info:
        read_queries(paths, limit=limit)
    assert fragment.format(path=paths[0] if paths else "") in str(info.value)
