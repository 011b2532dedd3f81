"""UCP's word on a certificate (optional, `PORTAL_UCP_URL`): its key must be one of the public
keys UCP keeps for the requester's client bundles. That binds the certificate to the account more
tightly than the CA chain alone: a bundle the user deleted in UCP, or a certificate the CA issued
some other way, is refused."""

from __future__ import annotations

import logging
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
        raise ServiceUnavailable(
            "The portal could not ask UCP whether this certificate is one of your client "
            f"bundles ({error.message}). Nothing was saved; try again in a minute.",
            field=CERTIFICATE_FIELD,
        ) from None
    key = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if key not in listed:
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
