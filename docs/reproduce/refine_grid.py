"""The edge-aware refinement's settings, measured: docs/reproduce.md, "Edge-aware refinement".

    python docs/reproduce/refine_grid.py CKPT            # built-in, 300 episodes of seed 1
    python docs/reproduce/refine_grid.py CKPT photos     # ../shared/realphoto, split all

Scores a checkpoint at L = 1 with the refinement off and with each guided-filter setting below
(passes, subsampling, window radius on the subsampled grid, regularisation), by setting
``vpi.model.refine``'s constants for the run. The built-in list (seed 1) is not the test list
(seed 0) that README's figures use, so choosing on it does not tune on the test. (The bilateral
filter the refinement first was is this file and vpi/model/refine.py at commit 7f4e3f8.)
"""

import sys
from pathlib import Path

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


if __name__ == "__main__":
    main(*sys.argv[1:])
