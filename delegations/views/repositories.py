"""The repository pages: owners see and run their repositories (state, DTR team access, settings,
history); registrars register new ones, optionally creating them in DTR."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..exceptions import PortalError
from ..forms import RepositoryKeyImportForm
from ..forms.repositories import (
    RepositoryRegisterForm,
    RepositorySettingsForm,
    RootKeyHandoverForm,
    RootPinForm,
)
from ..models import KeyRole
from .signed_in import SignedInRequest

# Events shown on a repository's page; the audit log has them all.
HISTORY_EVENTS = 30


@login_required
def repository_list(request: SignedInRequest) -> HttpResponse:
    repositories = selectors.repositories_managed_by(request.user)
    registrar = selectors.is_registrar(request.user)
    if not registrar and not repositories.exists():
        raise PermissionDenied("Only repository owners and registrars see repositories here.")
    return render(
        request,
        "delegations/repository_list.html",
        {"repositories": repositories, "can_register": registrar},
    )


@login_required
def repository_register(request: SignedInRequest) -> HttpResponse:
    if not selectors.is_registrar(request.user):
        raise PermissionDenied("Only portal administrators and registrars register repositories.")
    form = RepositoryRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            repository = services.repository_register(**form.cleaned_data, acting_user=request.user)
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"Registered {repository.gun}.")
            if selectors.repositories_managed_by(request.user).filter(pk=repository.pk).exists():
                return redirect("delegations:repository_detail", repository.pk)
            return redirect("delegations:repository_list")  # owned by a group they are not in
    status = 400 if form.errors else 200
    return render(request, "delegations/repository_form.html", {"form": form}, status=status)


@login_required
def repository_detail(request: SignedInRequest, repository_id: int) -> HttpResponse:
    repository = selectors.repository_managed_by(request.user, repository_id)
    settings_form = RepositorySettingsForm(
        request.POST or None,
        initial={
            "owners_group": repository.owners_group,
            "approvals_required": repository.approvals_required,
            "max_delegation_days": repository.max_delegation_days,
            "default_delegation_days": repository.default_delegation_days,
            "review_interval_days": repository.review_interval_days,
            "review_deadline_days": repository.review_deadline_days,
            "review_unreviewed": repository.review_unreviewed,
        },
    )
    if request.method == "POST" and settings_form.is_valid():
        try:
            services.repository_update(
                repository_id=repository.pk,
                notary_url=repository.notary_url,
                acting_user=request.user,
                owners_group=settings_form.cleaned_data["owners_group"],
                approvals_required=settings_form.cleaned_data["approvals_required"],
                lifetime_days=settings_form.lifetime_days,
                review_settings=settings_form.review_settings,
            )
        except PortalError as error:
            field = error.field if error.field in settings_form.fields else None
            settings_form.add_error(field, error.message)
        else:
            messages.success(request, "Settings saved.")
            return redirect("delegations:repository_detail", repository.pk)
    keys = sorted(repository.keys.values_list("role", flat=True))
    context = {
        "repository": repository,
        "settings_form": settings_form,
        "keys_held": keys,
        "root_held": KeyRole.ROOT in keys,
        "root_key_id": selectors.root_key_id(repository),
        "handover": selectors.root_key_handover_open(repository),
        "handover_form": RootKeyHandoverForm(),
        "import_form": RepositoryKeyImportForm(),
        "pin_form": RootPinForm(),
        "handover_hours": settings.PORTAL_ROOT_KEY_HANDOVER_HOURS,
        "versions": repository.seen_versions or {},
        "grants": repository.team_access_grants.order_by("team"),
        "history": repository.audit_events.order_by("-id")[:HISTORY_EVENTS],
    }
    status = 400 if settings_form.errors else 200
    return render(request, "delegations/repository_detail.html", context, status=status)


@login_required
@require_POST
def repository_initialise(request: SignedInRequest, repository_id: int) -> HttpResponse:
    try:
        services.repository_trust_initialise_request(
            repository_id=repository_id, acting_user=request.user
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            "The worker is making the root and targets keys and publishing the first trust data; "
            "this page shows the keys once it is done.",
        )
    return redirect("delegations:repository_detail", repository_id)


@login_required
@require_POST
def team_access_remove(request: SignedInRequest, repository_id: int) -> HttpResponse:
    team = request.POST.get("team", "")
    try:
        services.team_access_remove(
            repository_id=repository_id,
            team=team,
            acting_user=request.user,
            confirmed=request.POST.get("confirm") == "yes",
        )
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Team {team} no longer has access in DTR.")
    return redirect("delegations:repository_detail", repository_id)
