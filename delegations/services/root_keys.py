"""Handing a repository's root key to its owners, so that it does not stay in the portal.

The portal makes a repository's root key when it initialises its trust, but it never needs it
again for delegations: only a root rotation does, and that is the owners' job, offline. So the
owners take it: one of them types a passphrase, which the web process seals to the worker (the
web process cannot open sealed data, see `keystore`); the worker writes the root key into a
notary key file encrypted with that passphrase (so `notary key import` reads it), and forgets
the passphrase; the owner downloads the file and confirms they have stored it, and only then is
the portal's sealed root key deleted. A file nobody confirmed is deleted after
PORTAL_ROOT_KEY_HANDOVER_HOURS, and the root key stays sealed in the portal until an owner asks
again: nothing is lost to a download that went wrong.

The same path serves the root keys the portal held before this existed: the repository page
asks their owners to take them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from .. import clock, keystore, queueing, selectors, trust
from ..audit.chain import audit_record
from ..exceptions import IllegalTransition, InvalidInput, TrustSetupError
from ..models import (
    OPEN_HANDOVER_STATUSES,
    AuditAction,
    HandoverStatus,
    KeyRole,
    Repository,
    RepositoryKey,
    RootKeyHandover,
)
from ..notary import InvalidKey
from ..notary.keyfiles import MIN_PASSPHRASE_CHARACTERS, encrypted_key_file

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# A job lost before it ran (a Redis flush) is queued again by the sweep after this long.
_REQUEUE_AFTER = timedelta(minutes=2)


def _passphrase_context(repository: Repository, handover_id: int) -> str:
    # Bound to this handover: a sealed passphrase copied onto another one does not open.
    return f"{repository.gun}\x00root key handover\x00{handover_id}"


@sensitive_variables("passphrase", "passphrase_again")
def root_key_handover_request(
    *,
    repository_id: int,
    passphrase: str,
    passphrase_again: str,
    acting_user: User,
    now: datetime | None = None,
) -> RootKeyHandover:
    """An owner asks for the repository's root key, encrypted with `passphrase`."""
    now = now or clock.now()
    repository = selectors.repository_managed_by(acting_user, repository_id)
    if len(passphrase) < MIN_PASSPHRASE_CHARACTERS:
        raise InvalidInput(
            f"Choose a passphrase of at least {MIN_PASSPHRASE_CHARACTERS} characters: the key "
            "file is only as safe as its passphrase once it leaves the portal.",
            field="passphrase",
        )
    if passphrase != passphrase_again:
        raise InvalidInput("The two passphrases differ.", field="passphrase_again")
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository.pk)
        root_key = repository.keys.filter(role=KeyRole.ROOT).first()
        if root_key is None:
            raise InvalidInput(f"The portal holds no root key of {repository.gun}.")
        if repository.trust_initialised_at is None:
            raise InvalidInput(
                f"The trust data of {repository.gun} is not initialised yet; take its root key "
                "once it is."
            )
        # Asking again replaces a file nobody has confirmed yet (a forgotten passphrase).
        for open_handover in repository.root_key_handovers.filter(
            status__in=OPEN_HANDOVER_STATUSES
        ):
            _end(open_handover, HandoverStatus.EXPIRED, "replaced by a new request", now=now)
        handover = RootKeyHandover.objects.create(
            repository=repository,
            requested_by=acting_user,
            canonical_key_id=root_key.canonical_key_id,
            created_at=now,
        )
        sealed = keystore.seal(
            passphrase.encode("utf-8", "surrogatepass"),
            context=_passphrase_context(repository, handover.pk),
        )
        RootKeyHandover.objects.filter(pk=handover.pk).update(
            sealed_passphrase=sealed.blob, sealing_key_id=sealed.key_encryption_key_id
        )
        audit_record(
            action=AuditAction.ROOT_KEY_HANDOVER_REQUESTED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={"handover": handover.pk, "canonical_key_id": root_key.canonical_key_id},
        )
        queueing.enqueue_after_commit(queueing.enqueue_root_key_handover, handover.pk)
    return handover


@sensitive_variables("passphrase", "root_key", "key_file")
def root_key_handover_prepare(
    *, handover_id: int, now: datetime | None = None
) -> RootKeyHandover | None:
    """The worker's part: the key file, made with the sealed passphrase, which is then dropped.
    None when the handover is no longer being prepared (ended meanwhile, or done already)."""
    now = now or clock.now()
    with transaction.atomic():
        handover = (
            RootKeyHandover.objects.select_for_update()
            .select_related("repository")
            .filter(pk=handover_id, status=HandoverStatus.PREPARING)
            .first()
        )
        if handover is None:
            return None
        repository = handover.repository
        stored = repository.keys.filter(role=KeyRole.ROOT).first()
        try:
            if stored is None or stored.canonical_key_id != handover.canonical_key_id:
                raise TrustSetupError(f"the portal no longer holds that root key of {repository}")
            sealed = keystore.SealedKey(handover.sealing_key_id, bytes(handover.sealed_passphrase))
            passphrase = keystore.unseal(
                sealed, context=_passphrase_context(repository, handover.pk)
            ).decode("utf-8", "surrogatepass")
            root_key = trust.signing_key(stored)
            key_file = encrypted_key_file(root_key, passphrase, role=KeyRole.ROOT, gun=None)
        except (keystore.KeystoreError, TrustSetupError, InvalidKey) as error:
            reason = getattr(error, "message", None) or str(error)
            logger.warning("root key handover %s failed: %s", handover.pk, reason)
            _end(handover, HandoverStatus.FAILED, reason, now=now)
            handover.refresh_from_db()
            return handover
        RootKeyHandover.objects.filter(pk=handover.pk).update(
            status=HandoverStatus.READY,
            key_file=key_file,
            sealed_passphrase=b"",
            ready_at=now,
        )
        audit_record(
            action=AuditAction.ROOT_KEY_HANDOVER_READY,
            actor=None,
            now=now,
            repository=repository,
            details={"handover": handover.pk, "canonical_key_id": handover.canonical_key_id},
        )
    handover.refresh_from_db()
    return handover


def root_key_download(
    *, repository_id: int, acting_user: User, now: datetime | None = None
) -> tuple[str, bytes]:
    """The file name and content of the repository's root key file, for one of its owners."""
    now = now or clock.now()
    repository = selectors.repository_managed_by(acting_user, repository_id)
    with transaction.atomic():
        handover = _ready_handover(repository)
        RootKeyHandover.objects.filter(pk=handover.pk).update(
            downloaded_at=handover.downloaded_at or now
        )
        audit_record(
            action=AuditAction.ROOT_KEY_DOWNLOADED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={"handover": handover.pk, "canonical_key_id": handover.canonical_key_id},
        )
    # notary's own name for it in a trust directory's private/ folder.
    return f"{handover.canonical_key_id}.key", bytes(handover.key_file)


def root_key_handover_confirm(
    *, repository_id: int, acting_user: User, now: datetime | None = None
) -> RootKeyHandover:
    """The owner has stored the file: the portal deletes its root key and the file."""
    now = now or clock.now()
    repository = selectors.repository_managed_by(acting_user, repository_id)
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository.pk)
        handover = _ready_handover(repository)
        if handover.downloaded_at is None:
            raise IllegalTransition("Download the root key file before confirming you stored it.")
        if not repository.root_certificate_pem:
            # What reads are anchored in once the key is gone; set when trust was initialised.
            raise IllegalTransition(f"{repository.gun} has no pinned root certificate.")
        RepositoryKey.objects.filter(
            repository=repository, role=KeyRole.ROOT, canonical_key_id=handover.canonical_key_id
        ).delete()
        RootKeyHandover.objects.filter(pk=handover.pk).update(
            status=HandoverStatus.TAKEN, key_file=b"", finished_at=now
        )
        audit_record(
            action=AuditAction.ROOT_KEY_HANDED_OVER,
            actor=acting_user,
            now=now,
            repository=repository,
            details={"handover": handover.pk, "canonical_key_id": handover.canonical_key_id},
        )
    handover.refresh_from_db()
    return handover


def root_key_handover_cancel(
    *, repository_id: int, acting_user: User, now: datetime | None = None
) -> None:
    """Drop the prepared file; the root key stays sealed in the portal."""
    now = now or clock.now()
    repository = selectors.repository_managed_by(acting_user, repository_id)
    with transaction.atomic():
        for handover in RootKeyHandover.objects.select_for_update().filter(
            repository=repository, status__in=OPEN_HANDOVER_STATUSES
        ):
            _end(handover, HandoverStatus.EXPIRED, "cancelled", now=now, actor=acting_user)


def root_key_handovers_sweep(*, now: datetime | None = None) -> list[int]:
    """Delete the files nobody confirmed in time, and queue again preparations whose job was
    lost. Returns the handovers ended."""
    now = now or clock.now()
    deadline = now - timedelta(hours=settings.PORTAL_ROOT_KEY_HANDOVER_HOURS)
    ended = []
    with transaction.atomic():
        for handover in RootKeyHandover.objects.select_for_update().filter(
            status__in=OPEN_HANDOVER_STATUSES, created_at__lt=deadline
        ):
            _end(handover, HandoverStatus.EXPIRED, "not confirmed in time", now=now)
            ended.append(handover.pk)
    for handover_id in RootKeyHandover.objects.filter(
        status=HandoverStatus.PREPARING, created_at__lt=now - _REQUEUE_AFTER
    ).values_list("pk", flat=True):
        queueing.enqueue_root_key_handover(handover_id)
    return ended


def _ready_handover(repository: Repository) -> RootKeyHandover:
    handover = (
        RootKeyHandover.objects.select_for_update()
        .filter(repository=repository, status=HandoverStatus.READY)
        .first()
    )
    if handover is None:
        raise IllegalTransition(
            f"No root key file of {repository.gun} is waiting: ask for it again with a passphrase."
        )
    return handover


def _end(
    handover: RootKeyHandover,
    status: HandoverStatus,
    reason: str,
    *,
    now: datetime,
    actor: User | None = None,
) -> None:
    RootKeyHandover.objects.filter(pk=handover.pk).update(
        status=status, key_file=b"", sealed_passphrase=b"", failure=reason, finished_at=now
    )
    audit_record(
        action=AuditAction.ROOT_KEY_HANDOVER_ENDED,
        actor=actor,
        now=now,
        repository=handover.repository,
        details={"handover": handover.pk, "status": status, "reason": reason},
    )
