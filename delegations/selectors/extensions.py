"""Reads about extensions: who may see one, what waits for an owner, and who approved."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.http import Http404

from ..models import Delegation, Extension, ExtensionDecision, ExtensionStatus, Verdict
from .people import group_names_of, owners_of, repositories_owned_by

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def open_extension_of(delegation: Delegation) -> Extension | None:
    """The delegation's extension waiting for its owners, if any."""
    return delegation.extensions.filter(status=ExtensionStatus.PENDING).first()


def extension_for_viewer(user: User, extension_id: int) -> Extension:
    """The extension, for the member who asked for it or an owner of its repository; 404 for
    anyone else, so its number reveals nothing."""
    extension = (
        Extension.objects.select_related(
            "delegation__repository", "delegation__request", "requested_by"
        )
        .filter(pk=extension_id)
        .first()
    )
    if extension is None:
        raise Http404
    repository = extension.delegation.repository
    if extension.requested_by_id != user.pk and repository.owners_group not in group_names_of(user):
        raise Http404
    return extension


def extensions_waiting_for(user: User) -> QuerySet[Extension]:
    """Pending extensions on the repositories `user` owns, but not their own, oldest first."""
    return (
        Extension.objects.filter(
            status=ExtensionStatus.PENDING,
            delegation__repository__in=repositories_owned_by(user),
        )
        .exclude(requested_by=user)
        .select_related("delegation__repository", "delegation__request", "requested_by")
        .prefetch_related("decisions__owner")
        .order_by("created_at", "id")
    )


def extension_approvals(
    extension: Extension, *, owner_ids: Collection[int] | None = None
) -> list[ExtensionDecision]:
    """The approvals counted toward the repository's threshold: those of people who still own
    the repository (`owner_ids`, read by the caller before it locks anything)."""
    if owner_ids is None:
        owner_ids = set(owners_of(extension.delegation.repository).values_list("pk", flat=True))
    return list(
        extension.decisions.filter(verdict=Verdict.APPROVE, owner_id__in=owner_ids)
        .select_related("owner")
        .order_by("id")
    )


def why_cannot_decide_extension(user: User, extension: Extension, *, owns: bool) -> str | None:
    """Why `user` cannot decide on `extension` now, in words for them; None when they can."""
    if extension.requested_by_id == user.pk or extension.delegation.member_id == user.pk:
        return "You asked for more time yourself, so another owner has to decide on it."
    if not owns:
        return "Only the owners of the delegation's repository decide on its extension."
    if extension.status != ExtensionStatus.PENDING:
        return f"Extension #{extension.pk} is {extension.get_status_display().lower()} now."
    if extension.decisions.filter(owner=user).exists():
        return (
            f"You approved extension #{extension.pk}; more approvals from other owners of "
            f"{extension.delegation.repository.path} are needed."
        )
    return None
