"""`vpi export` and `vpi segment` from the command line: the happy path and every bad input.

Commands run in-process through ``vpi.cli.main`` (what the console script calls), so a VpiError
becomes one red line and exit code 2 exactly as a user sees it.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from runtime.helpers import (
    blob_pair,
    copy_export,
    run_cli,
    snapshot,
    tensorrt_missing,
    write_pair,
)

from vpi.cli import main
from vpi.runtime import Segmenter, TorchRunner, find_support_pairs, load_support

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def cli_export(exported, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "export"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(sys, "argv", ["vpi", "export", str(exported[0]), "--out", str(folder)])
        with pytest.raises(SystemExit) as info:
            main()
    assert info.value.code == 0
    return folder


def _threshold_between_pixels(checkpoint: Path) -> float:
    """A threshold inside the probability range with a gap around it, so masks are non-trivial
    and the ~1e-7 difference between backends cannot flip a pixel."""
    segmenter = Segmenter(TorchRunner.from_checkpoint(checkpoint, device="cpu"))
    prior = segmenter.encode_support(*load_support(find_support_pairs(EXAMPLES / "support-star5")))
    query = np.asarray(Image.open(EXAMPLES / "queries" / "query1.png").convert("RGB"))
    values = np.unique(segmenter.segment(query, prior, samples=6, seed=3).probability)
    middle = values[len(values) // 10: 9 * len(values) // 10]
    gap = int(np.diff(middle).argmax())
    assert middle[gap + 1] - middle[gap] > 2e-6
    return float((middle[gap] + middle[gap + 1]) / 2)


def test_export_then_segment_the_examples_on_torch_and_onnx(
        monkeypatch, capsys, exported, cli_export, tmp_path):
    manifest = json.loads((cli_export / "manifest.json").read_text())
    assert manifest["parity"]["onnxruntime"]["max_error"]["probability"] <= 1e-4
    threshold = _threshold_between_pixels(exported[0])
    masks = {}
    for backend, source in (("torch", ["--checkpoint", exported[0]]),
                            ("onnx", ["--engine-dir", cli_export])):
        code, out, err = run_cli(monkeypatch, capsys, "segment", EXAMPLES / "support-star5",
                             EXAMPLES / "queries" / "query1.png", *source, "--backend", backend,
                             "--seed", 3, "--threshold", threshold, "--out", tmp_path / backend)
        assert code == 0, err
        assert f"backend: {backend}" in out and "query1.png" in out
        results = json.loads((tmp_path / backend / "results.json").read_text())
        assert results["seed"] == 3 and len(results["support"]["pairs"]) == 3
        masks[backend] = np.asarray(Image.open(tmp_path / backend / "query1_mask.png"))
    assert set(np.unique(masks["torch"])) == {0, 255}
    np.testing.assert_array_equal(masks["torch"], masks["onnx"])


def test_queries_in_batches_give_what_one_by_one_gives(monkeypatch, capsys, exported, tmp_path):
    """Five queries of different sizes with --batch-size 3: the support set is encoded once, the
    decoder runs twice (3 + 2 queries), and every map is the one-by-one map."""
    from vpi.runtime import OnnxRunner

    queries = tmp_path / "queries"
    queries.mkdir()
    for i, (height, width) in enumerate(((48, 40), (64, 64), (37, 53), (80, 48), (50, 70))):
        Image.fromarray(blob_pair(20 + i, height, width)[0]).save(queries / f"q{i}.png")
    calls: list[tuple[str, int]] = []
    for graph in ("prior", "decoder"):
        run = getattr(OnnxRunner, f"_run_{graph}")
        monkeypatch.setattr(OnnxRunner, f"_run_{graph}", lambda self, first, second, run=run,
                            graph=graph: calls.append((graph, len(first))) or run(self, first, second))
    maps: list[tuple[np.ndarray, np.ndarray]] = []  # each query's probability and uncertainty
    segment_batch = Segmenter.segment_batch

    def recorded(self, images, prior, **options):
        results = segment_batch(self, images, prior, **options)
        maps.extend((r.probability, r.uncertainty) for r in results)
        return results

    monkeypatch.setattr(Segmenter, "segment_batch", recorded)
    outputs = {}
    for batch_size in (1, 3):
        out = tmp_path / f"out-{batch_size}"
        code, text, err = run_cli(monkeypatch, capsys, "segment", EXAMPLES / "support-star5", queries,
                                  "--engine-dir", exported[1], "--backend", "onnx", "--seed", 4,
                                  "--batch-size", batch_size, "--out", out)
        assert code == 0, err
        assert f"batches of {batch_size}" in text
        outputs[batch_size] = (json.loads((out / "results.json").read_text()), list(maps))
        maps.clear()
    assert calls == [("prior", 1)] + [("decoder", 1)] * 5 + [("prior", 1), ("decoder", 3), ("decoder", 2)]
    (single, single_maps), (batched, batched_maps) = outputs[1], outputs[3]
    assert single["batch_size"] == 1 and batched["batch_size"] == 3
    for one, many in zip(single["queries"], batched["queries"], strict=True):
        assert one["query"] == many["query"] and one["size"] == many["size"]
        assert abs(one["mean_uncertainty"] - many["mean_uncertainty"]) < 1e-7
    assert len(batched_maps) == 5
    for (probability, uncertainty), (batched_probability, batched_uncertainty) in zip(
            single_maps, batched_maps, strict=True):
        np.testing.assert_allclose(batched_probability, probability, atol=1e-6, rtol=0)
        np.testing.assert_allclose(batched_uncertainty, uncertainty, atol=1e-7, rtol=0)
    assert np.abs(single_maps[1][0][:37, :40] - single_maps[2][0][:37, :40]).max() > 1e-3


def test_without_a_checkpoint_the_newest_run_is_used(monkeypatch, capsys, exported, tmp_path):
    run = tmp_path / "runs" / "tiny-20260101-120000"
    run.mkdir(parents=True)
    shutil.copy(exported[0], run / "best.pt")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "segment", EXAMPLES / "support-star5",
                         EXAMPLES / "queries" / "query1.png", "--out", "out")
    assert code == 0, err
    assert "using the newest run's runs/tiny-20260101-120000/best.pt" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "query1_entropy.png", "query1_mask.png", "query1_mutual_information.png",
        "query1_overlay.png", "query1_uncertainty.png", "results.json"]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["failure_threshold"] is None and results["queries"][0]["likely_failed"] is None
    assert "records no failure threshold" in out


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_a_query_over_the_trained_failure_threshold_is_flagged(
        monkeypatch, capsys, exported, threshold, tmp_path):
    """The threshold training chose (in the checkpoint's selection) travels into the export's
    manifest; torch and ONNX Runtime flag the same queries by it, and give the same confidence."""
    state = torch.load(exported[0], weights_only=False)
    state["selection"] = {**(state.get("selection") or {}), "failure_flag": {
        "map": "entropy", "threshold": threshold, "precision": 1.0, "recall": 1.0}}
    checkpoint = tmp_path / "flagged.pt"
    torch.save(state, checkpoint)
    code, _, err = run_cli(monkeypatch, capsys, "export", checkpoint, "--out", tmp_path / "export")
    assert code == 0, err
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["failure_flag"]["threshold"] == threshold
    records = {}
    for backend, source in (("torch", ["--checkpoint", checkpoint]),
                            ("onnx", ["--engine-dir", tmp_path / "export"])):
        code, out, err = run_cli(monkeypatch, capsys, "segment", EXAMPLES / "support-star5",
                                 EXAMPLES / "queries", *source, "--backend", backend,
                                 "--out", tmp_path / backend)
        assert code == 0, err
        results = json.loads((tmp_path / backend / "results.json").read_text())
        assert results["failure_threshold"] == threshold
        records[backend] = [(r["likely_failed"], r["confidence"]) for r in results["queries"]]
    # A tiny untrained model is unsure of something it segments (entropy > 0) but never of
    # everything at once (score < 1 nat): 0 flags every query, 1 none.
    assert [flag for flag, _ in records["torch"]] == [threshold == 0.0] * 2
    for (flag, confidence), (onnx_flag, onnx_confidence) in zip(*records.values(), strict=True):
        assert flag == onnx_flag and 0.0 <= confidence <= 1.0
        assert abs(confidence - onnx_confidence) < 1e-4


def _support(folder: Path, count: int = 2) -> Path:
    for i in range(count):
        write_pair(folder, f"s{i}.png", *blob_pair(i))
    return folder


def _case_setup(case: str, tmp_path: Path, export: Path) -> tuple[list, str]:
    """Arguments after `vpi` for one bad input, and the message it must give."""
    support, query = tmp_path / "support", EXAMPLES / "queries" / "query1.png"
    common = ["--engine-dir", export]
    if case == "image without mask":
        _support(support)
        Image.fromarray(blob_pair(5)[0]).save(support / "cat.jpg")
        return ["segment", support, query, *common], "support image 'cat.jpg' has no mask"
    if case == "mask of another size":
        write_pair(support, "cat_2.png", blob_pair(1, 240, 320)[0], blob_pair(1, 120, 160)[1])
        return (["segment", support, query, *common],
                "support mask 'cat_2_mask.png' is 160×120 but its image 'cat_2.png' is 320×240")
    if case == "all-background mask":
        write_pair(support, "cat.png", blob_pair(1)[0], np.zeros((48, 40), np.uint8))
        return ["segment", support, query, *common], "support mask 'cat_mask.png' has no foreground"
    if case == "support file is not an image":
        _support(support)
        (support / "s1.png").write_text("not a picture")
        return ["segment", support, query, *common], "s1.png' is not an image PIL can read"
    if case == "query is not an image":
        (tmp_path / "notes.png").write_text("not a picture")
        return (["segment", _support(support), tmp_path / "notes.png", *common],
                "query '.*notes.png' is not an image PIL can read")
    if case == "empty support folder":
        support.mkdir()
        return ["segment", support, query, *common], "holds no image/mask pairs"
    if case == "too many support pairs":
        return (["segment", _support(support, 11), query, *common],
                "the support set has 11 image/mask pairs; this prior encoder takes 1 to 10")
    if case in ("L = 0", "L = 17"):
        samples = case[-2:].strip()
        return (["segment", _support(support), query, *common, "--samples", samples],
                f"samples \\(L\\) is {samples}; this decoder takes 1 to 16")
    if case == "export of another vpi":
        old = copy_export(export, tmp_path / "old", vpi_version="0.0.1")
        return (["segment", _support(support), query, "--engine-dir", old],
                "was written by vpi 0.0.1, but this is vpi")
    if case in ("--batch-size 0", "--batch-size 17"):
        size = case.split()[-1]
        return (["segment", _support(support), query, *common, "--batch-size", size],
                f"batch size \\(B\\) is {size}; these graphs take 1 to 16 items per call")
    if case == "export without the batch axis":  # written before the graphs had B
        old = copy_export(export, tmp_path / "old", format_version=1)
        return (["segment", _support(support), query, "--engine-dir", old],
                "was exported by another vpi version \\(manifest format 1, this vpi reads 3\\): "
                "export the checkpoint again with `vpi export CHECKPOINT`")
    if case == "onnx file of another vpi":
        mixed = copy_export(export, tmp_path / "mixed")
        graph = onnx.load(mixed / "prior_encoder.onnx")
        onnx.helper.set_model_props(graph, {"vpi_version": "9.0.0"})
        onnx.save(graph, mixed / "prior_encoder.onnx")
        return (["segment", _support(support), query, "--engine-dir", mixed, "--backend", "onnx"],
                "prior_encoder.onnx' was written by vpi 9.0.0")
    if case == "segment --backend trt without TensorRT":
        return (["segment", _support(support), query, *common, "--backend", "trt"],
                "TensorRT engines: build them with|TensorRT is not installed")
    assert case == "export --engine trt without TensorRT"
    return (["export", tmp_path / "x.pt", "--out", tmp_path / "out", "--engine", "trt"],
            "TensorRT is not installed: pip install")


BAD_INPUTS = [
    "image without mask", "mask of another size", "all-background mask",
    "support file is not an image", "query is not an image", "empty support folder",
    "too many support pairs", "L = 0", "L = 17", "export of another vpi",
    "--batch-size 0", "--batch-size 17", "export without the batch axis",
    "onnx file of another vpi", "segment --backend trt without TensorRT",
    "export --engine trt without TensorRT",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_and_touches_nothing(monkeypatch, capsys, exported, tmp_path, case):
    if "TensorRT" in case and tensorrt_missing() is None:
        pytest.skip("TensorRT is installed here")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"from": "an earlier run"}')
    (out / "query1_mask.png").write_bytes(b"earlier")
    before = snapshot(out)
    args, message = _case_setup(case, tmp_path, exported[1])
    if args[0] == "segment":
        args += ["--out", out]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert snapshot(out) == before


@pytest.mark.parametrize("limit", [6000, 2500], ids=["PIL warns", "PIL raises"])
def test_a_query_over_the_pixel_limit_is_one_line(monkeypatch, capsys, exported, tmp_path, limit):
    # A decompression bomb (say a 30000×30000 PNG) in miniature: PIL's limit lowered below the
    # query's 10,000 pixels, above the support images' 1,920.
    query = tmp_path / "bomb.png"
    Image.fromarray(blob_pair(7, 100, 100)[0]).save(query)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    out = tmp_path / "out"
    code, _, err = run_cli(monkeypatch, capsys, "segment", _support(tmp_path / "support"), query,
                           "--engine-dir", exported[1], "--out", out)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert (f"query '{query}' has more than {limit:,} pixels, the limit PIL sets against "
            "decompression bombs") in err
    assert not out.exists()
