"""Atomic file writes (a crash or Ctrl-C mid-write never leaves a half-written file in place),
and the guard every image read goes through."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from vpi.errors import DataError, VpiError


@contextlib.contextmanager
def image_size_guard(path: str | Path, what: str) -> Iterator[None]:
    """Turn PIL's decompression-bomb guard into one DataError naming the file.

    Over ``Image.MAX_IMAGE_PIXELS`` PIL only warns, and would then decode the image; over twice
    that it raises. Both are refused: such a file is a decompression bomb or far larger than the
    graphs' input side, to which it would be resized anyway.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(
                f"{what} {str(path)!r} has more than {Image.MAX_IMAGE_PIXELS:,} pixels, the limit "
                "PIL sets against decompression bombs (PIL.Image.MAX_IMAGE_PIXELS): resize it"
            ) from None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed; a path that cannot hold files is one clear error."""
    if str(folder).strip() == "":
        raise VpiError("the output folder path is empty")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise VpiError(f"output folder {str(folder)!r} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VpiError(f"cannot create output folder {str(folder)!r}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise VpiError(f"output folder {str(folder)!r} is not writable")
    return folder
