"""The dataset table: the names config validates, the readers' functions, messages that list."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpi import config
from vpi.config import DataConfig
from vpi.data import DATASETS, VALIDATION, build_episodes, write_splits
from vpi.data.registry import dataset_help
from vpi.errors import ConfigError


def test_the_table_holds_the_names_config_validates() -> None:
    assert tuple(DATASETS) == config.DATASETS


def test_a_reader_of_files_has_its_split_lists_and_layout_check() -> None:
    with_files = {name for name, entry in DATASETS.items() if entry.check_layout is not None}
    assert with_files == {name for name, entry in DATASETS.items() if entry.split_lists is not None}
    assert with_files == {"pascal", "coco", "fss"}
    assert set(VALIDATION) == {"builtin", "fss"}  # the others keep their last weights


def test_help_names_every_dataset_with_what_it_is() -> None:
    text = dataset_help()
    assert text.startswith("builtin (") and " or fss (" in text
    assert all(f"{name} ({entry.summary})" in text for name, entry in DATASETS.items())


def test_an_unknown_dataset_is_refused_with_the_names() -> None:
    with pytest.raises(ConfigError, match=r"data.dataset is 'voc'; choose one of: builtin, pascal, "
                                          r"coco, fss"):
        build_episodes(DataConfig(dataset="voc"), "test", shots=1, episodes=1, seed=0)


def test_a_split_without_validation_is_refused() -> None:
    with pytest.raises(ValueError, match="pascal has no validation split"):
        build_episodes(DataConfig(dataset="pascal"), "val", shots=1, episodes=1, seed=0)


def test_generated_data_has_no_split_lists_to_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'builtin' has no split lists \(pascal, coco, fss\)"):
        write_splits(DataConfig(dataset="builtin"), tmp_path)
    assert not any(tmp_path.iterdir())
