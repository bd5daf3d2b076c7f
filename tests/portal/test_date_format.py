"""One date-and-time format across the site (portal/formats/en/formats.py), the audit log too."""

import datetime
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone

from portal.audit import audit_record
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db
TEMPLATES = Path(settings.BASE_DIR) / "templates"
# A `date` filter with a time in its format: only the site's own format may be used.
WITH_TIME = re.compile(r'\|date:"([^"]*)"')


def test_the_site_format_reads_month_day_year_and_time():
    moment = datetime.datetime(2026, 3, 4, 15, 5, tzinfo=datetime.UTC)
    assert formats.date_format(moment, "DATETIME_FORMAT") == "Mar 4, 2026 3:05 p.m."
    assert formats.date_format(moment.date(), "DATE_FORMAT") == "Mar 4, 2026"


def test_no_template_writes_a_date_and_time_in_a_format_of_its_own():
    own = []
    for path in TEMPLATES.rglob("*.html"):
        for fmt in WITH_TIME.findall(path.read_text()):
            has_time = any(c in fmt for c in "gGhHisaA") and not fmt.isupper()
            if has_time and fmt != "g:i a":  # a time of day alone (sending hours) is not a moment
                own.append(f"{path.relative_to(TEMPLATES)}: {fmt}")
    assert own == []


def test_the_audit_log_shows_times_in_the_site_format_in_the_viewers_time_zone(
    as_user, server_admin, monkeypatch
):
    server_admin.time_zone = "America/Chicago"  # UTC-6 on Mar 4, 2026
    server_admin.save()
    when = datetime.datetime(2026, 3, 4, 15, 5, tzinfo=datetime.UTC)
    monkeypatch.setattr(timezone, "now", lambda: when)
    audit_record(actor=server_admin, action="test.done", obj=server_admin, message="Did it.")
    monkeypatch.undo()
    assert AuditEvent.objects.get(action="test.done").created_at == when

    html = as_user(server_admin).get(reverse("audit-log")).content.decode()

    assert "Mar 4, 2026 9:05 a.m." in html
    assert "2026-03-04" not in html
