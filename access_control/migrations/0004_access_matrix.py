"""Seed the profession x document-type matrix (A2) and the maskable document categories (A12).

The official matrix (arrêté of 26 October 2023) is not published in machine-readable form: this is a
plausible default, documented in docs/access-matrix.md, for staff to adjust in the admin site (every change
goes through ``do_set_access_rule`` and is traced). Pairs absent from the table are denied. Doctors get every
type present when the migration runs except ``ATTEST-RESID``; a type added later must be granted explicitly.
"""

from django.db import migrations

DOCTOR = "10"
NOT_FOR_DOCTORS = {"ATTEST-RESID"}

MATRIX = {
    # Pharmacien: prescriptions, dispensations, vaccinations, medication review and interview, biology, ALD.
    "21": [
        "57833-6", "57832-8", "57828-6", "PRESC-BIO", "60593-1", "11369-6", "87273-9", "56445-0", "78601-2",
        "11502-2", "PROT_ALD", "60591-5", "11490-0", "DOCPAT02", "DOCPAT05", "DOCPAT06",
    ],
    # Audioprothésiste, opticien-lunetier: the prescriptions they dispense against.
    "26": ["57833-6", "57828-6", "11506-3"],
    "28": ["57833-6", "57828-6", "11506-3"],
    # Chirurgien-dentiste: prescriptions, imaging, surgery and anaesthesia, biology, medication, implants.
    "40": [
        "57833-6", "57828-6", "55115-0", "60593-1", "18748-4", "34874-8", "77436-4", "11502-2", "56445-0",
        "60591-5", "11369-6", "101881-1", "PROT_ALD", "DOCPAT04",
    ],
    # Sage-femme: pregnancy and delivery, prescriptions, biology, ultrasound, prenatal genetics, vaccinations.
    "50": [
        "89233-1", "15508-5", "57833-6", "57832-8", "57828-6", "PRESC-BIO", "55115-0", "11502-2", "18748-4",
        "51969-4", "11369-6", "87273-9", "60593-1", "60591-5", "11488-4", "68817-6", "29274-8", "11490-0",
        "DOCPAT03", "DOCPAT05",
    ],
    # Infirmier: prescriptions of care, care plans and follow-up, biology, vital signs, liaison letters.
    "60": [
        "57833-6", "57832-8", "57828-6", "PRESC-INF", "PRESC-BIO", "60593-1", "11369-6", "87273-9", "11502-2",
        "11506-3", "18776-5", "80788-3", "29274-8", "11490-0", "18761-7", "74207-2", "60591-5", "PROT_ALD",
        "EXPPAT_3", "28653-4", "DOCPAT02", "DOCPAT05", "DOCPAT06",
    ],
    # Masseur-kinésithérapeute: physiotherapy prescriptions, imaging and operative reports, follow-up.
    "70": [
        "PRESC-KINE", "57832-8", "11506-3", "18776-5", "18748-4", "34874-8", "11490-0", "60591-5", "29274-8",
        "DOCPAT03", "DOCPAT04",
    ],
    # Pédicure-podologue: care prescriptions, follow-up, the ALD protocol and HbA1c (diabetic foot).
    "80": ["57832-8", "57828-6", "11506-3", "18776-5", "60591-5", "PROT_ALD", "11502-2", "29274-8"],
    "91": ["57832-8", "57828-6", "11506-3", "18776-5", "60591-5", "68817-6"],
    "92": ["57832-8", "57828-6", "11506-3", "60591-5"],
    "94": ["57832-8", "11506-3", "18776-5", "80788-3", "60591-5"],
    "95": ["57832-8", "11506-3", "18776-5", "11502-2", "60591-5"],
    "96": ["57832-8", "11506-3", "18776-5", "80788-3", "68817-6"],
}

CATEGORIES = [
    ("sante-mentale", "Santé mentale", "Mental health", ["68599-0", "83901-9"]),
    ("grossesse", "Grossesse et accouchement", "Pregnancy and delivery", ["89233-1", "15508-5"]),
    ("genetique", "Génétique", "Genetics", ["51969-4"]),
    ("medico-social", "Accompagnement social et médico-social", "Social and medico-social care", ["28653-4", "80788-3"]),
]


def seed(apps, schema_editor):
    AccessRule = apps.get_model("access_control", "AccessRule")
    DocumentCategory = apps.get_model("access_control", "DocumentCategory")
    DocumentType = apps.get_model("records", "DocumentType")
    Profession = apps.get_model("practitioners", "Profession")

    types = {t.code: t for t in DocumentType.objects.all()}
    professions = {p.code: p for p in Profession.objects.all()}
    cells = {}
    if DOCTOR in professions:
        for code in types:
            if code not in NOT_FOR_DOCTORS:
                cells[(DOCTOR, code)] = True
    for profession_code, codes in MATRIX.items():
        for code in codes:
            cells[(profession_code, code)] = True
    for (profession_code, code), may_read in cells.items():
        if profession_code in professions and code in types:
            AccessRule.objects.get_or_create(
                profession=professions[profession_code], document_type=types[code], defaults={"may_read": may_read}
            )

    for code, label_fr, label_en, type_codes in CATEGORIES:
        category, _created = DocumentCategory.objects.update_or_create(
            code=code, defaults={"label_fr": label_fr, "label_en": label_en}
        )
        category.document_types.add(*[types[t] for t in type_codes if t in types])


class Migration(migrations.Migration):
    dependencies = [
        ("access_control", "0003_trail_append_only"),
        ("practitioners", "0003_professions"),
        ("records", "0002_document_types"),
    ]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
