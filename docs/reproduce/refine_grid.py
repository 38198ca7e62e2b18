"""The edge-aware refinement's settings, measured: docs/reproduce.md, "Edge-aware refinement".

    python docs/reproduce/refine_grid.py CKPT            # built-in, 300 episodes of seed 1
    python docs/reproduce/refine_grid.py CKPT photos     # ../shared/realphoto, split all
    python docs/reproduce/refine_grid.py time N          # ms per 128 px query, N passes, PyTorch

Scores a checkpoint at L = 1 with the refinement off and with each guided-filter setting below
(passes, subsampling, window radius on the subsampled grid, regularisation), by setting
``vpi.model.refine``'s constants for the run. The built-in list (seed 1) is not the test list
(seed 0) that README's figures use, so choosing on it does not tune on the test. (The bilateral
filter the refinement first was is this file and vpi/model/refine.py at commit 7f4e3f8; ``time 10``
with that commit's vpi/model/refine.py times its ten iterations.)
"""

import sys
import time
from pathlib import Path

import torch

import vpi.model.refine as refine
from vpi.checkpoint import load_model
from vpi.config import apply_overrides
from vpi.data import build_episodes
from vpi.eval.scoring import evaluate_model

SHARED = Path(__file__).resolve().parents[3] / "shared"
PHOTOS = {"dataset": "fss", "root": str(SHARED / "realphoto"),
          "splits": str(SHARED / "realphoto-splits" / "all")}
SETTINGS = [(1, 4, 4, 1e-3), (2, 4, 4, 1e-3), (3, 4, 4, 1e-3)]


def main(checkpoint: str, where: str = "builtin") -> None:
    model, config, _ = load_model(checkpoint)
    photos = where == "photos"
    data = apply_overrides(config, {"data": PHOTOS} if photos else {}).data
    # as `vpi eval CKPT -L 1` scores the photos, and `--episodes 300 --seeds 1` the built-in data
    count, seed = (config.eval.episodes, 0) if photos else (300, 1)
    episodes = build_episodes(data, "test", shots=1, episodes=count, seed=seed)
    for setting in [None, *SETTINGS]:
        passes = 0 if setting is None else setting[0]
        if setting is not None:
            _, refine.SUBSAMPLE, refine.RADIUS, refine.EPSILON = setting
        overrides = {"model": {"refine_passes": passes}}
        model.use_test_time(apply_overrides(config, overrides).model)
        iou = evaluate_model(model, episodes, samples=1, seed=seed)["class_iou"]
        print(f"{setting or 'off'}: class-IoU {100 * iou:.1f}", flush=True)


def time_refinement(passes: str) -> None:
    """The refinement alone on one random 128 px query: the median of 50 calls, 2 threads."""
    torch.set_num_threads(2)
    probability, image = torch.rand(1, 128, 128), torch.rand(1, 3, 128, 128)
    times = []
    for _ in range(55):
        tic = time.perf_counter()
        refine.edge_aware_refinement(probability, image, int(passes))
        times.append(time.perf_counter() - tic)
    print(f"{passes} passes: {1e3 * sorted(times[5:])[25]:.2f} ms")


if __name__ == "__main__":
    if sys.argv[1:2] == ["time"]:
        time_refinement(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
