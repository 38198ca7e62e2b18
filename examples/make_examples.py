"""Write the example support sets and queries of examples/ from the built-in generator.

Two classes that fold 0 holds out (a model trained with `vpi train` never saw them): star5 and
crescent. Each support folder shows three annotated examples of its class, among objects of other
classes; each query holds a star5 and a crescent, so the two supports must give two different
masks. The scenes are the demo preset's data (photographic surfaces, photographs' object sizes).
Run from the repository root: ``python examples/make_examples.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vpi.config import get_preset
from vpi.data.builtin import fold_classes, render_scene
from vpi.data.shapes import CLASSES

SIZE, SEED, SHOTS, QUERIES = 128, 1, 3, 2
EXAMPLE_CLASSES = (0, 3)  # star5 and crescent, both in fold 0's held-out five
DATA = get_preset("demo").data


def main(root: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(SEED)
    fold = fold_classes(0)
    for class_id in EXAMPLE_CLASSES:
        name = CLASSES[class_id].name
        folder = root / f"support-{name}"
        folder.mkdir(exist_ok=True)
        for shot in range(1, SHOTS + 1):
            others = [c for c in fold if c not in EXAMPLE_CLASSES]
            scene = render_scene([class_id, int(rng.choice(others))], rng, SIZE, DATA.surfaces,
                                 DATA.object_sizes)
            Image.fromarray(scene.image).save(folder / f"{name}_{shot}.png")
            Image.fromarray(scene.mask_of(class_id) * 255).save(folder / f"{name}_{shot}_mask.png")
    queries, truth = root / "queries", root / "truth"
    queries.mkdir(exist_ok=True)
    truth.mkdir(exist_ok=True)
    for index in range(1, QUERIES + 1):
        scene = render_scene(list(EXAMPLE_CLASSES), rng, SIZE, DATA.surfaces, DATA.object_sizes)
        Image.fromarray(scene.image).save(queries / f"query{index}.png")
        for class_id in EXAMPLE_CLASSES:
            mask = scene.mask_of(class_id) * 255
            Image.fromarray(mask).save(truth / f"query{index}_{CLASSES[class_id].name}.png")


if __name__ == "__main__":
    main()
