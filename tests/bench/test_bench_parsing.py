"""`vpi bench` options: the --samples range parser, settings validation, and the CLI's errors."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from vpi.bench import BenchSettings
from vpi.cli import app
from vpi.config import MAX_SAMPLES
from vpi.errors import ConfigError
from vpi.ranges import parse_int_list


@pytest.mark.parametrize(("text", "expected"), [
    ("1..10", list(range(1, 11))),
    ("1,2,4,8", [1, 2, 4, 8]),
    ("6", [6]),
    ("1..3,8", [1, 2, 3, 8]),
    (" 2 , 2..3 ", [2, 3]),
])
def test_samples_ranges_and_lists(text, expected):
    assert parse_int_list(text, name="--samples", low=1, high=MAX_SAMPLES) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("0..3", r"--samples 0 is out of range; it must lie in 1\.\.16"),
    ("5..2", r"--samples range '5\.\.2' is empty: 5 is above 2"),
    ("a..b", r"--samples takes integers, ranges a\.\.b or lists a,b,c; got 'a\.\.b'"),
    ("1..17", r"--samples 17 is out of range"),
    (",", r"--samples names no value"),
])
def test_bad_samples_fail_in_the_cli_before_any_work(text, message, tmp_path):
    result = CliRunner().invoke(app, ["bench", "--samples", text, "--cache-dir", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert re.search(message, str(result.exception)), str(result.exception)
    assert not any(tmp_path.iterdir())  # nothing was built or exported


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "tensorflow"],
     "--backend 'tensorflow' is not one of: torch, torch-amp, onnx, openvino, trt"),
    (["--mode", "sideways"], "--mode 'sideways' is not one of: batched, looped"),
    (["--repeats", "0"], "timed runs 1 or more"),
    (["--shots", "11"], "--shots is 11; it must lie in 1..10"),
    (["--eval", "pascal"], "--eval is 'pascal'; choose one of: builtin"),
    (["--batch", "0,4"], "--batch 0 is out of range; it must lie in 1..16"),
    (["--batch", "1,17"], "--batch 17 is out of range; it must lie in 1..16"),
])
def test_bad_options_name_the_option(args, message, tmp_path):
    result = CliRunner().invoke(app, ["bench", *args, "--cache-dir", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)


def test_settings_reject_out_of_range_samples_and_batches():
    with pytest.raises(ConfigError, match="each L must lie in 1..16"):
        BenchSettings(samples=(0, 3))
    with pytest.raises(ConfigError, match="--batch is \\[1, 32\\]; each B must lie in 1..16"):
        BenchSettings(batches=(1, 32))
    with pytest.raises(ConfigError, match="--batch is \\[\\]"):
        BenchSettings(batches=())
