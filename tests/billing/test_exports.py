import csv
import io

import pytest

from billing.exports import csv_cell, csv_response


@pytest.mark.parametrize("value", ["=1+1", "+SUM(A1)", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"])
def test_it_turns_a_cell_a_spreadsheet_would_run_into_text(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Sleep and Mood", "a=b", "", 42, None])
def test_it_leaves_other_cells_alone(value):
    assert csv_cell(value) == value


def test_it_streams_every_row_as_a_download_with_the_cells_made_safe():
    response = csv_response(iter([["name", "units"], ["\t=cmd", 3]]), "usage.csv")
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="usage.csv"'
    assert list(csv.reader(io.StringIO(body))) == [["name", "units"], ["'\t=cmd", "3"]]
