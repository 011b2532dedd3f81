"""Who hears about what (product.md N1), and the emails they get.

Each kind of notification names its recipients and the extra context of its templates,
`delegations/emails/<kind>.subject.txt`, `.txt` and `.html`. A message goes to one person, so
nobody sees who else was told.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from . import selectors
from .instructions import signing_steps
from .models import DelegationRequest, Notification
from .notary import witness_command


def absolute_url(path: str) -> str:
    return settings.PORTAL_BASE_URL + path


def _owners_other_than_requester(request: DelegationRequest) -> list[AbstractBaseUser]:
    # An owner who asks for a delegation is a requester here, and is not mailed as an owner.
    return [o for o in selectors.owners_of(request.repository) if o.pk != request.requester_id]


def _requester(request: DelegationRequest) -> list[AbstractBaseUser]:
    return [request.requester]


@dataclass(frozen=True)
class Kind:
    recipients: Callable[[DelegationRequest], list[AbstractBaseUser]]
    context: Callable[[DelegationRequest], dict] = lambda request: {}


KINDS: dict[str, Kind] = {
    # New request → the owners of that repository.
    "request_submitted": Kind(
        _owners_other_than_requester,
        lambda request: {"approvals_url": absolute_url(reverse("delegations:approval_queue"))},
    ),
    # Approved or rejected → the requester, naming who decided and why.
    "request_decided": Kind(
        _requester,
        lambda request: {"decision": request.decisions.select_related("owner").last()},
    ),
    # Delegated → the requester, with the commands to start signing.
    "request_delegated": Kind(_requester, lambda request: {"steps": signing_steps(request)}),
    # Expired undecided → the requester, who may ask again.
    "request_expired": Kind(
        _requester,
        lambda request: {
            "days": settings.PORTAL_REQUEST_EXPIRY_DAYS,
            "new_request_url": absolute_url(reverse("delegations:request_create")),
        },
    ),
    # Failed → the requester and the repository's owners.
    "request_failed": Kind(
        lambda request: [request.requester, *_owners_other_than_requester(request)]
    ),
    # Revoked by an owner → the member, naming who revoked it and why.
    "delegation_revoked": Kind(_requester, lambda request: {"delegation": request.delegation}),
    # Given up by the member → the repository's owners, with what remaining signers run.
    "delegation_given_up": Kind(
        _owners_other_than_requester,
        lambda request: {
            "delegation": request.delegation,
            "witness_command": witness_command(request.repository.gun, request.delegation.roles),
        },
    ),
    # Taking the key out failed → whoever asked for the end, and the owners.
    "delegation_end_failed": Kind(
        lambda request: [
            person
            for person in [
                request.delegation.ending_requested_by,
                *selectors.owners_of(request.repository),
            ]
            if person is not None
        ],
        lambda request: {
            "delegation": request.delegation,
            "failure": request.audit_events.filter(action="delegation.end_failed").last(),
        },
    ),
}


def recipients(kind: str, request: DelegationRequest) -> list[AbstractBaseUser]:
    """The people a notification goes to: each once, and only those with an address."""
    seen: set[int] = set()
    people = []
    for person in KINDS[kind].recipients(request):
        if person.email and person.pk not in seen:
            seen.add(person.pk)
            people.append(person)
    return people


def message(notification: Notification) -> EmailMultiAlternatives:
    request = notification.request
    context = {
        "request": request,
        "recipient": notification.recipient,
        "request_url": absolute_url(reverse("delegations:request_detail", args=[request.pk])),
        "portal_url": settings.PORTAL_BASE_URL,
        **KINDS[notification.kind].context(request),
    }
    base = f"delegations/emails/{notification.kind}"
    email = EmailMultiAlternatives(
        subject=" ".join(render_to_string(f"{base}.subject.txt", context).split()),
        body=render_to_string(f"{base}.txt", context),
        to=[notification.recipient.email],
    )
    email.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    return email
