"""CSV downloads that a spreadsheet opens safely (billing's usage and messaging's message log;
billing is the app every other may import)."""

import csv
from collections.abc import Iterable

from django.http import StreamingHttpResponse

# A cell starting with one of these runs as a formula when the file is opened in a spreadsheet
# (a rule name, an account name, a provider's error, a REDCap record id could start so).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """The value, shown by a spreadsheet as the text it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value):
        return value


def csv_response(rows: Iterable[Iterable], filename: str) -> StreamingHttpResponse:
    """Stream `rows` (the first one the header) as a CSV download, every cell made safe."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([csv_cell(v) for v in row]) for row in rows), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
