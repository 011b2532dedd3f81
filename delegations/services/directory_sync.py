"""The directory sync (product.md D2): delegations follow the directory.

A member who left a team loses their delegations in that team, and their pending requests for it
are withdrawn; a member whose account is disabled, or gone from the directory, loses all of them
and can no longer log in. With UCP configured (`PORTAL_UCP_SYNC_BUNDLES`), a delegation whose
key UCP no longer lists among the member's client bundles ends too: the member deleted the bundle,
so the key is no longer theirs to sign with. Each end is a revoke (the key out of both roles, one
publish) asked for by the sync, which the audit log names as the actor, and the member and the
repository's owners are told.

The sync acts only on a complete, fresh read of the directory. A directory it cannot read ends
nothing, and a read that would end more than PORTAL_DIRECTORY_SYNC_MAX_ENDINGS delegations at
once ends none of them, and mails the administrators: an emptied team base or a wrong filter
looks exactly like everyone leaving, and signing rights are slow to give back. UCP likewise: only
its definite list of a member's keys ends anything; a member it cannot be read for, or has no
account of, keeps every delegation (one the directory disabled loses them as disabled).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from .. import clock, directory
from ..audit.chain import DIRECTORY_SYNC_ACTOR, audit_record
from ..exceptions import IllegalTransition
from ..intake import bundle_keys
from ..models import (
    AuditAction,
    Delegation,
    DelegationRequest,
    DirectoryAccount,
    EndReason,
    RequestStatus,
)
from .accounts import directory_account_set_active
from .delegation_endings import delegation_end_for_directory
from .request_endings import request_withdraw_for_directory

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ending:
    delegation_id: int
    member: str
    team: str
    repository: str
    reason: EndReason


@dataclass(frozen=True)
class Withdrawal:
    request_id: int
    member: str
    team: str
    reason: EndReason


@dataclass
class SyncReport:
    accounts: int = 0
    endings: list[Ending] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)
    # Members whose client bundles UCP could not be read for, or has no account of: their
    # delegations were left alone.
    bundles_unreadable: list[str] = field(default_factory=list)
    bundles_unknown: list[str] = field(default_factory=list)
    held: bool = False

    def summary(self) -> str:
        if self.held:
            return (
                f"held: the directory would end {len(self.endings)} delegations, withdraw "
                f"{len(self.withdrawals)} pending requests and disable "
                f"{len(self.disabled)} accounts at once, more than "
                "PORTAL_DIRECTORY_SYNC_MAX_ENDINGS "
                f"({settings.PORTAL_DIRECTORY_SYNC_MAX_ENDINGS}); nothing was changed"
            )
        clauses = [
            f"{self.accounts} directory accounts checked",
            f"{len(self.endings)} delegations ending",
            f"{len(self.withdrawals)} pending requests withdrawn",
            f"disabled: {', '.join(self.disabled) or 'none'}",
            f"enabled again: {', '.join(self.enabled) or 'none'}",
        ]
        if self.bundles_unreadable:
            clauses.append(
                "client bundles UCP could not list, left alone: "
                f"{', '.join(self.bundles_unreadable)}"
            )
        if self.bundles_unknown:
            clauses.append(f"no account in UCP, left alone: {', '.join(self.bundles_unknown)}")
        return "; ".join(clauses)


def directory_sync(*, now: datetime | None = None, force: bool = False) -> SyncReport:
    """Compare the directory (and, with PORTAL_UCP_SYNC_BUNDLES, UCP's client bundles) with
    the portal and end what they no longer allow. Raises
    directory.DirectoryUnavailable, having changed nothing, when the directory cannot be read.
    `force` lifts the PORTAL_DIRECTORY_SYNC_MAX_ENDINGS hold (the management command's
    --force, after an administrator has looked)."""
    report = SyncReport()
    if not directory.configured():
        return report
    now = now or clock.now()
    accounts = list(DirectoryAccount.objects.select_related("user"))
    report.accounts = len(accounts)
    entries = directory.accounts((a.user.get_username() for a in accounts), fresh=True)
    team_members = directory.team_members(fresh=True)

    gone = set()
    for account in accounts:
        entry = entries.get(account.user.get_username())
        if entry is None or entry.disabled:
            gone.add(account.user_id)
    active = list(
        Delegation.objects.steady()
        .filter(member__directory_account__isnull=False)
        # An end the directory asked for that failed for good was mailed once; asking again
        # every run would mail the owners every run. An owner revokes it by hand once the cause
        # is fixed.
        .filter(directory_end_failed_at__isnull=True)
        .select_related("member", "repository", "request", "member__directory_account")
        .order_by("pk")
    )
    for delegation in active:
        reason = _leaving(delegation.member, delegation.team, entries, team_members, gone)
        if reason is None:
            continue
        report.endings.append(
            Ending(
                delegation_id=delegation.pk,
                member=delegation.member.get_username(),
                team=delegation.team,
                repository=delegation.repository.gun,
                reason=reason,
            )
        )
    if bundle_keys.bundle_sync_on():
        # One the directory ends already needs no word from UCP.
        ended = {ending.delegation_id for ending in report.endings}
        report.endings += _bundles_deleted([d for d in active if d.pk not in ended], report)

    report.withdrawals = _pending_of_leavers(entries, team_members, gone)

    # Accounts about to be disabled count too: a wrong user base looks like everyone leaving.
    newly_gone = [a for a in accounts if a.user_id in gone and a.user.is_active]
    changes = len(report.endings) + len(report.withdrawals) + len(newly_gone)
    if changes > settings.PORTAL_DIRECTORY_SYNC_MAX_ENDINGS and not force:
        report.held = True
        report.disabled = [account.user.get_username() for account in newly_gone]
        _record_hold(report, now=now)
        _mail_administrators(report)
        return report
    for ending in report.endings:
        _end(ending, now=now)
    for withdrawal in report.withdrawals:
        _withdraw(withdrawal, now=now)
    _follow_accounts(accounts, entries, gone, report, now=now)
    logger.info("directory sync: %s", report.summary())
    return report


def _bundles_deleted(delegations: list[Delegation], report: SyncReport) -> list[Ending]:
    """The delegations whose certificate's key UCP no longer lists among their member's client
    bundles. UCP is asked once per member; only its definite answer ends anything."""
    reading = bundle_keys.bundle_keys_read(
        sorted({delegation.member.get_username() for delegation in delegations})
    )
    report.bundles_unreadable = reading.unreadable
    report.bundles_unknown = reading.unknown
    endings = []
    for delegation in delegations:
        member = delegation.member.get_username()
        if not reading.bundle_deleted(member, delegation.request.certificate_pem):
            continue
        endings.append(
            Ending(
                delegation_id=delegation.pk,
                member=member,
                team=delegation.team,
                repository=delegation.repository.gun,
                reason=EndReason.BUNDLE_DELETED,
            )
        )
    return endings


def _end(ending: Ending, *, now: datetime) -> None:
    why = _why(ending.member, ending.team, ending.reason)
    # Revoked, given up or replaced since it was read: it is ending already.
    with contextlib.suppress(IllegalTransition):
        delegation_end_for_directory(
            delegation_id=ending.delegation_id, reason=ending.reason, comment=why, now=now
        )


def _pending_of_leavers(
    entries: dict[str, directory.Account],
    team_members: dict[str, frozenset[str]],
    gone: set[int],
) -> list[Withdrawal]:
    """Pending requests whose requester the directory disabled, or no longer lists in the
    request's team: no owner should grant what the directory would end at once."""
    withdrawals = []
    pending = (
        DelegationRequest.objects.filter(
            status=RequestStatus.PENDING, requester__directory_account__isnull=False
        )
        .select_related("requester")
        .order_by("pk")
    )
    for request in pending:
        reason = _leaving(request.requester, request.team, entries, team_members, gone)
        if reason is not None:
            withdrawals.append(
                Withdrawal(request.pk, request.requester.get_username(), request.team, reason)
            )
    return withdrawals


def _leaving(
    user: User,
    team: str,
    entries: dict[str, directory.Account],
    team_members: dict[str, frozenset[str]],
    gone: set[int],
) -> EndReason | None:
    """Why the directory no longer lets `user` sign as `team`; None while it does."""
    if user.pk in gone:
        return EndReason.DISABLED
    entry = entries[user.get_username()]
    if directory.normal_dn(entry.dn) in team_members.get(team, frozenset()):
        return None
    return EndReason.LEFT_TEAM


def _why(member: str, team: str, reason: EndReason) -> str:
    if reason == EndReason.LEFT_TEAM:
        return f"{member} is no longer in team {team} in the directory."
    if reason == EndReason.BUNDLE_DELETED:
        return (
            f"UCP no longer lists the key of this certificate among {member}'s client bundles: "
            "the bundle was deleted in UCP."
        )
    return f"{member}'s account is disabled or gone in the directory."


def _withdraw(withdrawal: Withdrawal, *, now: datetime) -> None:
    why = _why(withdrawal.member, withdrawal.team, withdrawal.reason)
    # Decided or withdrawn since it was read: nothing left to withdraw.
    with contextlib.suppress(IllegalTransition):
        request_withdraw_for_directory(request_id=withdrawal.request_id, comment=why, now=now)


def _mail_administrators(report: SyncReport) -> None:
    """A held sync waits for a person: the portal's administrators are mailed, not only the
    log. A failure to mail is logged; the next run holds, and mails, again."""
    users = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    addresses = sorted({user.email for user in users})
    if not addresses:
        logger.warning("directory sync held, and no administrator has an email address")
        return
    body = (
        f"The directory sync of the delegation portal is holding: {report.summary()}.\n\n"
        "A wrong directory filter or an emptied team base looks exactly like everyone leaving "
        "(and a UCP account that sees nobody's client bundles like everyone deleting theirs), "
        "so nothing was changed. Look at the directory and UCP; if the changes are right, "
        "run\n\n"
        "    manage.py directory_sync --force\n\n"
        f"Delegations it would end: {', '.join(str(e.delegation_id) for e in report.endings)}\n"
        f"Accounts it would disable: {', '.join(report.disabled) or 'none'}\n"
        f"Portal: {settings.PORTAL_BASE_URL}\n"
    )
    try:
        send_mail(
            "[delegation portal] The directory sync is holding: a person must look",
            body,
            None,
            addresses,
        )
    except Exception:
        logger.exception("could not mail the administrators that the directory sync holds")


def _follow_accounts(
    accounts: list[DirectoryAccount],
    entries: dict[str, directory.Account],
    gone: set[int],
    report: SyncReport,
    *,
    now: datetime,
) -> None:
    """Disable the portal users the directory disabled or dropped, so their sessions end and
    they cannot log in; enable again those it shows enabled once more."""
    for account in accounts:
        user = account.user
        if account.user_id in gone:
            if user.is_active:
                directory_account_set_active(
                    account_id=account.pk, active=False, dn=account.dn, now=now
                )
                report.disabled.append(user.get_username())
            continue
        entry = entries[user.get_username()]
        # Only what the sync disabled: an administrator's deactivation stands.
        if not user.is_active and account.disabled_at is not None:
            directory_account_set_active(account_id=account.pk, active=True, dn=entry.dn, now=now)
            report.enabled.append(user.get_username())
        DirectoryAccount.objects.filter(pk=account.pk).update(dn=entry.dn, seen_at=now)


def _record_hold(report: SyncReport, *, now: datetime) -> None:
    logger.error("directory sync %s", report.summary())
    with transaction.atomic():
        audit_record(
            action=AuditAction.DIRECTORY_SYNC_HELD,
            actor=None,
            now=now,
            details={
                "would_end": len(report.endings),
                "would_disable": len(report.disabled),
                "limit": settings.PORTAL_DIRECTORY_SYNC_MAX_ENDINGS,
                "delegations": [ending.delegation_id for ending in report.endings],
            },
            system_actor=DIRECTORY_SYNC_ACTOR,
        )
