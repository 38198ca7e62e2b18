"""Episode datasets: the built-in generated data and the user's copies of real benchmarks.

Every dataset is a ``torch.utils.data.Dataset`` whose items are ``Episode``s, with two attributes:
``class_ids`` (the classes of this split, sorted) and ``class_names`` (id -> readable name).
Item ``i`` depends only on the dataset's seed and ``i``, so a resumed run sees the same episodes.
``DATASETS`` (vpi.data.registry) holds one entry per dataset, each with its reader module.

Names load on first use, so reading the dataset table (the CLI's help does) imports no torch.
"""

from __future__ import annotations

from vpi.lazy import lazy_names

_HOMES = {
    "DATASETS": "vpi.data.registry",
    "DatasetEntry": "vpi.data.registry",
    "Episode": "vpi.data.episode",
    "EpisodeBatch": "vpi.data.episode",
    "EpisodeSampler": "vpi.data.sampler",
    "IGNORE_INDEX": "vpi.data.episode",
    "SPLITS": "vpi.data.registry",
    "VALIDATION": "vpi.data.registry",
    "build_episodes": "vpi.data.registry",
    "collate_episodes": "vpi.data.episode",
    "write_splits": "vpi.data.registry",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
