"""Split lists in HSNet's format: read from ``data.splits``, or built and written beside a run
(``vpi.data.registry.write_splits``).

A pair list holds one line per (image, class) pair, ``2007_000032__01``: the image stem, two
underscores, the 1-based class label. An image with several classes appears once per class.
FSS-1000's lists hold one class folder name per line. Files in the wild may end lines with CRLF;
``\\r`` is stripped.

Expected files under ``data.splits`` (HSNet's ``data/splits`` folder, or the dataset's own
subfolder of it):

- ``pascal/{trn,val}/fold{j}.txt``: the pairs of fold j's classes (train: the augmented train set;
  val: VOC2012 val). Training on fold f reads the ``trn`` lists of the three other folds; testing
  reads ``val/fold{f}.txt``.
- ``coco/{trn,val}/fold{j}.txt``: the same for COCO-20i, with the label = contiguous class index
  + 1 (1..80) under the run's fold convention and COCO 2014 stems (``COCO_val2014_000000000042``).
  HSNet's pickles ``coco/{trn,val}/fold{f}.pkl`` (class index -> image paths, holding the data of
  a run that tests fold f) are read instead where present.
- ``fss/{trn,val,test}.txt``: class folder names; only ``test.txt`` is official.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vpi.errors import DataError


@dataclass(frozen=True)
class Line:
    """A split line as written (CR stripped) and where it came from, e.g. ``fold0.txt:3``."""

    text: str
    where: str


@dataclass(frozen=True)
class Pair:
    """One (image, class) entry: the image stem and the 1-based label of its class."""

    stem: str
    label: int
    line: Line


def read_lines(path: Path, name: str | None = None) -> list[Line]:
    """The non-blank lines of a text file, CR/LF and surrounding spaces stripped.

    ``name`` is how messages call the file (default: its file name).
    """
    text = path.read_text(encoding="utf-8-sig")
    return [
        Line(raw.strip(), f"{name or path.name}:{number}")
        for number, raw in enumerate(text.splitlines(), 1)
        if raw.strip()
    ]


def parse_pair(line: Line) -> Pair:
    """``2007_000032__01`` -> Pair("2007_000032", 1)."""
    stem, sep, label = line.text.rpartition("__")
    if not sep or not stem or not label.isdigit() or int(label) < 1:
        raise DataError(
            f"split line {line.text!r} ({line.where}) is not <image>__<class>, "
            "e.g. 2007_000032__01 (class 1-based)"
        )
    return Pair(stem, int(label), line)


def read_pair_list(path: Path, name: str | None = None) -> list[Pair]:
    return [parse_pair(line) for line in read_lines(path, name)]


class _PlainUnpickler(pickle.Unpickler):
    """Loads plain containers only: a split file must not be able to run code."""

    def find_class(self, module: str, name: str) -> object:
        raise DataError(
            f"split pickle may hold only dicts, lists, str and int; found {module}.{name}"
        )


def read_pair_pickle(path: Path, name: str | None = None) -> list[Pair]:
    """HSNet's COCO pickles: {0-based class index: ['val2014/COCO_val2014_....jpg', ...]}."""
    with path.open("rb") as f:
        try:
            classwise = _PlainUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise DataError(f"split pickle {path} is unreadable: {exc}") from None
    if not isinstance(classwise, dict):
        raise DataError(f"split pickle {path} must hold a dict of class index -> image paths")
    pairs = []
    for index, entries in sorted(classwise.items()):
        for entry in entries:
            stem = PurePosixPath(entry).stem
            line = Line(entry, f"{name or path.name}, class {index}")
            pairs.append(Pair(stem, int(index) + 1, line))
    return pairs


def format_pair(stem: str, label: int) -> str:
    return f"{stem}__{label:02d}"


def built_pairs(items: Iterable[tuple[str, int]], where: str) -> list[Pair]:
    """Pairs that a loader built from annotations, sorted by (stem, label)."""
    return [Pair(s, c, Line(format_pair(s, c), where)) for s, c in sorted(set(items))]


def fold_list_files(split: str, fold: int) -> list[str]:
    """The pair lists a run on ``fold`` reads: for "train" the ``trn`` lists of the three other
    folds, else ``val/fold{fold}.txt``."""
    if split == "train":
        return [f"trn/fold{j}.txt" for j in range(4) if j != fold]
    return [f"val/fold{fold}.txt"]


def resolve_split_dir(splits: str | Path, dataset: str) -> Path:
    """``<splits>/<dataset>`` where it exists (HSNet's ``data/splits``), else ``splits`` itself."""
    folder = Path(splits).expanduser()
    sub = folder / dataset
    return sub if sub.is_dir() else folder


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
