"""What the portal trusts before it reads a repository's trust data: its pinned root, and what
it remembers from earlier reads (see delegations.notary.reading)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F

from .. import clock, trust
from ..audit.chain import audit_record
from ..exceptions import InvalidInput
from ..intake.certificates import PRIVATE_KEY_MESSAGE
from ..intake.private_keys import holds_private_key
from ..models import AuditAction, KeyRole, Repository, TrustFile
from ..notary import (
    InvalidMetadata,
    NotaryError,
    PublicKey,
    TransientNotaryError,
    TrustState,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def notary_check(
    notary_url: str, gun: str, *, now: datetime, pinned: Sequence[PublicKey] = ()
) -> TrustState | None:
    """Read the trust data `notary_url` serves for `gun` (None when it has none yet), or say in
    the words of a form what is wrong: an unreachable server, a root that names another
    repository, or one the pinned key did not sign."""
    try:
        return trust.probe(notary_url, gun, now=now, pinned=pinned)
    except TransientNotaryError as error:
        raise InvalidInput(
            f"The Notary server at {notary_url} does not answer ({error.message}). Check its "
            "address; nothing was saved.",
            field="notary_url",
        ) from None
    except InvalidMetadata as error:
        subject = "this certificate" if pinned else gun
        raise InvalidInput(
            f"The trust data {notary_url} serves for {gun} does not fit {subject}: "
            f"{error.message}. Nothing was saved.",
            field="root_certificate_pem" if pinned else "name",
        ) from None
    except NotaryError as error:
        raise InvalidInput(
            f"The Notary server at {notary_url} refused the portal's read of {gun}: "
            f"{error.message}. Nothing was saved.",
            field="notary_url",
        ) from None


def repository_root_pin(
    *,
    repository_id: int,
    root_certificate_pem: str,
    acting_user: User | None = None,
    check_notary: bool = True,
    now: datetime | None = None,
) -> Repository:
    """Pin the root certificate of a repository whose trust was set up outside the portal.

    Reads then accept only a root signed by that certificate's key, or reached from it by a
    rotation. An empty certificate unpins: the next read trusts the served root on first use.
    What was remembered of the old root is dropped so the new pin governs the next read.
    """
    now = now or clock.now()
    if holds_private_key(root_certificate_pem.encode("utf-8", "replace")):
        raise InvalidInput(PRIVATE_KEY_MESSAGE, field="root_certificate_pem")
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        if repository.keys.filter(role=KeyRole.ROOT).exists():
            raise InvalidInput(
                f"the portal created the root of {repository.gun} and pins its own root key"
            )
        pem = root_certificate_pem.strip()
        key = trust.root_certificate_key(pem, gun=repository.gun) if pem else None
        if key is not None and check_notary:
            # The live root must chain to the pin, or every read after it would fail.
            notary_check(repository.notary_url, repository.gun, now=now, pinned=[key])
        pem = pem + "\n" if pem else ""
        if pem == repository.root_certificate_pem:
            return repository
        Repository.objects.filter(pk=repository_id).update(
            root_certificate_pem=pem, trusted_root="", trust_epoch=F("trust_epoch") + 1
        )
        repository.refresh_from_db()
        audit_record(
            action=AuditAction.REPOSITORY_ROOT_PINNED
            if key
            else AuditAction.REPOSITORY_ROOT_UNPINNED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={"canonical_key_id": key.canonical_id, "key_id": key.tuf_id} if key else {},
        )
    return repository


def repository_trust_forget(
    *,
    repository_id: int,
    acting_user: User | None = None,
    now: datetime | None = None,
) -> Repository:
    """Forget the remembered root, versions and files, after a deliberate reset of the trust data on
    the server (which the portal would otherwise refuse as a rollback). The pinned root stays."""
    now = now or clock.now()
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        forgotten = dict(repository.seen_versions or {})
        Repository.objects.filter(pk=repository_id).update(
            trusted_root="", seen_versions={}, trust_epoch=F("trust_epoch") + 1
        )
        TrustFile.objects.filter(repository_id=repository_id).delete()
        repository.refresh_from_db()
        audit_record(
            action=AuditAction.REPOSITORY_TRUST_MEMORY_CLEARED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={"versions_forgotten": forgotten},
        )
    return repository
