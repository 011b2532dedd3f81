"""Reads about access reviews: which repositories are due, who sees which review, and what is
near or past its deadline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.http import Http404

from ..models import AccessReview, Delegation, Notification, NotificationKind, Repository
from .people import group_names_of, is_auditor, repositories_owned_by

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def repositories_due_for_review(*, now: datetime) -> list[Repository]:
    """Repositories with a review interval and no open review, whose last review opened that
    long ago, or which were never reviewed."""
    open_review = AccessReview.objects.filter(repository=OuterRef("pk"), closed_at__isnull=True)
    candidates = (
        Repository.objects.filter(review_interval_days__isnull=False)
        .exclude(Exists(open_review))
        .annotate(last_opened=Max("reviews__opened_at"))
        .order_by("id")
    )
    return [
        repository
        for repository in candidates
        if repository.last_opened is None
        or repository.last_opened + timedelta(days=repository.review_interval_days or 0) <= now
    ]


def delegations_to_review(repository: Repository) -> QuerySet[Delegation]:
    """The repository's delegations a review lists: the active ones nobody is ending."""
    return (
        Delegation.objects.steady()
        .filter(repository=repository)
        .select_related("repository", "request", "member")
        .order_by("team", "member__username", "id")
    )


def reviews_visible_to(user: User) -> QuerySet[AccessReview]:
    """The reviews of the repositories `user` owns, or every review for an auditor or staff;
    open ones first."""
    reviews = AccessReview.objects.select_related("repository")
    if not (user.is_staff or is_auditor(user)):
        reviews = reviews.filter(repository__in=repositories_owned_by(user))
    return reviews.order_by("-closed_at", "-opened_at", "-id")


def review_for_viewer(user: User, review_id: int) -> AccessReview:
    """The review, for its repository's owners, auditors and staff; 404 for anyone else."""
    review = AccessReview.objects.select_related("repository").filter(pk=review_id).first()
    if review is None:
        raise Http404("No such review")
    if not (
        user.is_staff or is_auditor(user) or review.repository.owners_group in group_names_of(user)
    ):
        raise Http404("No such review")
    return review


def reviews_past_deadline(*, now: datetime) -> QuerySet[AccessReview]:
    return AccessReview.objects.filter(closed_at__isnull=True, deadline__lte=now).order_by("id")


def reviews_near_deadline(*, now: datetime, before: timedelta) -> QuerySet[AccessReview]:
    """Open reviews whose deadline is within `before`, whose owners were not reminded yet."""
    reminded = Notification.objects.filter(
        kind=NotificationKind.REVIEW_DUE, occasion="before-deadline"
    ).values("review")
    return (
        AccessReview.objects.filter(
            closed_at__isnull=True, deadline__gt=now, deadline__lte=now + before
        )
        .exclude(Q(pk__in=reminded))
        .select_related("repository")
        .order_by("id")
    )
