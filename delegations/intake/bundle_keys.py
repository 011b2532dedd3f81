"""UCP's word on a certificate (optional, `PORTAL_UCP_URL`): its key must be one of the public
keys UCP keeps for the requester's client bundles. That binds the certificate to the account more
tightly than the CA chain alone: a bundle the user deleted in UCP, or a certificate the CA issued
some other way, is refused. The directory sync asks again later (`PORTAL_UCP_SYNC_BUNDLES`), so a
bundle deleted after its delegation was granted ends it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings

from .. import dtr
from ..exceptions import InvalidInput, ServiceUnavailable
from .identity import CERTIFICATE_FIELD

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


def bundle_key_check(certificate: x509.Certificate, user: User) -> None:
    """Nothing when UCP lists the certificate's key for `user` (or no UCP is configured);
    otherwise the reason, for the form."""
    if not settings.PORTAL_UCP_URL:
        return
    username = user.get_username()
    try:
        listed = ucp_client().bundle_keys(username)
    except dtr.DtrNotFound:
        raise InvalidInput(
            f"UCP has no account named {username}, so no client bundle of yours can be checked.",
            field=CERTIFICATE_FIELD,
        ) from None
    except dtr.DtrError as error:
        logger.warning("could not read %s's client bundle keys from UCP: %s", username, error)
        # An outage passes; a refusal (the portal's UCP account, TLS) needs its administrators.
        then = (
            "try again in a minute"
            if isinstance(error, dtr.TransientDtrError)
            else "trying again will not help until the portal's administrators fix it"
        )
        raise ServiceUnavailable(
            "The portal could not ask UCP whether this certificate is one of your client "
            f"bundles ({error.message}). Nothing was saved; {then}.",
            field=CERTIFICATE_FIELD,
        ) from None
    if public_key_of(certificate) not in listed:
        raise InvalidInput(
            f"UCP does not list this certificate's key among your client bundles ({len(listed)} "
            "listed). Use the cert.pem of a bundle you downloaded from UCP (My profile, Client "
            "bundles) and still have there.",
            field=CERTIFICATE_FIELD,
        )


def ucp_client() -> dtr.UcpClient:
    return dtr.UcpClient(
        settings.PORTAL_UCP_URL,
        username=settings.PORTAL_UCP_USERNAME,
        password=settings.PORTAL_UCP_PASSWORD,
        timeout=settings.PORTAL_DTR_TIMEOUT,
        verify=settings.PORTAL_DTR_CA_BUNDLE or True,
    )


def public_key_of(certificate: x509.Certificate) -> bytes:
    """The certificate's key as UcpClient.bundle_keys lists keys: DER SubjectPublicKeyInfo."""
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def bundle_sync_on() -> bool:
    """Whether the directory sync ends delegations whose bundle UCP no longer lists."""
    return bool(settings.PORTAL_UCP_URL) and settings.PORTAL_UCP_SYNC_BUNDLES


@dataclass
class BundleKeyReading:
    """What UCP said about each member asked: their keys, that it has no such account, or
    nothing usable."""

    listed: dict[str, frozenset[bytes]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def bundle_deleted(self, username: str, certificate_pem: str) -> bool:
        """Whether UCP answered for `username` and no longer lists the certificate's key: only
        that definite answer says the bundle is gone."""
        listed = self.listed.get(username)
        if listed is None:
            return False
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
        return public_key_of(certificate) not in listed


# Errors that are UCP's as a whole, not one account's: asking for the next member would only wait
# for the same timeout or refusal again.
_UCP_WIDE = (dtr.TransientDtrError, dtr.DtrAuthenticationFailed, dtr.DtrTLSFailure)


def bundle_keys_read(usernames: Iterable[str]) -> BundleKeyReading:
    """The client-bundle keys UCP lists for each of `usernames`, asked once each through one
    signed-in client. After an error that is UCP's as a whole, the members not yet asked count
    as unreadable without asking: a UCP that is down would otherwise hold the sync for a timeout
    per member."""
    reading = BundleKeyReading()
    client = ucp_client()
    members = list(usernames)
    for position, username in enumerate(members):
        try:
            # complete: a key UCP lists but the portal cannot read might be the member's.
            reading.listed[username] = frozenset(client.bundle_keys(username, complete=True))
        except dtr.DtrNotFound as error:
            logger.warning("UCP has no account %s: %s", username, error)
            reading.unknown.append(username)
        except dtr.DtrError as error:
            logger.warning("could not read %s's client bundle keys from UCP: %s", username, error)
            reading.unreadable.append(username)
            if isinstance(error, _UCP_WIDE):
                not_asked = members[position + 1 :]
                if not_asked:
                    logger.warning(
                        "UCP cannot answer; the client bundles of %d more members were not read",
                        len(not_asked),
                    )
                reading.unreadable.extend(not_asked)
                break
    return reading
