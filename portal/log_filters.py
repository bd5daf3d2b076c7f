"""Log filters: the secret in a webhook's address never reaches a log line.

Django logs the path of every 4xx and 5xx answer (`django.request`) and every request under
`runserver` (`django.server`). The provider webhooks and REDCap's Data Entry Trigger carry a
per-link secret in their path (docs/compliance.md, "Nothing sensitive in URLs"), so those
paths are logged with the secret replaced by "…".
"""

import logging
import re

WEBHOOK_SECRET = re.compile(r"(/webhooks/(?:twilio|mosio|redcap)/)[^/\s\"'?]+")


def mask(text: str) -> str:
    return WEBHOOK_SECRET.sub(r"\1…", text)


class MaskWebhookSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True
