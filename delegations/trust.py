"""The workflow's one seam to the trust server (Notary v1 today).

Services ask for what they need in portal terms (a repository, a certificate, a team) and get
portal-level results; TUF details stay in `delegations.notary`. Private keys are unsealed here,
in memory, for the one operation that needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from cryptography import x509
from django.conf import settings
from django.db import transaction

from . import keystore
from .exceptions import InvalidInput, TrustSetupError
from .models import KeyRole, Repository, RepositoryKey, TrustFile
from .notary import (
    AddKey,
    ChangeImpact,
    Credentials,
    DelegatedRole,
    DelegationChange,
    InvalidKey,
    NotaryClient,
    Plan,
    PublicKey,
    PublishResult,
    RemoveKey,
    ReplaceKey,
    RepositoryNotInitialised,
    SigningKey,
    Transport,
    TrustMemory,
    TrustState,
    certificate_common_name,
    change_impact,
)


def transport_for(repository: Repository) -> Transport:
    return _transport(repository.notary_url, repository.gun)


def _transport(notary_url: str, gun: str) -> Transport:
    """HTTP to a Notary server, as the portal's service account when one is configured (DTR
    answers with a token challenge)."""
    verify: bool | str = settings.PORTAL_NOTARY_CA_BUNDLE or True
    credentials = None
    if settings.PORTAL_NOTARY_USERNAME:
        credentials = Credentials(settings.PORTAL_NOTARY_USERNAME, settings.PORTAL_NOTARY_PASSWORD)
    return Transport(
        notary_url,
        gun,
        timeout=settings.PORTAL_NOTARY_TIMEOUT,
        verify=verify,
        credentials=credentials,
    )


def probe(
    notary_url: str, gun: str, *, now: datetime, pinned: Sequence[PublicKey] = ()
) -> TrustState | None:
    """A one-off verified read of trust data that remembers nothing, to check a repository
    before it is registered or pinned: None when the server has no trust data for `gun`.
    Unpinned, the root is trusted on first use but must still be this GUN's (its certificate's
    CN) and self-consistent. Raises the client's NotaryError otherwise."""
    client = NotaryClient(_transport(notary_url, gun), pinned_root_keys=list(pinned))
    try:
        return client.fetch(now=now)
    except RepositoryNotInitialised:
        return None


def pinned_root_keys(repository: Repository) -> list[PublicKey]:
    """The root the portal trusts before any read: its own root key, or a configured root
    certificate for a repository whose trust was set up elsewhere."""
    pinned = [
        PublicKey(keytype, public)
        for keytype, public in repository.keys.filter(role=KeyRole.ROOT).values_list(
            "keytype", "public"
        )
    ]
    if not pinned and repository.root_certificate_pem:
        pinned = [certificate_key(repository.root_certificate_pem)]
    return pinned


@contextmanager
def client_for(repository: Repository, *, remember: bool = True) -> Iterator[NotaryClient]:
    """A client anchored in the repository's pinned root and remembered trust data; what it
    learns (a followed rotation, newer versions) is remembered afterwards, even on failure,
    unless `remember` is off (a preview for a page, which writes nothing)."""
    memory = TrustMemory(
        root=repository.trusted_root.encode() if repository.trusted_root else None,
        versions=repository.seen_versions or {},
        files=_remembered_files(repository.pk),
    )
    client = NotaryClient(
        transport_for(repository),
        pinned_root_keys=pinned_root_keys(repository),
        memory=memory,
    )
    epoch = repository.trust_epoch
    try:
        yield client
    finally:
        if remember and client.memory != memory:
            _remember(repository, client.memory, epoch=epoch)


def _remember(repository: Repository, memory: TrustMemory, *, epoch: int) -> None:
    # The client's cache, like ~/.notary/tuf for the Go client; not workflow state, so it is
    # written here rather than by a service. Merged under a row lock: workers may race.
    with transaction.atomic():
        row = Repository.objects.select_for_update().get(pk=repository.pk)
        if row.trust_epoch != epoch:
            return  # re-pinned or cleared meanwhile: what this read learnt no longer applies
        stored_files = _remembered_files(repository.pk)
        stored = TrustMemory(
            root=row.trusted_root.encode() if row.trusted_root else None,
            versions=row.seen_versions or {},
            files=stored_files,
        )
        merged = stored.merged(memory)
        Repository.objects.filter(pk=repository.pk).update(
            trusted_root=merged.root.decode() if merged.root else "",
            seen_versions=dict(merged.versions),
        )
        for role, data in merged.files.items():
            if stored_files.get(role) != data:
                TrustFile.objects.update_or_create(
                    repository_id=repository.pk, role=role, defaults={"data": data}
                )
    repository.trusted_root = merged.root.decode() if merged.root else ""
    repository.seen_versions = dict(merged.versions)


def _remembered_files(repository_id: int) -> dict[str, bytes]:
    # bytes(): PostgreSQL hands binary columns back as memoryview.
    return {
        role: bytes(data)
        for role, data in TrustFile.objects.filter(repository_id=repository_id).values_list(
            "role", "data"
        )
    }


def certificate_key(certificate_pem: str) -> PublicKey:
    """The key `notary delegation add cert.pem` would write for a certificate."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidKey("the certificate does not parse") from None
    return PublicKey.from_certificate(certificate)


def root_certificate_key(certificate_pem: str, *, gun: str) -> PublicKey:
    """The root key a configured root certificate pins; its CN must be the repository's GUN,
    as notary's trust pinning demands."""
    try:
        key = certificate_key(certificate_pem)
        common_name = certificate_common_name(key)
    except InvalidKey as error:
        raise InvalidInput(f"the root certificate is not usable: {error.message}") from None
    if common_name != gun:
        raise InvalidInput(
            f"the root certificate names {common_name!r}; a root certificate of this repository "
            f"names {gun!r}"
        )
    return key


def key_context(repository: Repository, role: str) -> str:
    """What a sealed key is bound to: it opens only for this repository and role."""
    return f"{repository.gun}\x00{role}"


def sealed_key_fields(repository: Repository, role: str, key: SigningKey) -> dict[str, object]:
    """The RepositoryKey column values for `key`, its private part sealed."""
    sealed = keystore.seal(key.private_bytes(), context=key_context(repository, role))
    return {
        "keytype": key.public.keytype,
        "public": key.public.public,
        "tuf_key_id": key.public.tuf_id,
        "canonical_key_id": key.public.canonical_id,
        "sealed_private_key": sealed.blob,
        "key_encryption_key_id": sealed.key_encryption_key_id,
    }


def signing_key(stored: RepositoryKey) -> SigningKey:
    """Unseal a stored key for one operation; the caller drops it afterwards."""
    sealed = keystore.SealedKey(stored.key_encryption_key_id, bytes(stored.sealed_private_key))
    try:
        private = keystore.unseal(sealed, context=key_context(stored.repository, stored.role))
    except keystore.KeystoreError as error:
        raise TrustSetupError(
            f"the {stored.role} key of {stored.repository} is unusable: {error}"
        ) from None
    return SigningKey.from_private_bytes(private, PublicKey(stored.keytype, stored.public))


def _stored_key(repository: Repository, role: str) -> RepositoryKey:
    try:
        return repository.keys.get(role=role)
    except RepositoryKey.DoesNotExist:
        raise TrustSetupError(
            f"the portal holds no {role} key for {repository}; initialise its trust or import "
            "the key"
        ) from None


def _snapshot_key(repository: Repository) -> SigningKey | None:
    """The snapshot key, held only for a repository whose snapshots the client signs."""
    stored = repository.keys.filter(role=KeyRole.SNAPSHOT).first()
    return signing_key(stored) if stored else None


def new_repository_keys(repository: Repository, *, now: datetime) -> dict[str, SigningKey]:
    return {
        KeyRole.ROOT: SigningKey.generate_root(repository.gun, now=now),
        KeyRole.TARGETS: SigningKey.generate(settings.PORTAL_TARGETS_KEY_ALGORITHM),
    }


def initialise(repository: Repository, *, now: datetime) -> TrustState:
    """Publish the first root and targets with the repository's stored keys."""
    with client_for(repository) as client:
        return client.initialise(
            root_key=signing_key(_stored_key(repository, KeyRole.ROOT)),
            targets_key=signing_key(_stored_key(repository, KeyRole.TARGETS)),
            now=now,
        )


def fetch(repository: Repository, *, now: datetime) -> TrustState:
    with client_for(repository) as client:
        return client.fetch(now=now)


def delegations(repository: Repository, *, now: datetime) -> list[DelegatedRole]:
    """The repository's delegation roles as the live server has them, keys with both IDs."""
    with client_for(repository) as client:
        return client.list_delegations(now=now)


def adding(certificate_pem: str, role_names: Sequence[str]) -> AddKey:
    return AddKey(certificate_key(certificate_pem), tuple(role_names))


def removing(certificate_pem: str, role_names: Sequence[str]) -> RemoveKey:
    return RemoveKey(certificate_key(certificate_pem), tuple(role_names))


def replacing(old_pem: str, new_pem: str, role_names: Sequence[str]) -> ReplaceKey:
    return ReplaceKey(certificate_key(old_pem), certificate_key(new_pem), tuple(role_names))


def plan(repository: Repository, change: DelegationChange, *, now: datetime) -> Plan:
    """What `change` would do to the live targets.json, without signing or remembering
    anything."""
    with client_for(repository, remember=False) as client:
        return client.plan(change, now=now)


def impact(repository: Repository, change: DelegationChange, *, now: datetime) -> ChangeImpact:
    """What `change` would do to the live trust data, and which signed tags it would leave
    without a valid signature (a revocation's preview); nothing is signed or remembered."""
    with client_for(repository, remember=False) as client:
        return change_impact(client, change, now=now)


def publish(
    repository: Repository,
    change: DelegationChange,
    *,
    now: datetime,
    before_sending: Callable[[], None] | None = None,
) -> PublishResult:
    """Apply `change` in one signed publish (idempotent: nothing is sent when it is in place);
    `before_sending` runs before each upload (see `NotaryClient.publish_change`)."""
    targets_key = signing_key(_stored_key(repository, KeyRole.TARGETS))
    snapshot_key = _snapshot_key(repository)
    with client_for(repository) as client:
        return client.publish_change(
            change,
            targets_key=targets_key,
            snapshot_key=snapshot_key,
            now=now,
            before_sending=before_sending,
        )
