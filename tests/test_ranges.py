import pytest

from vpi.errors import ConfigError
from vpi.ranges import parse_choice_list, parse_int_list


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1..10", list(range(1, 11))), ("1,2,4,8", [1, 2, 4, 8]), ("6", [6]), ("1..3,8,2", [1, 2, 3, 8]),
     (" 4 .. 5 ", [4, 5])],
)
def test_ranges_and_lists(text, expected):
    assert parse_int_list(text, name="--samples", low=1, high=16) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("0..3", "--samples 0 is out of range; it must lie in 1..16"),
     ("5..2", "range '5..2' is empty"),
     ("a..b", "takes integers"),
     ("17", "17 is out of range"),
     (",", "names no value")],
)
def test_bad_ranges_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_int_list(text, name="--samples", low=1, high=16)


def test_choice_lists():
    assert parse_choice_list("variance,mean", name="--aggregation", choices=("variance", "mean")) == [
        "variance", "mean"]
    with pytest.raises(ConfigError, match="'median' is not one of"):
        parse_choice_list("median", name="--aggregation", choices=("variance", "mean"))
