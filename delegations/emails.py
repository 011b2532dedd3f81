"""Who hears about what (product.md N1), and the emails they get.

Each kind of notification names its recipients and the extra context of its templates,
`delegations/emails/<kind>.subject.txt`, `.txt` and `.html`. A message goes to one person, so
nobody sees who else was told. Nobody is mailed about their own action, and "the owners" are
always the owners of the request's repository, never every administrator.

Recipients are decided when the notification is owed (in the change's transaction, the owners
read just before it); the context is read when the worker sends it, so it describes the request as
it stands then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from . import selectors
from .instructions import signing_steps, witness_command
from .models import (
    DIRECTORY_END_REASONS,
    DelegationRequest,
    EndReason,
    Notification,
    NotificationKind,
    Verdict,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


DAY = timedelta(days=1)


def absolute_url(path: str) -> str:
    return settings.PORTAL_BASE_URL + path


def _url(name: str, *args: object) -> str:
    return absolute_url(reverse(f"delegations:{name}", args=args))


# -- recipients -----------------------------------------------------------------------------------
# Each takes the request and the owners of its repository, read (and made portal users) before
# the change's transaction: `services.repository_owners_provision`.

Owners = Sequence["User"]


def _owners_other_than_requester(request: DelegationRequest, owners: Owners) -> list[User]:
    # An owner who asks for a delegation is a requester here, and is not mailed as an owner.
    return [owner for owner in owners if owner.pk != request.requester_id]


def _requester(request: DelegationRequest, owners: Owners) -> list[User]:
    return [request.requester]


def _requester_and_owners(request: DelegationRequest, owners: Owners) -> list[User]:
    return [request.requester, *_owners_other_than_requester(request, owners)]


def _member_unless_they_revoked(request: DelegationRequest, owners: Owners) -> list[User]:
    # An owner may revoke their own delegation: they know, and nobody else was concerned.
    if request.delegation.ending_requested_by_id == request.requester_id:
        return []
    return [request.requester]


def _whoever_asked_for_the_end_and_owners(request: DelegationRequest, owners: Owners) -> list[User]:
    # The person who asked is told although it was their action: what they asked did not happen.
    asked_by = request.delegation.ending_requested_by
    return [*([asked_by] if asked_by is not None else []), *owners]


def _member_unless_renewing_and_owners(request: DelegationRequest, owners: Owners) -> list[User]:
    # A member whose renewal is already on its way has done what the reminder asks of them. The
    # owners are still told: the renewal may be waiting for their approval.
    others = _owners_other_than_requester(request, owners)
    if selectors.open_renewal_of(request.delegation) is not None:
        return others
    return [request.requester, *others]


# -- context --------------------------------------------------------------------------------------


def _about(notification: Notification) -> DelegationRequest:
    """The request a request's notification is about (only drift's are about none)."""
    assert notification.request is not None
    return notification.request


def _submitted(notification: Notification) -> dict[str, object]:
    renews = _about(notification).renews
    return {
        "approvals_url": _url("approval_queue"),
        "renewed_request_url": _url("request_detail", renews.request_id) if renews else "",
    }


def _decided(notification: Notification) -> dict[str, object]:
    decisions = list(_about(notification).decisions.select_related("owner"))
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


def _delegated(notification: Notification) -> dict[str, object]:
    return {"steps": signing_steps(_about(notification))}


def _expired(notification: Notification) -> dict[str, object]:
    return {
        "days": settings.PORTAL_REQUEST_EXPIRY_DAYS,
        "new_request_url": _url("request_create"),
    }


def _expiring(notification: Notification) -> dict[str, object]:
    request = _about(notification)
    return {
        "days": settings.PORTAL_REQUEST_EXPIRY_DAYS,
        "expires_at": request.expires_at,
        "approvals": len(selectors.approvals_of(request)),
        "approvals_missing": selectors.approvals_missing(request),
    }


def _directory_withdrawn(notification: Notification) -> dict[str, object]:
    request = _about(notification)
    why = (
        "your account is disabled in the directory."
        if not request.requester.is_active
        else f"the directory no longer lists you in team {request.team}."
    )
    return {"why": why, "new_request_url": _url("request_create")}


def _delegation(notification: Notification) -> dict[str, object]:
    return {"delegation": _about(notification).delegation}


def _delegation_with_witness(notification: Notification) -> dict[str, object]:
    delegation = _about(notification).delegation
    return {
        "delegation": delegation,
        "is_member": notification.recipient_id == delegation.member_id,
        "end_reason": delegation.end_reason or delegation.ending,
        "witness_command": witness_command(_about(notification).repository, delegation.roles),
    }


def _ended_with_witness(notification: Notification) -> dict[str, object]:
    """An end nobody on the recipients' side chose (the directory, the date, a review): what
    remaining signers run, and where to ask again."""
    return {
        **_delegation_with_witness(notification),
        "new_request_url": _url("request_create"),
    }


def _end_failed(notification: Notification) -> dict[str, object]:
    delegation = _about(notification).delegation
    return {
        "delegation": delegation,
        # The directory sync asks once (`Delegation.directory_end_failed_at`), and so does the
        # expiry sweep: after a failure an owner revokes by hand, and the email says so.
        "asked_by_directory": delegation.failed_ending in DIRECTORY_END_REASONS,
        "asked_by_expiry": delegation.failed_ending == EndReason.EXPIRED,
    }


def _team_access(notification: Notification) -> dict[str, object]:
    request = _about(notification)
    return {
        "grant": selectors.team_access_of(repository_id=request.repository_id, team=request.team)
    }


def _delegation_ending(notification: Notification) -> dict[str, object]:
    delegation = _about(notification).delegation
    left = delegation.expires_at - notification.created_at
    return {
        "delegation": delegation,
        "is_member": notification.recipient_id == delegation.member_id,
        "days_left": max(math.ceil(left / DAY), 0),
        "new_request_url": _url("request_create"),
        "extend_url": _url("delegation_extend", delegation.pk),
        "delegations_url": _url("delegation_list"),
    }


def _extension(notification: Notification) -> dict[str, object]:
    extension = notification.extension
    assert extension is not None  # an extension's notification names it
    decisions = list(extension.decisions.select_related("owner"))
    return {
        "extension": extension,
        "delegation": extension.delegation,
        "decisions": decisions,
        "decided_by": _listed([d.owner.get_username() for d in decisions]) if decisions else "",
        "concluding": decisions[-1] if decisions else None,
        "approvals_url": _url("approval_queue"),
    }


def _certificate_expiring(notification: Notification) -> dict[str, object]:
    delegation = _about(notification).delegation
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


Recipients = Callable[[DelegationRequest, Owners], list["User"]]
Context = Callable[[Notification], dict[str, object]]


def _nothing_more(notification: Notification) -> dict[str, object]:
    return {}


@dataclass(frozen=True)
class Kind:
    recipients: Recipients
    context: Context = _nothing_more
    # Whether the repository's owners are among the recipients, so must be read first.
    tells_owners: bool = False


KINDS: dict[str, Kind] = {
    # New request → the owners of that repository.
    NotificationKind.REQUEST_SUBMITTED: Kind(_owners_other_than_requester, _submitted, True),
    # Approved or rejected → the requester, naming who decided and why.
    NotificationKind.REQUEST_DECIDED: Kind(_requester, _decided),
    # Delegated → the requester, with the commands to start signing.
    NotificationKind.REQUEST_DELEGATED: Kind(_requester, _delegated),
    # About to expire undecided → the requester, who may nudge an owner or withdraw.
    NotificationKind.REQUEST_EXPIRING: Kind(_requester, _expiring),
    # Expired undecided → the requester, who may ask again.
    NotificationKind.REQUEST_EXPIRED: Kind(_requester, _expired),
    # Withdrawn by the directory sync (left the team, account disabled) → the requester.
    NotificationKind.REQUEST_DIRECTORY_WITHDRAWN: Kind(_requester, _directory_withdrawn),
    # Failed → the requester and the repository's owners.
    NotificationKind.REQUEST_FAILED: Kind(_requester_and_owners, tells_owners=True),
    # Revoked by an owner → the member, naming who revoked it and why.
    NotificationKind.DELEGATION_REVOKED: Kind(_member_unless_they_revoked, _delegation),
    # Given up by the member → the repository's owners, with what remaining signers run.
    NotificationKind.DELEGATION_GIVEN_UP: Kind(
        _owners_other_than_requester, _delegation_with_witness, True
    ),
    # Ended by the directory sync (left the team, account disabled) → the member, and the
    # owners with what remaining signers run. Nobody acted, so nobody is left out.
    NotificationKind.DELEGATION_DIRECTORY_REVOKED: Kind(
        _requester_and_owners, _ended_with_witness, True
    ),
    # Taking the key out failed → whoever asked for the end, and the owners.
    NotificationKind.DELEGATION_END_FAILED: Kind(
        _whoever_asked_for_the_end_and_owners, _end_failed, True
    ),
    # DTR refused the team's push access → the member, who cannot push, and the owners, who
    # can fix what DTR says.
    NotificationKind.TEAM_ACCESS_FAILED: Kind(_requester_and_owners, _team_access, True),
    # Certificate expiring (once per reminder day) → the member, to renew, and the owners.
    NotificationKind.CERTIFICATE_EXPIRING: Kind(
        _member_unless_renewing_and_owners, _certificate_expiring, True
    ),
    # A member asks for more time → the owners; decided → the member.
    NotificationKind.EXTENSION_REQUESTED: Kind(_owners_other_than_requester, _extension, True),
    NotificationKind.EXTENSION_DECIDED: Kind(_requester, _extension),
    # Its last day is coming → the member and the owners.
    NotificationKind.DELEGATION_ENDING: Kind(_requester_and_owners, _delegation_ending, True),
    # Ended by the portal's rules (last day over, certificate expired, not re-certified by an
    # access review) → the member, and the owners with what remaining signers run.
    NotificationKind.DELEGATION_EXPIRED: Kind(_requester_and_owners, _ended_with_witness, True),
}


def recipients(
    kind: NotificationKind, request: DelegationRequest, *, owners: Owners | None
) -> list[User]:
    """The people a notification goes to: each once, and only those with an address.

    `owners` must be given for a kind that tells the owners: they are read before the
    transaction that owes the email, never inside it.
    """
    kind_of = KINDS[kind]
    if kind_of.tells_owners and owners is None:
        raise ValueError(f"{kind} tells the owners: read them before the transaction")
    seen: set[int] = set()
    people = []
    for person in kind_of.recipients(request, owners or ()):
        if person.email and person.pk not in seen:
            seen.add(person.pk)
            people.append(person)
    return people


def message(notification: Notification) -> EmailMultiAlternatives:
    request = notification.request
    context: dict[str, object] = {
        "request": request,
        "recipient": notification.recipient,
        "notification": notification,
        "occasion": notification.occasion,
        "portal_url": settings.PORTAL_BASE_URL,
    }
    if notification.review is not None:
        # About an access review: its repository's owners are asked to finish it.
        review = notification.review
        context.update(
            review=review,
            review_url=_url("review_detail", review.pk),
            items=review.items.count(),
            undecided=review.items.filter(verdict="", outcome="").count(),
        )
    elif request is None:
        # About a drift finding, not a request: its owners are told what the server holds.
        context.update(finding=notification.finding, drift_url=_url("drift_list"))
    else:
        context.update(
            request_url=_url("request_detail", request.pk),
            **KINDS[notification.kind].context(notification),
        )
    base = f"delegations/emails/{notification.kind}"
    email = EmailMultiAlternatives(
        subject=" ".join(render_to_string(f"{base}.subject.txt", context).split()),
        body=render_to_string(f"{base}.txt", context),
        to=[notification.recipient.email],
    )
    email.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    return email
