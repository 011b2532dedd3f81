"""A repository's root key leaves the portal for its owners (issue 15, item 1): a key file the
notary CLI imports and signs a root rotation with, and afterwards no trace of the root private
key anywhere in the database."""

from __future__ import annotations

import base64
import contextlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.db import connection
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from delegations import keystore, services, trust
from delegations.exceptions import IllegalTransition, InvalidInput
from delegations.models import (
    AuditEvent,
    HandoverStatus,
    KeyRole,
    RepositoryKey,
    RequestStatus,
    RootKeyHandover,
)
from delegations.notary import InvalidKey, load_key_file
from portal.environment import sealing_key
from tests.factories import PASSWORD, submit_request

pytestmark = [pytest.mark.django_db, pytest.mark.services]

PASSPHRASE = "root key handover test passphrase"


def owner_client(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def root_private_key(repository):
    """The root key as the worker alone can open it, before it leaves."""
    return trust.signing_key(repository.keys.get(role=KeyRole.ROOT))


def request_and_prepare(repository, owner) -> RootKeyHandover:
    handover = services.root_key_handover_request(
        repository_id=repository.pk,
        passphrase=PASSPHRASE,
        passphrase_again=PASSPHRASE,
        acting_user=owner,
    )
    prepared = services.root_key_handover_prepare(handover_id=handover.pk)
    assert prepared is not None
    assert prepared.status == HandoverStatus.READY, prepared.failure
    return prepared


def every_stored_value():
    """Every column value of every row of every table: what a database dump would show."""
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if not model._meta.managed or model._meta.proxy:
                continue  # no table of its own (django-rq's dashboard, proxies)
            table = model._meta.db_table
            columns = [field.column for field in model._meta.concrete_fields]
            quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    if isinstance(value, (bytes, str)) and value:
                        yield f"{table}.{column}", value


def traces_of(private_der: bytes, repository, *, passphrase: str) -> list[str]:
    """Where the root private key can be found: in the clear (DER, base64, hex, PEM), sealed so
    the worker's keys open it, or in a key file the passphrase opens."""
    forms = [private_der, base64.b64encode(private_der), private_der.hex().encode()]
    context = trust.key_context(repository, KeyRole.ROOT)
    found = []
    for where, value in every_stored_value():
        data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        if any(form in data for form in forms):
            found.append(f"{where}: in the clear")
        if data[:1] in (b"\x01", b"\x02") and len(data) > 100:
            for key_id in settings_key_ids():
                try:
                    opened = keystore.unseal(keystore.SealedKey(key_id, data), context=context)
                except keystore.KeystoreError:
                    continue
                if opened == private_der:
                    found.append(f"{where}: sealed")
        if b"ENCRYPTED PRIVATE KEY" in data:
            with contextlib.suppress(InvalidKey):  # what does not open is not the key
                if load_key_file(data, passphrase).private_bytes() == private_der:
                    found.append(f"{where}: key file")
    return found


def settings_key_ids() -> list[str]:
    """The sealing key IDs whose private halves the worker holds."""
    return [
        keystore.sealing_key_id_of(sealing_key("", unsealing=[unsealing]))
        for unsealing in django_settings.PORTAL_KEY_UNSEALING_KEYS
    ]


def test_the_root_key_file_imports_with_the_cli_and_signs_a_root_rotation(
    repository, people, notary_cli
):
    owner = people["alice"]
    root = root_private_key(repository)
    request_and_prepare(repository, owner)

    download = reverse("delegations:root_key_download", args=[repository.pk])
    response = owner_client(owner).get(download)

    assert response.status_code == 200
    filename = f"{root.public.canonical_id}.key"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["Cache-Control"] == "no-store"
    key_file = notary_cli.home / "downloaded" / f"{root.public.canonical_id}.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_bytes(response.content)
    # The owner's machine: its own passphrase for the root key, the file's.
    notary_cli.env["NOTARY_ROOT_PASSPHRASE"] = PASSPHRASE
    notary_cli.run("key", "import", str(key_file))
    assert root.public.canonical_id in notary_cli.run("key", "list").stdout
    rotated = notary_cli.run("key", "rotate", repository.gun, "root", input="yes\n")
    assert "Successfully rotated root key" in rotated.stdout

    # The portal follows the rotation the owner signed offline.
    state = trust.fetch(repository, now=timezone.now())
    assert state.root.signed.version == 2
    assert root.public.tuf_id not in {k.tuf_id for k in state.root.signed.role_keys("root")}


def test_after_the_handover_no_root_private_key_is_left_and_delegations_go_on(
    repository, people, notary_cli
):
    owner = people["alice"]
    root_der = root_private_key(repository).private_bytes()
    # Before: the worker's keys find the sealed root key (the scan can find what it looks for).
    assert traces_of(root_der, repository, passphrase=PASSPHRASE) == [
        "delegations_repositorykey.sealed_private_key: sealed"
    ]
    request_and_prepare(repository, owner)
    assert "delegations_rootkeyhandover.key_file: key file" in traces_of(
        root_der, repository, passphrase=PASSPHRASE
    )
    with pytest.raises(IllegalTransition, match="Download the root key file"):
        services.root_key_handover_confirm(repository_id=repository.pk, acting_user=owner)
    services.root_key_download(repository_id=repository.pk, acting_user=owner)

    handover = services.root_key_handover_confirm(repository_id=repository.pk, acting_user=owner)

    assert handover.status == HandoverStatus.TAKEN
    assert not RepositoryKey.objects.filter(repository=repository, role=KeyRole.ROOT).exists()
    assert traces_of(root_der, repository, passphrase=PASSPHRASE) == []
    actions = list(
        AuditEvent.objects.filter(repository=repository, action__startswith="root_key.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "root_key.handover_requested",
        "root_key.handover_ready",
        "root_key.downloaded",
        "root_key.handed_over",
    ]
    # Reads are anchored in the pinned root certificate now, and delegations are published.
    request = submit_request(repository, people["bob"])
    services.request_approve(request_id=request.pk, acting_user=owner)
    assert services.request_apply(request_id=request.pk).status == RequestStatus.DELEGATED
    bob = notary_cli.delegations(repository.gun)["targets/releases"]["keys"]
    assert len(bob) == 1


def test_the_passphrase_is_checked_and_only_owners_ask(repository, people, stranger):
    owner = people["alice"]
    with pytest.raises(InvalidInput, match="at least 12 characters"):
        services.root_key_handover_request(
            repository_id=repository.pk,
            passphrase="short",
            passphrase_again="short",
            acting_user=owner,
        )
    with pytest.raises(InvalidInput, match="differ"):
        services.root_key_handover_request(
            repository_id=repository.pk,
            passphrase=PASSPHRASE,
            passphrase_again=PASSPHRASE + "!",
            acting_user=owner,
        )
    for outsider in (stranger, people["bob"]):
        with pytest.raises(Http404):
            services.root_key_handover_request(
                repository_id=repository.pk,
                passphrase=PASSPHRASE,
                passphrase_again=PASSPHRASE,
                acting_user=outsider,
            )
    assert not RootKeyHandover.objects.exists()
    request_and_prepare(repository, owner)
    for outsider in (stranger, people["bob"]):
        response = owner_client(outsider).get(
            reverse("delegations:root_key_download", args=[repository.pk])
        )
        assert response.status_code == 404


def test_the_web_process_seals_the_passphrase_for_the_worker_and_cannot_open_it(
    repository, people, settings
):
    worker_keys = settings.PORTAL_KEY_UNSEALING_KEYS
    settings.PORTAL_KEY_SEALING_KEY = sealing_key("", unsealing=worker_keys[:1])
    settings.PORTAL_KEY_UNSEALING_KEYS = []  # as the web process runs
    handover = services.root_key_handover_request(
        repository_id=repository.pk,
        passphrase=PASSPHRASE,
        passphrase_again=PASSPHRASE,
        acting_user=people["alice"],
    )
    stored = RootKeyHandover.objects.get(pk=handover.pk)
    assert PASSPHRASE.encode() not in bytes(stored.sealed_passphrase)
    # Were the web process to run the job, it could not open the passphrase or the key.
    failed = services.root_key_handover_prepare(handover_id=handover.pk)
    assert failed is not None
    assert failed.status == HandoverStatus.FAILED
    assert "holds no unsealing key" in failed.failure
    assert bytes(RootKeyHandover.objects.get(pk=handover.pk).sealed_passphrase) == b""

    settings.PORTAL_KEY_UNSEALING_KEYS = worker_keys  # the worker
    assert request_and_prepare(repository, people["alice"]).status == HandoverStatus.READY


def test_an_unconfirmed_file_expires_and_the_root_key_stays(repository, people, settings):
    settings.PORTAL_ROOT_KEY_HANDOVER_HOURS = 24
    handover = request_and_prepare(repository, people["alice"])

    later = handover.created_at + timedelta(hours=24, seconds=1)
    assert services.root_key_handovers_sweep(now=handover.created_at + timedelta(hours=23)) == []
    assert services.root_key_handovers_sweep(now=later) == [handover.pk]

    expired = RootKeyHandover.objects.get(pk=handover.pk)
    assert expired.status == HandoverStatus.EXPIRED
    assert bytes(expired.key_file) == b""
    assert repository.keys.filter(role=KeyRole.ROOT).exists()
    with pytest.raises(IllegalTransition):
        services.root_key_download(repository_id=repository.pk, acting_user=people["alice"])
    # Asking again works, and replaces a file that was never confirmed.
    first = request_and_prepare(repository, people["alice"])
    second = request_and_prepare(repository, people["alice"])
    assert RootKeyHandover.objects.get(pk=first.pk).status == HandoverStatus.EXPIRED
    assert second.status == HandoverStatus.READY


def test_the_repository_page_walks_an_owner_through_the_handover(repository, people):
    owner = people["alice"]
    client = owner_client(owner)
    page = reverse("delegations:repository_detail", args=[repository.pk])
    listing = reverse("delegations:repository_list")
    assert "root key still in the portal" in client.get(listing).content.decode()
    assert "Take the root key offline" in client.get(page).content.decode()

    posted = client.post(
        reverse("delegations:root_key_request", args=[repository.pk]),
        {"passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE},
    )
    reported = SafeExceptionReporterFilter().get_post_parameters(posted.wsgi_request)
    assert PASSPHRASE not in reported.values()  # error reports mask both fields
    assert reported["passphrase_again"] != PASSPHRASE
    body = client.get(posted.url).content.decode()
    assert "The worker is writing the root key" in body
    assert PASSPHRASE not in body
    handover = RootKeyHandover.objects.get(repository=repository)
    services.root_key_handover_prepare(handover_id=handover.pk)
    assert "Download the root key file" in client.get(page).content.decode()
    client.get(reverse("delegations:root_key_download", args=[repository.pk]))
    response = client.post(
        reverse("delegations:root_key_confirm", args=[repository.pk]), {}, follow=True
    )
    assert "Tick the box" in response.content.decode()
    response = client.post(
        reverse("delegations:root_key_confirm", args=[repository.pk]),
        {"stored": "yes"},
        follow=True,
    )
    body = response.content.decode()
    assert "no longer holds the root key" in body
    assert "Take the root key offline" not in body
    assert "root key still in the portal" not in client.get(listing).content.decode()
