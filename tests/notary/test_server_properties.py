"""Byte-exactness against the real server, for generated metadata: whatever the portal uploads,
the server's snapshot must hash exactly those bytes, and the `notary` CLI must read the result.

notary-server stores an upload as sent but hashes its own re-serialisation (protocol note §2.2),
so any difference in escaping, field order or omitted fields would show up here as a mismatch.
"""

from __future__ import annotations

import hashlib
import string
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delegations.notary import PublicKey, SigningKey
from delegations.notary.metadata import FileMeta, Metadata
from delegations.notary.roles import DelegationRole, Delegations
from tests.factories import make_bundle
from tests.notary.repos import Repo, now


@cache
def key_pool() -> tuple[PublicKey, ...]:
    """Certificates of every kind notary delegates to, and bare keys (made once: RSA is slow)."""
    bundles = [make_bundle(f"member{i}") for i in range(4)]
    bundles += [make_bundle("p384", curve=ec.SECP384R1()), make_bundle("rsa", key="rsa")]
    bare = [SigningKey.generate().public, SigningKey.generate("ecdsa-p384").public]
    return tuple(PublicKey.from_certificate(b.certificate) for b in bundles) + tuple(bare)


# Anything a name can hold except control characters, with Go's HTML-escaped ones made likely.
names = st.text(
    alphabet=st.one_of(
        st.sampled_from('<>&"\\é✓\u2028\u2029 /:@+'),
        st.characters(blacklist_categories=("Cs", "Cc")),
    ),
    min_size=1,
    max_size=24,
)
digests = st.builds(
    lambda data, both: (
        {"sha256": hashlib.sha256(data).digest()}
        | ({"sha512": hashlib.sha512(data).digest()} if both else {})
    ),
    st.binary(max_size=16),
    st.booleans(),
)
customs = st.none() | st.dictionaries(
    st.text(string.ascii_letters, min_size=1, max_size=6), names | st.integers(0, 10**6), max_size=2
)
file_metas = st.builds(
    lambda hashes, length, custom: FileMeta(length=length, hashes=hashes, custom=custom),
    digests,
    st.integers(0, 2**40),
    customs,
)
role_names = st.text(string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=20).map(
    lambda team: f"targets/{team}"
)


@st.composite
def delegation_roles(draw) -> list[DelegationRole]:
    pool = key_pool()
    roles = []
    for name in draw(st.lists(role_names, max_size=8, unique=True)):
        keys = draw(st.lists(st.sampled_from(pool), max_size=4, unique_by=lambda k: k.tuf_id))
        roles.append(
            DelegationRole(
                name=name,
                keyids=[key.tuf_id for key in keys] or None,
                threshold=draw(st.integers(1, max(1, len(keys)))),
                paths=draw(st.lists(st.just("") | names, max_size=3)),
            )
        )
    return roles


@pytest.fixture(scope="module")
def shared_repo(notary_url: str) -> Repo:
    return Repo(notary_url)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(targets=st.dictionaries(names, file_metas, max_size=12), roles=delegation_roles())
def test_the_server_hashes_exactly_what_was_uploaded(shared_repo, notary_cli, targets, roles):
    repo = shared_repo
    current = repo.client.fetch(now=now()).targets.signed
    by_id = {key.tuf_id: key for key in key_pool()}
    used = {keyid for role in roles for keyid in role.keyids or ()}
    current.targets = targets
    current.delegations = Delegations(keys={k: by_id[k] for k in used}, roles=roles)
    current.version += 1
    signed = Metadata(current)
    signed.sign([repo.targets_key])
    uploaded = signed.to_bytes()

    repo.client.transport.publish({"targets": uploaded})

    state = repo.client.fetch(now=now())  # verifies the whole chain on the way
    assert state.targets_bytes == uploaded
    listed = state.snapshot.signed.meta["targets"]
    assert listed.hashes["sha256"] == hashlib.sha256(uploaded).digest()
    assert listed.length == len(uploaded)
    listing = notary_cli.run("list", repo.gun).stdout
    for name in targets:
        assert name in listing
    delegations = notary_cli.delegations(repo.gun)
    assert sorted(delegations) == sorted(role.name for role in roles)
    for role in roles:
        keys = [by_id[keyid].canonical_id for keyid in role.keyids or ()]
        assert delegations[role.name]["keys"] == keys
        # The CLI's table pads cells with spaces, so spaces at either end of a path are lost.
        displayed = ('"" <all paths>' if path == "" else path.strip(" ") for path in role.paths)
        shown = sorted(path for path in displayed if path)
        assert sorted(delegations[role.name]["paths"]) == shown
