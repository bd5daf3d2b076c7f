from django.db import migrations, models


class Migration(migrations.Migration):
    """The overview's texts-per-day chart reads a project's texts by the time they were sent."""

    dependencies = [
        ("messaging", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                fields=["project", "sent_at"], name="messaging_m_project_a9265b_idx"
            ),
        ),
    ]
