import os
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from vpi.data.sampler import open_image
from vpi.errors import DataError, VpiError
from vpi.io import atomic_path, atomic_write_text, ensure_writable_dir, image_size_guard
from vpi.runtime.processing import check_image_file, load_image, load_mask


def test_atomic_write_replaces_and_uses_the_usual_mode(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_unwritable_output_folders_are_clear_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(VpiError, match="exists and is not a folder"):
        ensure_writable_dir(tmp_path / "file")
    with pytest.raises(VpiError, match="empty"):
        ensure_writable_dir("")


# Every image read goes through image_size_guard: the query, support and mask readers of
# `vpi segment` and the dataset reader. PIL warns over MAX_IMAGE_PIXELS and raises over twice it.
READERS = {
    "load_image": lambda path: load_image(path, "query"),
    "load_mask": load_mask,
    "check_image_file": lambda path: check_image_file(path, "query"),
    "dataset open_image": lambda path: open_image(path, "pascal"),
}


@pytest.mark.parametrize("limit", [2500, 1000], ids=["PIL warns", "PIL raises"])
@pytest.mark.parametrize("reader", list(READERS))
def test_images_over_the_pixel_limit_are_one_clear_error(tmp_path, monkeypatch, reader, limit):
    path = tmp_path / "huge.png"
    Image.fromarray(np.full((60, 60), 255, np.uint8)).save(path)  # 3,600 pixels
    READERS[reader](path)  # under PIL's default limit it reads
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may slip out as a mere warning either
        with pytest.raises(DataError, match=f"'{re.escape(str(path))}' has more than {limit:,} "
                                            "pixels, the limit PIL sets against decompression "
                                            "bombs"):
            READERS[reader](path)
    assert not any(f[2] is Image.DecompressionBombWarning for f in warnings.filters)  # restored


def test_the_pixel_guard_lets_other_errors_through(tmp_path):
    with pytest.raises(ZeroDivisionError), image_size_guard(tmp_path / "x.png", "query"):
        raise ZeroDivisionError
