"""examples/: two support folders of different classes and queries that hold both, as the
generator script writes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from vpi.runtime.support import find_queries, find_support_pairs, load_support

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLASSES = ("star5", "crescent")


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_two_support_folders_of_different_classes() -> None:
    for name in CLASSES:
        pairs = find_support_pairs(EXAMPLES / f"support-{name}")
        assert [p.image.name for p in pairs] == [f"{name}_{i}.png" for i in (1, 2, 3)]
        images, masks = load_support(pairs)
        assert all(m.any() for m in masks)
        assert all(i.shape[:2] == m.shape for i, m in zip(images, masks, strict=True))


def test_every_query_holds_both_classes() -> None:
    queries = find_queries([EXAMPLES / "queries"])
    assert [q.name for q in queries] == ["query1.png", "query2.png"]
    for query in queries:
        truths = [_pixels(EXAMPLES / "truth" / f"{query.stem}_{name}.png") > 0 for name in CLASSES]
        assert all(t.sum() > 100 for t in truths)  # each object clearly visible
        assert not (truths[0] & truths[1]).any()
        assert truths[0].shape == _pixels(query).shape[:2]


def test_the_committed_files_are_what_the_script_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    committed = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*.png"))
    assert written == committed
    for rel in written:
        assert np.array_equal(_pixels(tmp_path / rel), _pixels(EXAMPLES / rel)), rel
