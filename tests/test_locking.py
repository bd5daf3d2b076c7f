"""A house rule with a reason: row locks are FOR NO KEY UPDATE.

On PostgreSQL, Django's foreign keys are checked at commit with FOR KEY SHARE on the row they
point at. A plain FOR UPDATE conflicts with that, so a worker locking an account (or a period, a
message...) while others insert rows that reference it can deadlock — it did, in the billing
concurrency tests. FOR NO KEY UPDATE does not conflict with KEY SHARE and locks everything else.
"""

import re
from pathlib import Path

from django.conf import settings

APPS = ["portal", "projects", "messaging", "billing"]


def test_every_row_lock_is_a_no_key_update():
    offenders = []
    for app in APPS:
        for path in Path(settings.BASE_DIR, app).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for call in re.findall(r"select_for_update\((.*)", line):
                    if "no_key=True" not in call:
                        offenders.append(f"{path.relative_to(settings.BASE_DIR)}:{number}")
    assert offenders == []
