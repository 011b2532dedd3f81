"""A root whose certificates have all expired is refused, as notary's Go client refuses it
(`trustpinning.ValidateRoot`): every Docker client already rejects such a repository."""

from __future__ import annotations

from datetime import timedelta

import pytest

from delegations.notary import RELEASES, AddKey, NotaryClient, SigningKey, Transport
from delegations.notary.errors import RootCertificatesExpired
from delegations.notary.keys import ROOT_CERTIFICATE_LIFETIME
from tests.factories import make_bundle
from tests.notary.repos import key_of, new_gun, now

pytestmark = pytest.mark.services


def test_a_root_whose_certificate_expired_is_refused_with_what_to_do(notary_url):
    gun = new_gun()
    # The root certificate was made a year before root.json: it expires a year earlier.
    issued = now() - timedelta(days=365)
    root_key = SigningKey.generate_root(gun, now=issued)
    targets_key = SigningKey.generate()
    client = NotaryClient(Transport(notary_url, gun), pinned_root_keys=[root_key.public])
    client.initialise(root_key=root_key, targets_key=targets_key, now=now())
    valid_until = issued + ROOT_CERTIFICATE_LIFETIME

    # The day before it expires, the repository reads (up to its root: the rest is
    # server-signed and has long expired by then).
    reader = NotaryClient(Transport(notary_url, gun), pinned_root_keys=[root_key.public])
    reader._reader().read_root(now=valid_until - timedelta(days=1))

    with pytest.raises(RootCertificatesExpired, match="notary key rotate") as refused:
        reader.fetch(now=valid_until + timedelta(days=1))
    assert f"the last expired on {valid_until:%Y-%m-%d}" in refused.value.message
    assert "forget the trust memory" in refused.value.message
    with pytest.raises(RootCertificatesExpired):
        reader.publish_change(
            AddKey(key_of(make_bundle("bob")), (RELEASES,)),
            targets_key=targets_key,
            now=valid_until + timedelta(days=1),
        )
