"""Renewing a delegation with a reissued bundle: the new key goes in and the old one leaves in
one publish, checked with the notary CLI."""

from __future__ import annotations

import pytest
from django.urls import reverse

from delegations import services
from delegations.exceptions import InvalidInput, NotAllowed
from delegations.instructions import signing_steps
from delegations.models import AuditEvent, Delegation, DelegationRequest, EndReason, RequestStatus
from tests.factories import make_bundle, make_user, signed_form_data, submission

pytestmark = [pytest.mark.django_db, pytest.mark.services]

NO_SIGNING_KEY = "could not find necessary signing keys"


@pytest.fixture
def delegate(people, run_jobs, django_capture_on_commit_callbacks):
    """Submit, approve and apply: what a member has after their request went through."""

    def delegate(repository, member, bundle, **changes) -> DelegationRequest:
        request = services.request_submit(
            **{**submission(repository, member, bundle=bundle), **changes}
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.request_approve(request_id=request.pk, acting_user=people["alice"])
        run_jobs()
        request.refresh_from_db()
        assert request.status == RequestStatus.DELEGATED, request.failure_reason
        return request

    return delegate


def test_a_renewal_replaces_the_key_in_one_publish(repository, people, notary_cli, delegate):
    bob = people["bob"]
    old_bundle, new_bundle = make_bundle("bob"), make_bundle("bob")
    first = delegate(repository, bob, old_bundle)
    carol = make_user("carol", teams=("qa",))
    other = delegate(repository, carol, make_bundle("carol"))
    notary_cli.sign(
        repository.gun, person="bob", key_pem=old_bundle.key_pem, tag="v1", roles=["targets/qa"]
    )

    renewal = delegate(repository, bob, new_bundle, renews=first.delegation)

    roles = notary_cli.delegations(repository.gun)
    for role in ("targets/releases", "targets/qa"):
        assert renewal.canonical_key_id in roles[role]["keys"]
        assert first.canonical_key_id not in roles[role]["keys"]
        assert other.canonical_key_id in roles[role]["keys"]  # carol untouched
    delegated = AuditEvent.objects.get(request=renewal, action="request.delegated")
    published = AuditEvent.objects.get(pk=delegated.details["published_in"])
    assert published.details["requests"] == [renewal.pk]
    # One publish: the targets version moved by exactly one.
    assert published.details["targets_version_after"] == (
        published.details["targets_version_before"] + 1
    )
    first.refresh_from_db()
    assert first.status == RequestStatus.SUPERSEDED
    ended = Delegation.objects.get(request=first)
    assert ended.end_reason == EndReason.REPLACED
    assert Delegation.objects.get(request=renewal).is_active

    # The old key signed targets/qa.json last, so it stops verifying: the new key vouches for
    # it first, as the portal's signing steps for a renewal say; then the new key signs.
    witness = f"witness -p {repository.gun} targets/releases targets/qa"
    assert any(witness in step.command for step in signing_steps(renewal))
    notary_cli.run("key", "import", str(_key_file(notary_cli, new_bundle)), person="bob-new")
    notary_cli.run("witness", "-p", repository.gun, "targets/qa", person="bob-new")
    assert "v2" in notary_cli.sign(
        repository.gun, person="bob-new", key_pem=new_bundle.key_pem, tag="v2",
        roles=["targets/qa"],
    )  # fmt: skip
    refused = notary_cli.run(
        "add", "-p", repository.gun, "v3", str(notary_cli.home / "bob-v1.txt"),
        "--roles", "targets/qa", person="bob", check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert NO_SIGNING_KEY in refused.stderr + refused.stdout


def test_a_reissued_certificate_for_the_same_key_renews_too(
    repository, people, notary_cli, delegate
):
    bundle = make_bundle("bob")
    first = delegate(repository, people["bob"], bundle)
    reissued = make_bundle("bob", same_key_as=bundle)
    renewal = delegate(repository, people["bob"], reissued, renews=first.delegation)
    assert renewal.canonical_key_id == first.canonical_key_id
    roles = notary_cli.delegations(repository.gun)
    assert roles["targets/qa"]["keys"] == [renewal.canonical_key_id]
    assert Delegation.objects.get(request=first).end_reason == EndReason.REPLACED


def test_only_the_holder_renews_an_active_delegation_of_the_same_repository_and_team(
    repository, people, delegate
):
    first = delegate(repository, people["bob"], make_bundle("bob"))
    olga = people["olga"]  # an owner, and in qa too
    with pytest.raises(NotAllowed):
        services.request_submit(
            **submission(repository, olga, bundle=make_bundle("olga")), renews=first.delegation
        )
    people["bob"].groups.add(*make_user("devteam", teams=("dev",)).groups.all())
    with pytest.raises(InvalidInput, match="keeps the delegation's repository and team"):
        services.request_submit(
            **submission(repository, people["bob"], team="dev"), renews=first.delegation
        )


def test_the_member_renews_from_the_request_page(client, repository, people, delegate):
    first = delegate(repository, people["bob"], make_bundle("bob"))
    client.force_login(people["bob"])
    page = client.get(reverse("delegations:request_detail", args=[first.pk])).content.decode()
    renew_url = reverse("delegations:delegation_renew", args=[first.delegation.pk])
    assert f'href="{renew_url}">Renew</a>' in page

    form = client.get(renew_url).content.decode()
    assert "Renew delegation" in form
    data = signed_form_data(client, repository, make_bundle("bob"))
    data["repository"], data["team"] = 999, "dev"  # ignored: a renewal keeps both
    response = client.post(renew_url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    renewal = DelegationRequest.objects.latest("id")
    assert renewal.renews_id == first.delegation.pk
    assert (renewal.repository_id, renewal.team) == (repository.pk, "qa")
    # One renewal at a time: the page no longer offers another.
    page = client.get(reverse("delegations:request_detail", args=[first.pk])).content.decode()
    assert ">Renew</a>" not in page
    # Nobody else reaches bob's renewal form.
    client.force_login(people["alice"])
    assert client.get(renew_url).status_code == 404


def _key_file(notary_cli, bundle):
    path = notary_cli.home / "bob-new-key.pem"
    path.write_bytes(bundle.key_pem)
    return path


@pytest.mark.parametrize("renewal_state", ["pending", "approved"])
def test_revoking_a_delegation_ends_its_open_renewal(
    repository, people, notary_cli, delegate, renewal_state, run_jobs
):
    # An owner revokes bob's delegation (laptop stolen); his renewal must not put a key back.
    first = delegate(repository, people["bob"], make_bundle("bob"))
    renewal = services.request_submit(
        **submission(repository, people["bob"], bundle=make_bundle("bob")),
        renews=first.delegation,
    )
    if renewal_state == "approved":
        services.request_approve(request_id=renewal.pk, acting_user=people["olga"])

    services.delegation_revoke(
        delegation_id=first.delegation.pk, acting_user=people["alice"], comment="laptop stolen"
    )
    run_jobs()
    services.repository_publish(repository_id=repository.pk)

    renewal.refresh_from_db()
    assert renewal.status == (
        RequestStatus.WITHDRAWN if renewal_state == "pending" else RequestStatus.FAILED
    )
    roles = notary_cli.delegations(repository.gun)
    assert not roles.get("targets/qa", {}).get("keys")
    assert not Delegation.objects.filter(request=renewal).exists()


def test_a_renewal_published_while_its_delegation_was_revoked_inherits_the_end(
    repository, people, notary_cli, delegate
):
    first = delegate(repository, people["bob"], make_bundle("bob"))
    renewal = services.request_submit(
        **submission(repository, people["bob"], bundle=make_bundle("bob")),
        renews=first.delegation,
    )
    services.request_approve(request_id=renewal.pk, acting_user=people["olga"])
    # The worker took the renewal up and sent it, then the revoke came.
    DelegationRequest.objects.filter(pk=renewal.pk).update(
        status=RequestStatus.APPLYING, publish_sent_at=renewal.created_at
    )
    services.delegation_revoke(
        delegation_id=first.delegation.pk, acting_user=people["alice"], comment="laptop stolen"
    )

    services.repository_publish(repository_id=repository.pk)

    renewal.refresh_from_db()
    assert renewal.status == RequestStatus.REVOKED  # delegated, then its inherited end done
    carried = AuditEvent.objects.get(request=renewal, action="delegation.revoke_requested")
    assert carried.details["carried_over_from_delegation"] == first.delegation.pk
    roles = notary_cli.delegations(repository.gun)
    assert not roles.get("targets/qa", {}).get("keys")
    assert not roles.get("targets/releases", {}).get("keys")
