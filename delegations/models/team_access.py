"""A team's push access to a repository in DTR, which the worker grants once a member of the
team is delegated: without it a member can sign but not push what they signed."""

from __future__ import annotations

from django.db import models

from .repositories import Repository
from .requests import DelegationRequest


class TeamAccessStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # the worker is on it (or waits out DTR's outage)
    GRANTED = "granted", "Granted"
    FAILED = "failed", "Failed"  # DTR refused for good: a person has to act on `reason`


class TeamAccessGrant(models.Model):
    """Whether a team can push to a repository in DTR, as far as the portal made sure.

    One row per repository and team: access is the team's, so a member's delegation ending
    never takes it away (an owner removes it). Every new delegation of the team asks again, so
    a grant someone removed in DTR meanwhile comes back with the next member."""

    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="team_access_grants"
    )
    team = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=TeamAccessStatus.choices)
    # The level DTR holds for the team once granted: read-write, or a stronger grant left as is.
    level = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True, help_text="Why the last attempt did not succeed")
    # The request whose delegation asked last: its page shows the access, its emails tell.
    request = models.ForeignKey(
        DelegationRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "team"], name="unique_team_access")
        ]
        indexes = [models.Index(fields=["status", "retry_at"], name="team_access_due")]

    def __str__(self) -> str:
        return f"team {self.team} on {self.repository}: {self.status}"
