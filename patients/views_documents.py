"""The patient's documents: the list, one document, the patient's own uploads and the masks.

The list has filters and pages; a document is viewed in the page (PDF and images drawn as page images on the
server, ``records.preview``; text shown as text) or downloaded; the patient's own uploads can be deleted (A10);
documents are masked one or many at a time (A4) or by whole category (A12).

Opening the document's page is the consultation of the document, traced once (T1); its page images, fetched
within that viewing (``patients.portal.grant_preview``), add nothing.

Every document comes through the access-control door (``patients.portal.patient_documents``); an id that is
not the current profile's answers 404 and is traced as a denied attempt.
"""

from typing import cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access_control.actions import (
    do_delete_own_document,
    do_deposit_document,
    do_mask_category,
    do_mask_document,
    do_unmask_category,
    do_unmask_document,
)
from access_control.models import CategoryMask, DocumentCategory
from accounts.auth import client_address
from patients.forms import DocumentFilterForm, UploadForm
from patients.portal import (
    grant_preview,
    has_preview_grant,
    issue_form_token,
    patient_document_or_404,
    patient_documents,
    portal_view,
    spend_form_token,
)
from practitioners.models import Practitioner
from records import content_types
from records.account_actions import do_trace_denied_document, do_trace_patient_read
from records.labels import localized_label
from records.models import Document, DocumentType
from records.preview import can_preview, page_response, preview_of
from records.search import matching
from records.storage import PATIENT_TYPES, RejectedFile, body_response, read_body

PAGE_SIZE = 20
INLINE_TYPES = {content_types.PDF, content_types.JPEG, content_types.PNG, content_types.TEXT}
TEXT_PREVIEW_BYTES = 200_000
EXTENSIONS = {
    content_types.PDF: "pdf",
    content_types.JPEG: "jpg",
    content_types.PNG: "png",
    content_types.TIFF: "tif",
    content_types.RTF: "rtf",
    content_types.TEXT: "txt",
    content_types.CDA_XML: "xml",
}


def category_masks(profile) -> tuple[set[int], set[int]]:
    """A12: the profile's masked categories and the document types they cover (one query)."""
    rows = CategoryMask.objects.filter(profile=profile).values_list("category_id", "category__document_types")
    categories, types = set(), set()
    for category_id, type_id in rows:
        categories.add(category_id)
        if type_id is not None:
            types.add(type_id)
    return categories, types


def masked_type_ids(profile) -> set[int]:
    return category_masks(profile)[1]


def _filtered(documents, form):
    if not form.is_valid():
        return documents
    data = form.cleaned_data
    # Narrows the door's queryset only (records.search): the search sees what the door lets through.
    documents = matching(documents, data["q"])
    if data["type"]:
        documents = documents.filter(document_type__code=data["type"])
    if data["document_class"]:
        documents = documents.filter(document_type__class_code=data["document_class"])
    if data["author"] == "patient":
        documents = documents.filter(author_kind=Document.AuthorKind.PATIENT)
    elif data["author"]:
        documents = documents.filter(author_practitioner_id=data["author"])
    if data["date_from"]:
        documents = documents.filter(care_date__gte=data["date_from"])
    if data["date_to"]:
        documents = documents.filter(care_date__lte=data["date_to"])
    return documents


@require_GET
@portal_view
def document_list(request):
    visible = patient_documents(request)
    types = list(DocumentType.objects.filter(pk__in=visible.values("document_type_id")).order_by("code"))
    authors = list(
        Practitioner.objects.filter(pk__in=visible.values("author_practitioner_id")).order_by("last_name", "pk")
    )
    form = DocumentFilterForm(request.GET or None, types=types, authors=authors)
    page = Paginator(_filtered(visible, form), PAGE_SIZE).get_page(request.GET.get("page"))
    masked_categories, masked_types = category_masks(request.current_profile)
    for document in page:
        document.category_masked = document.document_type_id in masked_types
    query = {key: value for key, value in request.GET.items() if key != "page" and value}
    profile = request.current_profile
    context = {
        "form": form,
        "page": page,
        "query": urlencode(query),
        "categories": _categories(masked_categories),
        "treating_doctor": profile.treating_doctor,
        "may_mask": profile.state == profile.State.ACTIVE,
        "back": request.get_full_path(),
    }
    return render(request, "patients/documents/list.html", context)


def _categories(masked: set[int]) -> list:
    categories = list(DocumentCategory.objects.order_by("label_fr"))
    for category in categories:
        category.is_masked = category.pk in masked  # type: ignore[attr-defined]  # for the template, not a field
    return categories


@require_GET
@portal_view
def document_detail(request, document_id):
    document = patient_document_or_404(request, document_id)
    profile = request.current_profile
    text = _text_preview(document) if document.content_type == content_types.TEXT else None
    preview = preview_of(document) if can_preview(document) else None
    if text is not None or (preview is not None and preview.pages):
        _trace_viewing(request, document)  # showing the content is opening the document (T1)
    context = {
        "document": document,
        "category_masked": document.document_type_id in masked_type_ids(profile),
        "treating_doctor": profile.treating_doctor,
        "preview": preview,
        "page_urls": [(n, reverse("patients:document_page", args=[document.pk, n])) for n in preview.page_numbers]
        if preview
        else [],
        "text": text,
        "may_mask": profile.state == profile.State.ACTIVE,
        "form_token": issue_form_token(request),
    }
    return render(request, "patients/documents/detail.html", context)


def _trace_viewing(request, document) -> None:
    """T1: one entry for the viewing; the page images fetched within it add none (``grant_preview``)."""
    do_trace_patient_read(
        request.current_profile, document, actor=request.user, download=False, client_address=client_address(request)
    )
    grant_preview(request, document.pk)


def _text_preview(document) -> str:
    collected = bytearray()
    for chunk in read_body(document):
        collected.extend(chunk)
        if len(collected) >= TEXT_PREVIEW_BYTES:
            break
    raw = bytes(collected[:TEXT_PREVIEW_BYTES])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _file_name(document) -> str:
    extension = EXTENSIONS.get(document.content_type, "bin")
    return f"carnet-document-{document.pk}.{extension}"


def _body_response(request, document, *, download: bool) -> StreamingHttpResponse:
    do_trace_patient_read(
        request.current_profile,
        document,
        actor=request.user,
        download=download,
        client_address=client_address(request),
    )
    return body_response(document, as_attachment=download, filename=_file_name(document))


@require_GET
@portal_view
@xframe_options_sameorigin  # the PDF viewer of the detail page frames it (CSP frame-ancestors 'self')
def document_inline(request, document_id):
    document = patient_document_or_404(request, document_id)
    return _body_response(request, document, download=document.content_type not in INLINE_TYPES)


@require_GET
@portal_view
def document_page(request, document_id, number):
    """One page of the preview as an image (``no-store``).

    Within the viewing its document page opened, it adds no trail entry; fetched on its own, it is a new
    opening of the document, traced (T1). The door is asked every time.
    """
    document = patient_document_or_404(request, document_id)
    if not has_preview_grant(request, document.pk):
        _trace_viewing(request, document)
    return page_response(document, number)


@require_GET
@portal_view
def document_download(request, document_id):
    document = patient_document_or_404(request, document_id)
    return _body_response(request, document, download=True)


def _back(request, default: str) -> str:
    candidate = request.POST.get("back")
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return candidate
    return default


@require_POST
@portal_view
def mask_documents(request):
    """A4: mask or unmask the selected documents (one or many). Idempotent: a replay changes nothing."""
    mask = request.POST.get("operation") == "mask"
    wanted = {value for value in request.POST.getlist("documents") if value.isdigit()}
    back = _back(request, reverse("patients:documents"))
    if not wanted:
        messages.error(request, _("Cochez au moins un document."))
        return redirect(back)
    found = list(patient_documents(request).filter(pk__in=wanted))
    for missing in wanted - {str(document.pk) for document in found}:
        do_trace_denied_document(
            request.current_profile, missing, actor=request.user, client_address=client_address(request)
        )
    action = do_mask_document if mask else do_unmask_document
    done = 0
    try:
        for document in found:
            action(document, actor=request.user)
            done += 1
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    if done:
        text = (
            ngettext("%(count)d document masqué.", "%(count)d documents masqués.", done)
            if mask
            else ngettext("%(count)d document démasqué.", "%(count)d documents démasqués.", done)
        )
        messages.success(request, text % {"count": done})
    if len(found) < len(wanted):
        messages.error(request, _("Certains documents sélectionnés sont introuvables."))
    return redirect(back)


@require_POST
@portal_view
def mask_category(request):
    """A12: mask or unmask a whole category, for present and future documents."""
    category = get_object_or_404(DocumentCategory, code=request.POST.get("category", ""))
    try:
        if request.POST.get("operation") == "mask":
            do_mask_category(request.current_profile, category, actor=request.user)
            messages.success(
                request,
                _("La catégorie « %(label)s » est masquée, y compris pour les documents à venir.")
                % {"label": localized_label(category)},
            )
        else:
            do_unmask_category(request.current_profile, category, actor=request.user)
            messages.success(
                request, _("La catégorie « %(label)s » n'est plus masquée.") % {"label": localized_label(category)}
            )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(_back(request, reverse("patients:documents")))


@require_http_methods(["GET", "POST"])
@portal_view
def upload(request):
    """A10: deposit one of one's own documents; the type and size are checked from the bytes."""
    max_bytes = settings.CARNET_PATIENT_UPLOAD_MAX_BYTES
    formats = content_types.describe(PATIENT_TYPES)
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES, max_bytes=max_bytes, formats=formats)
        if not spend_form_token(request, request.POST.get("form_token")):
            messages.info(
                request, _("Ce formulaire a déjà été envoyé : le document n'a pas été déposé une seconde fois.")
            )
            return redirect("patients:documents")
        if form.is_valid():
            data = form.cleaned_data
            try:
                document = do_deposit_document(
                    request.current_profile,
                    actor=request.user,
                    fileobj=data["file"],
                    document_type=data["document_type"],
                    title=data["title"],
                    care_date=data["care_date"],
                    original_name=data["file"].name,
                )
            except RejectedFile as exc:
                form.add_error("file", exc)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Le document « %(title)s » a été ajouté.") % {"title": document.title})
                return redirect("patients:document", document_id=document.pk)
        data = cast(QueryDict, form.data).copy()  # bound to request.POST
        data["form_token"] = issue_form_token(request)  # a corrected form may be sent once more
        form.data = data
    else:
        form = UploadForm(initial={"form_token": issue_form_token(request)}, max_bytes=max_bytes, formats=formats)
    return render(request, "patients/documents/upload.html", {"form": form})


@require_POST
@portal_view
def delete_document(request, document_id):
    """A10: delete one's own upload. A replay finds no document (404), so nothing is deleted twice."""
    if not spend_form_token(request, request.POST.get("form_token")):
        messages.info(request, _("Ce formulaire a déjà été envoyé."))
        return redirect("patients:documents")
    document = patient_document_or_404(request, document_id)
    try:
        do_delete_own_document(document, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("patients:document", document_id=document.pk)
    messages.success(request, _("Le document a été supprimé."))
    return redirect("patients:documents")
