"""Support-folder naming, mask reading and the errors that bad folders and files give."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from runtime.helpers import blob_pair, write_pair
from vpi.errors import DataError
from vpi.runtime import find_queries, find_support_pairs, load_support
from vpi.runtime.processing import check_image_file, load_mask


def _names(pairs):
    return [(p.image.name, p.mask.name) for p in pairs]


def test_both_naming_styles_pair_up(tmp_path):
    write_pair(tmp_path, "dog1.jpg", *blob_pair(1), mask_name="dog1.png")
    write_pair(tmp_path, "dog2.png", *blob_pair(2))
    write_pair(tmp_path, "Dog3.JPEG", *blob_pair(3))
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.png").write_bytes(b"ignored")
    pairs = find_support_pairs(tmp_path)
    assert _names(pairs) == [("Dog3.JPEG", "Dog3_mask.png"), ("dog1.jpg", "dog1.png"),
                             ("dog2.png", "dog2_mask.png")]
    images, masks = load_support(pairs)
    assert images[0].shape == (48, 40, 3) and images[0].dtype == np.uint8
    assert masks[1].dtype == np.uint8 and set(np.unique(masks[1])) == {0, 1}


@pytest.mark.parametrize("mode", ["L", "P", "RGB", "1"])
def test_any_non_zero_pixel_is_foreground(tmp_path, mode):
    values = np.zeros((8, 8), np.uint8)
    values[2:4, 2:5] = 1 if mode == "P" else 255
    image = Image.fromarray(values).convert(mode) if mode != "P" else Image.fromarray(values, "P")
    image.save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").sum() == 6


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: Image.fromarray(blob_pair(1)[0]).save(d / "cat.jpg"),
     "support image 'cat.jpg' has no mask: put 'cat_mask.png' beside it"),
    (lambda d: write_pair(d, "cat.png", blob_pair(1)[0], blob_pair(1, 24, 20)[1]),
     "support mask 'cat_mask.png' is 20×24 but its image 'cat.png' is 40×48"),
    (lambda d: write_pair(d, "cat.png", blob_pair(1)[0], np.zeros((48, 40), np.uint8)),
     "support mask 'cat_mask.png' has no foreground"),
    (lambda d: (write_pair(d, "cat.png", *blob_pair(1)), (d / "cat.png").write_text("text")),
     "support image '.*cat.png' is not an image PIL can read"),
    (lambda d: None, "holds no image/mask pairs"),
    (lambda d: Image.fromarray(blob_pair(1)[1]).save(d / "cat_mask.png"),
     "support mask 'cat_mask.png' has no image beside it"),
    (lambda d: (write_pair(d, "cat.jpg", *blob_pair(1)),
                write_pair(d, "x.jpg", *blob_pair(1), mask_name="cat.png")),
     "support image 'cat.jpg' has two masks"),
])
def test_bad_support_folders_say_what_is_wrong(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(DataError, match=message):
        load_support(find_support_pairs(tmp_path))


def test_a_missing_support_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist or is not a folder"):
        find_support_pairs(tmp_path / "nope")


def test_queries_from_files_and_folders(tmp_path):
    write_pair(tmp_path / "many", "a.png", *blob_pair(1))
    Image.fromarray(blob_pair(2)[0]).save(tmp_path / "many" / "b.jpg")
    Image.fromarray(blob_pair(3)[0]).save(tmp_path / "c.png")
    found = find_queries([tmp_path / "c.png", tmp_path / "many"])
    assert [q.name for q in found] == ["c.png", "a.png", "b.jpg"]
    with pytest.raises(DataError, match="two queries are named 'c'"):
        find_queries([tmp_path / "c.png", tmp_path / "c.png"])
    with pytest.raises(DataError, match="does not exist"):
        find_queries([tmp_path / "missing.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        find_queries([tmp_path / "empty"])
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(DataError, match="query '.*fake.png' is not an image PIL can read"):
        check_image_file(tmp_path / "fake.png", "query")
