"""The Notary client against a real notary-server, checked with the `notary` CLI."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from delegations.notary import (
    RELEASES,
    AddKey,
    InvalidMetadata,
    NotaryClient,
    PermanentNotaryError,
    PublicKey,
    RepositoryAlreadyInitialised,
    RepositoryNotInitialised,
    SigningKey,
    TransientNotaryError,
    Transport,
    team_role_name,
)
from delegations.notary.gotime import GoTime
from delegations.notary.metadata import FileMeta, Metadata, Root, RootRole, Snapshot
from delegations.notary.roles import DelegationRole
from stack.processes import free_port
from tests.factories import make_bundle
from tests.notary.repos import ALL_PATHS, Repo, key_of, now


@pytest.fixture
def repo(notary_url: str) -> Repo:
    return Repo(notary_url)


def test_initialised_repository_reads_back_with_a_server_managed_snapshot(repo, notary_cli):
    state = repo.client.fetch(now=now())
    assert state.targets.signed.version == 1
    assert state.root.signed.role_keys("targets") == [repo.targets_key.public]
    # The snapshot key is the server's (ed25519), so delegates can publish.
    assert [key.keytype for key in state.root.signed.role_keys("snapshot")] == ["ed25519"]
    assert notary_cli.delegations(repo.gun) == {}
    assert "No targets present" in notary_cli.run("list", repo.gun).stdout


def test_initialising_twice_is_refused(repo):
    with pytest.raises(RepositoryAlreadyInitialised):
        repo.client.initialise(root_key=repo.root_key, targets_key=repo.targets_key, now=now())


def test_delegation_lands_in_both_roles_by_canonical_id(repo, notary_cli):
    bob = make_bundle("bob")
    result = repo.delegate(key_of(bob), "qa")

    assert (result.changed, result.version_before, result.version_after) == (True, 1, 2)
    listed = notary_cli.delegations(repo.gun)
    canonical = key_of(bob).canonical_id
    assert listed == {
        "targets/qa": {"paths": ALL_PATHS, "keys": [canonical], "threshold": "1"},
        "targets/releases": {"paths": ALL_PATHS, "keys": [canonical], "threshold": "1"},
    }


def test_server_snapshot_hashes_exactly_the_uploaded_bytes(repo):
    repo.delegate(key_of(make_bundle("bob")), "qa")
    state = repo.client.fetch(now=now())
    meta = state.snapshot.signed.meta["targets"]
    assert meta.hashes["sha256"] == hashlib.sha256(state.targets_bytes).digest()
    # What we would write for the same metadata is what the server stores.
    assert state.targets.to_bytes() != b""
    rebuilt = Metadata(state.targets.signed, state.targets.signatures).to_bytes()
    assert rebuilt == state.targets_bytes


def test_the_delegate_can_sign_into_both_roles(repo, notary_cli):
    bob = make_bundle("bob")
    repo.delegate(key_of(bob), "qa")

    listing = notary_cli.sign(
        repo.gun, person="bob", key_pem=bob.key_pem, tag="v1", roles=[RELEASES, "targets/qa"]
    )
    assert "v1" in listing
    for role in (RELEASES, "targets/qa"):
        by_role = notary_cli.run("list", repo.gun, "--roles", role, person="bob").stdout
        assert "v1" in by_role
        assert role in by_role


def test_rsa_certificates_delegate_and_sign_too(repo, notary_cli):
    carol = make_bundle("carol", key="rsa", bits=2048)
    repo.delegate(key_of(carol), "qa")
    assert notary_cli.delegations(repo.gun)[RELEASES]["keys"] == [key_of(carol).canonical_id]
    listing = notary_cli.sign(
        repo.gun, person="carol", key_pem=carol.key_pem, tag="rsa", roles=[RELEASES]
    )
    assert "rsa" in listing


def test_a_second_delegate_keeps_the_first(repo, notary_cli):
    bob, dave = make_bundle("bob"), make_bundle("dave")
    repo.delegate(key_of(bob), "qa")
    repo.delegate(key_of(dave), "dev")

    listed = notary_cli.delegations(repo.gun)
    assert listed[RELEASES]["keys"] == [key_of(bob).canonical_id, key_of(dave).canonical_id]
    assert listed["targets/qa"]["keys"] == [key_of(bob).canonical_id]
    assert listed["targets/dev"]["keys"] == [key_of(dave).canonical_id]


def test_applying_the_same_delegation_again_publishes_nothing(repo):
    bob = key_of(make_bundle("bob"))
    repo.delegate(bob, "qa")
    again = repo.delegate(bob, "qa")
    assert (again.changed, again.version_before, again.version_after) == (False, 2, 2)
    assert repo.client.fetch(now=now()).targets.signed.version == 2


def test_existing_roles_keep_their_paths_threshold_and_position(repo, notary_cli):
    # Someone set up targets/qa by hand earlier: two paths and threshold 2.
    state = repo.client.fetch(now=now())
    first, second = key_of(make_bundle("x")), key_of(make_bundle("y"))
    targets = state.targets.signed
    targets.delegations.keys = {first.tuf_id: first, second.tuf_id: second}
    targets.delegations.roles = [
        DelegationRole("targets/qa", [first.tuf_id, second.tuf_id], 2, ["prod/", "stage/"])
    ]
    targets.version += 1
    hand_made = Metadata(targets)
    hand_made.sign([repo.targets_key])
    repo.client.transport.publish({"targets": hand_made.to_bytes()})

    bob = key_of(make_bundle("bob"))
    repo.delegate(bob, "qa")

    role = repo.client.fetch(now=now()).targets.signed.delegations.roles[0]
    assert role.name == "targets/qa"
    assert role.threshold == 2
    assert role.paths == ["prod/", "stage/", ""]
    assert role.keyids == [first.tuf_id, second.tuf_id, bob.tuf_id]
    assert notary_cli.delegations(repo.gun)["targets/qa"]["threshold"] == "2"


def test_concurrent_publishers_both_succeed(repo, notary_cli):
    keys = [key_of(make_bundle(name)) for name in ("bob", "carol", "dave", "erin")]
    errors: list[Exception] = []

    def delegate(key: PublicKey, team: str) -> None:
        client = NotaryClient(Transport(repo.client.transport.server_url, repo.gun))
        try:
            client.publish_change(
                AddKey(key, (RELEASES, team_role_name(team))),
                targets_key=repo.targets_key,
                now=now(),
            )
        except Exception as error:  # collected and reported below
            errors.append(error)

    threads = [
        threading.Thread(target=delegate, args=(key, team))
        for key, team in zip(keys, ("qa", "qa", "dev", "ops"), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    listed = notary_cli.delegations(repo.gun)
    assert sorted(listed[RELEASES]["keys"]) == sorted(key.canonical_id for key in keys)


def test_a_foreign_targets_key_cannot_publish(repo):
    with pytest.raises(PermanentNotaryError, match="not this repository's targets key"):
        repo.client.publish_change(
            AddKey(key_of(make_bundle("bob")), (RELEASES,)),
            targets_key=SigningKey.generate(),
            now=now(),
        )


def test_an_uninitialised_repository_says_so(notary_url):
    client = NotaryClient(Transport(notary_url, "dtr.example.org/none/here"))
    with pytest.raises(RepositoryNotInitialised):
        client.fetch(now=now())


def test_an_unreachable_server_is_a_transient_error():
    client = NotaryClient(
        Transport(f"http://127.0.0.1:{free_port()}", "dtr.example.org/a/b", timeout=2)
    )
    with pytest.raises(TransientNotaryError):
        client.fetch(now=now())


def test_snapshot_of_the_server_is_signed_by_the_key_root_names(repo):
    state = repo.client.fetch(now=now())
    snapshot_keys = state.root.signed.role_keys("snapshot")
    assert state.snapshot.valid_signers(snapshot_keys) == {snapshot_keys[0].tuf_id}
    assert isinstance(state.snapshot.signed, Snapshot)


def test_p384_certificates_are_delegated(repo, notary_cli):
    erin = make_bundle("erin", curve=ec.SECP384R1())
    repo.delegate(key_of(erin), "ops")
    assert notary_cli.delegations(repo.gun)["targets/ops"]["keys"] == [key_of(erin).canonical_id]


def test_target_names_go_escapes_differently_are_signed_and_read_like_go(repo, notary_cli):
    names = ['weird<&>é"\\tag', "line\u2028separated\u2029paragraph", "ünïcødé-✓"]
    targets = repo.client.fetch(now=now()).targets.signed
    for name in names:
        targets.targets[name] = FileMeta.for_bytes(name.encode())
    targets.version += 1
    signed = Metadata(targets)
    signed.sign([repo.targets_key])

    repo.client.transport.publish({"targets": signed.to_bytes()})  # the server checks the signature

    state = repo.client.fetch(now=now())  # our reader checks the server's copy the same way
    assert state.targets_bytes == signed.to_bytes()
    listing = notary_cli.run("list", repo.gun).stdout
    for name in names:
        assert name in listing


def test_a_root_not_signed_by_the_pinned_root_key_is_refused(repo):
    stranger = SigningKey.generate_root(repo.gun, now=now())
    client = NotaryClient(Transport(repo.client.transport.server_url, repo.gun),
                          pinned_root_keys=[stranger.public])  # fmt: skip
    with pytest.raises(InvalidMetadata, match="not signed by the root key the portal trusts"):
        client.fetch(now=now())
    with pytest.raises(InvalidMetadata):
        client.publish_change(
            AddKey(key_of(make_bundle("bob")), (RELEASES,)),
            targets_key=repo.targets_key,
            now=now(),
        )


class ServedFiles:
    """A stand-in transport serving fixed files: what a malicious server could answer."""

    def __init__(self, gun: str, files: dict[str, bytes]) -> None:
        self.gun = gun
        self.files = files

    def get(self, path: str, *, limit: int = 0) -> bytes:
        return self.files[path]


def self_signed_root(root_key: SigningKey, *, expires: datetime) -> bytes:
    root = Metadata(
        Root(
            version=1,
            expires=GoTime.from_datetime(expires),
            keys={root_key.public.tuf_id: root_key.public},
            roles={"root": RootRole([root_key.public.tuf_id], 1)},
        )
    )
    root.sign([root_key])
    return root.to_bytes()


def test_a_root_certificate_for_another_repository_is_refused():
    # notary-server refuses such a root itself; a malicious server would not.
    gun = "dtr.example.org/dev/nginx"
    elsewhere = SigningKey.generate_root("dtr.example.org/someone/else", now=now())
    files = {"root.json": self_signed_root(elsewhere, expires=now() + timedelta(days=30))}
    client = NotaryClient(ServedFiles(gun, files))
    with pytest.raises(InvalidMetadata, match=r"names 'dtr\.example\.org/someone/else'"):
        client.fetch(now=now())


def test_an_expired_root_is_refused():
    gun = "dtr.example.org/dev/nginx"
    root_key = SigningKey.generate_root(gun, now=now() - timedelta(days=60))
    files = {"root.json": self_signed_root(root_key, expires=now() - timedelta(days=1))}
    client = NotaryClient(ServedFiles(gun, files), pinned_root_keys=[root_key.public])
    with pytest.raises(InvalidMetadata, match="root expired"):
        client.fetch(now=now())
