"""Episode datasets: the built-in generated data and the user's copies of real benchmarks.

Every dataset is a ``torch.utils.data.Dataset`` whose items are ``Episode``s, with two attributes:
``class_ids`` (the classes of this split, sorted) and ``class_names`` (id -> readable name).
Item ``i`` depends only on the dataset's seed and ``i``, so a resumed run sees the same episodes.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from vpi.config import DataConfig
from vpi.data.episode import IGNORE_INDEX, Episode, EpisodeBatch, collate_episodes

SPLITS = ("train", "test")


def build_episodes(
    data: DataConfig,
    split: str,
    *,
    shots: int,
    episodes: int,
    seed: int,
    augment: bool = False,
) -> Dataset[Episode]:
    """The episodes of ``split`` ("train": the three training folds; "test": ``data.fold``).

    ``episodes`` is the dataset's length: for "train" the number of episodes the run will draw,
    for "test" the protocol's count (FSS-1000 ignores it and walks every test image once).
    ``augment`` turns on the training recipe's crops, flips and rotations.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if data.dataset == "builtin":
        from vpi.data.builtin import BuiltinEpisodes

        return BuiltinEpisodes(
            split=split, fold=data.fold, shots=shots, image_size=data.image_size,
            length=episodes, seed=seed, augment=augment,
        )
    if data.dataset == "pascal":
        from vpi.data.pascal import build_pascal

        return build_pascal(data, split, shots=shots, episodes=episodes, seed=seed, augment=augment)
    if data.dataset == "coco":
        from vpi.data.coco import build_coco

        return build_coco(data, split, shots=shots, episodes=episodes, seed=seed, augment=augment)
    from vpi.data.fss import build_fss

    return build_fss(data, split, shots=shots, episodes=episodes, seed=seed, augment=augment)


__all__ = ["IGNORE_INDEX", "Episode", "EpisodeBatch", "build_episodes", "collate_episodes"]
