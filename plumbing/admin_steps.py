"""The two shapes of the staff pages outside the model forms: confirm-then-act and upload-then-report.

Both are used by the lifecycle desk (records.admin) and the practitioner directory (practitioners.admin); the
actions themselves validate, trace and notify (L9, T1), these helpers only carry the page's steps.
"""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect


def confirm_then_act(request, form: forms.Form, run: Callable[[dict], object], success, done_url: str):
    """Run a two-step staff action and return ``(confirming, response)``.

    A valid post first shows the consequences (``confirming``); the same data posted again with ``confirmed=1``
    runs it, reports and redirects to ``done_url`` (``response``). A refusal's messages are shown; nothing else is
    said.
    """
    if request.method != "POST" or not form.is_valid():
        return False, None
    if request.POST.get("confirmed") != "1":
        return True, None
    try:
        run(form.cleaned_data)
    except ValidationError as exc:  # the actions' own checks, e.g. an illegal transition (L9)
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, success)
    return False, HttpResponseRedirect(done_url)


def upload_then_report(
    request,
    form: forms.Form,
    field: str,
    load: Callable,
    format_error: type[Exception],
    summary: Callable[[Any], str],
):
    """The report of loading the file posted in ``field`` with ``load(binary_file)``, or ``None``.

    A file that cannot be read at all (``format_error``) becomes the field's error; otherwise ``summary(report)``
    is shown, as a warning when rows were rejected.
    """
    if request.method != "POST" or not form.is_valid():
        return None
    upload = form.cleaned_data[field]
    try:
        upload.open("rb")
        report = load(upload.file)
    except format_error as exc:
        form.add_error(field, str(exc))
        return None
    messages.add_message(request, messages.WARNING if report.rejected else messages.SUCCESS, summary(report))
    return report
