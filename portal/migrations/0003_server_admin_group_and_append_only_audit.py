from django.db import migrations


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name="Server administrators")


def add_triggers(apps, schema_editor):
    # The audit log is append-only in the database too, not just in the ORM. Rows can be
    # neither changed nor deleted one by one. (TRUNCATE, which the test runner uses to reset the
    # database, is left alone; SQLite has no TRUNCATE, so there only UPDATE is blocked here and
    # DELETE is refused by the model and its queryset.)
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(
            "CREATE TRIGGER portal_auditevent_no_update BEFORE UPDATE ON portal_auditevent "
            "BEGIN SELECT RAISE(ABORT, 'The audit log is append-only.'); END;"
        )
    elif vendor == "postgresql":
        schema_editor.execute(
            "CREATE OR REPLACE FUNCTION portal_auditevent_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'The audit log is append-only.'; END; $$ LANGUAGE plpgsql;"
        )
        schema_editor.execute(
            "CREATE TRIGGER portal_auditevent_append_only BEFORE UPDATE OR DELETE ON "
            "portal_auditevent FOR EACH ROW EXECUTE FUNCTION portal_auditevent_append_only();"
        )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS portal_auditevent_no_update")
    elif vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS portal_auditevent_append_only ON portal_auditevent"
        )
        schema_editor.execute("DROP FUNCTION IF EXISTS portal_auditevent_append_only()")


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [
        migrations.RunPython(create_group, migrations.RunPython.noop),
        migrations.RunPython(add_triggers, drop_triggers),
    ]
