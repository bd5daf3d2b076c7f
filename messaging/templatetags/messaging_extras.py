"""Template tags and filters for the messaging pages, and for the project pages that show
messaging (the projects app reaches messaging only through templates, never in Python)."""

from django import template

from messaging import gateways, selectors
from messaging.charts import sent_per_day_chart
from projects.access import role_at_least
from projects.models import Membership

register = template.Library()

# The overview's counts: (group, label, CSS class of a non-zero count).
_SUMMARY_STATS = [
    ("sent", "sent", "stat-ok"),
    ("waiting", "waiting to go out", ""),
    ("held", "held (over quota)", "stat-warn"),
    ("failed", "failed", "stat-bad"),
    ("unconfirmed", "unconfirmed", "stat-warn"),
    ("skipped", "skipped or cancelled", ""),
]


@register.filter
def delivers_to_simulator(link) -> bool:
    """`{% if project.provider_link|delivers_to_simulator %}`: the project's texts show on the
    phone simulator (a sandbox link, or every link under SMS_GATEWAY_OVERRIDE=sandbox)."""
    return gateways.delivers_to_simulator(link)


@register.inclusion_tag("messaging/_texting_summary.html", takes_context=True)
def texting_summary(context, project):
    """`{% texting_summary project %}`: the "Texts" card of a project's overview (counts for the
    last 30 days, texts sent per day over 14, active messages and the next text due), in the
    viewer's time zone. Needs `role` in the context (who may create messages)."""
    summary = selectors.texting_summary(project=project)
    stats = [
        {
            "key": key,
            "label": label,
            "count": summary.counts[key],
            "css": css if summary.counts[key] else "",
            "status": selectors.SUMMARY_FILTERS[key],
        }
        for key, label, css in _SUMMARY_STATS
    ]
    return {
        "project": project,
        "summary": summary,
        "stats": stats,
        "chart": sent_per_day_chart(days=summary.days, today=summary.today),
        "can_edit": role_at_least(context.get("role"), Membership.Role.EDITOR),
        "outages": selectors.project_outages(project=project),
    }


@register.simple_tag
def inbox_count(project, role) -> int:
    """`{% inbox_count project role as waiting %}`: replies waiting in the project's inbox for a
    member of this role (one query), for the project's navigation."""
    return selectors.inbox_count(project=project, role=role)
