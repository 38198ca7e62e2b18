import os

import pytest

from vpi.errors import VpiError
from vpi.io import atomic_path, atomic_write_text, ensure_writable_dir


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
