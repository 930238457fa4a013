"""I1 on Citus: the NIR index (``records.models.NirIndex``), filled from the profiles already there."""

import django.db.models.deletion
from django.db import migrations, models

from plumbing.like_indexes import drop_like_indexes


def fill(apps, schema_editor):
    schema_editor.execute(
        "INSERT INTO records_nirindex (nir, profile_id) SELECT nir, id FROM records_profile", params=None
    )


class Migration(migrations.Migration):

    dependencies = [
        ('records', '0010_health_summary'),
    ]

    operations = [
        migrations.CreateModel(
            name='NirIndex',
            fields=[
                ('nir', models.CharField(max_length=15, primary_key=True, serialize=False, verbose_name='NIR')),
                ('profile', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='records.profile')),
            ],
            options={
                'verbose_name': 'index des NIR',
                'verbose_name_plural': 'index des NIR',
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        drop_like_indexes("records", ("NirIndex", "nir")),
    ]
