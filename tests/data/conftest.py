"""The tiny on-disk benchmarks (tests/data/fixtures.py), one fresh copy per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures import make_coco, make_fss, make_voc


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    return make_voc(tmp_path / "VOC2012")


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    return make_coco(tmp_path / "coco")


@pytest.fixture
def fss(tmp_path: Path) -> Path:
    return make_fss(tmp_path / "FSS-1000")
