"""A tampering proxy between the client and a real notary-server: every read fails loudly, and
nothing gets published on the strength of what was tampered with."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from delegations.notary import (
    RELEASES,
    AddKey,
    InvalidMetadata,
    NotaryClient,
    PermanentNotaryError,
    RollbackDetected,
    SigningKey,
    Transport,
)
from delegations.notary.metadata import Metadata, Root, RootRole
from tests.factories import make_bundle
from tests.notary.repos import Repo, key_of, now
from tests.notary.tampering import TamperingProxy, flip_byte_inside


@pytest.fixture
def repo(notary_url: str) -> Repo:
    return Repo(notary_url)


@pytest.fixture
def proxy(notary_url: str):
    with TamperingProxy(notary_url) as running:
        yield running


def is_file(path: str, name: str) -> bool:
    return path.rsplit("/", 1)[-1] == name


def is_by_hash(path: str, role: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return last.startswith(role + ".") and len(last) == len(role) + 1 + 64 + len(".json")


def attempt_delegation(client, repo: Repo, **overrides):
    signing = {**repo.signing(), **overrides}
    return client.publish_change(AddKey(key_of(make_bundle("bob")), (RELEASES,)), **signing)


def broken_snapshot(path: str, body: bytes) -> bytes | None:
    return flip_byte_inside(body, b'"sig":"') if is_by_hash(path, "snapshot") else None


def test_a_forged_root_json_is_never_read_while_the_snapshot_records_the_remembered_root(
    repo, proxy
):
    remembering = repo.new_client(proxy.url)
    remembering.fetch(now=now())
    usurper = SigningKey.generate_root(repo.gun, now=now())
    forged = rotated_root(repo, usurper, signers=[usurper])
    proxy.tamper = lambda path, body: forged if is_file(path, "root.json") else None

    attempt_delegation(remembering, repo)  # published under the root it verified before

    assert repo.targets_version() == 2
    assert remembering.memory.root != forged
    with pytest.raises(InvalidMetadata, match="not signed by the keys of version 1"):
        attempt_delegation(repo.new_client(proxy.url), repo)  # one with nothing remembered


def assert_nothing_published(proxy: TamperingProxy, repo: Repo, version: int) -> None:
    assert proxy.posts == 0
    assert repo.targets_version() == version


def test_a_changed_byte_in_targets_is_refused(repo, proxy):
    client = repo.new_client(proxy.url)
    proxy.tamper = lambda path, body: (
        flip_byte_inside(body, b'"expires":"') if is_by_hash(path, "targets") else None
    )
    with pytest.raises(InvalidMetadata, match="targets does not match its length and hashes"):
        attempt_delegation(client, repo)
    assert_nothing_published(proxy, repo, 1)


def test_a_changed_byte_in_a_timestamp_signature_is_refused(repo, proxy):
    client = repo.new_client(proxy.url)
    proxy.tamper = lambda path, body: (
        flip_byte_inside(body, b'"sig":"') if is_file(path, "timestamp.json") else None
    )
    with pytest.raises(InvalidMetadata, match="did not meet threshold for timestamp"):
        attempt_delegation(client, repo)
    assert_nothing_published(proxy, repo, 1)


def test_a_changed_byte_in_root_is_refused(repo, proxy):
    client = repo.new_client(proxy.url)
    proxy.tamper = lambda path, body: (
        flip_byte_inside(body, b'"sig":"') if is_file(path, "root.json") else None
    )
    # Anchored in the pinned key, the walk from version 1 finds a different version 1; trusting
    # on first use, the root's own signature check fails.
    with pytest.raises(InvalidMetadata, match="not the one the portal verified before"):
        attempt_delegation(client, repo)
    first_use = NotaryClient(Transport(proxy.url, repo.gun))
    with pytest.raises(InvalidMetadata, match="did not meet threshold for root"):
        attempt_delegation(first_use, repo)
    assert_nothing_published(proxy, repo, 1)


def test_a_replayed_old_timestamp_is_refused(repo, proxy):
    client = repo.new_client(proxy.url)
    client.fetch(now=now())  # the proxy keeps this first timestamp
    repo.delegate(key_of(make_bundle("dave")), "dev")  # directly: the server moves on
    client.fetch(now=now())  # the client sees the newer one
    timestamp_path = proxy.path_of(repo.gun, "timestamp.json")
    proxy.tamper = lambda path, body: proxy.seen[path] if path == timestamp_path else None

    with pytest.raises(RollbackDetected, match="timestamp version 1, older than version 2"):
        attempt_delegation(client, repo)
    assert_nothing_published(proxy, repo, 2)


def test_an_expired_timestamp_is_refused(repo, proxy):
    # The server signs timestamps for 14 days; the client's clock is past that.
    client = repo.new_client(proxy.url)
    later = now() + timedelta(days=15)
    with pytest.raises(InvalidMetadata, match="timestamp expired at"):
        attempt_delegation(client, repo, now=later)
    assert_nothing_published(proxy, repo, 1)


def rotated_root(repo: Repo, new_root_key: SigningKey, *, signers: list[SigningKey]) -> bytes:
    """The next root version with `new_root_key` in place of the current root key."""
    root = repo.new_client().fetch(now=now()).root.signed
    old_ids = set(root.roles["root"].keyids)
    keys = {keyid: key for keyid, key in root.keys.items() if keyid not in old_ids}
    keys[new_root_key.public.tuf_id] = new_root_key.public
    roles = {**root.roles, "root": RootRole([new_root_key.public.tuf_id], 1)}
    rotated = Metadata(dataclasses.replace(root, version=root.version + 1, keys=keys, roles=roles))
    rotated.sign(signers)
    return rotated.to_bytes()


def test_a_root_rotation_is_followed_with_or_without_memory(repo, notary_cli):
    remembering = repo.new_client()
    remembering.fetch(now=now())
    new_root_key = SigningKey.generate_root(repo.gun, now=now())
    repo.client.transport.publish(
        {"root": rotated_root(repo, new_root_key, signers=[repo.root_key, new_root_key])}
    )

    # From the remembered version 1, and from the pinned (now rotated out) key alone.
    for client in (remembering, repo.new_client()):
        result = attempt_delegation(client, repo)
        assert client.fetch(now=now()).root.signed.version == 2
        assert result.changed
    assert Metadata.from_bytes(remembering.memory.root, Root).signed.version == 2
    assert notary_cli.delegations(repo.gun)[RELEASES]["keys"]  # the CLI follows it too


def test_a_new_root_the_old_root_did_not_sign_is_refused(repo, proxy):
    remembering = repo.new_client(proxy.url)
    remembering.fetch(now=now())
    usurper = SigningKey.generate_root(repo.gun, now=now())
    forged = rotated_root(repo, usurper, signers=[usurper])
    # A client that remembers the root reads root.json again only when the snapshot does not
    # verify with it: a broken snapshot sends it there (downloaded: the client forgot its own).
    remembering.memory = dataclasses.replace(remembering.memory, files={})
    proxy.tamper = lambda path, body: (
        forged if is_file(path, "root.json") else broken_snapshot(path, body)
    )

    for client in (remembering, repo.new_client(proxy.url)):
        with pytest.raises(InvalidMetadata, match="not signed by the keys of version 1"):
            attempt_delegation(client, repo)
    assert_nothing_published(proxy, repo, 1)


def test_a_replayed_old_root_is_refused_after_a_rotation(repo, proxy):
    client = repo.new_client(proxy.url)
    client.fetch(now=now())  # the proxy keeps root version 1
    new_root_key = SigningKey.generate_root(repo.gun, now=now())
    repo.client.transport.publish(
        {"root": rotated_root(repo, new_root_key, signers=[repo.root_key, new_root_key])}
    )
    client.fetch(now=now())  # the client follows to version 2
    client.memory = dataclasses.replace(client.memory, files={})  # so it downloads the snapshot
    root_path = proxy.path_of(repo.gun, "root.json")
    proxy.tamper = lambda path, body: (
        proxy.seen[path] if path == root_path else broken_snapshot(path, body)
    )

    with pytest.raises(RollbackDetected, match="root version 1, older than version 2"):
        attempt_delegation(client, repo)
    assert proxy.posts == 0


def test_a_targets_file_the_portals_key_did_not_sign_is_not_re_signed(repo):
    # A root (here a real rotation; on a hostile server, one trusted on first use) that names a
    # second targets key, and a targets file signed only by that key.
    intruder = SigningKey.generate()
    root = repo.new_client().fetch(now=now()).root.signed
    keys = {**root.keys, intruder.public.tuf_id: intruder.public}
    targets_role = RootRole([*root.roles["targets"].keyids, intruder.public.tuf_id], 1)
    rotated = Metadata(
        dataclasses.replace(
            root, version=2, keys=keys, roles={**root.roles, "targets": targets_role}
        )
    )
    rotated.sign([repo.root_key])
    targets = repo.new_client().fetch(now=now()).targets.signed
    targets.delegations.add_key(key_of(make_bundle("mallory")), [RELEASES])
    targets.version += 1
    planted = Metadata(targets)
    planted.sign([intruder])
    repo.client.transport.publish({"root": rotated.to_bytes(), "targets": planted.to_bytes()})

    with pytest.raises(PermanentNotaryError, match="not signed by the portal's targets key"):
        attempt_delegation(repo.new_client(), repo)
    assert repo.targets_version() == 2


def downloads(proxy: TamperingProxy) -> list[str]:
    """The role of every file the client downloads through the proxy from now on."""
    fetched: list[str] = []

    def record(path: str, body: bytes) -> None:
        fetched.append(path.rsplit("/", 1)[-1].split(".")[0])

    proxy.tamper = record
    return fetched


def test_a_publish_after_the_clients_own_downloads_only_what_changed(repo, proxy):
    client = repo.new_client(proxy.url)
    attempt_delegation(client, repo)
    fetched = downloads(proxy)

    client.publish_change(AddKey(key_of(make_bundle("carol")), (RELEASES,)), **repo.signing())

    # The timestamp still lists the snapshot and targets the client verified: only the read-back
    # has something new to download, the server's new snapshot.
    assert fetched == ["timestamp", "timestamp", "snapshot"]
    assert repo.targets_version() == 3


def test_a_remembered_file_the_verified_metadata_does_not_list_is_downloaded_instead(repo, proxy):
    client = repo.new_client(proxy.url)
    client.fetch(now=now())
    repo.delegate(key_of(make_bundle("dave")), "dev")  # someone else publishes meanwhile
    client.memory = dataclasses.replace(
        client.memory, files={**client.memory.files, "snapshot": b"{}", "targets": b"forged"}
    )
    fetched = downloads(proxy)

    state = client.fetch(now=now())

    assert fetched == ["timestamp", "snapshot", "targets"]
    assert state.targets.signed.version == 2
    assert client.memory.files["targets"] == state.targets_bytes
