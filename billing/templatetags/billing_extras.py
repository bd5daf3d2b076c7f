from decimal import Decimal

from django import template
from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()

# Currencies written with a sign before the amount; any other shows its code after it.
SIGNS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "EUR": "€", "GBP": "£"}


@register.filter
def price(value: Decimal | None) -> str:
    """A plan's or a credit pack's price as people read it ("$1,250.00", "1,250.00 CHF" for a
    PRICE_CURRENCY without a sign here); "" when the institution set none."""
    if value is None:
        return ""
    amount = intcomma(f"{value:.2f}")
    sign = SIGNS.get(settings.PRICE_CURRENCY)
    return f"{sign}{amount}" if sign else f"{amount} {settings.PRICE_CURRENCY}"
