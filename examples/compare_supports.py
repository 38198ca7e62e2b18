"""The same queries segmented with each example support set, side by side in one picture.

A few-shot model must segment the class its support shows: every query here holds a star5 and a
crescent, so the two support folders must give two different masks. This runs `vpi segment` once
per support folder (its outputs land in OUT/<folder>/) and writes the picture OUT/two-supports.png.

    python examples/compare_supports.py --checkpoint runs/demo-*/best.pt --out segment-out
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from vpi.runtime import segment_folder

HERE = Path(__file__).parent
SUPPORTS = (HERE / "support-star5", HERE / "support-crescent")


def compare_supports(checkpoint: Path | None, out: Path, samples: int = 6) -> Path:
    """Segment examples/queries with each support folder; returns the picture's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = sorted((HERE / "queries").glob("*.png"))
    overlays = {}
    for support in SUPPORTS:
        results = segment_folder(support, queries, checkpoint=checkpoint, backend="torch",
                                 samples=samples, out_dir=out / support.name)
        overlays[support.name] = [out / support.name / r["files"]["overlay"]
                                  for r in results["queries"]]
    columns = 1 + len(SUPPORTS)
    fig, axes = plt.subplots(len(queries), columns, figsize=(2.6 * columns, 2.6 * len(queries)),
                             squeeze=False)
    for row, query in enumerate(queries):
        panels = [("query", query)] + [
            (f"support: {name.removeprefix('support-')}", overlays[name][row]) for name in overlays
        ]
        for ax, (title, path) in zip(axes[row], panels, strict=True):
            ax.imshow(np.asarray(Image.open(path).convert("RGB")))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    picture = out / "two-supports.png"
    fig.savefig(picture, dpi=100)
    plt.close(fig)
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="default: the newest run of `vpi train`")
    parser.add_argument("--out", type=Path, default=Path("segment-out"))
    parser.add_argument("--samples", type=int, default=6)
    args = parser.parse_args()
    print(compare_supports(args.checkpoint, args.out, args.samples))


if __name__ == "__main__":
    main()
