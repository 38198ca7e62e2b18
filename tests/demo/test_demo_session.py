"""What one "Segment" request computes and writes: exactly what `vpi segment` would."""

from __future__ import annotations

import json

import numpy as np
import pytest
from demo_helpers import QUERIES, STAR5, star5_pair
from PIL import Image

from vpi.demo.inputs import read_queries
from vpi.demo.session import DemoSession
from vpi.errors import ConfigError, DataError
from vpi.runtime import RunnerOptions, Segmenter, TorchRunner, segment_folder
from vpi.runtime.processing import load_image


@pytest.fixture
def session(reading_checkpoint, tmp_path) -> DemoSession:
    return DemoSession(checkpoint=reading_checkpoint, work_dir=tmp_path / "work", device="cpu")


def test_a_request_writes_what_vpi_segment_writes(session, reading_checkpoint, tmp_path):
    support = [star5_pair(i) for i in (1, 2, 3)]
    queries = read_queries([str(QUERIES / "query1.png"), str(QUERIES / "query2.png")])
    result = session.segment(support, queries, samples=4)
    reference = segment_folder(STAR5, [QUERIES], checkpoint=reading_checkpoint, samples=4,
                               out_dir=tmp_path / "cli", options=RunnerOptions(device="cpu"))
    assert result.results == json.loads(result.results_path.read_text())
    for page, cli in zip(result.results["queries"], reference["queries"], strict=True):
        assert page["files"] == cli["files"]
        assert page["size"] == cli["size"]
        assert page["foreground_fraction"] == cli["foreground_fraction"]
        assert page["mean_uncertainty"] == cli["mean_uncertainty"]
        assert page["timing_ms"].keys() == cli["timing_ms"].keys()
        for kind, name in page["files"].items():
            assert np.array_equal(np.asarray(Image.open(result.results_path.parent / name)),
                                  np.asarray(Image.open(tmp_path / "cli" / name))), kind
    same = ("vpi_version", "backend", "precision", "warnings", "checkpoint", "engine_dir",
            "samples", "samples_decoded", "seed", "threshold", "batch_size")
    assert {k: result.results[k] for k in same} == {k: reference[k] for k in same}
    assert result.results.keys() == reference.keys()
    assert result.results["timing_ms"].keys() == reference["timing_ms"].keys()
    assert result.results["support"]["pairs"] == reference["support"]["pairs"]
    assert 0.05 < reference["queries"][0]["foreground_fraction"] < 0.95  # a mask worth comparing


def test_the_maps_shown_are_the_segmenters(session, reading_checkpoint):
    pair = star5_pair()
    query = load_image(QUERIES / "query1.png")
    result = session.segment([pair], read_queries([str(QUERIES / "query1.png")]), samples=6)
    segmenter = Segmenter(TorchRunner.from_checkpoint(reading_checkpoint, device="cpu"))
    expected = segmenter.segment(query, segmenter.encode_support([pair.image], [pair.mask]),
                                 samples=6, seed=0, threshold=0.5)
    shown = result.outputs[0]
    assert np.array_equal(np.asarray(Image.open(shown.mask_path)), expected.mask.astype(np.uint8) * 255)
    assert np.array_equal(shown.probability, np.rint(expected.probability * 255).astype(np.uint8))
    assert shown.overlay.shape == shown.entropy.shape == shown.disagreement.shape == (*query.shape[:2], 3)
    entropy = np.asarray(Image.open(shown.mask_path.with_name("query1_entropy.png")))
    assert np.array_equal(shown.entropy, entropy)  # the PNG `vpi segment` writes


def test_the_support_prior_is_encoded_once_while_the_support_does_not_change(session, monkeypatch):
    runner = session.open("auto")[0].runner
    calls = []
    original = runner.run_prior
    monkeypatch.setattr(runner, "run_prior", lambda *a: calls.append(1) or original(*a))
    queries = read_queries([str(QUERIES / "query1.png")])
    first = session.segment([star5_pair()], queries)
    again = session.segment([star5_pair()], queries, samples=2)  # L is the decoder's: same prior
    changed = session.segment([star5_pair(2)], queries)
    assert (first.prior_reused, again.prior_reused, changed.prior_reused) == (False, True, False)
    assert len(calls) == 2
    assert again.results["support"]["prior"] == "reused from the cache"


def test_backends_are_those_that_run_the_model(session):
    assert session.backends == ("auto", "torch", "torch-amp")
    with pytest.raises(ConfigError, match="backend is 'onnx'; for a checkpoint choose one of: auto, torch"):
        session.open("onnx")
    assert session.open("torch")[0].runner.name.startswith("torch")


def test_an_export_runs_on_its_backends(exported, tmp_path):
    session = DemoSession(engine_dir=exported[1], backend="onnx", work_dir=tmp_path / "work")
    assert session.backends == ("auto", "onnx", "openvino", "trt")
    result = session.segment([star5_pair()], read_queries([str(QUERIES / "query1.png")]))
    assert result.results["backend"].startswith("onnx")
    assert result.results["engine_dir"] == str(exported[1]) and result.results["checkpoint"] is None


def test_only_the_newest_request_folders_stay(reading_checkpoint, tmp_path):
    session = DemoSession(checkpoint=reading_checkpoint, work_dir=tmp_path / "work", keep=2,
                          device="cpu")
    queries = read_queries([str(QUERIES / "query1.png")])
    paths = [session.segment([star5_pair()], queries).results_path for _ in range(3)]
    assert [p.exists() for p in paths] == [False, True, True]


def test_a_request_past_the_limits_is_refused_before_anything_runs(session):
    with pytest.raises(DataError, match="got 6 support photos; the demo takes 1 to 5"):
        session.segment([star5_pair()] * 6, read_queries([str(QUERIES / "query1.png")]))
    with pytest.raises(ConfigError, match="samples \\(L\\) is 17; this decoder takes 1 to 16"):
        session.segment([star5_pair()], read_queries([str(QUERIES / "query1.png")]), samples=17)
