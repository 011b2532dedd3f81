"""Reads. Who is in which team and who owns which repository are answered here and only here,
so the directory (LDAP) can replace the local groups without touching callers."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, CharField, Exists, OuterRef, Q, QuerySet, Value, When
from django.http import Http404

from . import directory
from .directory_accounts import directory_user_for
from .exceptions import InvalidInput
from .models import (
    OPEN_STATUSES,
    Delegation,
    DelegationRequest,
    DirectoryAccount,
    Notification,
    Repository,
    RequestStatus,
)

User = get_user_model()


# -- directory -------------------------------------------------------------------------------------
# Who is in which team and group is read here and only here. A directory account (a user with a
# DirectoryAccount, made at their first LDAP login) is answered by the LDAP directory; a local
# account by its local Django groups, where teams are the groups named with the team prefix.


def directory_account_of(user: AbstractBaseUser) -> DirectoryAccount | None:
    """The user's directory account, when a directory is set up and they come from it."""
    if not directory.configured() or user.pk is None:
        return None
    try:
        return user.directory_account
    except DirectoryAccount.DoesNotExist:
        return None


def _memberships(user: AbstractBaseUser) -> directory.Memberships:
    if not user.is_authenticated or not user.is_active:
        return directory.Memberships(groups=frozenset(), teams=frozenset())
    account = directory_account_of(user)
    if account is not None:
        return directory.memberships(account.dn)
    names = frozenset(user.groups.values_list("name", flat=True))
    prefix = settings.PORTAL_TEAM_GROUP_PREFIX
    teams = frozenset(name[len(prefix) :] for name in names if name.startswith(prefix))
    return directory.Memberships(groups=names, teams=teams)


def group_names_of(user: AbstractBaseUser) -> frozenset[str]:
    """The names of the groups an active user is in."""
    return _memberships(user).groups


def teams_of(user: AbstractBaseUser) -> list[str]:
    """The UCP teams `user` belongs to, sorted."""
    return sorted(_memberships(user).teams)


def members_of(group_name: str) -> QuerySet:
    """The active users in a group: the directory's group of that name for directory accounts
    (made into portal users if they never logged in, so that they can be told), and the local
    group for local ones."""
    local = Q(groups__name=group_name, directory_account__isnull=True)
    if not directory.configured():
        return User.objects.filter(groups__name=group_name, is_active=True).order_by("username")
    people = (directory_user_for(entry) for entry in directory.group_members(group_name))
    in_directory = [person.pk for person in people if person is not None]
    return (
        User.objects.filter(local | Q(pk__in=in_directory), is_active=True)
        .distinct()
        .order_by("username")
    )


def owners_of(repository: Repository) -> QuerySet:
    """The active users who own `repository`: the members of its owners group."""
    return members_of(repository.owners_group)


def is_owner(user: AbstractBaseUser, repository: Repository) -> bool:
    return repository.owners_group in group_names_of(user)


def may_decide(user: AbstractBaseUser, request: DelegationRequest) -> bool:
    """Owners of the request's repository decide on it, except the person who asked."""
    return request.requester_id != user.pk and is_owner(user, request.repository)


def why_cannot_decide(user: AbstractBaseUser, request: DelegationRequest) -> str | None:
    """Why `user` cannot decide on `request` now, in words for them; None when they can."""
    if request.requester_id == user.pk:
        return "You asked for it, so you cannot decide on your own request: another owner has to."
    if not is_owner(user, request.repository):
        return "Only the owners of the request's repository decide on it."
    if request.status != RequestStatus.PENDING:
        return f"Request #{request.pk} is {request.get_status_display().lower()} now."
    approvals = [
        decision.owner_id for decision in request.decisions.all() if decision.verdict == "approve"
    ]
    if user.pk in approvals:
        more = request.repository.approvals_required - len(approvals)
        return (
            f"You approved request #{request.pk}; {more} more approval"
            f"{'s' if more != 1 else ''} from other owners of {request.repository.path} "
            "are needed."
        )
    return None


def repositories_owned_by(user: AbstractBaseUser) -> QuerySet:
    return Repository.objects.filter(owners_group__in=group_names_of(user))


# -- repositories ---------------------------------------------------------------------------------


def split_gun(gun: str) -> tuple[str, str, str]:
    """(dtr host, namespace, name) of `<dtr host>/<namespace>/<name>`; InvalidInput otherwise."""
    parts = gun.split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidInput(f"{gun!r} is not <dtr host>/<namespace>/<name>")
    return parts[0], parts[1], parts[2]


def repository_by_gun(gun: str) -> Repository | None:
    dtr_host, namespace, name = split_gun(gun)
    return Repository.objects.filter(dtr_host=dtr_host, namespace=namespace, name=name).first()


def repositories_open_for_requests() -> QuerySet:
    """Repositories whose trust is initialised, so a delegation can be applied."""
    return Repository.objects.filter(trust_initialised_at__isnull=False)


# -- requests -------------------------------------------------------------------------------------


def requests_of(user: AbstractBaseUser) -> QuerySet:
    return DelegationRequest.objects.filter(requester=user).select_related("repository")


def approval_queue_for(user: AbstractBaseUser) -> QuerySet:
    """Pending requests for the repositories `user` owns, oldest first."""
    return (
        DelegationRequest.objects.filter(
            status=RequestStatus.PENDING, repository__in=repositories_owned_by(user)
        )
        .select_related("repository", "requester")
        .order_by("created_at", "id")
    )


def conflicting_request(
    *,
    repository: Repository,
    requester: AbstractBaseUser,
    team: str,
    canonical_key_id: str,
    renewing_request_id: int | None = None,
) -> DelegationRequest | None:
    """What a new request on `repository` would repeat: an open request of the same member and
    team, or the same key in an open request or an active delegation. The member's own
    same-team request comes first."""
    open_requests = Q(status__in=OPEN_STATUSES) & (
        Q(requester=requester, team=team) | Q(canonical_key_id=canonical_key_id)
    )
    delegated_key = Q(
        canonical_key_id=canonical_key_id,
        delegation__isnull=False,
        delegation__ended_at__isnull=True,
    )
    return (
        DelegationRequest.objects.filter(repository=repository)
        .filter(open_requests | delegated_key)
        .exclude(pk=renewing_request_id)
        .annotate(
            same_member_and_team=Case(
                When(requester=requester, team=team, status__in=OPEN_STATUSES, then=Value(0)),
                default=Value(1),
            )
        )
        .order_by("same_member_and_team", "-id")
        .first()
    )


def stalled_request_ids(*, now: datetime, quiet_for: timedelta) -> list[int]:
    """Approved requests not yet delegated, untouched for `quiet_for`: their job may be lost."""
    return list(
        DelegationRequest.objects.filter(
            status__in=[RequestStatus.APPROVED, RequestStatus.APPLYING],
            updated_at__lt=now - quiet_for,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def stalled_ending_ids(*, now: datetime, quiet_for: timedelta) -> list[int]:
    """Delegations whose end was asked `quiet_for` ago and not done: their job may be lost."""
    return list(
        Delegation.objects.filter(ended_at__isnull=True, ending_requested_at__lt=now - quiet_for)
        .exclude(ending="")
        .order_by("id")
        .values_list("id", flat=True)
    )


def unsent_notification_ids(*, now: datetime, quiet_for: timedelta, max_attempts: int) -> list[int]:
    """Emails owed for `quiet_for` and not sent, that have attempts left."""
    return list(
        Notification.objects.filter(
            sent_at__isnull=True, created_at__lt=now - quiet_for, attempts__lt=max_attempts
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def request_for_viewer(user: AbstractBaseUser, request_id: int) -> DelegationRequest:
    """A request its requester, an owner of its repository, or staff may see; 404 otherwise.

    404 rather than 403, so that request numbers do not reveal what exists.
    """
    visible = Q(requester=user) | Q(repository__in=repositories_owned_by(user))
    queryset = DelegationRequest.objects.select_related("repository", "requester")
    if not user.is_staff:
        queryset = queryset.filter(visible)
    request = queryset.filter(pk=request_id).first()
    if request is None:
        raise Http404("No such request")
    return request


def delegation_of_member(user: AbstractBaseUser, delegation_id: int) -> Delegation:
    """`user`'s own active delegation; 404 for anyone else's or an ended one."""
    delegation = (
        Delegation.objects.select_related("repository", "request")
        .filter(pk=delegation_id, member=user, ended_at__isnull=True, ending="")
        .first()
    )
    if delegation is None:
        raise Http404("No such delegation")
    return delegation


def renewable_delegation(user: AbstractBaseUser, request: DelegationRequest) -> Delegation | None:
    """The active delegation `request` made, when `user` holds it and no renewal is open."""
    if request.requester_id != user.pk or request.status != RequestStatus.DELEGATED:
        return None
    delegation = Delegation.objects.filter(
        request=request, ended_at__isnull=True, ending=""
    ).first()
    if delegation is None or delegation.renewals.filter(status__in=OPEN_STATUSES).exists():
        return None
    return delegation


def active_delegations_owned_by(user: AbstractBaseUser) -> QuerySet:
    return (
        Delegation.objects.filter(ended_at__isnull=True, repository__in=repositories_owned_by(user))
        .select_related("repository", "member")
        .order_by("repository__namespace", "repository__name", "team", "member__username")
    )


# -- reminders ------------------------------------------------------------------------------------


def open_renewal_of(delegation: Delegation) -> DelegationRequest | None:
    """The member's renewal of `delegation` still on its way (pending, approved or applying)."""
    return delegation.renewals.filter(status__in=OPEN_STATUSES).order_by("-id").first()


def delegations_owing_certificate_reminder(
    *, now: datetime, days_before: list[int], kind: str
) -> list[tuple[Delegation, str]]:
    """Active delegations whose certificate expires within the largest of `days_before`, each
    with the reminder it is owed now ("7d", "30d"): the smallest day count it is within. Those
    whose reminder of that occasion was owed already are left out, in the same query."""
    windows = sorted(set(days_before))
    if not windows:
        return []
    occasion = Case(
        *(
            When(certificate_expires_at__lte=now + timedelta(days=days), then=Value(f"{days}d"))
            for days in windows
        ),
        default=Value(""),
        output_field=CharField(),
    )
    owed = Notification.objects.filter(
        request=OuterRef("request"), kind=kind, occasion=OuterRef("reminder_occasion")
    )
    delegations = (
        Delegation.objects.filter(
            ended_at__isnull=True,
            ending="",
            certificate_expires_at__gt=now,
            certificate_expires_at__lte=now + timedelta(days=windows[-1]),
        )
        .annotate(reminder_occasion=occasion)
        .exclude(Exists(owed))
        .select_related("request__repository", "request__requester", "member")
        .order_by("certificate_expires_at", "id")
    )
    return [(delegation, delegation.reminder_occasion) for delegation in delegations]


def requests_owing_expiry_reminder(
    *, now: datetime, expire_after: timedelta, remind_before: timedelta, kind: str, occasion: str
) -> QuerySet:
    """Pending requests that expire (`expire_after` their creation) within `remind_before` and
    have not yet, whose reminder was not owed already."""
    owed = Notification.objects.filter(request=OuterRef("pk"), kind=kind, occasion=occasion)
    return (
        DelegationRequest.objects.filter(
            status=RequestStatus.PENDING,
            created_at__gt=now - expire_after,
            created_at__lte=now - expire_after + remind_before,
        )
        .exclude(Exists(owed))
        .select_related("repository", "requester")
        .order_by("created_at", "id")
    )
