"""The plain table the recorder's `list` prints."""

from __future__ import annotations

from labledger.cli.recorder_common import CELL_WIDTH, text_table


def test_columns_line_up_and_every_row_stays_one_line() -> None:
    long = "x" * (CELL_WIDTH + 10)
    lines = text_table(
        ["#", "name", "note"],
        [["1", "first\nsecond line", "short"], ["12", long, ""]],
    )
    assert lines[0].split() == ["#", "name", "note"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 4
    # the second column starts at the same place on every line
    cells = ["first second", "xxx"]
    starts = {line.index(cell) for line, cell in zip(lines[2:], cells, strict=True)}
    assert len(starts) == 1
    assert "first second line" in lines[2]
    assert "x" * (CELL_WIDTH - 1) + "\u2026" in lines[3]
    assert "x" * CELL_WIDTH not in lines[3]
    assert all(line == line.rstrip() for line in lines)
