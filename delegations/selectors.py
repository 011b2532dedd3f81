"""Reads. Who is in which team and who owns which repository are answered here and only here,
so the directory (LDAP) can replace the local groups without touching callers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404

from .models import Delegation, DelegationRequest, Repository, RequestStatus

User = get_user_model()


# -- directory -------------------------------------------------------------------------------------


def teams_of(user: AbstractBaseUser) -> list[str]:
    """The UCP teams `user` belongs to, sorted."""
    if not user.is_authenticated:
        return []
    prefix = settings.PORTAL_TEAM_GROUP_PREFIX
    names = user.groups.filter(name__startswith=prefix).values_list("name", flat=True)
    return sorted(name[len(prefix) :] for name in names)


def owners_of(repository: Repository) -> QuerySet:
    """The active users who own `repository`."""
    return User.objects.filter(groups__name=repository.owners_group, is_active=True).order_by(
        "username"
    )


def is_owner(user: AbstractBaseUser, repository: Repository) -> bool:
    return (
        user.is_authenticated
        and user.is_active
        and user.groups.filter(name=repository.owners_group).exists()
    )


def repositories_owned_by(user: AbstractBaseUser) -> QuerySet:
    if not user.is_authenticated or not user.is_active:
        return Repository.objects.none()
    group_names = user.groups.values_list("name", flat=True)
    return Repository.objects.filter(owners_group__in=group_names)


# -- repositories ---------------------------------------------------------------------------------


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


def active_delegations_owned_by(user: AbstractBaseUser) -> QuerySet:
    return (
        Delegation.objects.filter(ended_at__isnull=True, repository__in=repositories_owned_by(user))
        .select_related("repository", "member")
        .order_by("repository__namespace", "repository__name", "team", "member__username")
    )
