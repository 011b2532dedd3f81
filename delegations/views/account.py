"""What each person controls of their own access: their API tokens (made with a name and an
expiry, shown once, revoked at will) and their sessions (ended everywhere at once)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import selectors, services
from ..exceptions import PortalError
from ..forms.tokens import TokenForm
from .signed_in import SignedInRequest


@login_required
def token_list(request: SignedInRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = services.api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_days=form.cleaned_data["expires_days"],
            )
        except PortalError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            form = TokenForm()
            messages.success(request, f"Token {token.name} made. Copy it now: it is shown once.")
    context = {"form": form, "secret": secret, "tokens": selectors.api_tokens_of(request.user)}
    response = render(
        request, "delegations/token_list.html", context, status=400 if form.errors else 200
    )
    if secret:
        response["Cache-Control"] = "no-store"  # the page holds the secret
    return response


@login_required
@require_POST
def token_revoke(request: SignedInRequest, token_id: int) -> HttpResponse:
    try:
        token = services.api_token_revoke(token_id=token_id, acting_user=request.user)
    except PortalError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token {token.name} revoked: calls with it are refused.")
    return redirect("delegations:token_list")


@login_required
@require_POST
def logout_everywhere(request: SignedInRequest) -> HttpResponse:
    """End every session of this person (a lost laptop, a shared machine), this one too."""
    services.sessions_end_all(user=request.user)
    logout(request)
    return redirect("login")
