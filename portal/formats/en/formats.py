"""The site's one date format and one date-and-time format (settings.FORMAT_MODULE_PATH).

Templates write `{{ moment|date:"DATETIME_FORMAT" }}` ("Mar 4, 2026 3:05 p.m.", in the viewer's
time zone) and `{{ day|date:"DATE_FORMAT" }}` ("Mar 4, 2026"). Python code that puts a moment in
a sentence uses `django.utils.formats.date_format(localtime(moment), "DATETIME_FORMAT")`.
"""

DATE_FORMAT = "M j, Y"
DATETIME_FORMAT = "M j, Y g:i a"
SHORT_DATE_FORMAT = "M j, Y"
SHORT_DATETIME_FORMAT = "M j, Y g:i a"
