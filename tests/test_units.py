"""bench.util.units.parse_size, the one parser of every memory budget (--max-memory, fit --memory,
plan --memory): decimal and binary units written out by hand, and bad sizes refused by name."""

import pytest

from bench.util.errors import BenchError
from bench.util.units import fmt_bytes, parse_size


@pytest.mark.parametrize("text, expected", [
    ("24GB", 24_000_000_000), ("80GiB", 85_899_345_920), ("512MiB", 536_870_912), ("1.5GiB", 1_610_612_736),
    ("650MiB", 681_574_400), ("1KB", 1_000), ("1KiB", 1_024), ("2TB", 2_000_000_000_000), ("1TiB", 1_099_511_627_776),
    ("8gib", 8_589_934_592), (" 16 GB ", 16_000_000_000), ("4096", 4_096), ("100B", 100), ("0.5MB", 500_000),
    (12345, 12_345), (2.0e9, 2_000_000_000),
])
def test_sizes_in_every_unit(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text, message", [
    ("lots", "cannot parse memory size 'lots'; use a number with a unit such as 24GB, 80GiB or 512MiB"),
    ("8 G", "cannot parse memory size '8 G'"),
    ("-1GB", "cannot parse memory size '-1GB'"),
    ("1e9", "cannot parse memory size '1e9'"),
    ("", "cannot parse memory size ''"),
    ("0GB", "memory size must be positive, got '0GB'"),
    (0, "memory size must be positive, got 0"),
    (-5, "memory size must be positive, got -5"),
    (True, "cannot parse memory size True"),
])
def test_bad_sizes_are_refused_with_the_accepted_form(text, message):
    with pytest.raises(BenchError) as caught:
        parse_size(text)
    assert str(caught.value).startswith(message)


def test_a_size_that_rounds_to_zero_bytes_is_refused():
    """'0.5B' is positive as written but half a byte: no budget can be 0 bytes."""
    with pytest.raises(BenchError, match="memory size must be positive"):
        parse_size("0.5B")


def test_display_in_binary_units():
    assert fmt_bytes(None) == "-" and fmt_bytes(512) == "512 B" and fmt_bytes(1536) == "1.50 KiB"
    assert fmt_bytes(3 * 2**30) == "3.00 GiB" and fmt_bytes(700 * 2**20) == "700.00 MiB"
