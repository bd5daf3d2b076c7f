"""Conversations kept each answer's raw reply text in `answers[field]["reply"]`, which nothing
read and retention never blanked: drop it (the value REDCap receives stays)."""

from django.db import migrations


def drop_reply_text(apps, schema_editor):
    Conversation = apps.get_model("messaging", "Conversation")
    for conversation in Conversation.objects.exclude(answers={}).only("pk", "answers").iterator():
        answers = conversation.answers or {}
        if not any(isinstance(a, dict) and "reply" in a for a in answers.values()):
            continue
        conversation.answers = {
            field: {k: v for k, v in a.items() if k != "reply"} if isinstance(a, dict) else a
            for field, a in answers.items()
        }
        conversation.save(update_fields=["answers"])


class Migration(migrations.Migration):
    dependencies = [("messaging", "0012_widen_trigger_keys")]

    operations = [migrations.RunPython(drop_reply_text, migrations.RunPython.noop)]
