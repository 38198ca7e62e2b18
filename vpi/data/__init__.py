"""Episode datasets: the built-in generated data and the user's copies of real benchmarks.

Every dataset is a ``torch.utils.data.Dataset`` whose items are ``Episode``s, with two attributes:
``class_ids`` (the classes of this split, sorted) and ``class_names`` (id -> readable name).
Item ``i`` depends only on the dataset's seed and ``i``, so a resumed run sees the same episodes.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from vpi.config import DataConfig
from vpi.data.episode import IGNORE_INDEX, Episode, EpisodeBatch, collate_episodes

SPLITS = ("train", "val", "test")
# Where a checkpoint is chosen: episodes that share none of the reported test episodes. PASCAL-5i
# and COCO-20i have none apart from their test images, so their runs keep the last weights.
VALIDATION = {"builtin": "the held-out classes on a seed stream of their own",
              "fss": "the classes of the val list"}


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
    if split == "val" and data.dataset not in VALIDATION:
        raise ValueError(f"{data.dataset} has no validation split; see vpi.data.VALIDATION")
    if data.dataset == "builtin":
        from vpi.data.builtin import BuiltinEpisodes

        return BuiltinEpisodes(
            split=split, fold=data.fold, shots=shots, image_size=data.image_size,
            length=episodes, seed=seed, augment=augment, surfaces=data.surfaces,
            sizes=data.object_sizes,
        )
    if data.dataset == "pascal":
        from vpi.data.pascal import build_pascal

        return build_pascal(data, split, shots=shots, episodes=episodes, seed=seed, augment=augment)
    if data.dataset == "coco":
        from vpi.data.coco import build_coco

        return build_coco(data, split, shots=shots, episodes=episodes, seed=seed, augment=augment)
    from vpi.data.fss import build_fss

    return build_fss(data, split, shots=shots, episodes=episodes, seed=seed, augment=augment)


__all__ = ["IGNORE_INDEX", "VALIDATION", "Episode", "EpisodeBatch", "build_episodes",
           "collate_episodes"]
