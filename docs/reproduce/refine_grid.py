"""The edge-aware refinement's window, measured: docs/reproduce.md, "Edge-aware refinement".

    python docs/reproduce/refine_grid.py CKPT            # built-in, 300 episodes of seed 1 (7 min)
    python docs/reproduce/refine_grid.py CKPT photos     # ../shared/realphoto, split all

Scores a checkpoint at L = 1 with the refinement off and with each window below (iterations,
radius, spacing in pixels at 128 px, colour sigma, spatial sigma in pixels at 128 px), by setting
``vpi.model.refine``'s constants for the run. The built-in list (seed 1) is not the test list
(seed 0) that README's figures use, so choosing the window on it does not tune on the test.
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
WINDOWS = [(2, 2, 2, 0.1, 4), (5, 2, 2, 0.1, 4), (10, 2, 2, 0.1, 4), (5, 2, 2, 0.05, 4),
           (5, 2, 2, 0.2, 4), (5, 3, 1, 0.1, 3), (5, 3, 2, 0.1, 6), (10, 3, 2, 0.1, 6),
           (20, 3, 2, 0.1, 6), (10, 3, 2, 0.15, 8), (10, 3, 3, 0.07, 8), (10, 3, 3, 0.1, 8),
           (15, 3, 3, 0.1, 8), (5, 3, 4, 0.1, 10), (10, 3, 4, 0.1, 10)]


def main(checkpoint: str, where: str = "builtin") -> None:
    model, config, _ = load_model(checkpoint)
    photos = where == "photos"
    data = apply_overrides(config, {"data": PHOTOS} if photos else {}).data
    # as `vpi eval CKPT -L 1` scores the photos, and `--episodes 300 --seeds 1` the built-in data
    count, seed = (config.eval.episodes, 0) if photos else (300, 1)
    episodes = build_episodes(data, "test", shots=1, episodes=count, seed=seed)
    for window in [None, *WINDOWS]:
        iterations = 0 if window is None else window[0]
        if window is not None:
            _, refine.RADIUS, refine.DILATION, refine.SIGMA_COLOUR, refine.SIGMA_SPACE = window
        model.use_test_time(apply_overrides(config, {"model": {"refine_iterations": iterations}}).model)
        iou = evaluate_model(model, episodes, samples=1, seed=seed)["class_iou"]
        print(f"{window or 'off'}: class-IoU {100 * iou:.1f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
