"""The demo cast of docs/personas.md, built through the project's own actions.

``build_personas()`` is what the tests' ``personas`` fixture and the ``seed_demo`` command call. It is
idempotent: a second call finds the people built by the first (profiles by NIR, practitioners by RPPS, staff by
username, documents by title) and adds nothing. Every patient-side change goes through an action (enrolment,
opening, activation, opposition, closure, treating doctor, block, mask, opt-out, deposit…), so the demo trail
and notices are the real ones.

Two shortcuts, both outside the rules the demo tells: the directory import of practitioners and staff
accounts is plain creation (there is no action for the RPPS import), and the roster notices are dated
``CARNET_OPPOSITION_DAYS + 1`` days back so that the profiles can be opened today (L3) instead of in six weeks.
Alice's e-mail is marked verified and preferred directly, as the portal's verification step would (N2).
"""

import io
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw
from stdnum import luhn

from access_control import actions as access
from access_control.models import Block
from practitioners.models import Practitioner, Profession

from . import actions as profile_actions
from .actors import Actor
from .identifiers import make_nir
from .models import Document, Profile, User

DEMO_PASSWORD = "carnet-demo-2024!"  # noqa: S105  demo only; printed by the run command; for every demo account


@dataclass(frozen=True)
class Personas:
    alice: Profile
    bernard: Profile
    camille: Profile
    denise: Profile
    etienne: Profile
    fanny: Profile
    gerard: Profile
    claire: Practitioner
    david: Practitioner
    emma: Practitioner
    francois: Practitioner
    hugo: Practitioner
    ines: Practitioner
    gilles: Practitioner
    julien: Practitioner
    karim: User

    @property
    def alice_user(self) -> User:
        assert self.alice.user is not None  # Alice's account is activated by build_personas
        return self.alice.user

    @property
    def password(self) -> str:
        return DEMO_PASSWORD


# --- Small realistic bodies -------------------------------------------------------------------------------


def _pdf_text(value: str) -> bytes:
    encoded = value.encode("cp1252", errors="replace")
    return encoded.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def minimal_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page A4 PDF (Helvetica, WinAnsi) with a title and a few lines: small, valid, no dependency."""
    content = [b"BT /F1 16 Tf 56 780 Td (" + _pdf_text(title) + b") Tj ET"]
    y = 750
    for line in lines:
        content.append(b"BT /F1 11 Tf 56 %d Td (" % y + _pdf_text(line) + b") Tj ET")
        y -= 16
    stream = zlib.compress(b"\n".join(content))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def small_png(label: str) -> bytes:
    """A small grey 'X-ray' picture, as a patient's phone photo of an image would be."""
    image = Image.new("L", (160, 120), color=20)
    draw = ImageDraw.Draw(image)
    draw.ellipse((50, 10, 110, 110), outline=200, width=6)
    draw.line((80, 10, 80, 110), fill=160, width=4)
    draw.text((4, 4), label[:20], fill=255)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --- Builders ---------------------------------------------------------------------------------------------


def _rpps(first10: str) -> str:
    return first10 + luhn.calc_check_digit(first10)  # I2


def _staff() -> User:
    user, created = User.objects.get_or_create(
        username="karim.benali",
        defaults={
            "kind": User.Kind.STAFF,
            "is_staff": True,
            "first_name": "Karim",
            "last_name": "Benali",
            "email": "karim.benali@assurance-maladie.example",
        },
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def _practitioner(first10: str, *, profession: str, first_name: str, last_name: str, title="Dr", **fields):
    rpps = _rpps(first10)
    practitioner = Practitioner.objects.filter(rpps=rpps).first()
    if practitioner is not None:
        return practitioner
    user = User(
        username=f"ps-{rpps}",
        kind=User.Kind.PRACTITIONER,
        first_name=first_name,
        last_name=last_name,
        email=fields.get("email", ""),
    )
    user.set_password(DEMO_PASSWORD)
    user.save(force_insert=True)
    return Practitioner.objects.create(
        rpps=rpps,
        title=title,
        first_name=first_name,
        last_name=last_name,
        profession=Profession.objects.get(code=profession),
        user=user,
        **fields,
    )


def _enrol(first13: str, **fields) -> tuple[Profile, str | None]:
    return profile_actions.do_enrol_profile(nir=make_nir(first13), actor=None, **fields, durable=False)


def _open(profile: Profile) -> Profile:
    """L3 after the 42-day window; the roster notice is dated back so that the window has passed today."""
    profile.refresh_from_db()
    if profile.state != Profile.State.PENDING:
        return profile
    window = timedelta(days=settings.CARNET_OPPOSITION_DAYS + 1)
    Profile.objects.filter(pk=profile.pk).update(notice_sent_at=timezone.now() - window)
    return profile_actions.do_open_profile(profile, actor=None, durable=False)


def _code(profile: Profile, code: str | None, karim: User) -> str:
    if code is not None:
        return code
    _profile, code = profile_actions.do_reissue_provisional_code(profile, actor=karim, durable=False)
    return code


def _activate(profile: Profile, code: str | None, karim: User, *, email: str) -> User:
    profile = _open(profile)
    if profile.user is not None:
        return profile.user
    return profile_actions.do_activate_profile(
        profile,
        nir=profile.nir,
        provisional_code=_code(profile, code, karim),
        birth_date=profile.birth_date,
        password=DEMO_PASSWORD,
        email=email,
        actor=None,
        durable=False,
    )


def _deposit(
    profile: Profile, *, actor: Actor, type_code: str, title: str, body: bytes, name: str, **options
) -> Document:
    existing = Document.objects.filter(profile=profile, title=title).first()
    if existing is not None:
        return existing
    return access.do_deposit_document(
        profile,
        actor=actor,
        fileobj=io.BytesIO(body),
        document_type=type_code,
        title=title,
        original_name=name,
        **options,
        durable=False,
    )


def _report(
    profile: Profile, author, type_code: str, title: str, lines: list[str], *, days_ago: int = 0, **options
) -> Document:
    """A practitioner's PDF report, dated ``days_ago`` days before today (its care date, as on a real record)."""
    care_date = timezone.localdate() - timedelta(days=days_ago)
    body = minimal_pdf(title, [f"Patient : {profile.display_name}", f"Date : {care_date:%d/%m/%Y}", *lines])
    return _deposit(
        profile,
        actor=author,
        type_code=type_code,
        title=title,
        body=body,
        name=f"{type_code}.pdf",
        care_date=care_date,
        **options,
    )


def deposit_report(profile: Profile, author, type_code: str, title: str, lines: list[str], *, care_date: date) -> int:
    """A dated report of the demo history (``records.demo_history``); 1 if deposited, 0 if it was there already."""
    if Document.objects.filter(profile=profile, title=title).exists():
        return 0
    _report(profile, author, type_code, title, lines, days_ago=(timezone.localdate() - care_date).days)
    return 1


def build_personas() -> Personas:
    """Create (or find) the whole cast; see the module docstring.

    The cast is built in one transaction that every action joins (``durable=False``, docs/architecture.md): a
    failure leaves no half-built cast. It may run inside the caller's transaction (``seed_demo``, the tests).
    """
    with transaction.atomic():
        return _build()


def _build() -> Personas:
    karim = _staff()
    paris = {"practice_city": "PARIS", "practice_postal_code": "75011"}
    claire = _practitioner(
        "1000200011", profession="10", first_name="Claire", last_name="Dubois", specialty="Médecine générale",
        email="claire.dubois@cabinet.example", practice_address="12 rue Oberkampf", **paris,
    )  # fmt: skip
    david = _practitioner(
        "1000200022", profession="10", first_name="David", last_name="Lambert", specialty="Cardiologie",
        email="david.lambert@clinique.example", practice_address="4 avenue Parmentier", **paris,
    )  # fmt: skip
    emma = _practitioner(
        "1000200033", profession="21", title="", first_name="Emma", last_name="Girard",
        specialty="Pharmacie d'officine", email="emma.girard@pharmacie.example", **paris,
    )  # fmt: skip
    francois = _practitioner(
        "1000200044", profession="70", title="", first_name="François", last_name="Mercier",
        email="francois.mercier@kine.example", **paris,
    )  # fmt: skip
    hugo = _practitioner(
        "1000200055", profession="10", first_name="Hugo", last_name="Bernard", specialty="Médecine générale",
        email="hugo.bernard@cabinet.example", **paris,
    )  # fmt: skip
    ines = _practitioner(
        "1000200066", profession="10", first_name="Inès", last_name="Garnier", specialty="Médecine d'urgence",
        is_samu_regulator=True, email="ines.garnier@samu75.example", **paris,
    )  # fmt: skip
    gilles = _practitioner(
        "1000200077", profession="10", first_name="Gilles", last_name="Fontaine", specialty="Médecine du travail",
        is_occupational_physician=True, email="gilles.fontaine@sante-travail.example", **paris,
    )  # fmt: skip
    julien = _practitioner(
        "1000200088", profession="10", first_name="Julien", last_name="Perrin", specialty="Médecin conseil",
        is_insurer_physician=True, email="julien.perrin@assureur.example", **paris,
    )  # fmt: skip

    # Alice Martin: activated, e-mail verified and preferred, treating doctor Claire (A6), a masked psychiatric
    # synthesis (A4), Dr Hugo Bernard blocked (A5).
    alice, code = _enrol(
        "2850375114021", birth_name="MARTIN", first_names="Alice Marie", birth_date=date(1985, 3, 12), sex="F",
        address_street="18 rue des Tournelles", postal_code="75004", city="PARIS",
        email="alice.martin@courriel.example",
    )  # fmt: skip
    alice_user = _activate(alice, code, karim, email="alice.martin@courriel.example")
    Profile.objects.filter(pk=alice.pk).update(email_verified=True, preferred_channel=Profile.Channel.EMAIL)
    alice.refresh_from_db()
    access.do_declare_treating_doctor(alice, claire, actor=alice_user, durable=False)
    _report(
        alice, claire, "11502-2", "Bilan sanguin annuel",
        ["Hémoglobine : 13,8 g/dL (12,0 - 16,0)", "Glycémie à jeun : 0,92 g/L (0,70 - 1,10)",
         "Cholestérol LDL : 1,21 g/L (< 1,60)", "Conclusion : bilan normal."],
        days_ago=38,
    )  # fmt: skip
    _report(
        alice, claire, "57833-6", "Ordonnance — traitement de fond",
        ["Lévothyroxine 75 µg : 1 comprimé le matin à jeun, 3 mois.", "Renouvelable 2 fois."], days_ago=38,
    )  # fmt: skip
    _report(
        alice, claire, "PRESC-KINE", "Prescription de rééducation du genou",
        ["15 séances de rééducation du genou droit après entorse.", "Kinésithérapie en cabinet."], days_ago=96,
    )  # fmt: skip
    _report(
        alice, emma, "87273-9", "Vaccination antigrippale",
        ["Vaccin grippe saisonnière, lot GR-2024-118, deltoïde gauche.", "Aucun effet indésirable immédiat."],
        days_ago=61,
    )  # fmt: skip
    _report(
        alice, david, "11488-4", "Consultation de cardiologie",
        ["Palpitations occasionnelles. ECG de repos normal.", "Pas de traitement. Revoir si récidive."], days_ago=152,
    )  # fmt: skip
    synthesis = _report(
        alice, claire, "68599-0", "Synthèse psychiatrique",
        ["Épisode anxieux en 2021, suivi terminé.", "Pas de traitement en cours."], days_ago=1130,
    )  # fmt: skip
    access.do_mask_document(synthesis, actor=alice_user, durable=False)
    if not Block.objects.filter(profile=alice, practitioner=hugo).exists():
        access.do_block_practitioner(alice, hugo, actor=alice_user, durable=False)
    _report(
        alice,
        hugo,
        "11488-4",
        "Consultation de remplacement",
        ["Rhinopharyngite. Traitement symptomatique."],
        days_ago=23,
    )  # fmt: skip  (A5: a blocked practitioner may still deposit)
    _deposit(
        alice, actor=alice_user, type_code="DOCPAT04", title="Radio du genou (photo)",
        body=small_png("genou droit"), name="radio-genou.png",
        care_date=timezone.localdate() - timedelta(days=99),
    )  # fmt: skip

    # Bernard Petit: open, never activated, postal address only: every notice is a letter (N2).
    bernard, _code_b = _enrol(
        "1521159350134", birth_name="PETIT", first_names="Bernard Louis", birth_date=date(1952, 11, 3), sex="M",
        address_complement="Appartement 12", address_building="Résidence Les Tilleuls",
        address_street="7 rue Nationale", postal_code="59000", city="LILLE",
    )  # fmt: skip
    bernard = _open(bernard)
    _report(
        bernard, david, "11502-2", "Bilan lipidique",
        ["Cholestérol total : 2,10 g/L", "Triglycérides : 1,30 g/L"], days_ago=54,
    )  # fmt: skip

    # Camille Leroy: opposed during the window (L2).
    camille, code_c = _enrol(
        "2900769123045", birth_name="LEROY", first_names="Camille", birth_date=date(1990, 7, 21), sex="F",
        address_street="3 quai Saint-Antoine", postal_code="69002", city="LYON",
    )  # fmt: skip
    camille.refresh_from_db()
    if camille.state == Profile.State.PENDING:
        profile_actions.do_record_opposition(
            camille, actor=None, provisional_code=_code(camille, code_c, karim), durable=False
        )
        camille.refresh_from_db()

    # Denise Moreau: closed by herself, archived with her documents (L5, L6).
    denise, code_d = _enrol(
        "2470233063012", birth_name="MOREAU", first_names="Denise", birth_date=date(1947, 2, 8), sex="F",
        address_street="25 cours de l'Intendance", postal_code="33000", city="BORDEAUX",
    )  # fmt: skip
    denise.refresh_from_db()
    if denise.state != Profile.State.CLOSED:
        denise_user = _activate(denise, code_d, karim, email="denise.moreau@courriel.example")
        _report(
            denise, david, "34112-3", "Compte rendu d'hospitalisation",
            ["Hospitalisation de cinq jours pour insuffisance cardiaque.", "Retour à domicile."], days_ago=212,
        )  # fmt: skip
        _report(
            denise, david, "11490-0", "Lettre de liaison de sortie",
            ["Traitement de sortie : furosémide 40 mg/j, bisoprolol 2,5 mg/j."], days_ago=208,
        )  # fmt: skip
        profile_actions.do_close_profile(denise, actor=denise_user, reason=Profile.ClosureReason.PATIENT, durable=False)
        denise.refresh_from_db()

    # Étienne Roux: activated, opted out of emergency access (A7).
    etienne, code_e = _enrol(
        "1780913055088", birth_name="ROUX", first_names="Étienne", birth_date=date(1978, 9, 30), sex="M",
        address_street="40 La Canebière", postal_code="13001", city="MARSEILLE",
    )  # fmt: skip
    etienne_user = _activate(etienne, code_e, karim, email="etienne.roux@courriel.example")
    access.do_set_emergency_opt_out(etienne, True, actor=etienne_user, durable=False)
    _report(
        etienne, claire, "60591-5", "Synthèse médicale", ["Asthme léger intermittent.", "Allergie : pénicilline."],
        days_ago=73,
    )  # fmt: skip

    # Fanny Martin: a minor managed from Alice's account (L10), one document under the minor's secret (A9).
    fanny, code_f = _enrol(
        "2140675114033", birth_name="MARTIN", first_names="Fanny", birth_date=date(2014, 6, 20), sex="F",
        address_street="18 rue des Tournelles", postal_code="75004", city="PARIS", legal_representative=alice,
    )  # fmt: skip
    fanny = _open(fanny)
    if fanny.state == Profile.State.OPEN:
        profile_actions.do_activate_represented_profile(
            fanny,
            provisional_code=_code(fanny, code_f, karim),
            birth_date=fanny.birth_date,
            actor=alice_user,
            durable=False,
        )
    fanny.refresh_from_db()
    _report(
        fanny, claire, "11369-6", "Historique des vaccinations",
        ["DTCaP : rappel à 11 ans fait.", "ROR : 2 doses.", "HPV : 1re dose."], days_ago=140,
    )  # fmt: skip
    _report(
        fanny, claire, "11488-4", "Consultation confidentielle",
        ["Consultation à la demande de la patiente, sous le secret du mineur."],
        minors_secret=True, days_ago=17,
    )  # fmt: skip

    # Gérard Lefebvre: open, flagged high-profile by Karim (A13). Born in Corsica (NIR department 2A, I1).
    gerard, _code_g = _enrol(
        "161042A004017", birth_name="LEFEBVRE", first_names="Gérard", birth_date=date(1961, 4, 2), sex="M",
        address_street="1 cours Napoléon", postal_code="20000", city="AJACCIO",
    )  # fmt: skip
    gerard = _open(gerard)
    access.do_set_high_profile(gerard, True, actor=karim, durable=False)
    _report(gerard, david, "87273-9", "Note de vaccination", ["Vaccination COVID-19, rappel."], days_ago=45)

    for profile in (alice, bernard, camille, denise, etienne, fanny, gerard):
        profile.refresh_from_db()
    return Personas(
        alice=alice, bernard=bernard, camille=camille, denise=denise, etienne=etienne, fanny=fanny, gerard=gerard,
        claire=claire, david=david, emma=emma, francois=francois, hugo=hugo, ines=ines, gilles=gilles,
        julien=julien, karim=karim,
    )  # fmt: skip
