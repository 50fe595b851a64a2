"""The one table formatter."""

import pytest

from continual.tables import format_cell, format_table


def test_cells_are_formatted_by_type():
    assert [format_cell(v) for v in (12345, 0.5, None, "x", True)] == [
        "12,345",
        "0.500",
        "-",
        "x",
        "yes",
    ]


def test_columns_align_and_formats_apply_per_column():
    table = format_table(["name", "bytes", "share"], [["a", 1000, 0.5], ["bbb", 7, 0.25]],
                         formats={"share": ".0%"})  # fmt: skip
    lines = table.splitlines()
    assert lines == ["name  bytes  share", "a     1,000    50%", "bbb       7    25%"]


def test_short_rows_leave_blank_cells_and_long_rows_are_refused():
    assert format_table(["a", "b"], [["x"]]).splitlines()[1] == "x"
    with pytest.raises(ValueError, match=r"rows\[0\] has 3 cells, more than the 2 columns"):
        format_table(["a", "b"], [[1, 2, 3]])
    with pytest.raises(ValueError, match=r"formats names columns \['c'\]"):
        format_table(["a", "b"], [[1, 2]], formats={"c": ".1f"})
