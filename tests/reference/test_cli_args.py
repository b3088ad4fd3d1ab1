"""The shared argparse value types: one line, exit 2, saying what is wrong."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from reference.cli_args import (
    client_counts,
    finite_number,
    int_between,
    percentage,
    port_number,
    positive_float,
    positive_int,
    positive_seconds,
    run_time,
)


@pytest.mark.parametrize(("convert", "text", "reason"), [
    (positive_int, "0", "'0' must be greater than 0"),
    (positive_int, "-3", "'-3' must be greater than 0"),
    (positive_int, "1.5", "'1.5' is not an integer"),
    (positive_float, "nan", "'nan' must be greater than 0"),
    (positive_float, "abc", "'abc' is not a number"),
    (port_number, "70000", "'70000' is not in 0..65535"),
    (port_number, "http", "'http' is not an integer"),
    (percentage, "fast", "'fast' is not a percentage"),
    (percentage, "0", "'0' must be above 0"),
    (percentage, "-5%", "'-5%' must be above 0"),
    (percentage, "nan", "'nan' must be above 0"),
    (percentage, "inf", "'inf' must be below 10000%"),
    (percentage, "10000", "'10000' must be below 10000%"),
    (int_between(2, 500, "listeners"), "1", "'1' is not between 2 and 500 listeners"),
    (int_between(2, 500, "listeners"), "2.5", "'2.5' is not a whole number of listeners"),
    (positive_seconds, "0", "'0' is not between 0 and 3600 seconds"),
    (positive_seconds, "soon", "'soon' is not a number of seconds"),
    (client_counts, "2,x", "is not a comma-separated list"),
    (client_counts, "1,10", "every client count must be at least 2"),
    (run_time, "forever", "is not a run time like 90"),
    (run_time, "0s", "is not a run time more than 0"),
    (finite_number(int), "inf", "'inf' is not a whole number"),
    (finite_number(float), "inf", "'inf' is not a finite number more than 0"),
    (finite_number(float, zero_ok=True), "-1", "'-1' is not a finite number 0 or more"),
])
def test_bad_values_say_why(convert: Callable[[str], object], text: str, reason: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        convert(text)


def test_good_values() -> None:
    assert positive_int("7") == 7
    assert positive_float("0.25") == 0.25
    assert port_number("0") == 0
    assert percentage("25%") == percentage(" 25 ") == 0.25
    assert int_between(2, 500, "listeners")("500") == 500
    assert positive_seconds("3600") == 3600.0
    assert client_counts("2,10,50") == [2, 10, 50]
    assert run_time("1m30s") == run_time("90") == 90
    assert finite_number(float, zero_ok=True)("0") == 0.0


def test_parser_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--clients", type=positive_int)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--clients", "0"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "demo: error: argument --clients: '0' must be greater than 0"
