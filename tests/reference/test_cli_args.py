"""The shared argparse value types: one line, exit 2, saying what is wrong."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from reference.cli_args import port_number, positive_float, positive_int


@pytest.mark.parametrize(("convert", "text", "reason"), [
    (positive_int, "0", "'0' must be greater than 0"),
    (positive_int, "-3", "'-3' must be greater than 0"),
    (positive_int, "1.5", "'1.5' is not an integer"),
    (positive_float, "nan", "'nan' must be greater than 0"),
    (positive_float, "abc", "'abc' is not a number"),
    (port_number, "70000", "'70000' is not in 0..65535"),
    (port_number, "http", "'http' is not an integer"),
])
def test_bad_values_say_why(convert: Callable[[str], object], text: str, reason: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        convert(text)


def test_good_values() -> None:
    assert positive_int("7") == 7
    assert positive_float("0.25") == 0.25
    assert port_number("0") == 0


def test_parser_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--clients", type=positive_int)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--clients", "0"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "demo: error: argument --clients: '0' must be greater than 0"
