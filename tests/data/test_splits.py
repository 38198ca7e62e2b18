"""Split lists: HSNet's line format, CRLF files, pickles, and lists written for reproduction."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from fixtures import VOC_TRAIN, VOC_VAL, make_coco, make_fss, make_voc, voc_fold_pairs, write_lines

from vpi.config import DataConfig
from vpi.data import write_splits
from vpi.data.splits import (
    Line,
    parse_pair,
    read_lines,
    read_pair_list,
    read_pair_pickle,
    resolve_split_dir,
)
from vpi.errors import DataError


def test_parse_pair_reads_stem_and_one_based_class() -> None:
    pair = parse_pair(Line("2007_000032__01", "fold0.txt:1"))
    assert (pair.stem, pair.label) == ("2007_000032", 1)
    assert parse_pair(Line("COCO_val2014_000000000042__80", "x")).label == 80


@pytest.mark.parametrize("text", ["2007_000032", "2007_000032__", "__03", "2007_000032__x1",
                                  "2007_000032__00"])
def test_parse_pair_rejects_malformed_lines_naming_them(text: str) -> None:
    with pytest.raises(DataError, match=rf"split line '{text}' \(fold2.txt:7\)"):
        parse_pair(Line(text, "fold2.txt:7"))


def test_crlf_lines_are_stripped_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "fold0.txt"
    path.write_bytes(b"2007_000032__01\r\n\r\n2007_000033__05\r\n")
    pairs = read_pair_list(path)
    assert [(p.stem, p.label) for p in pairs] == [("2007_000032", 1), ("2007_000033", 5)]
    assert [p.line.where for p in pairs] == ["fold0.txt:1", "fold0.txt:3"]
    assert [ln.text for ln in read_lines(path, "val/fold0.txt")] == [
        "2007_000032__01", "2007_000033__05"
    ]
    assert read_lines(path, "val/fold0.txt")[1].where == "val/fold0.txt:3"


def test_hsnet_coco_pickle_is_read_as_pairs(tmp_path: Path) -> None:
    path = tmp_path / "fold0.pkl"
    classwise = {
        0: ["val2014/COCO_val2014_000000000001.jpg"],
        4: ["val2014/COCO_val2014_000000000003.jpg", "val2014/COCO_val2014_000000000004.jpg"],
    }
    path.write_bytes(pickle.dumps(classwise))
    pairs = read_pair_pickle(path)
    assert [(p.stem, p.label) for p in pairs] == [
        ("COCO_val2014_000000000001", 1),
        ("COCO_val2014_000000000003", 5),
        ("COCO_val2014_000000000004", 5),
    ]


def test_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fold0.pkl"
    path.write_bytes(pickle.dumps({0: [Path("x.jpg")]}))
    with pytest.raises(DataError, match="only dicts, lists, str and int"):
        read_pair_pickle(path)


def test_split_dir_is_hsnet_top_folder_or_the_dataset_subfolder(tmp_path: Path) -> None:
    (tmp_path / "pascal").mkdir()
    assert resolve_split_dir(tmp_path, "pascal") == tmp_path / "pascal"
    assert resolve_split_dir(tmp_path / "pascal", "pascal") == tmp_path / "pascal"


def test_write_splits_pascal_writes_every_fold_and_reads_back(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "VOC2012")
    data = DataConfig(dataset="pascal", root=str(root))
    out = write_splits(data, tmp_path / "run" / "splits")
    assert out == tmp_path / "run" / "splits" / "pascal"
    for fold in range(4):
        for kind, images in (("val", VOC_VAL), ("trn", VOC_TRAIN)):
            listed = [ln.text for ln in read_lines(out / kind / f"fold{fold}.txt")]
            assert listed == voc_fold_pairs(images, fold)
    # The written folder reproduces itself when given back as data.splits.
    again = write_splits(DataConfig(dataset="pascal", root=str(root), splits=str(out.parent)),
                         tmp_path / "again")
    for path in out.rglob("*.txt"):
        assert (again / path.relative_to(out)).read_text() == path.read_text()


def test_write_splits_coco_writes_per_fold_lists(tmp_path: Path) -> None:
    root = make_coco(tmp_path / "coco")
    out = write_splits(DataConfig(dataset="coco", root=str(root)), tmp_path / "splits")
    val0 = [ln.text for ln in read_lines(out / "val" / "fold0.txt")]
    assert val0 == [
        "COCO_val2014_000000000001__01", "COCO_val2014_000000000002__01",
        "COCO_val2014_000000000003__05", "COCO_val2014_000000000004__05",
        "COCO_val2014_000000000005__17", "COCO_val2014_000000000006__17",
    ]
    trn1 = [ln.text for ln in read_lines(out / "trn" / "fold1.txt")]
    assert trn1 == ["COCO_train2014_000000000011__02", "COCO_train2014_000000000012__02"]
    trn0 = [ln.text for ln in read_lines(out / "trn" / "fold0.txt")]
    assert trn0 == ["COCO_train2014_000000000013__01", "COCO_train2014_000000000014__01"]
    assert not (root / "vpi_cache" / "masks").exists()  # writing lists renders no masks


def test_write_splits_fss_writes_three_lists(tmp_path: Path) -> None:
    root = make_fss(tmp_path / "fss")
    out = write_splits(DataConfig(dataset="fss", root=str(root)), tmp_path / "splits")
    lists = {k: [ln.text for ln in read_lines(out / f"{k}.txt")] for k in ("trn", "val", "test")}
    assert sorted(sum(lists.values(), [])) == sorted(p.name for p in root.iterdir())
    assert [len(v) for v in lists.values()] == [4, 2, 2]


def test_write_lines_helper_writes_crlf(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.txt", ["a", "b"], crlf=True)
    assert path.read_bytes() == b"a\r\nb\r\n"
