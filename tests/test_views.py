"""The pages: stable labels, clear errors that store nothing, and who may do what."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from delegations.models import AuditEvent, Decision, DelegationRequest, RequestStatus
from tests.factories import (
    PASSWORD,
    make_bundle,
    make_sha1_certificate,
    make_user,
    signed_form_data,
    submit_request,
)

pytestmark = pytest.mark.django_db


def logged_in(client, user):
    client.force_login(user)
    return client


def form_data(repository, upload: bytes, *, team="qa", reason="nginx releases"):
    return {
        "repository": repository.pk,
        "team": team,
        "reason": reason,
        "certificate": SimpleUploadedFile("cert.pem", upload, "application/x-pem-file"),
    }


def page_text(response) -> str:
    """The page as a person reads it: entities decoded, whitespace collapsed."""
    return html.unescape(re.sub(r"\s+", " ", response.content.decode()))


def test_login_page_has_the_stable_labels_and_logs_in(client, people):
    page = page_text(client.get(reverse("login")))
    assert ">Username</label>" in page
    assert ">Password</label>" in page
    failed = client.post(reverse("login"), {"username": "bob", "password": "wrong"})
    assert "Please enter a correct username and password" in page_text(failed)
    done = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    assert done.status_code == 302


def test_pages_need_a_login(client):
    response = client.get(reverse("delegations:request_create"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_navigation_shows_owner_links_only_to_owners(client, people, repository):
    member = page_text(logged_in(client, people["bob"]).get(reverse("delegations:request_list")))
    assert ">Request delegation</a>" in member
    assert ">My requests</a>" in member
    assert "Approvals" not in member
    assert ">Delegations</a>" not in member

    submit_request(repository, people["bob"])
    owner = page_text(logged_in(client, people["alice"]).get(reverse("delegations:request_list")))
    assert "Approvals" in owner
    assert 'aria-label="1 pending"' in owner
    assert ">Delegations</a>" in owner


def test_request_form_offers_only_the_members_teams(client, people, repository):
    page = page_text(logged_in(client, people["bob"]).get(reverse("delegations:request_create")))
    for label in ("Repository", "Team", "Certificate", "Reason"):
        assert f">{label}</label>" in page
    assert ">Request delegation</button>" in page
    assert '<option value="qa" selected>qa</option>' in page  # bob's only team
    assert "dev" not in re.findall(r'<option value="([^"]*)"', page)
    assert repository.gun in page


def test_with_one_repository_and_one_team_both_are_chosen_already(client, people, repository):
    page = logged_in(client, people["bob"]).get(reverse("delegations:request_create"))
    html = page.content.decode()
    assert re.search(rf'<option value="{repository.pk}"[^>]*\bselected\b', html)
    assert '<option value="qa" selected>qa</option>' in html
    # Someone in two teams chooses.
    page = logged_in(client, make_user("tess", teams=("qa", "dev"))).get(
        reverse("delegations:request_create")
    )
    assert "selected>qa" not in page.content.decode()
    assert "selected>dev" not in page.content.decode()


def test_submitting_a_certificate_opens_a_pending_request(client, people, repository):
    logged_in(client, people["bob"])
    response = client.post(
        reverse("delegations:request_create"),
        signed_form_data(client, repository, make_bundle("bob")),
    )
    request = DelegationRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("delegations:request_detail", args=[request.pk])
    page = page_text(client.get(response["Location"]))
    assert ">Pending</span>" in page
    assert request.canonical_key_id in page
    assert request.tuf_key_id in page
    assert request.canonical_key_id[:12] in page


def bad_uploads(tmp_path):
    now = timezone.now()
    return {
        "private key": (make_bundle("bob").key_pem, "Never upload key.pem"),
        "garbage": (b"\x00\xffnot a certificate" * 10, "This is not a certificate"),
        "expired": (
            make_bundle(
                "bob", not_before=now - timedelta(days=400), not_after=now - timedelta(1)
            ).cert_pem,
            "This certificate expired on",
        ),
        "sha1": (make_sha1_certificate(tmp_path), "signed with SHA1, which Notary refuses"),
        "rsa-1024": (make_bundle("bob", key="rsa", bits=1024).cert_pem, "RSA key of 1024 bits"),
    }


@pytest.mark.parametrize("case", ["private key", "garbage", "expired", "sha1", "rsa-1024"])
def test_bad_certificates_get_a_clear_error_and_nothing_is_stored(
    client, people, repository, tmp_path, case
):
    upload, message = bad_uploads(tmp_path)[case]
    events_before = AuditEvent.objects.count()

    response = logged_in(client, people["bob"]).post(
        reverse("delegations:request_create"), form_data(repository, upload)
    )

    assert response.status_code == 400
    assert message in page_text(response)
    assert not DelegationRequest.objects.exists()
    assert AuditEvent.objects.count() == events_before
    assert_no_private_key_stored()


def test_a_team_the_member_is_not_in_is_refused(client, people, repository):
    response = logged_in(client, people["bob"]).post(
        reverse("delegations:request_create"),
        form_data(repository, make_bundle("bob").cert_pem, team="dev"),
    )
    assert response.status_code == 400
    assert "You are not a member of team dev" in page_text(response)
    assert not DelegationRequest.objects.exists()


def test_an_oversized_upload_is_refused_without_keeping_it(client, people, repository, settings):
    settings.PORTAL_CERTIFICATE_MAX_BYTES = 4096
    huge = make_bundle("bob").key_pem * 200
    data = form_data(repository, b"")
    data["certificate"] = SimpleUploadedFile("cert.pem", huge)
    response = logged_in(client, people["bob"]).post(reverse("delegations:request_create"), data)
    assert response.status_code == 400
    assert "The file is larger than 4.0" in page_text(response)
    assert not DelegationRequest.objects.exists()
    assert_no_private_key_stored()


def test_a_repository_that_does_not_exist_is_refused(client, people, repository):
    data = form_data(repository, make_bundle("bob").cert_pem)
    data["repository"] = 999999
    response = logged_in(client, people["bob"]).post(reverse("delegations:request_create"), data)
    assert response.status_code == 400
    assert "That repository does not exist" in page_text(response)


def assert_no_private_key_stored() -> None:
    """No table of the database holds anything that looks like private key material."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from Django
            for row in cursor.fetchall():
                for value in row:
                    raw = bytes(value) if isinstance(value, bytes | memoryview) else None
                    text = raw.decode("latin-1") if raw is not None else str(value)
                    assert "PRIVATE KEY" not in text, f"private key material in {table}"


@pytest.fixture
def pending(people, repository):
    return submit_request(repository, people["bob"])


def test_owner_queue_has_approve_reject_and_comment(client, people, pending):
    page = page_text(logged_in(client, people["alice"]).get(reverse("delegations:approval_queue")))
    assert f"#{pending.pk}</a>" in page
    assert ">Approve</button>" in page
    assert ">Reject</button>" in page
    assert ">Comment</label>" in page


def test_non_owners_have_no_queue_and_cannot_approve(client, people, pending):
    dave = logged_in(client, people["dave"])
    assert dave.get(reverse("delegations:approval_queue")).status_code == 403
    response = dave.post(reverse("delegations:request_approve", args=[pending.pk]))
    assert response.status_code == 403
    assert "Only the owners of the request's repository decide on it." in page_text(response)
    assert pending.repository.path not in page_text(response)  # nothing of the request leaks
    # A number that exists and one that does not get the same answer.
    missing = dave.post(reverse("delegations:request_approve", args=[999999]))
    assert missing.status_code == 403
    assert "Only the owners of the request's repository decide on it." in page_text(missing)
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING


def test_the_requester_cannot_approve_their_own_request(client, people, pending):
    response = logged_in(client, people["bob"]).post(
        reverse("delegations:request_approve", args=[pending.pk])
    )
    assert response.status_code == 403
    assert "cannot decide on your own request" in page_text(response)
    assert not Decision.objects.exists()


def test_an_owner_who_requested_is_told_why_they_cannot_decide(client, people, repository):
    own = submit_request(repository, people["olga"])
    olga = logged_in(client, people["olga"])
    page = page_text(olga.get(reverse("delegations:request_detail", args=[own.pk])))
    assert "you cannot decide on your own request" in page
    response = olga.post(reverse("delegations:request_approve", args=[own.pk]))
    assert response.status_code == 403


def test_an_owner_approves_from_the_queue(client, people, pending, rq_queue):
    alice = logged_in(client, people["alice"])
    response = alice.post(
        reverse("delegations:request_approve", args=[pending.pk]),
        {"comment": "welcome", "next": reverse("delegations:approval_queue")},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("delegations:approval_queue")
    pending.refresh_from_db()
    assert pending.status == RequestStatus.APPROVED
    page = page_text(alice.get(reverse("delegations:request_detail", args=[pending.pk])))
    assert ">Approved</span>" in page
    assert "welcome" in page


def test_an_overlong_comment_is_refused_and_nothing_is_decided(client, people, pending):
    alice = logged_in(client, people["alice"])
    response = alice.post(
        reverse("delegations:request_approve", args=[pending.pk]),
        {"comment": "x" * 2001},
        follow=True,
    )
    assert "Comment: Ensure this value has at most 2000 characters" in page_text(response)
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING
    assert not Decision.objects.exists()


def test_rejecting_without_a_comment_says_so(client, people, pending):
    alice = logged_in(client, people["alice"])
    response = alice.post(reverse("delegations:request_reject", args=[pending.pk]), follow=True)
    assert "Say why you reject the request" in page_text(response)
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING


def test_other_members_cannot_see_a_request(client, people, pending):
    response = logged_in(client, people["dave"]).get(
        reverse("delegations:request_detail", args=[pending.pk])
    )
    assert response.status_code == 404


def test_open_redirects_are_refused(client, people, pending, rq_queue):
    response = logged_in(client, people["alice"]).post(
        reverse("delegations:request_approve", args=[pending.pk]),
        {"next": "https://evil.example.com/"},
    )
    assert response["Location"] == reverse("delegations:request_detail", args=[pending.pk])


def test_uploads_are_parsed_into_memory_never_into_a_temporary_file(rf, settings):
    # With Django's default handlers this upload would go to a temporary file on disk.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    request = rf.post(
        "/requests/new/",
        {"certificate": SimpleUploadedFile("cert.pem", make_bundle("bob").key_pem)},
    )
    upload = request.FILES["certificate"]
    assert not hasattr(upload, "temporary_file_path")
    assert b"PRIVATE KEY" in upload.read()


def test_an_upload_over_the_cap_keeps_none_of_its_bytes(rf, settings):
    settings.PORTAL_CERTIFICATE_MAX_BYTES = 1024
    request = rf.post(
        "/requests/new/", {"certificate": SimpleUploadedFile("cert.pem", b"k" * 5000)}
    )
    upload = request.FILES["certificate"]
    assert upload.oversized
    assert upload.read() == b""
