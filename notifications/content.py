"""What each notice says (N6, N7): one function per kind, building a ``Message`` that every channel renders.

The wording lives here once, in French source strings wrapped in gettext, rendered in the recipient's
language (``translation.override``). N6: a message names who accessed (name, profession), when, in which
access mode, and how to restrict access; it never carries clinical content (no document title, type or
diagnosis). The accesses listed are the trail entries the notice carries (the actor's name and profession
are snapshots taken when the trail entry was written, T1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from .models import Notice

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from records.models import Profile

# Where the portal lets a patient act on a notice (relative to CARNET_PUBLIC_URL).
PORTAL_PATHS = {
    "home": "/",
    "trail": "/trace/",
    "restrict": "/confidentialite/",
    "activate": "/activer/",
    "oppose": "/opposition/",
    "recover": "/connexion/oubli/courrier/code/",
}
# The treating doctor's view of one patient's trail in the practitioner portal (practitioners:patient_trail): the
# emergency notice links there; the page names the patient only after sign-in.
PRO_PATIENT_TRAIL_PATH = "/pro/mes-patients/{profile_id}/trace/"


@dataclass(frozen=True)
class Access:
    who: str
    profession: str
    at: datetime
    when: str
    mode: str
    emergency: bool


@dataclass
class Message:
    """A notice ready to render: every text already translated into ``language``."""

    kind: str
    language: str
    reference: str
    date: str
    subject: str
    greeting: str
    recipient_name: str
    paragraphs: list[str] = field(default_factory=list)
    accesses: list[Access] = field(default_factory=list)
    access_heading: str = ""
    code: str = ""
    code_label: str = ""
    after: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    signature: str = ""
    footer: str = ""


def notice_reference(notice: Notice) -> str:
    """The reference printed on the message and asked for by the helpline: day and notice id, no patient data."""
    return f"C{timezone.localtime(notice.created_at):%Y%m%d}-{notice.pk:08d}"


def recipient_language(notice: Notice) -> str:
    if notice.recipient_practitioner is not None:
        user = notice.recipient_practitioner.user
        language = user.preferred_language if user is not None else settings.LANGUAGE_CODE
    else:
        language = notice.profile.preferred_language
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def _url(name: str) -> str:
    return settings.CARNET_PUBLIC_URL.rstrip("/") + PORTAL_PATHS[name]


def format_when(moment: datetime) -> str:
    """A moment as notices show it (local date and time, the active language's format)."""
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def format_day(moment: datetime) -> str:
    """A day as notices show it (local date, the active language's format)."""
    return date_format(timezone.localtime(moment), "DATE_FORMAT")


def _accesses(notice: Notice, language: str) -> list[Access]:
    from access_control.models import AccessMode

    accesses = []
    for entry in sorted(notice.trail_entries.all(), key=lambda e: (e.at, e.pk)):
        profession = entry.actor_profession
        practitioner = entry.actor_practitioner
        if language != "fr" and practitioner is not None:
            profession = practitioner.profession.label(language)
        accesses.append(
            Access(
                who=entry.actor_name,
                profession=profession,
                at=entry.at,
                when=format_when(entry.at),
                mode=str(AccessMode(entry.mode).label),
                emergency=entry.mode != AccessMode.NORMAL,
            )
        )
    if not accesses and notice.practitioner is not None:
        # A caller that passed no trail entry: the notice itself says who and when.
        practitioner = notice.practitioner
        mode = AccessMode.BRIS_DE_GLACE if notice.kind == Notice.Kind.EMERGENCY else AccessMode.NORMAL
        accesses.append(
            Access(
                who=practitioner.display_name,
                profession=practitioner.profession.label(language),
                at=notice.created_at,
                when=format_when(notice.created_at),
                mode=str(mode.label),
                emergency=mode != AccessMode.NORMAL,
            )
        )
    return accesses


def _patient_greeting(profile: Profile) -> str:
    if profile.sex == profile.Sex.FEMALE:
        return _("Madame,")
    return _("Monsieur,")


def _restrict_paragraph(profile: Profile) -> str:
    """How to restrict access (N6): mask or block from the portal once activated, else activate first (L4)."""
    if profile.state == profile.State.ACTIVE:
        return _(
            "Si vous ne connaissez pas ce professionnel, ou si vous ne souhaitez pas qu'il accède à votre "
            "dossier, vous pouvez le bloquer ou masquer des documents depuis votre espace : %(url)s"
        ) % {"url": _url("restrict")}
    return _(
        "Pour bloquer un professionnel ou masquer des documents, activez votre profil avec votre numéro de "
        "sécurité sociale et votre code provisoire sur %(url)s, ou contactez votre caisse d'Assurance "
        "Maladie en indiquant la référence de ce courrier."
    ) % {"url": _url("activate")}


def write_consultation(notice: Notice, message: Message) -> None:
    """Fill in the text of a consultation notice (N1); the accesses are listed by ``build_message``."""
    profile = notice.profile
    message.subject = _("Votre dossier médical a été consulté")
    message.paragraphs.append(_("Un professionnel de santé a consulté votre dossier médical Carnet."))
    message.access_heading = _("Accès à votre dossier")
    message.after.append(_restrict_paragraph(profile))
    message.after.append(
        _("Vous pouvez consulter à tout moment la liste des accès à votre dossier : %(url)s") % {"url": _url("trail")}
    )


def _emergency(notice: Notice, message: Message) -> None:
    profile = notice.profile
    message.access_heading = _("Accès en urgence")
    doctor = notice.recipient_practitioner
    if doctor is not None:
        message.recipient_name = doctor.display_name
        message.greeting = _("Docteur %(name)s,") % {"name": doctor.last_name} if doctor.title else _("Bonjour,")
        message.subject = _("Accès en urgence au dossier d'un de vos patients")
        # No patient identity in an e-mail (plain SMTP): the link opens the patient's trail in the practitioner
        # portal, which names the patient once the doctor has signed in (A6).
        message.paragraphs.append(
            _(
                "Le dossier médical Carnet d'un(e) de vos patient(e)s a été ouvert en mode urgence. Vous en êtes "
                "informé(e) en tant que médecin traitant."
            )
        )
        trail = settings.CARNET_PUBLIC_URL.rstrip("/") + PRO_PATIENT_TRAIL_PATH.format(profile_id=profile.pk)
        message.after.append(
            _(
                "Connectez-vous à votre espace professionnel pour savoir de quel patient il s'agit et voir les "
                "accès à son dossier : %(url)s"
            )
            % {"url": trail}
        )
        return
    message.subject = _("Accès en urgence à votre dossier médical")
    message.paragraphs.append(
        _(
            "Votre dossier médical Carnet a été ouvert en mode urgence. Les documents que vous avez masqués "
            "sont restés cachés. Votre médecin traitant en est également informé."
        )
    )
    message.after.append(_restrict_paragraph(profile))
    if profile.state == profile.State.ACTIVE:
        message.after.append(
            _("Vous pouvez aussi refuser à l'avenir tout accès en urgence depuis votre espace : %(url)s")
            % {"url": _url("restrict")}
        )


def _pre_opening(notice: Notice, message: Message) -> None:
    from records.crypto import unseal

    profile = notice.profile
    if profile.state == profile.State.ACTIVE:
        _recovery_code(notice, message)
        return
    sent = profile.notice_sent_at or notice.created_at
    deadline = sent + timedelta(days=settings.CARNET_OPPOSITION_DAYS)
    message.subject = _("Votre profil Carnet va être créé")
    message.paragraphs.append(
        _(
            "L'Assurance Maladie crée pour vous un profil Carnet, votre espace santé, où les professionnels "
            "qui vous soignent pourront déposer et consulter vos documents médicaux."
        )
    )
    if notice.sealed_payload:
        message.code = unseal(bytes(notice.sealed_payload)).decode("utf-8")  # a BinaryField may be a memoryview
        message.code_label = _("Votre code provisoire")
    expiry = profile.provisional_code_expires_at
    if timezone.localdate(deadline) >= timezone.localdate():
        message.after.append(
            _(
                "Vous pouvez vous opposer à sa création jusqu'au %(deadline)s (%(days)s jours) sur %(url)s, avec "
                "votre numéro de sécurité sociale et ce code. Sans opposition de votre part, votre profil sera "
                "ouvert automatiquement à cette date."
            )
            % {"deadline": format_day(deadline), "days": settings.CARNET_OPPOSITION_DAYS, "url": _url("oppose")}
        )
    else:
        # L2-L3: the window has closed (a code re-issued after the opening, or a notice sent late): the letter
        # is dated today, so it must not offer an opposition until a day already past.
        message.after.append(_("Le délai d'opposition est écoulé : votre profil est ouvert."))
    message.after.append(
        _("Vous pouvez aussi l'activer dès maintenant sur %(url)s pour choisir qui y accède.")
        % {"url": _url("activate")}
    )
    if expiry is not None:
        message.after.append(_("Ce code est valable jusqu'au %(date)s.") % {"date": format_day(expiry)})


def _recovery_code(notice: Notice, message: Message) -> None:
    """The provisional code an active profile's holder asked for to get back into their space."""
    from records.crypto import unseal

    message.subject = _("Votre code pour retrouver l'accès à votre espace Carnet")
    message.paragraphs.append(
        _(
            "Vous avez demandé à retrouver l'accès à votre espace Carnet. Avec le code ci-dessous, votre date de "
            "naissance et votre numéro de sécurité sociale, choisissez un nouveau mot de passe sur %(url)s."
        )
        % {"url": _url("recover")}
    )
    if notice.sealed_payload:
        message.code = unseal(bytes(notice.sealed_payload)).decode("utf-8")  # a BinaryField may be a memoryview
        message.code_label = _("Votre code provisoire")
    message.after.append(
        _(
            "Votre application d'authentification et vos codes de secours seront alors désactivés : vous vous "
            "connecterez avec un code envoyé par courriel. Si vous n'avez rien demandé, ignorez ce courrier."
        )
    )
    expiry = notice.profile.provisional_code_expires_at
    if expiry is not None:
        message.after.append(_("Ce code est valable jusqu'au %(date)s.") % {"date": format_day(expiry)})


def _opposition(notice: Notice, message: Message) -> None:
    message.subject = _("Votre opposition a été enregistrée")
    message.paragraphs.append(
        _(
            "Votre opposition à la création de votre profil Carnet a été enregistrée le %(date)s. Aucun "
            "document n'y sera déposé et aucun professionnel ne pourra y accéder."
        )
        % {"date": format_day(notice.created_at)}
    )


def _hold_reminder(notice: Notice, message: Message) -> None:
    # A8: nothing about the document itself, only an invitation to see a practitioner.
    message.subject = _("Votre dossier médical a été mis à jour")
    message.paragraphs.append(
        _(
            "Votre dossier médical Carnet a été mis à jour. Nous vous invitons à prendre rendez-vous avec un "
            "professionnel de santé pour en parler."
        )
    )


def _suspension(notice: Notice, message: Message) -> None:
    message.subject = _("Votre profil Carnet est suspendu")
    message.paragraphs.append(
        _(
            "Votre profil Carnet a été suspendu le %(date)s par l'Assurance Maladie : plus aucun professionnel "
            "ne peut y accéder. Sans contestation de votre part, il sera clôturé au bout de %(days)s jours."
        )
        % {"date": format_day(notice.created_at), "days": settings.CARNET_SUSPENSION_CLOSE_DAYS}
    )
    message.after.append(
        _("Pour contester, contactez votre caisse d'Assurance Maladie en indiquant la référence de ce message.")
    )


def _closure(notice: Notice, message: Message) -> None:
    message.subject = _("Votre profil Carnet est clôturé")
    message.paragraphs.append(
        _(
            "Votre profil Carnet a été clôturé le %(date)s. Plus aucun professionnel ne peut y accéder ni y "
            "déposer de document. Vos données sont archivées pendant %(years)s ans, puis supprimées."
        )
        % {"date": format_day(notice.created_at), "years": settings.CARNET_ARCHIVE_YEARS}
    )
    message.after.append(
        _(
            "Vous pouvez demander sa réouverture, ou une suppression anticipée de vos données, auprès de votre "
            "caisse d'Assurance Maladie."
        )
    )


def _reopening(notice: Notice, message: Message) -> None:
    message.subject = _("Votre profil Carnet est rouvert")
    message.paragraphs.append(
        _("Votre profil Carnet a été rouvert le %(date)s : vos documents et leur historique sont restaurés.")
        % {"date": format_day(notice.created_at)}
    )


def _deletion_done(notice: Notice, message: Message) -> None:
    # Sent when the early deletion is requested (L5): the purge follows within the legal delay, and the
    # profile can be re-opened until then.
    message.subject = _("Votre demande de suppression de vos données Carnet")
    deadline = notice.profile.archive_until or notice.created_at
    message.paragraphs.append(
        _(
            "Comme vous l'avez demandé, les données de votre profil Carnet seront définitivement supprimées "
            "au plus tard le %(date)s. D'ici là, vous pouvez encore rouvrir votre profil."
        )
        % {"date": format_day(deadline)}
    )


def _new_document(notice: Notice, message: Message) -> None:
    # N6: who and when only, never the document's title or type.
    message.subject = _("Un nouveau document a été ajouté à votre dossier")
    message.paragraphs.append(_("Un nouveau document a été ajouté à votre dossier médical Carnet."))
    message.access_heading = _("Dépôt")
    message.after.append(_("Vous pouvez le consulter dans votre espace : %(url)s") % {"url": _url("home")})


_BUILDERS: dict[str, Callable[[Notice, Message], None]] = {
    Notice.Kind.CONSULTATION: write_consultation,
    Notice.Kind.EMERGENCY: _emergency,
    Notice.Kind.PRE_OPENING: _pre_opening,
    Notice.Kind.OPPOSITION: _opposition,
    Notice.Kind.HOLD_REMINDER: _hold_reminder,
    Notice.Kind.SUSPENSION: _suspension,
    Notice.Kind.CLOSURE: _closure,
    Notice.Kind.REOPENING: _reopening,
    Notice.Kind.DELETION_DONE: _deletion_done,
    Notice.Kind.NEW_DOCUMENT: _new_document,
}

# Kinds whose message lists the accesses the notice carries.
_LISTS_ACCESSES = {Notice.Kind.CONSULTATION, Notice.Kind.EMERGENCY, Notice.Kind.NEW_DOCUMENT}


def build_message(notice: Notice) -> Message:
    """The notice's message in its recipient's language. ``notice`` should come from ``notices_for_delivery``."""
    language = recipient_language(notice)
    with translation.override(language):
        profile = notice.profile
        message = Message(
            kind=notice.kind,
            language=language,
            reference=notice_reference(notice),
            date=format_day(timezone.now()),
            subject="",
            greeting=_patient_greeting(profile),
            recipient_name=profile.display_name,
            signature=_("L'équipe Carnet — Assurance Maladie"),
            footer=_(
                "Ce message ne contient aucune information médicale. Ne répondez pas à ce message : pour toute "
                "question, rendez-vous sur %(url)s."
            )
            % {"url": _url("home")},
        )
        _BUILDERS[notice.kind](notice, message)
        if notice.kind in _LISTS_ACCESSES:
            message.accesses = _accesses(notice, language)
    return message


def notices_for_delivery() -> QuerySet[Notice]:
    """Notices with everything ``build_message`` reads, in two queries (the notices, their trail entries)."""
    from access_control.models import TrailEntry  # here: access_control imports the outbox, which imports this

    return Notice.objects.select_related(
        "profile",
        "practitioner__profession",
        "recipient_practitioner__user",
    ).prefetch_related(
        # The entries' actors joined, not prefetched level by level: one query where there were three.
        Prefetch("trail_entries", queryset=TrailEntry.objects.select_related("actor_practitioner__profession"))
    )
