"""The checks of every range and threshold, and parsing the integer lists that sweeps take:
`1..10`, `1,2,4,8`, `6`.

``check_shots`` and ``check_samples`` are the one statement of what K (support pairs) and L
(prototype samples) may be: the graphs reduce over both axes, so an empty one would give NaN
without a word. ``check_batch`` bounds B, the independent items of one call, by what was exported
(a TensorRT engine's profile fixes it). ``Runner.check_request`` passes its engine's own maxima,
the model the exported range. ``check_range``, ``check_each`` and ``check_threshold`` check a
setting by its name, for the config and `vpi bench` alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpi.errors import ConfigError, DataError


def check_range(name: str, value: int, low: int, high: int) -> None:
    """The setting ``name`` must lie in ``low..high``."""
    if not low <= value <= high:
        raise ConfigError(f"{name} is {value}; it must lie in {low}..{high}")


def check_each(name: str, values: Sequence[int], axis: str, low: int, high: int) -> None:
    """Each value of the list ``name`` (of the axis ``axis``, e.g. "L") must lie in ``low..high``;
    an empty list names none."""
    if not values or not all(low <= value <= high for value in values):
        raise ConfigError(f"{name} is {list(values)}; each {axis} must lie in {low}..{high}")


def check_threshold(value: float, name: str = "threshold") -> None:
    """A foreground-probability threshold must lie strictly between 0 and 1: at either end every
    pixel would fall on one side."""
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{name} is {value}; it must lie strictly between 0 and 1")


def check_shots(shots: int, maximum: int) -> None:
    """K must lie in 1..maximum (10, or a TensorRT engine's profile)."""
    if not 1 <= shots <= maximum:
        raise DataError(
            f"the support set has {shots} image/mask pairs; this prior encoder takes 1 to {maximum}"
        )


def check_samples(samples: int, maximum: int) -> None:
    """L must lie in 1..maximum (16, or a TensorRT engine's profile)."""
    if not 1 <= samples <= maximum:
        raise ConfigError(f"samples (L) is {samples}; this decoder takes 1 to {maximum}")


def check_batch(batch: int, maximum: int) -> None:
    """B must lie in 1..maximum (16, or a TensorRT engine's profile)."""
    if not 1 <= batch <= maximum:
        raise ConfigError(f"batch size (B) is {batch}; these graphs take 1 to {maximum} items per call")


def parse_int_list(text: str, *, name: str, low: int, high: int) -> list[int]:
    """Values of ``text`` in order, without repeats; each within ``low..high``.

    ``a..b`` is inclusive and needs a <= b; items are joined by commas (``1..3,8``).
    """
    values: list[int] = []
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        start, sep, stop = item.partition("..")
        try:
            first = int(start)
            last = int(stop) if sep else first
        except ValueError:
            raise ConfigError(
                f"{name} takes integers, ranges a..b or lists a,b,c; got {text!r}"
            ) from None
        if first > last:
            raise ConfigError(f"{name} range {item!r} is empty: {first} is above {last}")
        for value in (first, last):
            if not low <= value <= high:
                raise ConfigError(f"{name} {value} is out of range; it must lie in {low}..{high}")
        values.extend(v for v in range(first, last + 1) if v not in values)
    if not values:
        raise ConfigError(f"{name} names no value: {text!r}")
    return values


def parse_choice_list(text: str, *, name: str, choices: tuple[str, ...]) -> list[str]:
    """Comma-separated names, each one of ``choices``."""
    values = [part.strip() for part in str(text).split(",") if part.strip()]
    for value in values:
        if value not in choices:
            raise ConfigError(f"{name} {value!r} is not one of: {', '.join(choices)}")
    if not values:
        raise ConfigError(f"{name} names no value: {text!r}")
    return list(dict.fromkeys(values))
