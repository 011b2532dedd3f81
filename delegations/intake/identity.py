"""Binding a certificate to the person who uploads it.

A delegation lets its holder sign as a member of a team, so the certificate must be one UCP
issued to the requester: it must chain to the configured UCP client CA (when one is set), and
its subject attribute (CN by default, as UCP writes the username there) must name them.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..exceptions import InvalidInput

if TYPE_CHECKING:
    from django.contrib.auth.models import User


CERTIFICATE_FIELD = "certificate"

# The subject attributes a deployment may bind to, and what of the user each one must equal.
SUBJECT_ATTRIBUTES = {
    "CN": (NameOID.COMMON_NAME, "username"),
    "UID": (NameOID.USER_ID, "username"),
    "emailAddress": (NameOID.EMAIL_ADDRESS, "email"),
}


def identity_check(certificate: x509.Certificate, user: User, *, now: datetime) -> None:
    """Refuse a certificate that UCP did not issue to `user`; InvalidInput says what to do."""
    _check_issuer(certificate, now=now)
    _check_client_use(certificate)
    _check_subject(certificate, user)


def expected_subject(user: User) -> str:
    """What the configured subject attribute of `user`'s certificate must say."""
    _, user_field = SUBJECT_ATTRIBUTES[settings.PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE]
    return str(getattr(user, user_field) or "")


def same_name(certificate_value: str, expected: str) -> bool:
    """ASCII names match whatever their case (directories ignore it); others only exactly, so
    Unicode case folding (ſ → s, K → k) cannot make two accounts' names meet."""
    if certificate_value.isascii() and expected.isascii():
        return certificate_value.lower() == expected.lower()
    return certificate_value == expected


def client_ca_certificates() -> list[x509.Certificate]:
    """The configured UCP client CA bundle; empty when none is configured."""
    path = settings.PORTAL_UCP_CA_BUNDLE
    if not path:
        return []
    try:
        modified = Path(path).stat().st_mtime_ns
    except OSError as error:
        raise ImproperlyConfigured(
            f"PORTAL_UCP_CA_BUNDLE names {path}, which cannot be read: {error.strerror}"
        ) from None
    return _load_bundle(path, modified)


@lru_cache(maxsize=4)
def _load_bundle(path: str, modified: int) -> list[x509.Certificate]:
    # Keyed on the modification time too, so a replaced bundle is read again.
    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError):
        certificates = []
    if not certificates:
        raise ImproperlyConfigured(
            f"PORTAL_UCP_CA_BUNDLE ({path}) holds no PEM certificate; set it to UCP's ca.pem"
        )
    return certificates


def _check_issuer(certificate: x509.Certificate, *, now: datetime) -> None:
    authorities = client_ca_certificates()
    if not authorities:
        return
    names = " or ".join(sorted({ca.subject.rfc4514_string() for ca in authorities}))
    if all(ca.subject != certificate.issuer for ca in authorities):
        raise InvalidInput(
            f"This certificate was issued by {certificate.issuer.rfc4514_string()}, not by your "
            f"UCP's client CA ({names}). Download a client bundle from UCP (your profile, "
            "Client bundles) and use it here.",
            field=CERTIFICATE_FIELD,
        )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(authorities))
        .time(now)
        # UCP's client certificates carry few extensions; the CA is held to the usual rules.
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(certificate, [])
    except verification.VerificationError as error:
        if any(ca.not_valid_after_utc <= now for ca in authorities):
            raise InvalidInput(
                "The portal's copy of the UCP client CA has expired, so no certificate can be "
                "checked. Tell a portal administrator (PORTAL_UCP_CA_BUNDLE).",
                field=CERTIFICATE_FIELD,
            ) from None
        raise InvalidInput(
            f"This certificate names your UCP's client CA ({names}) as its issuer, but it does "
            f"not verify against it ({error}). Download a new client bundle from UCP.",
            field=CERTIFICATE_FIELD,
        ) from None


def _check_client_use(certificate: x509.Certificate) -> None:
    """A certificate limited to other uses (a server's, say) is not a member's client bundle."""
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(
        usages
    ):
        raise InvalidInput(
            "This certificate is not for client authentication (its extended key usage leaves "
            "it out), so it is not from a UCP client bundle. Upload the cert.pem of your client "
            "bundle.",
            field=CERTIFICATE_FIELD,
        )


def _check_subject(certificate: x509.Certificate, user: User) -> None:
    attribute = settings.PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE
    oid, user_field = SUBJECT_ATTRIBUTES[attribute]
    expected = expected_subject(user)
    values = [str(item.value) for item in certificate.subject.get_attributes_for_oid(oid)]
    if len(values) != 1:
        found = "no" if not values else f"{len(values)}"
        raise InvalidInput(
            f"This certificate's subject has {found} {attribute} values; a UCP client "
            f"certificate has exactly one, naming its user. Upload the cert.pem of your own "
            "client bundle.",
            field=CERTIFICATE_FIELD,
        )
    if not expected or not same_name(values[0], expected):
        you = (
            f"your email address is {expected or 'not set'}"
            if user_field == "email"
            else f"you are signed in as {user.get_username()}"
        )
        raise InvalidInput(
            f"This certificate belongs to {attribute}={values[0]}, but {you}. Upload the cert.pem "
            "of your own client bundle: a delegation lets its holder sign in your name.",
            field=CERTIFICATE_FIELD,
        )
