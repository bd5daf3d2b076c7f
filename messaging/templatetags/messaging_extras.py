"""Template filters for the messaging pages."""

from django import template

from messaging import gateways

register = template.Library()


@register.filter
def delivers_to_simulator(link) -> bool:
    """`{% if project.provider_link|delivers_to_simulator %}`: the project's texts show on the
    phone simulator (a sandbox link, or every link under SMS_GATEWAY_OVERRIDE=sandbox)."""
    return gateways.delivers_to_simulator(link)
