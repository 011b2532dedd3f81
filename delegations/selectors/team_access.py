"""Teams' push access in DTR as the portal last made sure of it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from ..models import TeamAccessGrant, TeamAccessStatus


def team_access_of(*, repository_id: int, team: str) -> TeamAccessGrant | None:
    """The team's access to the repository, or None when the portal never asked DTR for it."""
    return TeamAccessGrant.objects.filter(repository_id=repository_id, team=team).first()


def team_access_due_ids(*, now: datetime, quiet_for: timedelta) -> list[int]:
    """Grants still to be made whose back-off is over, or whose job was queued `quiet_for` ago
    and never ran (lost with Redis, say)."""
    due = Q(retry_at__lte=now) | Q(retry_at__isnull=True, updated_at__lt=now - quiet_for)
    return list(
        TeamAccessGrant.objects.filter(due, status=TeamAccessStatus.PENDING)
        .order_by("id")
        .values_list("id", flat=True)
    )
