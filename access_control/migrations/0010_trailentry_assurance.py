"""The level of assurance (acr) of the practitioner's national sign-in on each trail entry (issue 17).

A plain ``ADD COLUMN … DEFAULT ''`` on every database: PostgreSQL (and Citus, which passes it to the shards) adds
it without touching a row, so the append-only triggers never fire; Django's SQLite editor would instead rebuild
the table, and drop its append-only triggers with the old one. Existing entries keep their hash: an empty level
is not hashed (``access_control.trail.entry_hash``).
"""

from django.db import migrations, models

COLUMN = 'ALTER TABLE "access_control_trailentry" ADD COLUMN "assurance" varchar(32) DEFAULT \'\' NOT NULL'
DROP = 'ALTER TABLE "access_control_trailentry" DROP COLUMN "assurance"'


class Migration(migrations.Migration):
    dependencies = [
        ("access_control", "0009_review_alerted_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(COLUMN, DROP)],
            state_operations=[
                migrations.AddField(
                    model_name="trailentry",
                    name="assurance",
                    field=models.CharField(
                        blank=True, db_default="", default="", max_length=32, verbose_name="niveau d'authentification"
                    ),
                ),
            ],
        ),
    ]
