"""Request logs never carry a webhook's secret (portal/log_filters.py)."""

import logging

from portal.log_filters import MaskWebhookSecrets, mask


def test_every_webhook_address_is_logged_without_its_secret():
    assert (
        mask("Forbidden: /webhooks/twilio/abc123/status/")
        == "Forbidden: /webhooks/twilio/…/status/"
    )
    assert mask("/webhooks/mosio/s3cr3t-_x/inbound/") == "/webhooks/mosio/…/inbound/"
    assert (
        mask('"POST /webhooks/redcap/Zz9_-a/ HTTP/1.1" 404')
        == '"POST /webhooks/redcap/…/ HTTP/1.1" 404'
    )
    assert mask("/projects/12/redcap/") == "/projects/12/redcap/"


def test_the_filter_masks_the_arguments_django_logs_the_path_in():
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "%s: %s",
        ("Not Found", "/webhooks/redcap/k3y/"),
        None,
    )
    assert MaskWebhookSecrets().filter(record) is True
    assert record.getMessage() == "Not Found: /webhooks/redcap/…/"
