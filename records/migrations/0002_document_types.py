"""Seed the document type catalogue from JDV_J66 TypeCode_DMP (version 2024-09-27), with JDV_J57 classes.

The selection covers the types that make up most real traffic (shared domain notes, document-types.md); the
class column is our mapping, the codes and French labels are official, the English labels are ours.
"""

from django.db import migrations

DOCUMENT_TYPES = [
    ('11502-2', 'LOINC', "CR d'examens biologiques", 'Laboratory report', '10'),
    ('18748-4', 'LOINC', "CR d'imagerie médicale", 'Diagnostic imaging report', '10'),
    ('11490-0', 'LOINC', "Lettre de liaison à la sortie d'un établissement de soins", 'Discharge summary letter', '10'),
    ('34112-3', 'LOINC', 'CR hospitalier (séjour)', 'Hospital stay report', '10'),
    ('11488-4', 'LOINC', 'CR ou fiche de consultation ou de visite', 'Consultation note', '10'),
    ('15507-7', 'LOINC', 'CR de passage aux urgences', 'Emergency department report', '10'),
    ('34874-8', 'LOINC', 'CR opératoire', 'Surgical operation report', '10'),
    ('77436-4', 'LOINC', "CR d'anesthésie", 'Anaesthesia report', '10'),
    ('34749-2', 'LOINC', 'CR de consultation pré-anesthésique', 'Pre-anaesthesia consultation report', '10'),
    ('60568-3', 'LOINC', "CR d'anatomie et de cytologie pathologiques", 'Pathology report', '10'),
    ('51969-4', 'LOINC', 'CR de génétique moléculaire', 'Molecular genetics report', '10'),
    ('34794-8', 'LOINC', 'CR de réunion de concertation pluridisciplinaire', 'Multidisciplinary team meeting report', '10'),
    ('11506-3', 'LOINC', 'CR ou fiche de suivi de soins par auxiliaire médical', 'Allied health care follow-up report', '10'),
    ('11505-5', 'LOINC', "CR d'acte thérapeutique (autre)", 'Therapeutic procedure report (other)', '10'),
    ('70004-7', 'LOINC', "CR d'acte diagnostique (autre)", 'Diagnostic procedure report (other)', '10'),
    ('85208-7', 'LOINC', 'CR de télémédecine', 'Telemedicine report', '10'),
    ('15508-5', 'LOINC', "CR d'accouchement", 'Delivery report', '10'),
    ('89233-1', 'LOINC', 'CR de grossesse', 'Pregnancy report', '10'),
    ('78601-2', 'LOINC', "CR d'entretien pharmaceutique", 'Pharmaceutical interview report', '10'),
    ('60591-5', 'LOINC', 'Synthèse médicale', 'Patient summary', '11'),
    ('34133-9', 'LOINC', "Synthèse d'épisode de soins", 'Episode of care summary', '11'),
    ('68599-0', 'LOINC', 'Synthèse psychiatrique', 'Psychiatric summary', '11'),
    ('83901-9', 'LOINC', 'Bilan psychologique', 'Psychological assessment', '11'),
    ('56445-0', 'LOINC', 'Bilan médicamenteux (officine)', 'Medication review (pharmacy)', '11'),
    ('68817-6', 'LOINC', "Bilan de santé et de prévention de l'enfant", 'Child health and prevention check', '11'),
    ('57833-6', 'LOINC', 'Prescription de produits de santé', 'Prescription of health products', '42'),
    ('57832-8', 'LOINC', 'Prescription de soins', 'Prescription of care', '42'),
    ('57828-6', 'LOINC', 'Prescription (autre)', 'Prescription (other)', '42'),
    ('55115-0', 'LOINC', "Demande d'actes d'imagerie", 'Imaging request', '42'),
    ('75496-0', 'LOINC', "Demande d'acte de télémédecine", 'Telemedicine request', '42'),
    ('60593-1', 'LOINC', 'Dispensation médicamenteuse', 'Medication dispensation', '43'),
    ('18776-5', 'LOINC', 'Plan personnalisé de soins', 'Personalised care plan', '44'),
    ('80788-3', 'LOINC', "Projet personnalisé d'accompagnement", 'Personalised support plan', '44'),
    ('11369-6', 'LOINC', 'Historique des vaccinations', 'Immunisation history', '45'),
    ('87273-9', 'LOINC', 'Note de vaccination', 'Immunisation note', '45'),
    ('89601-9', 'LOINC', 'Certificat médical', 'Medical certificate', '52'),
    ('96349-6', 'LOINC', "Lettre d'adressage", 'Referral letter', '10'),
    ('18761-7', 'LOINC', "Note de transfert (dont lettre de liaison à l'entrée)", 'Transfer note (including admission letter)', '10'),
    ('74207-2', 'LOINC', "Document de liaison d'urgence", 'Emergency liaison document', '10'),
    ('29274-8', 'LOINC', 'Mesures de signes vitaux', 'Vital signs measurements', '10'),
    ('28653-4', 'LOINC', 'Document du secteur social / médico-social', 'Social / medico-social document', '10'),
    ('101881-1', 'LOINC', "Carte d'implant", 'Implant card', '52'),
    ('SYNTH', 'TRE_A05', 'Synthèse', 'Summary', '11'),
    ('CERT_DECL', 'TRE_A05', 'Certificat, déclaration', 'Certificate, declaration', '52'),
    ('REMB', 'TRE_A05', 'Données de remboursement', 'Reimbursement data', '60'),
    ('EXPPAT_3', 'TRE_A05', 'Directives anticipées', 'Advance directives', '90'),
    ('PROT_ALD', 'TRE_A05', 'Protocole de soins ALD', 'Long-term condition care protocol', '44'),
    ('ATTEST-RESID', 'TRE_A05', 'Attestation de résidence', 'Proof of residence', '95'),
    ('PRESC-KINE', 'TRE_A05', 'Prescription de kinésithérapie', 'Physiotherapy prescription', '42'),
    ('PRESC-INF', 'TRE_A05', 'Prescription de soins infirmiers', 'Nursing care prescription', '42'),
    ('PRESC-BIO', 'TRE_A05', "Prescription d'examens de biologie", 'Laboratory test prescription', '42'),
    ('DOCPAT01', 'TRE_A05', 'Synthèse (déposée par le patient)', 'Summary (uploaded by the patient)', '90'),
    ('DOCPAT02', 'TRE_A05', 'Traitement, soins (déposé par le patient)', 'Treatment, care (uploaded by the patient)', '90'),
    ('DOCPAT03', 'TRE_A05', 'Compte rendu (déposé par le patient)', 'Report (uploaded by the patient)', '90'),
    ('DOCPAT04', 'TRE_A05', 'Imagerie médicale (déposée par le patient)', 'Medical imaging (uploaded by the patient)', '90'),
    ('DOCPAT05', 'TRE_A05', 'Biologie (déposée par le patient)', 'Laboratory results (uploaded by the patient)', '90'),
    ('DOCPAT06', 'TRE_A05', 'Prévention (déposée par le patient)', 'Prevention (uploaded by the patient)', '90'),
    ('DOCPAT07', 'TRE_A05', 'Certificat (déposé par le patient)', 'Certificate (uploaded by the patient)', '90'),
    ('DOCPAT09', 'TRE_A05', 'Document administratif (déposé par le patient)', 'Administrative document (uploaded by the patient)', '90'),
]


def seed(apps, schema_editor):
    DocumentType = apps.get_model("records", "DocumentType")
    for code, system, label_fr, label_en, class_code in DOCUMENT_TYPES:
        DocumentType.objects.update_or_create(
            code=code,
            defaults={"code_system": system, "label_fr": label_fr, "label_en": label_en, "class_code": class_code},
        )


class Migration(migrations.Migration):
    dependencies = [("records", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
