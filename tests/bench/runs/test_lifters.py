"""``bench models --part-based``: vanilla and part-based counts side by side."""
import re

import pytest

from bench.cli import main
from bench.runs.lifters import part_based_rows


def test_matched_rows_are_within_one_percent_and_skip_part_lifters():
    rows = {row["lifter"]: row for row in part_based_rows(134, 27, widths="match")}
    assert set(rows) == {"d3dp", "mixste", "poseformer", "videopose"}
    for row in rows.values():
        assert abs(row["ratio"] - 1) <= 0.01, row
        assert row["total"] == sum(row["parts"][part] for part in ("body", "face", "hands"))
    assert rows["d3dp"]["vanilla"] == 34_784_771 and rows["mixste"]["vanilla"] == 33_733_123


def test_balanced_mixste_widths():
    (row,) = part_based_rows(134, 27, pattern="mixste")
    assert row["widths"] == {"body": 384, "face": 224, "hands": 256}
    assert row["ratio"] == pytest.approx(33_907_625 / 33_733_123)


def test_cli_prints_the_part_based_table(capsys):
    assert main(["models", "--part-based", "--filter", "videopose"]) == 0
    out = capsys.readouterr().out
    assert "widths=balanced" in out
    assert re.search(r"\| videopose\s+\| 9,634,194\s+\| 768/448/512\s+\|.*\| 9,093,403\s+\| 0\.9439", out)
    assert main(["models", "--part-based", "--joints", "17", "--filter", "videopose"]) == 0
    assert "joints must be 134" in capsys.readouterr().out
