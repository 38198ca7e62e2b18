"""The checks that run before any episode is built, shared by the readers of files on disk.

A wrong path should fail in the first second with one line that names what is missing and where
it was looked for, not after an hour of training when a worker first opens the file. Every check
is an existence test (one directory listing per folder), so all split lines are checked up front.
Each reader (vpi.data.pascal, coco, fss) says what its folder must hold; ``name`` is the reader's
dataset name as messages write it ("PASCAL-5i").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from vpi.data.splits import Line
from vpi.errors import DataError


def dataset_root(name: str, root: str | Path | None, hint: str) -> Path:
    """The dataset folder ``root``, which must exist; ``hint`` says what it is, for messages."""
    if root is None:
        raise DataError(f"{name}: no dataset folder given; set data.root to {hint}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{name}: dataset folder {path} does not exist ({hint})")
    return path


def require_entries(name: str, root: Path, entries: Iterable[tuple[str, str]]) -> None:
    """Every (what, path under ``root``) of ``entries`` must exist: ("image folder", "JPEGImages")."""
    for what, rel in entries:
        if not (root / rel).exists():
            raise DataError(f"{name}: no {what} {rel} under {root}")


def require_split_lists(name: str, folder: Path, files: Iterable[str], alternative: str = "") -> None:
    """The split ``folder`` and each of its list ``files``; ``alternative`` ends the message of a
    missing one, e.g. " (nor HSNet's trn/fold1.pkl)"."""
    if not folder.is_dir():
        raise DataError(f"{name}: split folder {folder} does not exist")
    for rel in files:
        if not (folder / rel).is_file():
            raise DataError(f"{name}: no split list {rel}{alternative} under {folder}")


class _Listing:
    """Existence tests answered from one ``os.listdir`` per folder (fast on 100k files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folders: dict[str, set[str]] = {}

    def has(self, rel: str) -> bool:
        folder, _, name = rel.rpartition("/")
        if folder not in self.folders:
            try:
                self.folders[folder] = set(os.listdir(self.root / folder))
            except (FileNotFoundError, NotADirectoryError):
                self.folders[folder] = set()
        return name in self.folders[folder]


def check_split_lines(
    name: str,
    root: Path,
    entries: Iterable[tuple[str, Line]],
    files: Callable[[str], list[tuple[str, str]]],
) -> None:
    """Every file that a split line names must exist under ``root``.

    ``entries`` are (image stem, line); ``files(stem)`` gives the (what, path under ``root``) of
    one stem, e.g. [("image", "JPEGImages/x.jpg"), ("mask", "SegmentationClassAug/x.png")].
    """
    listing = _Listing(root)
    seen: set[str] = set()
    for stem, line in entries:
        if stem in seen:
            continue
        seen.add(stem)
        for what, rel in files(stem):
            if not listing.has(rel):
                raise DataError(
                    f"{name}: no {what} {rel} for split line {line.text!r} ({line.where}) "
                    f"under {root}"
                )
