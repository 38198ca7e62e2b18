"""The dataset table: every dataset vpi reads, and how to build, list and check it.

Episodes (``build_episodes``), the split lists a run writes beside itself (``write_splits``), the
layout checks and the CLI's help all read this one table, so a new dataset is one reader module
and one entry here. The names are ``vpi.config.DATASETS``, which config validates without
importing this package; a test keeps the two the same.

This module imports no torch and no reader: the CLI reads it to write its help, and each entry
imports its reader only when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpi.data.splits import write_lines
from vpi.errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from vpi.config import DataConfig
    from vpi.data.episode import Episode

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset: its name, its phrase in the CLI's help and its reader's three functions.

    ``episodes(data, split, *, shots, episodes, seed, augment)`` builds a split's episodes.
    ``split_lists(data)`` gives every split list file a run writes (file name -> lines), and
    ``check_layout(root, *, split, fold, splits)`` checks the user's folder before anything is
    read and returns it; both are None for data without files. ``validation`` says which
    episodes choose a checkpoint, None where the dataset has no "val" split.
    """

    name: str
    summary: str
    episodes: Callable[..., Dataset[Episode]]
    split_lists: Callable[[DataConfig], dict[str, list[str]]] | None = None
    check_layout: Callable[..., Path] | None = None
    validation: str | None = None


def _lazy(module: str, function: str) -> Callable[..., Any]:
    """``module.function``, imported at its first call."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    return call


_ENTRIES = (
    DatasetEntry(name="builtin", summary="generated objects on photographs, offline",
                 episodes=_lazy("vpi.data.builtin", "build_builtin"),
                 validation="the held-out classes on a seed stream of their own"),
    DatasetEntry(name="pascal", summary="PASCAL-5i: your VOC2012 folder",
                 episodes=_lazy("vpi.data.pascal", "build_pascal"),
                 split_lists=_lazy("vpi.data.pascal", "all_split_lists"),
                 check_layout=_lazy("vpi.data.pascal", "check_layout")),
    DatasetEntry(name="coco", summary="COCO-20i: your COCO 2014 folder",
                 episodes=_lazy("vpi.data.coco", "build_coco"),
                 split_lists=_lazy("vpi.data.coco", "all_split_lists"),
                 check_layout=_lazy("vpi.data.coco", "check_layout")),
    DatasetEntry(name="fss", summary="FSS-1000: your copy, one folder per class",
                 episodes=_lazy("vpi.data.fss", "build_fss"),
                 split_lists=_lazy("vpi.data.fss", "all_split_lists"),
                 check_layout=_lazy("vpi.data.fss", "check_layout"),
                 validation="the classes of the val list"),
)
DATASETS: dict[str, DatasetEntry] = {entry.name: entry for entry in _ENTRIES}
# Where a checkpoint is chosen: episodes that share none of the reported test episodes. PASCAL-5i
# and COCO-20i have none apart from their test images, so their runs keep the last weights.
VALIDATION = {entry.name: entry.validation for entry in _ENTRIES if entry.validation}


def dataset_entry(name: str) -> DatasetEntry:
    """The table's entry ``name``, or a ConfigError that lists the names."""
    if name not in DATASETS:
        raise ConfigError(f"data.dataset is {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def build_episodes(
    data: DataConfig,
    split: str,
    *,
    shots: int,
    episodes: int,
    seed: int,
    augment: bool = False,
) -> Dataset[Episode]:
    """The episodes of ``split`` ("train": the three training folds; "test": ``data.fold``;
    "val": the episodes that choose a checkpoint, where ``VALIDATION`` names the dataset).

    ``episodes`` is the dataset's length: for "train" the number of episodes the run will draw,
    for "test" the protocol's count (FSS-1000 ignores it and walks every test image once).
    ``augment`` turns on the training recipe's crops, flips and rotations.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    entry = dataset_entry(data.dataset)
    if split == "val" and entry.validation is None:
        raise ValueError(f"{data.dataset} has no validation split; see vpi.data.VALIDATION")
    return entry.episodes(data, split, shots=shots, episodes=episodes, seed=seed, augment=augment)


def write_splits(data: DataConfig, folder: str | Path) -> Path:
    """Write every split list of ``data.dataset`` (all folds) under ``folder/<dataset>/``.

    The lists are the ones the loaders use (read from ``data.splits`` or built from the
    annotations), so ``data.splits=folder`` reproduces a run's episodes. Returns the subfolder.
    """
    entry = dataset_entry(data.dataset)
    if entry.split_lists is None:
        listed = ", ".join(e.name for e in _ENTRIES if e.split_lists)
        raise ValueError(f"data.dataset {data.dataset!r} has no split lists ({listed})")
    out = Path(folder).expanduser() / data.dataset
    for name, lines in entry.split_lists(data).items():
        write_lines(out / name, lines)
    return out


def dataset_help() -> str:
    """The datasets for a --dataset help text, each with what it is."""
    *first, last = [f"{e.name} ({e.summary})" for e in _ENTRIES]
    return f"{', '.join(first)} or {last}"
