"""The answers of a conversation as a row of REDCap's flat record import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from messaging.surveys.answers import Answer
from messaging.surveys.fields import Instrument


def import_row(
    instrument: Instrument,
    *,
    record_id: str,
    answers: Mapping[str, Answer],
    event: str = "",
    instance: int | None = None,
    complete: bool = False,
) -> dict[str, str]:
    """One flat row for ``RedcapClient.import_records`` (normal overwrite: what is not in the
    row is left alone). A repeating instrument needs the ``instance`` this conversation writes
    (``next_instance``): REDCap's ``"new"`` would give every import its own instance. With
    ``complete``, ``<instrument>_complete`` becomes 2 (Complete)."""
    row = {instrument.record_id_field: record_id}
    if event:
        row["redcap_event_name"] = event
    if instrument.repeating:
        if instance is None or instance < 1:
            raise ValueError(f"{instrument.name} repeats: say which instance to write.")
        row["redcap_repeat_instrument"] = instrument.name
        row["redcap_repeat_instance"] = str(instance)
    for name, answer in answers.items():
        row.update(answer.columns(instrument.question(name)))
    if complete:
        row[f"{instrument.name}_complete"] = "2"
    return row


def next_instance(instrument: Instrument, rows: Iterable[Mapping[str, object]]) -> int:
    """The next instance of a repeating instrument, from the record's exported rows (those of
    this record, and event): one more than the highest instance of the instrument."""
    numbers = [
        int(str(row.get("redcap_repeat_instance")))
        for row in rows
        if row.get("redcap_repeat_instrument") == instrument.name
        and str(row.get("redcap_repeat_instance", "")).isdigit()
    ]
    return max(numbers, default=0) + 1
