"""An audit chain an insider cannot rewrite quietly (issue 16, item 6): the hashes are keyed
with PORTAL_AUDIT_KEY, which the database never holds, and signed checkpoints kept outside the
database catch a rewrite or a cut-off tail even by someone who edits the chain head too."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from delegations import services
from delegations.audit.chain import Breakage, audit_chain_verify, hash_content, utc_timestamp
from delegations.audit.checkpoints import checkpoint_problem, checkpoints_in
from delegations.models import AuditChainHead, AuditEvent
from tests.factories import make_user, submit_request

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def chain(repository, people):
    """A few events: requests asked and withdrawn."""
    for _ in range(3):
        request = submit_request(repository, people["bob"], team="qa")
        services.request_withdraw(request_id=request.pk, acting_user=people["bob"])
    return list(AuditEvent.objects.order_by("id"))


def rehash_from(event_id: int, *, key: bytes | None) -> None:
    """What an insider with database access does after editing event `event_id`: recompute
    every hash from there on (with whatever key they have) and move the chain head."""
    previous = (
        AuditEvent.objects.filter(id__lt=event_id)
        .order_by("-id")
        .values_list("hash", flat=True)
        .first()
    )
    for event in AuditEvent.objects.filter(id__gte=event_id).order_by("id"):
        event.previous_hash = previous or "0" * 64
        event.hash = hash_content(
            key=key,
            previous_hash=event.previous_hash,
            created_at=utc_timestamp(event.created_at),
            actor=event.actor_name,
            action=event.action,
            request=event.request_id,
            repository=event.repository_id,
            details=event.details,
        )
        event.save()
        previous = event.hash
    AuditChainHead.objects.update(last_hash=previous)


def test_an_edit_rehashed_without_the_key_is_found(chain):
    target = chain[2]
    AuditEvent.objects.filter(pk=target.pk).update(actor_name="nobody")
    for key in (None, b"a guess at the key, 32 characters!"):
        rehash_from(target.pk, key=key)
        broken = audit_chain_verify().broken
        assert broken is not None
        assert (broken.problem, broken.event_id) == (Breakage.CONTENT_CHANGED, target.pk)
    with pytest.raises(CommandError, match=f"Event #{target.pk}"):
        call_command("audit_verify")


def checkpoint_file(tmp_path, name="checkpoint.log"):
    checkpoint = services.audit_checkpoint_issue()
    path = tmp_path / name
    path.write_text(
        json.dumps({"message": "audit checkpoint", "checkpoint": json.dumps(checkpoint)}) + "\n"
    )
    return path, checkpoint


def test_a_checkpoint_catches_a_rewrite_even_with_the_key(chain, tmp_path, settings):
    path, _ = checkpoint_file(tmp_path)
    call_command("audit_verify", "--checkpoint", str(path))

    # An insider who also has the key (say, from the web server's environment) rewrites an
    # event and re-hashes the rest: the chain itself then verifies, the checkpoint does not.
    target = chain[1]
    AuditEvent.objects.filter(pk=target.pk).update(details={"comment": "rewritten"})
    rehash_from(target.pk, key=settings.PORTAL_AUDIT_KEY.encode())
    assert audit_chain_verify().intact
    with pytest.raises(CommandError, match="no longer has the hash it had"):
        call_command("audit_verify", "--checkpoint", str(path))


def test_a_checkpoint_catches_deleted_newest_events_and_the_head_moved_back(chain, tmp_path):
    path, checkpoint = checkpoint_file(tmp_path)
    newest = chain[-2:]
    AuditEvent.objects.filter(pk__in=[event.pk for event in newest]).delete()
    AuditChainHead.objects.update(last_hash=chain[-3].hash)  # the cut hidden from the chain
    assert audit_chain_verify().intact

    with pytest.raises(CommandError, match=rf"event #{chain[-1].pk}, the newest at .* is gone"):
        call_command("audit_verify", "--checkpoint", str(path))
    assert checkpoint["last_event_id"] == chain[-1].pk


def test_checkpoints_go_to_the_log_and_the_auditors_and_cannot_be_forged(chain, settings, caplog):
    settings.PORTAL_AUDIT_EMAIL = "auditors@example.org"
    mail.outbox.clear()
    with caplog.at_level("INFO", logger="delegations.audit.checkpoints"):
        checkpoint = services.audit_checkpoint_issue()

    (logged,) = [
        record for record in caplog.records if record.name == "delegations.audit.checkpoints"
    ]
    assert checkpoints_in(logged.getMessage()) == [checkpoint]
    (sent,) = mail.outbox
    assert sent.to == ["auditors@example.org"]
    assert checkpoints_in(sent.body) == [checkpoint]
    assert checkpoint["events"] == len(chain)
    assert checkpoint_problem(checkpoint) is None

    forged = {**checkpoint, "events": checkpoint["events"] - 1}
    assert "signature does not hold" in checkpoint_problem(forged)
    signed_without_key = {**checkpoint, "signature": hashlib.sha256(b"x").hexdigest()}
    assert "signature does not hold" in checkpoint_problem(signed_without_key)


def test_admin_changes_to_users_and_groups_are_in_the_chain(admin_client, repository):
    bob = make_user("bobby", teams=("qa",))
    owners, _ = Group.objects.get_or_create(name=repository.owners_group)
    page = admin_client.get(reverse("admin:auth_user_change", args=[bob.pk]))
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(
        username="bobby",
        groups=[group.pk for group in bob.groups.all()] + [owners.pk],
        is_active="on",
        date_joined_0=timezone.now().date().isoformat(),
        date_joined_1="00:00:00",
        last_login_0="",
        last_login_1="",
    )
    data.pop("user_permissions", None)
    data.pop("password", None)
    answer = admin_client.post(reverse("admin:auth_user_change", args=[bob.pk]), data)
    assert answer.status_code == 302, answer.content.decode()[:2000]

    added = AuditEvent.objects.get(action="admin.membership_changed")
    assert added.actor_name == "admin"
    assert added.details == {"user": "bobby", "group": owners.name, "change": "added"}
    assert audit_chain_verify().intact
    # A change outside the admin (the login's last_login, a command) is not an admin change.
    recorded = AuditEvent.objects.filter(action__startswith="admin.").count()
    bob.groups.remove(owners)
    bob.save()
    assert AuditEvent.objects.filter(action__startswith="admin.").count() == recorded


@pytest.mark.django_db(transaction=True)
def test_the_migration_keys_an_intact_plain_chain_and_refuses_a_broken_one(settings):
    executor = MigrationExecutor(connection)
    executor.migrate([("delegations", "0016_lockouts_and_sessions")])
    try:
        old = executor.loader.project_state([("delegations", "0016_lockouts_and_sessions")]).apps
        events, heads = (
            old.get_model("delegations", "AuditEvent"),
            old.get_model("delegations", "AuditChainHead"),
        )
        previous = "0" * 64
        for number in range(3):
            now = timezone.now()
            content = {
                "created_at": utc_timestamp(now),
                "actor": "alice",
                "action": "request.approved",
                "request": None,
                "repository": None,
                "details": {"n": number},
            }
            digest = hash_content(key=None, previous_hash=previous, **content)
            events.objects.create(
                created_at=now,
                actor_name="alice",
                action="request.approved",
                details={"n": number},
                previous_hash=previous,
                hash=digest,
            )
            previous = digest
        heads.objects.update_or_create(pk=1, defaults={"last_hash": previous})

        executor = MigrationExecutor(connection)
        executor.migrate([("delegations", "0017_keyed_audit_chain")])

        assert audit_chain_verify().intact
        marker = AuditEvent.objects.latest("id")
        assert marker.action == "audit.chain_keyed"
        assert marker.details == {"events": 3, "plain_head": previous}

        # Back, break the plain chain, and the migration refuses to key it.
        executor = MigrationExecutor(connection)
        executor.migrate([("delegations", "0016_lockouts_and_sessions")])
        AuditEvent.objects.all().delete()
        events.objects.create(
            created_at=timezone.now(),
            actor_name="mallory",
            action="request.approved",
            details={},
            previous_hash="0" * 64,
            hash="f" * 64,
        )
        executor = MigrationExecutor(connection)
        with pytest.raises(RuntimeError, match="audit chain is broken at event"):
            executor.migrate([("delegations", "0017_keyed_audit_chain")])
    finally:
        AuditEvent.objects.all().delete()
        AuditChainHead.objects.all().delete()
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
