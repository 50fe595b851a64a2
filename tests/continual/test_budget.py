import pytest
from hypothesis import given
from hypothesis import strategies as st

from continual import MemoryAccountant, parse_budget
from continual.budget import format_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("23.5 MB", 23_500_000),
        ("4 MiB", 4 * 1024 * 1024),
        ("200KB", 200_000),
        ("200 kb", 200_000),
        ("1 GB", 10**9),
        ("1.5 GiB", 3 * 2**29),
        ("2 KiB", 2048),
        ("100", 100),
        ("100 B", 100),
        ("0", 0),
        ("1e3 KB", 10**6),
    ],
)
def test_budget_strings_parse_to_bytes(text, expected):
    assert parse_budget(text) == expected


@given(st.integers(0, 10**6), st.sampled_from([("KB", 10**3), ("MiB", 2**20), ("GB", 10**9)]))
def test_integer_budgets_in_every_unit(number, unit):
    name, scale = unit
    assert parse_budget(f"{number} {name}") == number * scale
    assert parse_budget(f"{number}{name}") == number * scale


def test_ints_floats_and_none():
    assert parse_budget(1000) == 1000
    assert parse_budget(2e6) == 2_000_000
    assert parse_budget(None) is None


@pytest.mark.parametrize("bad", ["ten MB", "5 XB", "", "-3 MB", "MB", "1.2.3 KB"])
def test_unparsable_budget_names_the_argument(bad):
    with pytest.raises(ValueError, match="budget") as error:
        parse_budget(bad)
    assert repr(bad) in str(error.value)


@pytest.mark.parametrize("bad", [-1, 1.5, float("inf")])
def test_negative_or_fractional_budget_is_rejected(bad):
    with pytest.raises(ValueError, match="budget"):
        parse_budget(bad)


@pytest.mark.parametrize("bad", [True, [100], 3j])
def test_budget_of_wrong_type(bad):
    with pytest.raises(TypeError, match="budget"):
        parse_budget(bad)


def test_accountant_rejects_bad_budget_at_construction():
    with pytest.raises(ValueError, match="got -5"):
        MemoryAccountant(-5)


def test_format_bytes():
    assert format_bytes(23_500_000) == "23.50 MB"
    assert format_bytes(999) == "999 B"
