"""A busy portal's database for bench/approval_queue.py: 10,000 requests and what goes with them.

Inserted with `bulk_create` rather than through the services (10,000 submissions would take
minutes); see that script's docstring for what it holds.
"""

from __future__ import annotations

import hashlib
import io
import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization

from bench import in_process
from delegations.demo.bundles import ClientCA

OWNER = "alice"
CO_OWNER = "olga"
OTHER_OWNER = "oscar"
TEAMS = ("qa", "dev", "it-ops", "sec", "web")
MEMBERS = 800
# Of all requests: this share pending for alice's repositories, this share pending for oscar's;
# the rest are closed (decided, withdrawn, expired...) and spread over all the repositories.
OWNER_PENDING_SHARE = 0.7
OTHER_PENDING_SHARE = 0.1
CLOSED_STATUSES = ("delegated", "rejected", "withdrawn", "expired", "revoked", "superseded")
# Requests are spread over this much of the past: pending ones expire after 7 days by default.
SPREAD = timedelta(days=6)
REASON = "I sign the {name} images our team builds for the release pipeline (ticket OPS-{n})."
BATCH = 1000


@contextmanager
def timestamps_as_given(*models) -> Iterator[None]:
    """Lets `bulk_create` keep the created_at / updated_at the bench sets.

    auto_now and auto_now_add overwrite them with the current time on insert, which would give
    all 10,000 requests the same age and the queue's oldest-first order nothing to sort.
    """
    fields = [
        field
        for model in models
        for field in model._meta.concrete_fields
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ]
    saved = [(field, field.auto_now, field.auto_now_add) for field in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


@dataclass
class Dataset:
    """What the bench inserted, for the report."""

    requests: int
    statuses: dict[str, int]
    owner_pending: int
    decisions: int
    audit_events: int
    repositories: int
    members: int


class BusyQueue:
    """Fills the (migrated, empty) database of the portal in this process."""

    def __init__(self, ca: ClientCA, closed_url: str, rng: random.Random) -> None:
        self.ca = ca
        self.closed_url = closed_url
        self.random = rng

    def populate(self, *, total: int) -> Dataset:
        return self._populate(self.ca, self.closed_url, total=total)

    def _populate(self, ca: ClientCA, closed_url: str, *, total: int) -> Dataset:
        from django.db import transaction

        from delegations.models import AuditEvent

        with transaction.atomic():
            owners = {
                name: in_process.create_user(name, groups=[])
                for name in (OWNER, CO_OWNER, OTHER_OWNER)
            }
            ours, theirs = self._repositories(owners, closed_url)
            members = self._members()
            requests = self._requests(ca, ours, theirs, members, total=total)
            decisions = self._decisions(requests, ours, owners)
            self._audit(requests, decisions)
        statuses: dict[str, int] = {}
        for request in requests:
            statuses[request.status] = statuses.get(request.status, 0) + 1
        owned = {repository.pk for repository in ours}
        return Dataset(
            requests=len(requests),
            statuses=statuses,
            owner_pending=sum(r.status == "pending" and r.repository_id in owned for r in requests),
            decisions=len(decisions),
            audit_events=AuditEvent.objects.count(),
            repositories=len(ours) + len(theirs),
            members=len(members),
        )

    def _repositories(self, owners: dict, closed_url: str) -> tuple[list, list]:
        """Registered through the service (a dozen, with their audit events); trust is
        marked initialised without Notary, which the queue never asks."""
        from django.contrib.auth.models import Group

        from delegations import services
        from delegations.models import Repository

        def register(namespace: str, name: str, owner_names: tuple[str, ...]):
            group = f"owners:{namespace}/{name}"
            for owner_name in owner_names:
                owners[owner_name].groups.add(Group.objects.get_or_create(name=group)[0])
            return services.repository_register(
                dtr_host="dtr.example.org",
                namespace=namespace,
                name=name,
                notary_url=closed_url,
                owners_group=group,
            )

        ours = [register("web", "nginx", (OWNER, CO_OWNER))] + [
            register(namespace, name, (OWNER,))
            for namespace, name in (
                ("web", "frontend"),
                ("web", "assets"),
                ("data", "postgres"),
                ("data", "redis"),
                ("data", "kafka"),
                ("ops", "prometheus"),
                ("ops", "grafana"),
            )
        ]
        theirs = [
            register("platform", name, (OTHER_OWNER,))
            for name in ("api", "gateway", "scheduler", "billing")
        ]
        # Two approvals on the repository olga co-owns; set directly, as the admin would.
        Repository.objects.filter(pk=ours[0].pk).update(approvals_required=2)
        Repository.objects.update(trust_initialised_at=datetime.now(UTC))
        return ours, theirs

    def _members(self) -> list[tuple[object, tuple[str, ...]]]:
        """Members with one or two teams each, in bulk: (user, teams)."""
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.hashers import make_password
        from django.contrib.auth.models import Group

        user_model = get_user_model()
        unusable = make_password(None)  # what create_user(password=None) sets
        team_groups = {
            team: Group.objects.create(name=settings.PORTAL_TEAM_GROUP_PREFIX + team)
            for team in TEAMS
        }
        users = user_model.objects.bulk_create(
            [
                user_model(
                    username=f"member{number:04d}",
                    email=f"member{number:04d}@example.org",
                    password=unusable,
                )
                for number in range(MEMBERS)
            ],
            batch_size=BATCH,
        )
        memberships, members = [], []
        for index, user in enumerate(users):
            teams = (TEAMS[index % len(TEAMS)],)
            if index % 3 == 0:
                teams += (TEAMS[(index + 1) % len(TEAMS)],)
            members.append((user, teams))
            memberships += [
                user_model.groups.through(user_id=user.pk, group_id=team_groups[team].pk)
                for team in teams
            ]
        user_model.groups.through.objects.bulk_create(memberships, batch_size=BATCH)
        return members

    def _requests(self, ca: ClientCA, ours: list, theirs: list, members: list, *, total: int):
        """`total` requests, each a distinct (repository, member, team) for the open ones, as the
        partial unique constraints demand, with key IDs of its own."""
        from delegations.intake.certificates import inspect_certificate
        from delegations.models import DelegationRequest

        now = datetime.now(UTC)
        certificate, _ = ca.issue("member0000", now=now)
        info = inspect_certificate(certificate.public_bytes(serialization.Encoding.PEM), now=now)
        owner_pending = int(total * OWNER_PENDING_SHARE)
        other_pending = int(total * OTHER_PENDING_SHARE)
        slots = {
            "ours": [(r, u, t) for r in ours for u, teams in members for t in teams],
            "theirs": [(r, u, t) for r in theirs for u, teams in members for t in teams],
        }
        if owner_pending > len(slots["ours"]) or other_pending > len(slots["theirs"]):
            raise SystemExit(f"{total} requests need more members than {MEMBERS}")
        for choices in slots.values():
            self.random.shuffle(choices)
        chosen = [(*slot, "pending") for slot in slots["ours"][:owner_pending]]
        chosen += [(*slot, "pending") for slot in slots["theirs"][:other_pending]]
        everywhere = ours + theirs
        for _ in range(total - len(chosen)):
            user, teams = self.random.choice(members)
            status = self.random.choice(CLOSED_STATUSES)
            chosen.append((self.random.choice(everywhere), user, self.random.choice(teams), status))
        # Oldest first is the queue's order: ages drawn at random, ids in order of age.
        ages = sorted((self.random.random() * SPREAD for _ in chosen), reverse=True)
        self.random.shuffle(chosen)
        rows = []
        for number, ((repository, user, team, status), age) in enumerate(
            zip(chosen, ages, strict=True)
        ):
            key = hashlib.sha256(f"bench key {number}".encode()).hexdigest()
            created = now - age
            rows.append(
                DelegationRequest(
                    requester=user,
                    repository=repository,
                    team=team,
                    reason=REASON.format(name=repository.name, n=1000 + number),
                    certificate_pem=info.pem,
                    keytype=info.keytype,
                    tuf_key_id=hashlib.sha256(key.encode()).hexdigest(),
                    canonical_key_id=key,
                    certificate_sha256=hashlib.sha256(f"bench cert {number}".encode()).hexdigest(),
                    subject=f"CN={user.username}",
                    issuer=info.issuer,
                    not_before=info.not_before,
                    not_after=info.not_after,
                    key_description=info.key_description,
                    # One in ten was taken while proof of possession was not required.
                    possession_nonce=None if number % 10 == 0 else secrets.token_hex(16),
                    status=status,
                    created_at=created,
                    updated_at=created if status == "pending" else created + timedelta(hours=2),
                )
            )
        with timestamps_as_given(DelegationRequest):
            return DelegationRequest.objects.bulk_create(rows, batch_size=BATCH)

    def _decisions(self, requests: list, ours: list, owners: dict) -> list:
        """The owner decisions behind the decided requests, and a first approval (olga's) on a
        third of the pending requests of the repository that needs two."""
        from delegations.models import Decision

        shared, owned = ours[0], {repository.pk for repository in ours}
        rows = []
        for request in requests:
            verdict = {"delegated": "approve", "revoked": "approve", "superseded": "approve",
                       "rejected": "reject"}.get(request.status)  # fmt: skip
            if request.status == "pending" and request.repository_id == shared.pk:
                verdict = "approve" if request.pk % 3 == 0 else None
                owner = owners[CO_OWNER]
            else:
                owner = owners[OWNER if request.repository_id in owned else OTHER_OWNER]
            if verdict:
                rows.append(
                    Decision(
                        request=request,
                        owner=owner,
                        verdict=verdict,
                        comment="" if verdict == "approve" else "Use your team's bundle.",
                        created_at=request.created_at + timedelta(hours=1),
                    )
                )
        with timestamps_as_given(Decision):
            return Decision.objects.bulk_create(rows, batch_size=BATCH)

    def _audit(self, requests: list, decisions: list) -> None:
        """A submission event for every request and one per decision, appended in time order to
        the chain the repositories' registration began, with hashes that verify."""
        from django.contrib.auth import get_user_model

        from delegations.audit.chain import hash_of
        from delegations.models import AuditChainHead, AuditEvent

        names = dict(get_user_model().objects.values_list("pk", "username"))
        timeline = [
            (
                request.created_at,
                AuditEvent(
                    created_at=request.created_at,
                    actor_id=request.requester_id,
                    actor_name=names[request.requester_id],
                    action="request.submitted",
                    request_id=request.pk,
                    repository_id=request.repository_id,
                    details={
                        "team": request.team,
                        "key_ids": [request.canonical_key_id],
                        "certificate_sha256": request.certificate_sha256,
                    },
                ),
            )
            for request in requests
        ]
        by_pk = {request.pk: request for request in requests}
        timeline += [
            (
                decision.created_at,
                AuditEvent(
                    created_at=decision.created_at,
                    actor_id=decision.owner_id,
                    actor_name=names[decision.owner_id],
                    action=f"request.{decision.verdict}",
                    request_id=decision.request_id,
                    repository_id=by_pk[decision.request_id].repository_id,
                    details={"comment": decision.comment},
                ),
            )
            for decision in decisions
        ]
        timeline.sort(key=lambda entry: entry[0])
        head = AuditChainHead.objects.get(pk=1)
        events = []
        for _, event in timeline:
            event.previous_hash = head.last_hash
            event.hash = hash_of(event)
            head.last_hash = event.hash
            events.append(event)
        AuditEvent.objects.bulk_create(events, batch_size=BATCH)
        head.save()


def check_audit_chain() -> str:
    """What `manage.py audit_verify` says of the log built here; it fails loudly if broken."""
    from django.core.management import call_command

    output = io.StringIO()
    call_command("audit_verify", stdout=output)
    return output.getvalue().strip()
