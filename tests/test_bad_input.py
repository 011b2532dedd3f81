"""Bad input found by review (issue 16, item 8): each ends in a clear message, and nothing is
stored, on SQLite and on PostgreSQL."""

from __future__ import annotations

import shlex
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from delegations import directory, services
from delegations.directory import cache as directory_cache
from delegations.exceptions import InvalidInput
from delegations.instructions import signing_steps
from delegations.models import (
    AuditEvent,
    Decision,
    DelegationRequest,
    Repository,
    RequestStatus,
)
from tests.factories import make_bundle, make_user, submit_request

pytestmark = pytest.mark.django_db

KEY_PEM = make_bundle("nobody").key_pem.decode()


def test_a_nul_character_in_any_posted_text_is_refused_with_nothing_stored(
    client, repository, people
):
    request = submit_request(repository, people["bob"])
    client.force_login(people["alice"])
    answer = client.post(
        reverse("delegations:request_reject", args=[request.pk]), {"comment": "no\x00thanks"}
    )
    assert answer.status_code == 400
    assert "NUL character" in answer.content.decode()
    assert not Decision.objects.exists()

    answer = client.get(reverse("delegations:approval_queue"), {"team": "q\x00a"})
    assert answer.status_code == 400

    _, secret = services.api_token_create(user=people["alice"], name="t", expires_days=1)
    answer = client.post(
        reverse("delegations:api_request_reject", args=[request.pk]),
        '{"comment": "no\\u0000thanks"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_input"
    assert DelegationRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING


def test_a_private_key_in_a_comment_is_refused_and_never_echoed(client, repository, people):
    request = submit_request(repository, people["bob"])
    client.force_login(people["alice"])
    page = client.post(
        reverse("delegations:request_reject", args=[request.pk]),
        {"comment": f"here you go\n{KEY_PEM}"},
        follow=True,
    )
    body = page.content.decode()
    assert "contains a private key" in body
    assert KEY_PEM.splitlines()[1] not in body
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(details__icontains="PRIVATE KEY").exists()


def test_a_private_key_in_the_revoke_comment_is_refused_and_not_shown_again(
    client, repository, people
):
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    services.request_apply(request_id=request.pk)
    delegation = DelegationRequest.objects.get(pk=request.pk).delegation
    client.force_login(people["alice"])
    page = client.post(
        reverse("delegations:delegation_revoke", args=[delegation.pk]), {"comment": KEY_PEM}
    )
    body = page.content.decode()
    assert page.status_code == 400
    assert "contains a private key" in body
    assert KEY_PEM.splitlines()[1] not in body
    delegation.refresh_from_db()
    assert not delegation.ending


def test_a_private_key_in_the_root_certificate_field_is_refused_and_not_shown(
    client, admin_client, repository, notary_url
):
    other = services.repository_register(
        dtr_host="dtr.example.org",
        namespace="elsewhere",
        name="app",
        notary_url=notary_url,
        owners_group="owners:elsewhere/app",
    )
    with pytest.raises(InvalidInput, match="contains a private key"):
        services.repository_root_pin(repository_id=other.pk, root_certificate_pem=KEY_PEM)
    page = admin_client.post(
        reverse("admin:delegations_repository_change", args=[other.pk]),
        {
            "notary_url": other.notary_url,
            "dtr_url": "",
            "owners_group": other.owners_group,
            "approvals_required": 1,
            "review_deadline_days": 14,
            "review_unreviewed": "keep",
            "root_certificate_pem": KEY_PEM,
            "keys-TOTAL_FORMS": 0,
            "keys-INITIAL_FORMS": 0,
        },
    )
    body = page.content.decode()
    assert page.status_code == 200  # the form again
    assert "contains a private key" in body
    assert KEY_PEM.splitlines()[1] not in body
    assert Repository.objects.get(pk=other.pk).root_certificate_pem == ""


def test_a_team_name_longer_than_the_column_is_refused(repository, people):
    long_team = "t" * 65
    member = make_user("lenny", teams=(long_team,))
    with pytest.raises(InvalidInput, match="longer than 64 characters") as refused:
        submit_request(repository, member, team=long_team)
    assert refused.value.field == "team"
    assert not DelegationRequest.objects.exists()


def test_values_in_the_signing_commands_are_shell_quoted(repository, people):
    odd = get_user_model().objects.create(username="o'brien $(id)")  # as a directory may name
    odd.groups.add(Group.objects.get(name="team:qa"))
    request = submit_request(repository, odd)
    commands = [step.command for step in signing_steps(request)]
    load = next(command for command in commands if command.startswith("docker trust key load"))
    assert shlex.split(load)[-1] == "o'brien $(id)"
    for command in commands:
        shlex.split(command.replace("<", "").replace(">", ""))  # every line parses as a shell would


def test_moving_the_notary_url_to_another_host_or_to_http_needs_confirmation(repository, people):
    for moved in ("https://elsewhere.example.net", repository.notary_url.replace("https", "http")):
        if moved == repository.notary_url:
            continue
        with pytest.raises(InvalidInput, match="service account") as refused:
            services.repository_update(
                repository_id=repository.pk,
                notary_url=moved,
                owners_group=repository.owners_group,
                approvals_required=1,
            )
        assert refused.value.field == "notary_url"
    assert Repository.objects.get(pk=repository.pk).notary_url == repository.notary_url
    services.repository_update(
        repository_id=repository.pk,
        notary_url="https://elsewhere.example.net",
        owners_group=repository.owners_group,
        approvals_required=1,
        confirm_notary_move=True,
    )
    assert Repository.objects.get(pk=repository.pk).notary_url == "https://elsewhere.example.net"


def test_admin_actions_that_change_trust_need_the_change_permission(client, repository):
    viewer = get_user_model().objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_repository"))
    client.force_login(viewer)
    changelist = reverse("admin:delegations_repository_changelist")
    page = client.get(changelist)
    assert page.status_code == 200
    # Every action on repositories changes trust: none is offered to someone who may only view.
    assert page.context["action_form"] is None
    for action in ("initialise_trust", "import_key", "forget_trust_memory"):
        client.post(changelist, {"action": action, "_selected_action": [repository.pk]})
    assert not AuditEvent.objects.filter(
        action__in=("repository.trust_memory_cleared", "repository.trust_initialisation_requested")
    ).exists()


def test_the_directory_cache_is_not_used_past_its_maximum_age_in_an_outage(settings, monkeypatch):
    settings.PORTAL_DIRECTORY_CACHE_SECONDS = 60
    settings.PORTAL_DIRECTORY_STALE_SECONDS = 600
    directory_cache.clear()
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def down() -> list[str]:
        raise directory.DirectoryUnavailable("the directory is down")

    assert directory_cache.cached(("groups", "bob"), lambda: ["qa"], fresh=False) == ["qa"]
    clock[0] += 300  # an outage, five minutes after the last answer: still used
    assert directory_cache.cached(("groups", "bob"), down, fresh=False) == ["qa"]
    clock[0] += 301  # past the maximum age: the outage shows
    with pytest.raises(directory.DirectoryUnavailable):
        directory_cache.cached(("groups", "bob"), down, fresh=False)
    directory_cache.clear()


def test_approvals_of_someone_who_left_the_owners_group_no_longer_count(repository, people):
    Repository.objects.filter(pk=repository.pk).update(approvals_required=2)
    repository.refresh_from_db()
    carl = make_user("carl", teams=("it-ops",), owns=(repository.owners_group,))
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    people["alice"].groups.remove(Group.objects.get(name=repository.owners_group))

    decided = services.request_approve(request_id=request.pk, acting_user=people["olga"])

    assert decided.status == RequestStatus.PENDING  # alice's approval no longer counts
    counted = AuditEvent.objects.filter(action="request.approval_counted").latest("id")
    assert counted.details["approvals"] == ["olga"]
    decided = services.request_approve(request_id=request.pk, acting_user=carl)
    assert decided.status == RequestStatus.APPROVED
