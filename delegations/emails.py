"""Who hears about what (product.md N1), and the emails they get.

Each kind of notification names its recipients and the extra context of its templates,
`delegations/emails/<kind>.subject.txt`, `.txt` and `.html`. A message goes to one person, so
nobody sees who else was told. Nobody is mailed about their own action, and "the owners" are
always the owners of the request's repository, never every administrator.

Recipients are decided when the notification is owed (in the change's transaction); the context
is read when the worker sends it, so it describes the request as it stands then.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from . import selectors
from .instructions import signing_steps, witness_command
from .models import DIRECTORY_END_REASONS, DelegationRequest, Notification, Verdict

DAY = timedelta(days=1)


def absolute_url(path: str) -> str:
    return settings.PORTAL_BASE_URL + path


def _url(name: str, *args: object) -> str:
    return absolute_url(reverse(f"delegations:{name}", args=args))


# -- recipients -----------------------------------------------------------------------------------


def _owners_other_than_requester(request: DelegationRequest) -> list[AbstractBaseUser]:
    # An owner who asks for a delegation is a requester here, and is not mailed as an owner.
    return [o for o in selectors.owners_of(request.repository) if o.pk != request.requester_id]


def _requester(request: DelegationRequest) -> list[AbstractBaseUser]:
    return [request.requester]


def _requester_and_owners(request: DelegationRequest) -> list[AbstractBaseUser]:
    return [request.requester, *_owners_other_than_requester(request)]


def _member_unless_they_revoked(request: DelegationRequest) -> list[AbstractBaseUser]:
    # An owner may revoke their own delegation: they know, and nobody else was concerned.
    if request.delegation.ending_requested_by_id == request.requester_id:
        return []
    return [request.requester]


def _whoever_asked_for_the_end_and_owners(request: DelegationRequest) -> list[AbstractBaseUser]:
    # The person who asked is told although it was their action: what they asked did not happen.
    asked_by = request.delegation.ending_requested_by
    return [*([asked_by] if asked_by is not None else []), *selectors.owners_of(request.repository)]


def _member_unless_renewing_and_owners(request: DelegationRequest) -> list[AbstractBaseUser]:
    # A member whose renewal is already on its way has done what the reminder asks of them. The
    # owners are still told: the renewal may be waiting for their approval.
    owners = _owners_other_than_requester(request)
    if selectors.open_renewal_of(request.delegation) is not None:
        return owners
    return [request.requester, *owners]


# -- context --------------------------------------------------------------------------------------


def _submitted(notification: Notification) -> dict:
    renews = notification.request.renews
    return {
        "approvals_url": _url("approval_queue"),
        "renewed_request_url": _url("request_detail", renews.request_id) if renews else "",
    }


def _decided(notification: Notification) -> dict:
    decisions = list(notification.request.decisions.select_related("owner"))
    concluding = decisions[-1]
    # One rejection ends a request, while an approval may take several owners: each is named.
    deciders = decisions if concluding.verdict == Verdict.APPROVE else [concluding]
    return {
        "decision": concluding,
        "deciders": deciders,
        "decided_by": _listed([d.owner.get_username() for d in deciders]),
    }


def _listed(names: list[str]) -> str:
    """The names as a sentence lists them: "alice, olga and zed"."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def _delegated(notification: Notification) -> dict:
    return {"steps": signing_steps(notification.request)}


def _expired(notification: Notification) -> dict:
    return {
        "days": settings.PORTAL_REQUEST_EXPIRY_DAYS,
        "new_request_url": _url("request_create"),
    }


def _expiring(notification: Notification) -> dict:
    request = notification.request
    approvals = request.decisions.filter(verdict=Verdict.APPROVE).count()
    return {
        "days": settings.PORTAL_REQUEST_EXPIRY_DAYS,
        "expires_at": request_expires_at(request),
        "approvals": approvals,
        "approvals_missing": max(request.repository.approvals_required - approvals, 0),
    }


def _delegation(notification: Notification) -> dict:
    return {"delegation": notification.request.delegation}


def _delegation_with_witness(notification: Notification) -> dict:
    delegation = notification.request.delegation
    return {
        "delegation": delegation,
        "is_member": notification.recipient_id == delegation.member_id,
        "end_reason": delegation.end_reason or delegation.ending,
        "witness_command": witness_command(notification.request.repository, delegation.roles),
    }


def _directory_revoked(notification: Notification) -> dict:
    return {
        **_delegation_with_witness(notification),
        "new_request_url": _url("request_create"),
    }


def _end_failed(notification: Notification) -> dict:
    request = notification.request
    failure = request.audit_events.filter(action="delegation.end_failed").last()
    end_reason = failure.details.get("end_reason", "") if failure else ""
    return {
        "delegation": request.delegation,
        "failure": failure,
        # The directory sync asks again by itself on its next run; people do it from the portal.
        "asked_by_directory": end_reason in DIRECTORY_END_REASONS,
    }


def _certificate_expiring(notification: Notification) -> dict:
    delegation = notification.request.delegation
    left = delegation.certificate_expires_at - notification.created_at
    renewal = selectors.open_renewal_of(delegation)
    return {
        "delegation": delegation,
        "is_member": notification.recipient_id == delegation.member_id,
        # Counted from when the reminder was owed, not sent: a retried email says the same.
        "days_left": max(math.ceil(left / DAY), 0),
        "renewal": renewal,
        "renewal_url": _url("request_detail", renewal.pk) if renewal else "",
        "renew_url": _url("delegation_renew", delegation.pk),
        "delegations_url": _url("delegation_list"),
    }


def request_expires_at(request: DelegationRequest) -> datetime:
    """When a request nobody decides on expires (services.requests_expire)."""
    return request.created_at + timedelta(days=settings.PORTAL_REQUEST_EXPIRY_DAYS)


@dataclass(frozen=True)
class Kind:
    recipients: Callable[[DelegationRequest], list[AbstractBaseUser]]
    context: Callable[[Notification], dict] = lambda notification: {}


KINDS: dict[str, Kind] = {
    # New request → the owners of that repository.
    "request_submitted": Kind(_owners_other_than_requester, _submitted),
    # Approved or rejected → the requester, naming who decided and why.
    "request_decided": Kind(_requester, _decided),
    # Delegated → the requester, with the commands to start signing.
    "request_delegated": Kind(_requester, _delegated),
    # About to expire undecided → the requester, who may nudge an owner or withdraw.
    "request_expiring": Kind(_requester, _expiring),
    # Expired undecided → the requester, who may ask again.
    "request_expired": Kind(_requester, _expired),
    # Failed → the requester and the repository's owners.
    "request_failed": Kind(_requester_and_owners),
    # Revoked by an owner → the member, naming who revoked it and why.
    "delegation_revoked": Kind(_member_unless_they_revoked, _delegation),
    # Given up by the member → the repository's owners, with what remaining signers run.
    "delegation_given_up": Kind(_owners_other_than_requester, _delegation_with_witness),
    # Ended by the directory sync (left the team, account disabled) → the member, and the
    # owners with what remaining signers run. Nobody acted, so nobody is left out.
    "delegation_directory_revoked": Kind(_requester_and_owners, _directory_revoked),
    # Taking the key out failed → whoever asked for the end, and the owners.
    "delegation_end_failed": Kind(_whoever_asked_for_the_end_and_owners, _end_failed),
    # Certificate expiring (once per reminder day) → the member, to renew, and the owners.
    "certificate_expiring": Kind(_member_unless_renewing_and_owners, _certificate_expiring),
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
        "notification": notification,
        "occasion": notification.occasion,
        "request_url": _url("request_detail", request.pk),
        "portal_url": settings.PORTAL_BASE_URL,
        **KINDS[notification.kind].context(notification),
    }
    base = f"delegations/emails/{notification.kind}"
    email = EmailMultiAlternatives(
        subject=" ".join(render_to_string(f"{base}.subject.txt", context).split()),
        body=render_to_string(f"{base}.txt", context),
        to=[notification.recipient.email],
    )
    email.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    return email
