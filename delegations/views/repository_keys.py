"""The keys of a repository, on its owners' page: taking the root key offline, importing the
targets key of a repository initialised elsewhere, and pinning the root certificate of one.

Key material passes through here only in memory, for the one request: the root key file is
made by the worker, an imported key is sealed at once (the web process cannot open it again),
and neither passphrases nor files are ever sent back in a page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..exceptions import PortalError
from ..forms import RepositoryKeyImportForm
from ..forms.repositories import RootKeyHandoverForm, RootPinForm
from ..notary import key_file_info
from .signed_in import SignedInRequest


def _back(repository_id: int) -> HttpResponse:
    return redirect("delegations:repository_detail", repository_id)


@login_required
@require_POST
@sensitive_post_parameters("passphrase", "passphrase_again")
def root_key_request(request: SignedInRequest, repository_id: int) -> HttpResponse:
    form = RootKeyHandoverForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Type the passphrase twice.")
        return _back(repository_id)
    try:
        services.root_key_handover_request(
            repository_id=repository_id, acting_user=request.user, **form.cleaned_data
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            "The worker is writing the root key into a key file encrypted with your passphrase; "
            "this page offers it for download in a moment.",
        )
    return _back(repository_id)


@login_required
@sensitive_variables("content")
def root_key_download(request: SignedInRequest, repository_id: int) -> HttpResponse:
    try:
        filename, content = services.root_key_download(
            repository_id=repository_id, acting_user=request.user
        )
    except PortalError as error:
        messages.error(request, error.message)
        return _back(repository_id)
    response = HttpResponse(content, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def root_key_confirm(request: SignedInRequest, repository_id: int) -> HttpResponse:
    if request.POST.get("stored") != "yes":
        messages.error(request, "Tick the box once the key file and its passphrase are stored.")
        return _back(repository_id)
    try:
        handover = services.root_key_handover_confirm(
            repository_id=repository_id, acting_user=request.user
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"The portal no longer holds the root key {handover.canonical_key_id}: keep the file "
            "and its passphrase safe, offline.",
        )
    return _back(repository_id)


@login_required
@require_POST
def root_key_cancel(request: SignedInRequest, repository_id: int) -> HttpResponse:
    services.root_key_handover_cancel(repository_id=repository_id, acting_user=request.user)
    messages.success(request, "The key file was deleted; the root key stays sealed in the portal.")
    return _back(repository_id)


@login_required
@require_POST
@sensitive_post_parameters("passphrase")
@sensitive_variables("key_file", "passphrase")
def key_import(request: SignedInRequest, repository_id: int) -> HttpResponse:
    repository = selectors.repository_managed_by(request.user, repository_id)
    form = RepositoryKeyImportForm(request.POST, request.FILES)
    if not form.is_valid():
        errors = "; ".join(str(error) for errors in form.errors.values() for error in errors)
        messages.error(request, f"Nothing was imported: {errors}")
        return _back(repository.pk)
    role, key_file = form.cleaned_data["role"], form.cleaned_data["key_file"]
    passphrase = form.cleaned_data["passphrase"]
    try:
        stored = services.repository_key_import(
            repository_id=repository.pk,
            role=role,
            key_file=key_file,
            passphrase=passphrase,
            acting_user=request.user,
        )
    except PortalError as error:
        messages.error(request, f"Nothing was imported: {error.message}")
        return _back(repository.pk)
    for note in key_file_info(key_file).mismatches(gun=repository.gun, role=role):
        messages.warning(request, note)
    messages.success(request, f"Imported the {role} key {stored.canonical_key_id}.")
    return _back(repository.pk)


@login_required
@require_POST
def root_pin(request: SignedInRequest, repository_id: int) -> HttpResponse:
    repository = selectors.repository_managed_by(request.user, repository_id)
    form = RootPinForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Paste the root certificate (PEM).")
        return _back(repository.pk)
    try:
        services.repository_root_pin(
            repository_id=repository.pk,
            root_certificate_pem=form.cleaned_data["root_certificate_pem"],
            acting_user=request.user,
        )
    except PortalError as error:
        messages.error(request, f"Nothing was pinned: {error.message}")
    else:
        messages.success(request, "Root certificate pinned: reads now start from it.")
    return _back(repository.pk)
