"""Seed the health professions by their RPPS profession code (TRE_G15 ProfessionSante).

Codes and French labels follow the national directory; the English labels are ours. Code 10 (médecin) is the
only medical profession in the sense of A2 (doctors read every type except ``ATTEST-RESID``).
"""

from django.db import migrations

PROFESSIONS = [
    ("10", "Médecin", "Doctor", True),
    ("21", "Pharmacien", "Pharmacist", False),
    ("26", "Audioprothésiste", "Hearing-aid specialist", False),
    ("28", "Opticien-lunetier", "Optician", False),
    ("40", "Chirurgien-dentiste", "Dental surgeon", False),
    ("50", "Sage-femme", "Midwife", False),
    ("60", "Infirmier", "Nurse", False),
    ("70", "Masseur-kinésithérapeute", "Physiotherapist", False),
    ("80", "Pédicure-podologue", "Podiatrist", False),
    ("91", "Orthophoniste", "Speech therapist", False),
    ("92", "Orthoptiste", "Orthoptist", False),
    ("94", "Ergothérapeute", "Occupational therapist", False),
    ("95", "Diététicien", "Dietitian", False),
    ("96", "Psychomotricien", "Psychomotor therapist", False),
]


def seed(apps, schema_editor):
    Profession = apps.get_model("practitioners", "Profession")
    for code, label_fr, label_en, is_doctor in PROFESSIONS:
        Profession.objects.update_or_create(
            code=code, defaults={"label_fr": label_fr, "label_en": label_en, "is_doctor": is_doctor}
        )


class Migration(migrations.Migration):
    dependencies = [("practitioners", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
