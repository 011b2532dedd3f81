"""The keys of a repository's trust data that the portal holds, sealed (see `keystore`): a
targets (or snapshot) key imported from a trust directory, and re-sealing them all when the
sealing key rotates. Making new keys is part of initialising trust (`repositories`), and handing
the root key to its owners is `root_keys`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from .. import clock, keystore, trust
from ..audit.chain import audit_record
from ..exceptions import InvalidInput, TrustSetupError
from ..models import AuditAction, KeyRole, Repository, RepositoryKey
from ..notary import (
    InvalidKey,
    NotaryError,
    PublicKey,
    RepositoryNotInitialised,
    SigningKey,
    canonical_id_or_none,
    load_key_file,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The portal signs targets (and, when the client signs snapshots, snapshot) with held keys; root
# keys stay with the people who hold them offline.
IMPORTABLE_KEY_ROLES = (KeyRole.TARGETS, KeyRole.SNAPSHOT)


def repository_keys_rewrap(*, acting_user: User | None = None, now: datetime | None = None) -> int:
    """Re-seal every repository key to the current sealing key (PORTAL_KEY_SEALING_KEY).

    Only the small data keys are re-encrypted; the signing keys themselves are never opened.
    Once this has run, older unsealing keys (and the format-1 PORTAL_KEY_ENCRYPTION_KEYS) can be
    removed from the worker's configuration.
    Returns how many keys were re-sealed.
    """
    now = now or clock.now()
    if not keystore.can_unseal_current():
        # A mistyped sealing key would leave every key sealed to a key nobody holds.
        raise keystore.KeystoreError(
            f"the sealing key {keystore.current_key_encryption_key_id()} has no private half in "
            "PORTAL_KEY_UNSEALING_KEYS here; run keys_rewrap where the worker's keys are, with "
            "the new unsealing key added"
        )
    rewrapped = 0
    with transaction.atomic():
        for stored in RepositoryKey.objects.select_for_update().select_related("repository"):
            sealed = keystore.SealedKey(
                stored.key_encryption_key_id, bytes(stored.sealed_private_key)
            )
            fresh = keystore.rewrap(
                sealed, context=trust.key_context(stored.repository, stored.role)
            )
            if fresh == sealed:
                continue
            RepositoryKey.objects.filter(pk=stored.pk).update(
                sealed_private_key=fresh.blob, key_encryption_key_id=fresh.key_encryption_key_id
            )
            audit_record(
                action=AuditAction.REPOSITORY_KEY_RESEALED,
                actor=acting_user,
                now=now,
                repository=stored.repository,
                details={
                    "role": stored.role,
                    "canonical_key_id": stored.canonical_key_id,
                    "from": stored.key_encryption_key_id,
                    "to": fresh.key_encryption_key_id,
                },
            )
            rewrapped += 1
    return rewrapped


@sensitive_variables("key_file", "passphrase", "loaded", "key")
def repository_key_import(
    *,
    repository_id: int,
    role: str,
    key_file: bytes,
    passphrase: str,
    acting_user: User | None = None,
    now: datetime | None = None,
) -> RepositoryKey:
    """Adopt the targets or snapshot key of a repository whose trust was set up elsewhere.

    `key_file` is a private key file from a notary trust directory (or a plain PEM key). The key
    is taken only if the repository's live root.json names it for `role`; it is then sealed
    under the portal's key-encryption key and replaces any key the portal held for that role.
    Neither the key nor the passphrase is ever logged or audited.
    """
    now = now or clock.now()
    if role not in IMPORTABLE_KEY_ROLES:
        raise InvalidInput(f"Only a targets or snapshot key can be imported, not a {role} key.")
    repository = Repository.objects.filter(pk=repository_id).first()
    if repository is None:
        raise InvalidInput("That repository is not registered in the portal.")
    try:
        loaded = load_key_file(key_file, passphrase or None)
    except InvalidKey as error:
        raise InvalidInput(error.message) from None
    root_version, named = _live_role_keys(repository, role, now=now)
    wanted = loaded.public.canonical_id
    published = next((k for k in named if canonical_id_or_none(k) == wanted), None)
    if published is None:
        expected = ", ".join(filter(None, map(canonical_id_or_none, named))) or "no key"
        raise TrustSetupError(
            f"The key {loaded.public.canonical_id} is not the {role} key of {repository.gun}: "
            f"its root.json names {expected} for {role}."
        )
    # Signatures must carry the key ID root publishes, so the key is kept in root's form.
    try:
        key = SigningKey.from_private_bytes(loaded.private_bytes(), published)
    except InvalidKey as error:
        raise TrustSetupError(
            f"The {role} key root.json names is unusable: {error.message}"
        ) from None
    with transaction.atomic():
        repository = Repository.objects.select_for_update().get(pk=repository_id)
        replaced = repository.keys.filter(role=role).first()
        if replaced is not None:
            replaced.delete()
        stored = RepositoryKey.objects.create(
            repository=repository, role=role, **trust.sealed_key_fields(repository, role, key)
        )
        # With the targets key the portal can publish delegations: the trust is set up.
        if role == KeyRole.TARGETS and repository.trust_initialised_at is None:
            Repository.objects.filter(pk=repository.pk).update(trust_initialised_at=now)
        audit_record(
            action=AuditAction.REPOSITORY_KEY_IMPORTED,
            actor=acting_user,
            now=now,
            repository=repository,
            details={
                "role": role,
                "canonical_key_id": stored.canonical_key_id,
                "tuf_key_id": stored.tuf_key_id,
                "replaced_canonical_key_id": replaced.canonical_key_id if replaced else None,
                "root_version": root_version,
            },
        )
    return stored


def _live_role_keys(
    repository: Repository, role: str, *, now: datetime
) -> tuple[int, list[PublicKey]]:
    """The version of the repository's root on its Notary server, and the keys it names for
    `role`."""
    try:
        state = trust.fetch(repository, now=now)
    except RepositoryNotInitialised:
        raise TrustSetupError(
            f"{repository.gun} has no trust data on {repository.notary_url}; initialise its "
            "trust instead of importing a key."
        ) from None
    except NotaryError as error:
        raise TrustSetupError(
            f"The trust data of {repository.gun} could not be read: {error.message}"
        ) from None
    return state.root.signed.version, state.root.signed.role_keys(role)
