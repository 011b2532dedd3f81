"""The workflow's one seam to the trust server (Notary v1 today).

Services ask for what they need in portal terms (a repository, a certificate, a team) and get
portal-level results; TUF details stay in `delegations.notary`. Private keys are unsealed here,
in memory, for the one operation that needs them.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from django.conf import settings

from . import keystore
from .exceptions import TrustSetupError
from .models import KeyRole, Repository, RepositoryKey
from .notary import NotaryClient, PublicKey, PublishResult, SigningKey, Transport, TrustState


def client_for(repository: Repository) -> NotaryClient:
    """A client for the repository's Notary server that trusts only the portal's root key."""
    verify: bool | str = settings.PORTAL_NOTARY_CA_BUNDLE or True
    transport = Transport(
        repository.notary_url,
        repository.gun,
        timeout=settings.PORTAL_NOTARY_TIMEOUT,
        verify=verify,
    )
    pinned = [
        PublicKey(keytype, public)
        for keytype, public in repository.keys.filter(role=KeyRole.ROOT).values_list(
            "keytype", "public"
        )
    ]
    return NotaryClient(transport, pinned_root_keys=pinned)


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


def new_repository_keys(repository: Repository, *, now: datetime) -> dict[str, SigningKey]:
    return {
        KeyRole.ROOT: SigningKey.generate_root(repository.gun, now=now),
        KeyRole.TARGETS: SigningKey.generate(),
    }


def initialise(repository: Repository, *, now: datetime) -> TrustState:
    """Publish the first root and targets with the repository's stored keys."""
    return client_for(repository).initialise(
        root_key=signing_key(_stored_key(repository, KeyRole.ROOT)),
        targets_key=signing_key(_stored_key(repository, KeyRole.TARGETS)),
        now=now,
    )


def fetch(repository: Repository, *, now: datetime) -> TrustState:
    return client_for(repository).fetch(now=now)


def add_delegate(
    repository: Repository, *, certificate_pem: str, role_names: list[str], now: datetime
) -> PublishResult:
    """Put the certificate's key into every role in one signed publish (idempotent)."""
    stored = _stored_key(repository, KeyRole.TARGETS)
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    return client_for(repository).add_delegate(
        key=PublicKey.from_certificate(certificate),
        role_names=role_names,
        targets_key=signing_key(stored),
        now=now,
    )
