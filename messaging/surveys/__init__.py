"""Text surveys' engine: a REDCap instrument asked one question per text (docs/redcap.md,
"Text surveys"). Pure modules, independent of how texts are sent:

- ``fields``: which fields can be asked, read from the data dictionary (``Instrument``,
  ``Question``, and the refused or hidden fields, each with its reason);
- ``load``: ``instrument_load`` reads an instrument from the project's REDCap;
- ``text``: ``question_text``, a question as a text (piping, numbered choices, how to answer);
- ``answers``: ``parse_answer``, a reply read into REDCap's value, or why it does not fit;
- ``flow``: ``next_question`` by form order and branching logic (``projects.logic``);
- ``writeback``: ``import_row``, the answers as a row for REDCap's record import;
- ``cost``: ``survey_cost``, the most texts and segments one conversation can send.
"""
