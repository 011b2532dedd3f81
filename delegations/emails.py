"""One function per notification: who hears about what (product.md N1).

Each returns its recipients and template context; `send` renders
`delegations/emails/<name>.subject.txt`, `.txt` and `.html` and sends one message per
recipient, so nobody sees who else was told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse

from . import selectors
from .instructions import signing_steps
from .models import DelegationRequest

Notification = Callable[[DelegationRequest], tuple[list[AbstractBaseUser], dict]]


def absolute_url(path: str) -> str:
    return settings.PORTAL_BASE_URL + path


def _request_url(request: DelegationRequest) -> str:
    return absolute_url(reverse("delegations:request_detail", args=[request.pk]))


def _owners_other_than_requester(request: DelegationRequest) -> list[AbstractBaseUser]:
    # An owner who asks for a delegation is a requester here, and is not mailed as an owner.
    return [o for o in selectors.owners_of(request.repository) if o.pk != request.requester_id]


def request_submitted(request: DelegationRequest):
    """New request → the owners of that repository (not the requester, if they own it too)."""
    return _owners_other_than_requester(request), {
        "approvals_url": absolute_url(reverse("delegations:approval_queue"))
    }


def request_decided(request: DelegationRequest):
    """Approved or rejected → the requester, naming who decided and why."""
    return [request.requester], {"decision": request.decisions.select_related("owner").last()}


def request_delegated(request: DelegationRequest):
    """Delegated → the requester, with the commands to start signing."""
    return [request.requester], {"steps": signing_steps(request)}


def request_failed(request: DelegationRequest):
    """Failed → the requester and the repository's owners."""
    return [request.requester, *_owners_other_than_requester(request)], {}


NOTIFICATIONS: dict[str, Notification] = {
    "request_submitted": request_submitted,
    "request_decided": request_decided,
    "request_delegated": request_delegated,
    "request_failed": request_failed,
}


def send(notification: str, *, request_id: int) -> int:
    """Send one notification about a request; returns how many messages went out."""
    request = DelegationRequest.objects.select_related("repository", "requester").get(pk=request_id)
    recipients, extra = NOTIFICATIONS[notification](request)
    messages = list(_messages(notification, request, recipients, extra))
    if not messages:
        return 0
    with get_connection() as connection:
        return connection.send_messages(messages)


def _messages(
    notification: str,
    request: DelegationRequest,
    recipients: Iterable[AbstractBaseUser],
    extra: dict,
) -> Iterable[EmailMultiAlternatives]:
    seen: set[str] = set()
    for person in recipients:
        address = person.email
        if not address or address in seen:
            continue
        seen.add(address)
        context = {
            "request": request,
            "recipient": person,
            "request_url": _request_url(request),
            "portal_url": settings.PORTAL_BASE_URL,
            **extra,
        }
        base = f"delegations/emails/{notification}"
        subject = " ".join(render_to_string(f"{base}.subject.txt", context).split())
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string(f"{base}.txt", context),
            to=[address],
        )
        message.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
        yield message
