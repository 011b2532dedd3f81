"""A publish the server may have taken is settled by reading the trust data, never by the error
that followed it; an end is tried until the key is out."""

from __future__ import annotations

import pytest

from delegations import services
from delegations.models import AuditEvent, Delegation, RequestStatus
from delegations.notary import RELEASES
from tests.factories import submit_request
from tests.notary.tampering import TamperingProxy, flip_byte_inside

pytestmark = pytest.mark.django_db

QA = "targets/qa"


@pytest.fixture
def proxied(repository, notary_url):
    """The repository, reached through a proxy that can break answers."""
    with TamperingProxy(notary_url) as proxy:
        repository.notary_url = proxy.url
        repository.save(update_fields=["notary_url"])
        yield repository, proxy


@pytest.fixture
def one_attempt(settings):
    # The last attempt at once: whatever is not failed now is never failed by attempts.
    settings.PORTAL_PUBLISH_ATTEMPTS = 1


def test_a_read_back_broken_after_the_upload_ends_delegated_not_failed(
    proxied, people, notary_cli, one_attempt
):
    repository, proxy = proxied
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])

    def corrupt_after_upload(path: str, body: bytes) -> bytes | None:
        if proxy.posts and path.endswith("/timestamp.json"):
            return flip_byte_inside(body, b'"sig":"')
        return None

    proxy.tamper = corrupt_after_upload
    run = services.repository_publish(repository_id=repository.pk)

    request.refresh_from_db()
    assert proxy.posts == 1
    assert run.failed == []
    assert request.status == RequestStatus.APPLYING
    assert request.publish_sent_at is not None
    # The key is live on the server: the CLI, reading it directly, sees it in both roles.
    roles = notary_cli.delegations(repository.gun)
    assert request.canonical_key_id in roles[RELEASES]["keys"]
    assert request.canonical_key_id in roles[QA]["keys"]

    proxy.tamper = lambda path, body: None
    services.repository_publish(repository_id=repository.pk, now=request.publish_retry_at)

    request.refresh_from_db()
    assert request.status == RequestStatus.DELEGATED
    assert proxy.posts == 1  # settled by reading: not published again
    assert AuditEvent.objects.filter(request=request, action="notary.found_delegated").exists()
    assert Delegation.objects.get(request=request).is_active


def test_an_upload_lost_on_its_way_is_sent_again_never_failed(proxied, people, one_attempt):
    repository, proxy = proxied
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])

    original = proxy.forward

    def lose_posts(method, path, body, headers):
        if method == "POST":
            return 502, "text/plain", b"bad gateway"  # the upload never reached the server
        return original(method, path, body, headers)

    proxy.forward = lose_posts
    services.repository_publish(repository_id=repository.pk)

    request.refresh_from_db()
    assert request.status == RequestStatus.APPLYING  # sent, so only a read may settle it
    assert request.publish_attempts == 1

    proxy.forward = original
    services.repository_publish(repository_id=repository.pk, now=request.publish_retry_at)

    request.refresh_from_db()
    assert request.status == RequestStatus.DELEGATED
    assert proxy.posts == 2


def test_an_end_through_a_long_outage_is_finished_once_notary_is_back(
    proxied, people, notary_cli, one_attempt, rq_queue
):
    repository, proxy = proxied
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    services.repository_publish(repository_id=repository.pk)
    delegation = Delegation.objects.get(request=request)
    services.delegation_revoke(
        delegation_id=delegation.pk, acting_user=people["alice"], comment="laptop stolen"
    )

    proxy.refuse_with = 503
    retry_at = None
    for _ in range(3):  # well past its attempts
        services.repository_publish(repository_id=repository.pk, now=retry_at)
        delegation.refresh_from_db()
        assert delegation.ending == "revoked"  # still being ended, never given up
        assert delegation.ended_at is None
        retry_at = delegation.publish_retry_at
    assert services.waiting_publishes_resume(now=retry_at) == [repository.pk]

    proxy.refuse_with = None
    services.repository_publish(repository_id=repository.pk, now=retry_at)

    delegation.refresh_from_db()
    assert delegation.ended_at is not None
    roles = notary_cli.delegations(repository.gun)
    assert request.canonical_key_id not in roles[RELEASES]["keys"]


def test_a_permanent_error_after_an_unknown_outcome_waits_instead_of_failing(
    proxied, people, one_attempt
):
    repository, proxy = proxied
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=people["alice"])
    proxy.tamper = lambda path, body: (
        flip_byte_inside(body, b'"sig":"')
        if proxy.posts and path.endswith("/timestamp.json")
        else None
    )
    services.repository_publish(repository_id=repository.pk)  # sent; read-back broken
    request.refresh_from_db()
    # Then every read fails for good (a server now serving garbage, say): the key may be live,
    # so the request is not failed for it.
    services.repository_publish(repository_id=repository.pk, now=request.publish_retry_at)

    request.refresh_from_db()
    assert request.status == RequestStatus.APPLYING
    assert request.publish_retry_at is not None
