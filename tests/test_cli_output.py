"""The CLI's table printer: what it prints for a title wider than its table, and that it leaves the table alone."""

from __future__ import annotations

import pytest

from autoscaler.cli.output import show, table


@pytest.mark.parametrize("title, own_line", [
    pytest.param("a title far wider than the two narrow columns of this table", True, id="wide-title"),
    pytest.param("t", False, id="narrow-title"),
])
def test_show_prints_a_wide_title_on_its_own_line_and_keeps_the_callers_table(
    capsys: pytest.CaptureFixture[str], title: str, own_line: bool
) -> None:
    t = table(title, ["a", "b"], [["1", "2"]])
    show([t])
    lines = capsys.readouterr().out.splitlines()
    assert (lines[0] == title) is own_line
    assert sum(title in line for line in lines) == 1
    assert t.title == title  # printing twice prints the same thing
    show([t])
    assert capsys.readouterr().out.splitlines() == lines
