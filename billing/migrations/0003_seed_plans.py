from django.db import migrations

# The service's published tiers (docs/architecture.md, "Plans"). Data, editable by
# administrators afterwards.
PLANS = [
    ("Basic", 4, 1000, 0),
    ("Plus", 10, 3000, 1),
    ("Pro", 30, 7500, 2),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for name, projects, messages, order in PLANS:
        Plan.objects.get_or_create(
            name=name,
            defaults={"project_limit": projects, "monthly_messages": messages, "sort_order": order},
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
