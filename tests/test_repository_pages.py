"""The repository pages: registrars register (creating the repository in DTR, the stand-in),
owners run theirs (initialise trust, settings, teams' DTR access), and nobody sees another's."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from delegations import services
from delegations.models import AuditEvent, Repository, TeamAccessGrant
from stack.dtr_standin import DtrStandIn
from tests.conftest import DTR_SERVICE_ACCOUNT as SERVICE
from tests.factories import make_user, submit_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def known_dtr(dtr, notary_url):
    """A repository an administrator registered on dtr.example.org: registrars may add more on
    that DTR, with its servers."""
    return services.repository_register(
        dtr_host="dtr.example.org",
        namespace="dev",
        name="nginx",
        notary_url=notary_url,
        dtr_url=dtr.url,
        owners_group="owners:dev/nginx",
    )


@pytest.fixture
def registrar():
    return make_user("rita", teams=("it-ops",), owns=("registrars", "owners:dev/redis"))


def register_form(dtr: DtrStandIn, notary_url: str, **overrides: object) -> dict[str, object]:
    return {
        "dtr_host": "dtr.example.org",
        "namespace": "dev",
        "name": "redis",
        "notary_url": notary_url,
        "dtr_url": dtr.url,
        "owners_group": "owners:dev/redis",
        "approvals_required": 1,
        "create_in_dtr": "on",
        **overrides,
    }


def test_a_registrar_registers_creates_in_dtr_and_initialises_trust(
    client,
    dtr,
    known_dtr,
    registrar,
    notary_url,
    notary_cli,
    run_jobs,
    django_capture_on_commit_callbacks,
):
    # The notary-server is shared by the session: a namespace of its own keeps the GUN new.
    namespace = f"dev{uuid.uuid4().hex[:6]}"
    dtr.organisation_add(namespace, admins=(SERVICE,))
    client.force_login(registrar)
    assert "Register a repository" in client.get(reverse("delegations:repository_list")).text

    # The servers come from the DTR the portal knows, whatever the form says.
    answer = client.post(
        reverse("delegations:repository_register"),
        register_form(dtr, "https://attacker.example.net", namespace=namespace),
    )

    repository = Repository.objects.get(namespace=namespace, name="redis")
    assert (repository.notary_url, repository.dtr_url) == (notary_url, dtr.url)
    assert answer.status_code == 302
    assert answer.url == reverse("delegations:repository_detail", args=[repository.pk])
    created = dtr.repositories[(namespace, "redis")]
    assert created.visibility == "private"
    event = AuditEvent.objects.get(action="repository.registered", repository=repository)
    assert event.details["created_in_dtr"] is True
    assert event.actor_name == "rita"

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("delegations:repository_initialise", args=[repository.pk]))
    run_jobs()
    repository.refresh_from_db()
    assert repository.trust_initialised_at is not None
    assert sorted(repository.keys.values_list("role", flat=True)) == ["root", "targets"]
    listed = notary_cli.run("list", repository.gun)  # the CLI reads and verifies it
    assert "No targets present" in listed.stdout + listed.stderr
    page = client.get(reverse("delegations:repository_detail", args=[repository.pk])).text
    assert "made by the portal" in page
    assert AuditEvent.objects.filter(action="repository.trust_initialisation_requested").exists()


def test_bad_input_is_refused_on_the_form_and_nothing_is_registered(
    client, dtr, known_dtr, registrar, notary_url
):
    client.force_login(registrar)
    for overrides, message in (
        ({"name": "Redis!"}, "is not a repository name DTR accepts"),
        ({"namespace": "nobody"}, "NO_SUCH_ACCOUNT"),
        ({"dtr_host": "dtr example"}, "is not a host name"),
        ({"dtr_host": "dtr.elsewhere.net"}, "The portal knows no DTR at dtr.elsewhere.net"),
    ):
        page = client.post(
            reverse("delegations:repository_register"),
            register_form(dtr, notary_url, **overrides),
        )
        assert page.status_code == 400
        assert message in page.text
    assert list(Repository.objects.all()) == [known_dtr]
    assert not dtr.repositories


def test_members_who_are_not_registrars_cannot_register(client, repository, people):
    client.force_login(people["bob"])
    assert client.get(reverse("delegations:repository_register")).status_code == 403
    assert client.get(reverse("delegations:repository_list")).status_code == 403
    assert "Repositories</a>" not in client.get(reverse("delegations:request_list")).text

    client.force_login(people["alice"])  # an owner, not a registrar
    listing = client.get(reverse("delegations:repository_list")).text
    assert repository.gun in listing
    assert "Register a repository" not in listing


def test_an_owner_sees_and_changes_only_their_repositories(client, repository, people, stranger):
    other = Repository.objects.exclude(pk=repository.pk).get()
    client.force_login(stranger)
    detail = reverse("delegations:repository_detail", args=[repository.pk])
    assert client.get(detail).status_code == 404
    assert client.post(detail, {"owners_group": "mine", "approvals_required": 1}).status_code == 404
    assert client.get(reverse("delegations:repository_detail", args=[other.pk])).status_code == 200

    client.force_login(people["alice"])
    # The whole form, as the page posts it.
    unchanged = {
        "owners_group": repository.owners_group,
        "approvals_required": 1,
        "review_deadline_days": 14,
        "review_unreviewed": "keep",
    }
    answer = client.post(detail, {**unchanged, "approvals_required": 2})
    assert answer.status_code == 302
    repository.refresh_from_db()
    assert repository.approvals_required == 2
    event = AuditEvent.objects.get(action="repository.updated")
    assert event.details == {"approvals_required": {"from": 1, "to": 2}}

    # How long delegations last and how often they are reviewed, with what the page refuses.
    lifetimes = {"max_delegation_days": 90, "default_delegation_days": 30}
    reviews = {"review_interval_days": 90, "review_deadline_days": 10, "review_unreviewed": "end"}
    refused = client.post(detail, {**unchanged, **lifetimes, "default_delegation_days": 91})
    assert refused.status_code == 400
    assert "cannot be longer than the longest" in refused.content.decode()
    refused = client.post(detail, {**unchanged, **reviews, "review_deadline_days": 91})
    assert refused.status_code == 400
    assert "fewer days to finish it than between reviews" in refused.content.decode()
    assert client.post(detail, {**unchanged, **lifetimes, **reviews}).status_code == 302
    repository.refresh_from_db()
    assert (repository.max_delegation_days, repository.default_delegation_days) == (90, 30)
    assert (repository.review_interval_days, repository.review_unreviewed) == (90, "end")


def test_removing_a_teams_access_asks_for_confirmation_while_members_sign(
    client, dtr, repository, people, run_jobs, django_capture_on_commit_callbacks
):
    dtr.organisation_add(repository.namespace, teams=("qa",), admins=(SERVICE,))
    dtr.repository_add(repository.namespace, repository.name)
    Repository.objects.filter(pk=repository.pk).update(dtr_url=dtr.url)
    request = submit_request(repository, people["bob"])
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=request.pk, acting_user=people["alice"])
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            run_jobs()
    assert dtr.team_access(repository.namespace, repository.name) == {"qa": "read-write"}
    client.force_login(people["alice"])
    remove = reverse("delegations:team_access_remove", args=[repository.pk])
    detail = reverse("delegations:repository_detail", args=[repository.pk])
    assert "read-write" in client.get(detail).text

    refused = client.post(remove, {"team": "qa"}, follow=True).text
    assert "1 member(s) of team qa still hold a delegation" in refused
    assert dtr.team_access(repository.namespace, repository.name) == {"qa": "read-write"}

    client.post(remove, {"team": "qa", "confirm": "yes"})
    assert dtr.team_access(repository.namespace, repository.name) == {}
    assert not TeamAccessGrant.objects.exists()
    event = AuditEvent.objects.get(action="dtr.team_access_removed")
    assert event.details == {"team": "qa", "active_delegations": 1}
    assert event.actor_name == "alice"
