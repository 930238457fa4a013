"""IHE MHD ITI-65 Provide Document Bundle: a FHIR ``transaction`` Bundle read into kernel deposits.

The Bundle carries one SubmissionSet ``List``, one or more ``DocumentReference`` (``POST``) and their ``Binary``
(``POST``, referenced by ``content.attachment.url``; inline ``attachment.data`` is taken too). A
``DocumentReference`` with ``relatesTo`` ``replaces`` names the document it replaces (``DocumentReference/<id>``,
or the ``fullUrl`` of a ``PUT``/``PATCH`` entry of that document in the same Bundle, as the ANS PDSm example
does); such entries only point at the replaced document, which the replacement supersedes.

Everything is checked here, before anything is stored, and every failure is a 400 saying what is wrong: the
kernel action (``do_deposit_documents``) then deposits all documents or none. Carnet keeps no submission set:
the List is checked (one patient, lists every document) and answered ``200 OK`` without a location.
"""

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

from access_control.actions import Submission
from fhir_server import resources

MAX_ENTRIES = 100
LIST_TYPE_SYSTEMS = frozenset(
    {
        "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
        "http://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
        "http://ihe.net/fhir/CodeSystem/MHDlistTypes",
    }
)


class BadBundle(exceptions.APIException):
    status_code = 400
    default_code = "invalid_bundle"


def bad(message) -> BadBundle:
    return BadBundle(detail=message, code="invalid_bundle")


@dataclass
class Deposit:
    """A checked ITI-65 Bundle: whom it is about, what to deposit, and how to answer each entry."""

    subject: str
    submissions: list[Submission] = field(default_factory=list)
    # Per request entry, in order: ("document", index in submissions) or ("binary", index), ("list", None),
    # ("replaced", document id).
    answers: list[tuple[str, Any]] = field(default_factory=list)


def _dict(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise bad(_("Élément mal formé dans le Bundle : %(what)s.") % {"what": what})
    return value


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(_("Élément mal formé dans le Bundle : %(what)s.") % {"what": what})
    return value


def _text(value: Any, what: str, limit: int = 200) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise bad(_("Élément mal formé dans le Bundle : %(what)s.") % {"what": what})
    return value


def _base64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(_text(value, what, limit=10**9), validate=True)
    except (binascii.Error, ValueError):
        raise bad(_("Contenu base64 invalide : %(what)s.") % {"what": what}) from None


def _target_id(reference: str) -> int | None:
    """The document id of ``DocumentReference/<id>`` (relative or absolute), or None."""
    kind, _sep, tail = reference.rstrip("/").rpartition("/")
    if not kind.endswith("DocumentReference") or not tail.isdigit() or int(tail) > 2**63 - 1:
        return None
    return int(tail)


def read_bundle(body: Any) -> Deposit:
    """Check an ITI-65 Bundle completely and turn it into kernel submissions (or a 400 saying why)."""
    bundle = _dict(body, "Bundle")
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise bad(_("Le corps doit être un Bundle de type transaction (IHE ITI-65)."))
    entries = _list(bundle.get("entry"), "entry")
    if not entries:
        raise bad(_("Le Bundle ne contient aucune entrée."))
    if len(entries) > MAX_ENTRIES:
        raise bad(_("Le Bundle contient trop d'entrées (%(max)d au plus).") % {"max": MAX_ENTRIES})
    by_url: dict[str, tuple[int, dict, dict]] = {}
    for position, raw in enumerate(entries):
        entry = _dict(raw, f"entry[{position}]")
        resource = _dict(entry.get("resource"), f"entry[{position}].resource")
        request = _dict(entry.get("request"), f"entry[{position}].request")
        full_url = _text(entry.get("fullUrl"), f"entry[{position}].fullUrl", limit=500)
        if full_url:
            if full_url in by_url:
                raise bad(_("Deux entrées du Bundle ont le même fullUrl."))
            by_url[full_url] = (position, resource, request)
    replaced_entries = _replaced_entries(entries)
    lists = []
    documents = []
    binaries_used: dict[str, int] = {}
    deposit = Deposit(subject="")
    answers: list[tuple[str, Any]] = [("", None)] * len(entries)
    for position, entry in enumerate(entries):
        resource, request = entry["resource"], entry["request"]
        kind = resource.get("resourceType")
        method = _text(request.get("method"), "request.method", limit=10).upper()
        if position in replaced_entries:
            answers[position] = ("replaced", replaced_entries[position])
        elif kind == "List" and method == "POST":
            lists.append(resource)
            answers[position] = ("list", None)
        elif kind == "DocumentReference" and method == "POST":
            documents.append((position, resource))
        elif kind == "Binary" and method == "POST":
            answers[position] = ("binary", None)  # filled in when a DocumentReference uses it
        elif kind == "Patient":
            raise bad(
                _("Un Bundle ITI-65 ne crée pas de patient : désignez-le par Patient/<id> (recherche de patient).")
            )
        else:
            raise bad(
                _("Entrée non prise en charge dans un Bundle ITI-65 : %(method)s %(type)s.")
                % {"method": method or "?", "type": str(kind)[:40]}
            )
    if len(lists) != 1:
        raise bad(_("Un Bundle ITI-65 contient exactement un lot de soumission (List)."))
    submission_set = lists[0]
    if not _is_submission_set(submission_set):
        raise bad(_("La List doit être un lot de soumission (code submissionset)."))
    deposit.subject = _subject(submission_set, "List")
    if not documents:
        raise bad(_("Le Bundle ne contient aucun DocumentReference à déposer."))
    listed = {
        _text(_dict(_dict(item, "List.entry").get("item") or {}, "List.entry.item").get("reference"), "item", 500)
        for item in _list(submission_set.get("entry"), "List.entry")
    }
    for position, resource in documents:
        if _subject(resource, "DocumentReference") != deposit.subject:
            raise bad(_("Tous les documents d'un Bundle concernent le patient du lot de soumission."))
        full_url = entries[position].get("fullUrl") or ""
        if full_url not in listed:
            raise bad(_("Le lot de soumission (List) doit lister chaque DocumentReference du Bundle."))
        submission, binary_url = document_submission(resource, by_url, replaced_entries)
        if binary_url is not None:
            if binary_url in binaries_used:
                raise bad(_("Deux DocumentReference désignent le même Binary."))
            binaries_used[binary_url] = len(deposit.submissions)
        answers[position] = ("document", len(deposit.submissions))
        deposit.submissions.append(submission)
    for url, index in binaries_used.items():
        answers[by_url[url][0]] = ("binary", index)
    if any(kind == "binary" and index is None for kind, index in answers):
        raise bad(_("Un Binary du Bundle n'est désigné par aucun DocumentReference."))
    deposit.answers = answers
    return deposit


def _is_submission_set(resource: dict) -> bool:
    for coding in _list(_dict(resource.get("code") or {}, "List.code").get("coding"), "List.code.coding"):
        coding = _dict(coding, "List.code.coding")
        if coding.get("code") == "submissionset" and coding.get("system") in LIST_TYPE_SYSTEMS:
            return True
    return False


def _subject(resource: dict, what: str) -> str:
    reference = _text(_dict(resource.get("subject") or {}, f"{what}.subject").get("reference"), "subject", 500)
    kind, _sep, patient_id = reference.rstrip("/").rpartition("/")
    if not kind.endswith("Patient") or not patient_id:
        raise bad(_("%(what)s.subject doit désigner un Patient (Patient/<id>).") % {"what": what})
    return patient_id


def _replaced_entries(entries: list) -> dict[int, int]:
    """Positions of ``PUT``/``PATCH DocumentReference/<id>`` entries, with the document id each names."""
    found = {}
    for position, entry in enumerate(entries):
        request = entry["request"]
        method = _text(request.get("method"), "request.method", limit=10).upper()
        if method in ("PUT", "PATCH"):
            target = _target_id(_text(request.get("url"), "request.url", limit=500))
            if target is None:
                raise bad(_("Seul un DocumentReference existant (DocumentReference/<id>) peut être remplacé."))
            if method == "PATCH" and not patch_supersedes(entry["resource"]):
                raise bad(_("Un PATCH dans un Bundle ITI-65 ne peut que passer le statut à superseded."))
            found[position] = target
    return found


def patch_supersedes(resource: dict) -> bool:
    """A FHIRPath Patch (Parameters) replacing DocumentReference.status with superseded, and nothing else."""
    if resource.get("resourceType") != "Parameters":
        return False
    operations = _list(resource.get("parameter"), "Parameters.parameter")
    if not operations:
        return False
    for operation in operations:
        operation = _dict(operation, "Parameters.parameter")
        parts = {
            _dict(part, "part").get("name"): part for part in _list(operation.get("part"), "Parameters.parameter.part")
        }
        if (
            operation.get("name") != "operation"
            or parts.get("type", {}).get("valueCode") != "replace"
            or parts.get("path", {}).get("valueString") != "DocumentReference.status"
            or (parts.get("value", {}).get("valueCode") or parts.get("value", {}).get("valueString")) != "superseded"
        ):
            return False
    return True


def _coding_codes(concept: Any, what: str) -> list[tuple[str, str]]:
    concept = _dict(concept or {}, what)
    return [
        (_text(c.get("system"), f"{what}.system", 500), _text(c.get("code"), f"{what}.code", 64))
        for c in (_dict(c, what) for c in _list(concept.get("coding"), f"{what}.coding"))
    ]


def _setting(context: dict, name: str) -> str:
    codes = _coding_codes(context.get(name), f"context.{name}")
    if not codes:
        return ""
    system, code = codes[0]
    if system not in resources.SECTOR_SYSTEMS | {resources.NON_PS_SYSTEM} or not code or len(code) > 16:
        raise bad(
            _("context.%(name)s : un code TRE_R02 (%(sector)s) ou TRE_A00 (%(non_ps)s) est attendu.")
            % {"name": name, "sector": resources.SECTOR_SYSTEM, "non_ps": resources.NON_PS_SYSTEM}
        )
    return code


def document_submission(
    resource: dict, by_url: dict, replaced_entries: dict[int, int]
) -> tuple[Submission, str | None]:
    """One DocumentReference as a kernel submission, with the fullUrl of the Binary it uses (if any)."""
    if resource.get("status", "current") != "current":
        raise bad(_("Un document déposé a le statut current."))
    types = [code for _system, code in _coding_codes(resource.get("type"), "type") if code]
    if not types:
        raise bad(_("DocumentReference.type.coding est requis."))
    contents = _list(resource.get("content"), "content")
    if len(contents) != 1:
        raise bad(_("Un DocumentReference déposé a exactement un contenu (content)."))
    attachment = _dict(_dict(contents[0], "content").get("attachment"), "content.attachment")
    url = _text(attachment.get("url"), "attachment.url", limit=500)
    binary_url = None
    if attachment.get("data") is not None:
        data = _base64(attachment.get("data"), "attachment.data")
    else:
        target = by_url.get(url)
        if target is None or target[1].get("resourceType") != "Binary":
            raise bad(_("content.attachment.url doit désigner un Binary du Bundle (ou attachment.data)."))
        data = _base64(target[1].get("data"), "Binary.data")
        binary_url = url
    if not data:
        raise bad(_("Le document est vide."))
    if attachment.get("size") is not None and attachment.get("size") != len(data):
        raise bad(_("attachment.size ne correspond pas au contenu."))
    if (
        attachment.get("hash") is not None
        and _base64(attachment.get("hash"), "attachment.hash") != hashlib.sha1(data, usedforsecurity=False).digest()
    ):
        raise bad(_("attachment.hash (SHA-1) ne correspond pas au contenu."))
    labels = _security_labels(resource)
    context = _dict(resource.get("context") or {}, "context")
    care_date = None
    start = _text(_dict(context.get("period") or {}, "context.period").get("start"), "period.start", 40)
    if start:
        try:
            care_date = date.fromisoformat(start[:10])
        except ValueError:
            raise bad(_("context.period.start doit être une date (AAAA-MM-JJ).")) from None
    master = _dict(resource.get("masterIdentifier") or {}, "masterIdentifier")
    unique_id = _text(master.get("value"), "masterIdentifier.value", limit=128).strip()
    replaces = None
    for relation in _list(resource.get("relatesTo"), "relatesTo"):
        relation = _dict(relation, "relatesTo")
        if relation.get("code") != "replaces" or replaces is not None:
            raise bad(_("relatesTo : seul un remplacement (replaces) d'un document est pris en charge."))
        reference = _text(_dict(relation.get("target"), "relatesTo.target").get("reference"), "target", 500)
        replaces = _target_id(reference)
        if replaces is None and reference in by_url:
            replaces = replaced_entries.get(by_url[reference][0])
        if replaces is None:
            raise bad(_("relatesTo.target doit désigner un DocumentReference existant."))
    title = _text(resource.get("description"), "description", 1000) or _text(attachment.get("title"), "title", 1000)
    submission = Submission(
        fileobj=io.BytesIO(data),
        document_type=types[0],
        title=title[:200],
        care_date=care_date,
        original_name=_text(attachment.get("title"), "title", 1000)[:200],
        hold=resources.HOLD_CODE in labels,
        minors_secret=resources.MINORS_SECRET_CODE in labels,
        unique_id=unique_id,
        facility_type=_setting(context, "facilityType"),
        practice_setting=_setting(context, "practiceSetting"),
        replaces=replaces,
    )
    return submission, binary_url


def _security_labels(resource: dict) -> set[str]:
    """The TRE_A07 codes asked (hold, minor's secret); a confidentiality other than N is refused, not ignored."""
    codes = set()
    for label in _list(resource.get("securityLabel"), "securityLabel"):
        for system, code in _coding_codes(label, "securityLabel"):
            if system == resources.TRE_A07_SYSTEM and code in (resources.HOLD_CODE, resources.MINORS_SECRET_CODE):
                codes.add(code)
            elif system == resources.CONFIDENTIALITY_SYSTEM and code == resources.NORMAL_CONFIDENTIALITY:
                continue
            else:
                raise bad(
                    _(
                        "securityLabel non pris en charge : %(code)s. Carnet applique ses propres règles de "
                        "visibilité : N, et les codes TRE_A07 INVISIBLE_PATIENT ou INVISIBLE_REPRESENTANTS_LEGAUX."
                    )
                    % {"code": code[:64]}
                )
    return codes
