"""Provider webhooks: authenticated, idempotent, quick. Each link has an unguessable path."""

import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from messaging.gateways import mosio, twilio
from messaging.gateways.twilio import parse_status_callback, validate_twilio_signature
from messaging.services.inbound import inbound_receive
from messaging.services.receipts import receipt_apply
from portal.throttle import rate_limit
from projects.crypto import SecretUnreadable
from projects.models import ProviderLink

logger = logging.getLogger(__name__)


def _link_config(link: ProviderLink) -> dict | None:
    """The link's decrypted settings, or None (logged with the link id) when they cannot be
    decrypted: the key was rotated away. The webhook then answers 4xx, not 500."""
    try:
        return link.config
    except SecretUnreadable:
        logger.error("Webhook for provider link %s: its settings cannot be decrypted.", link.pk)
        return None


def _limited(request, secret: str):
    """Each link's webhook takes at most settings.RATE_LIMITS["webhook"] requests a minute."""
    response = rate_limit(request, "webhook", f"webhook:{secret}")
    if response is not None:
        return HttpResponse(
            "Too many requests.", status=429, headers={"Retry-After": response["Retry-After"]}
        )
    return None


def signed_urls(request) -> list[str]:
    """The URLs a provider may have signed this request for (see docs/twilio.md): first the
    public address, SITE_URL + path, which is what the provider page shows the owner and what
    StudyText gives Twilio as a status callback; then the URL this request reached Django
    with, when it differs (the Host header or scheme the app sees behind a proxy that is not
    trusted with X-Forwarded-*, or a second name for the site)."""
    public = settings.SITE_URL + request.get_full_path()
    own = request.build_absolute_uri()
    return [public] if own == public else [public, own]


def _signed_twilio_link(request, secret: str, *, what: str) -> ProviderLink | None:
    """The Twilio link the secret path names (404 if none), or None when the request does not
    carry that link's signature for one of `signed_urls` (logged as a rejected `what`)."""
    link = get_object_or_404(ProviderLink, webhook_secret=secret, provider="twilio")
    config = _link_config(link)
    if config is None:
        return None
    signature = request.headers.get("X-Twilio-Signature", "")
    token = config["auth_token"]
    if not any(
        validate_twilio_signature(url, request.POST, signature, token)
        for url in signed_urls(request)
    ):
        logger.warning("Rejected a Twilio %s with a bad signature (link %s).", what, link.pk)
        return None
    return link


@csrf_exempt
@require_POST
def twilio_status(request, secret: str):
    """Twilio's StatusCallback: signature-checked, then the message moves forward (or not)."""
    if limited := _limited(request, secret):
        return limited
    link = _signed_twilio_link(request, secret, what="status callback")
    if link is None:
        return HttpResponseForbidden("Bad signature.")
    update = parse_status_callback(request.POST)
    receipt_apply(
        link=link,
        provider_message_id=update.provider_message_id,
        provider_status=update.status,
        reason=update.reason,
        code=update.error_code,
        park=True,  # it may come before the sender has recorded the text (RECORD_WAIT)
    )
    return HttpResponse(status=204)


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@csrf_exempt
@require_POST
def twilio_inbound(request, secret: str):
    """Twilio's incoming-message webhook: signature-checked, stored, answered with empty TwiML
    (Twilio itself confirms STOP; StudyText never adds a confirmation)."""
    if limited := _limited(request, secret):
        return limited
    link = _signed_twilio_link(request, secret, what="inbound text")
    if link is None:
        return HttpResponseForbidden("Bad signature.")
    inbound_receive(link=link, sms=twilio.parse_inbound(request.POST))
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def mosio_inbound(request, secret: str):
    """Mosio's inbound webhook (docs/mosio.md, M22-M24): the ApiKey sent must be the link's
    key. GET is accepted as well as POST (M23: REDCap receives both from Mosio); a GET's fields
    are in its query string."""
    if limited := _limited(request, secret):
        return limited
    link = get_object_or_404(ProviderLink, webhook_secret=secret, provider="mosio")
    config = _link_config(link)
    if config is None:
        return HttpResponseForbidden("This link cannot check requests.")
    params = request.POST if request.method == "POST" else request.GET
    if not mosio.verify_inbound_key(params.get("ApiKey"), config["api_key"]):
        logger.warning("Rejected a Mosio inbound text with a bad key (link %s).", link.pk)
        return HttpResponseForbidden("Bad key.")
    inbound_receive(link=link, sms=mosio.parse_inbound(params))
    return HttpResponse(status=200)
