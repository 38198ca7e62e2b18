"""Finding the checkpoint of the newest `vpi train` run, for `vpi segment` without --checkpoint."""

from __future__ import annotations

from pathlib import Path

from vpi.config import RUNS_DIR
from vpi.errors import VpiError

CHECKPOINT_NAMES = ("best.pt", "last.pt")  # best first: the one a user would deploy


def find_latest_checkpoint(runs_dir: str | Path = RUNS_DIR) -> Path:
    """``best.pt`` (else ``last.pt``) of the run under ``runs_dir`` whose checkpoint is newest.

    Runs live in ``runs_dir/<preset>-<timestamp>/``; recency comes from the checkpoint files'
    modification times, so renamed folders and resumed runs are judged by when they last saved.
    """
    runs_dir = Path(runs_dir)
    runs = []
    if runs_dir.is_dir():
        for run in runs_dir.iterdir():
            found = [run / name for name in CHECKPOINT_NAMES if (run / name).is_file()]
            if found:
                newest = max(path.stat().st_mtime for path in found)
                runs.append((newest, run.name, found[0]))
    if not runs:
        raise VpiError(
            f"no checkpoint given and no run of `vpi train` found under {str(runs_dir)!r}: "
            "train one, or pass --checkpoint or --engine-dir"
        )
    return max(runs)[2]
