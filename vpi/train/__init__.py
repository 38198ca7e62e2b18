"""Training: the loop, run folders, checkpoints and seeding."""

from vpi.train.loop import BEST, LAST, TrainResult, new_run_dir, train

__all__ = ["BEST", "LAST", "TrainResult", "new_run_dir", "train"]
