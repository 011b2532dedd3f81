"""Remove, replace, list and plan against a real notary-server, checked with the `notary` CLI."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from delegations.notary import (
    RELEASES,
    AddKey,
    NotaryClient,
    RemoveKey,
    ReplaceKey,
    SnapshotKeyRequired,
    Transport,
    team_role_name,
)
from delegations.notary.metadata import Metadata, Snapshot
from tests.factories import make_bundle
from tests.notary.repos import ALL_PATHS, Repo, key_of, now

NO_SIGNING_KEY = "could not find necessary signing keys"


@pytest.fixture
def repo(notary_url: str) -> Repo:
    return Repo(notary_url)


class Member:
    """A person with a bundle and their own notary trust directory, key imported once."""

    def __init__(self, cli, name: str, bundle=None) -> None:
        self.cli = cli
        self.name = name
        self.bundle = bundle or make_bundle(name)
        key_file = Path(cli.home) / f"{name}-key.pem"
        key_file.write_bytes(self.bundle.key_pem)
        cli.run("key", "import", str(key_file), person=name)

    @property
    def key(self):
        return key_of(self.bundle)

    def sign(self, gun: str, tag: str, *roles: str, check: bool = True):
        payload = Path(self.cli.home) / f"{self.name}-{tag}.txt"
        payload.write_text(f"{self.name} signs {tag}\n")
        role_args = [arg for role in roles for arg in ("--roles", role)]
        return self.cli.run(
            "add", "-p", gun, tag, str(payload), *role_args, person=self.name, check=check
        )


def listed_tags(cli, gun: str, person: str = "owner") -> set[str]:
    output = cli.run("list", gun, person=person).stdout
    return {line.split()[0] for line in output.splitlines()[2:] if line.strip()}


def test_revoking_one_member_keeps_the_roles_and_the_others(repo, notary_cli):
    bob, dave = Member(notary_cli, "bob"), Member(notary_cli, "dave")
    repo.delegate(bob.key, "qa")
    repo.delegate(dave.key, "qa")
    bob.sign(repo.gun, "v1", RELEASES, "targets/qa")
    assert listed_tags(notary_cli, repo.gun) == {"v1"}

    result = repo.revoke(bob.key, "qa")

    assert (result.changed, result.version_after) == (True, result.version_before + 1)
    listed = notary_cli.delegations(repo.gun)
    assert listed[RELEASES]["keys"] == [dave.key.canonical_id]
    assert listed["targets/qa"]["keys"] == [dave.key.canonical_id]
    # What only bob signed is no longer trusted, and bob can no longer sign.
    assert "v1" not in listed_tags(notary_cli, repo.gun)
    refused = bob.sign(repo.gun, "v2", RELEASES, check=False)
    assert refused.returncode != 0
    assert NO_SIGNING_KEY in refused.stderr + refused.stdout
    # The role files bob signed last no longer verify, and the Go client would rebuild them at
    # version 1, which the server refuses as old; a remaining member re-signs ("witnesses")
    # them first, vouching for what they hold, and can then sign again.
    notary_cli.run("witness", "-p", repo.gun, RELEASES, "targets/qa", person="dave")
    dave.sign(repo.gun, "v3", RELEASES, "targets/qa")
    assert listed_tags(notary_cli, repo.gun) == {"v1", "v3"}


def test_a_role_left_without_keys_stays_as_the_go_client_writes_it(repo, notary_cli):
    bob = key_of(make_bundle("bob"))
    repo.delegate(bob, "qa")
    repo.revoke(bob, "qa")

    state = repo.client.fetch(now=now())
    roles = {role.name: role for role in state.targets.signed.delegations.roles}
    assert set(roles) == {RELEASES, "targets/qa"}  # a team role is never deleted by a revoke
    assert roles["targets/qa"].keyids is None
    assert b'"keyids":null' in state.targets_bytes
    assert state.targets.signed.delegations.keys == {}  # unused keys go, as Go's RemoveUnusedKeys
    assert notary_cli.delegations(repo.gun)["targets/qa"]["keys"] == []


def test_a_key_delegated_through_two_teams_stays_in_releases_until_the_last_goes(repo, notary_cli):
    bob = key_of(make_bundle("bob"))
    repo.delegate(bob, "qa")
    repo.delegate(bob, "dev")

    repo.revoke(bob, "qa")

    listed = notary_cli.delegations(repo.gun)
    assert listed["targets/qa"]["keys"] == []
    assert listed["targets/dev"]["keys"] == [bob.canonical_id]
    assert listed[RELEASES]["keys"] == [bob.canonical_id]  # still delegated through dev

    repo.revoke(bob, "dev")

    listed = notary_cli.delegations(repo.gun)
    assert listed["targets/dev"]["keys"] == []
    assert listed[RELEASES]["keys"] == []


def test_revoking_twice_publishes_nothing_the_second_time(repo):
    bob = key_of(make_bundle("bob"))
    repo.delegate(bob, "qa")
    repo.revoke(bob, "qa")
    again = repo.revoke(bob, "qa")
    assert again.changed is False
    assert repo.targets_version() == again.version_after


def test_revoking_by_key_removes_every_certificate_of_that_key_pair(repo, notary_cli):
    first = make_bundle("bob")
    renewed = make_bundle("bob", same_key_as=first)
    repo.delegate(key_of(first), "qa")
    repo.delegate(key_of(renewed), "qa")
    roles = repo.client.fetch(now=now()).targets.signed.delegations
    assert len(roles.role("targets/qa").keyids) == 2  # two TUF IDs, one canonical ID

    repo.revoke(key_of(first), "qa")

    assert notary_cli.delegations(repo.gun)["targets/qa"]["keys"] == []


def test_renewal_swaps_the_keys_in_one_version(repo, notary_cli):
    old = Member(notary_cli, "bob-old", make_bundle("bob"))
    new = Member(notary_cli, "bob-new", make_bundle("bob"))
    keep = key_of(make_bundle("erin"))
    repo.delegate(keep, "qa")
    repo.delegate(old.key, "qa")

    result = repo.renew(old.key, new.key, "qa")

    assert result.version_after == result.version_before + 1
    listed = notary_cli.delegations(repo.gun)
    assert listed[RELEASES]["keys"] == [keep.canonical_id, new.key.canonical_id]
    assert listed["targets/qa"]["keys"] == [keep.canonical_id, new.key.canonical_id]
    new.sign(repo.gun, "v2", RELEASES, "targets/qa")
    assert "v2" in listed_tags(notary_cli, repo.gun)
    refused = old.sign(repo.gun, "v3", RELEASES, check=False)
    assert NO_SIGNING_KEY in refused.stderr + refused.stdout
    assert repo.renew(old.key, new.key, "qa").changed is False


def test_renewing_a_certificate_of_the_same_key_pair_keeps_the_key(repo, notary_cli):
    member = Member(notary_cli, "bob")
    renewed = make_bundle("bob", same_key_as=member.bundle)
    repo.delegate(member.key, "qa")

    repo.renew(member.key, key_of(renewed), "qa")

    roles = repo.client.fetch(now=now()).targets.signed.delegations
    assert roles.role("targets/qa").keyids == [key_of(renewed).tuf_id]
    assert roles.role(RELEASES).keyids == [key_of(renewed).tuf_id]
    member.sign(repo.gun, "v1", RELEASES)  # the same private key still signs
    assert "v1" in listed_tags(notary_cli, repo.gun)


def test_listing_shows_both_ids_as_the_cli_and_the_metadata_have_them(repo, notary_cli):
    bob, carol = make_bundle("bob"), make_bundle("carol", key="rsa")
    repo.delegate(key_of(bob), "qa")
    repo.delegate(key_of(carol), "dev")

    roles = {role.name: role for role in repo.client.list_delegations(now=now())}

    cli = notary_cli.delegations(repo.gun)
    assert set(roles) == set(cli)
    for name, role in roles.items():
        assert [key.canonical_id for key in role.keys] == cli[name]["keys"]
        assert role.paths == ("",)
        assert cli[name]["paths"] == ALL_PATHS
    targets = repo.client.fetch(now=now()).targets.signed
    assert [key.tuf_id for key in roles[RELEASES].keys] == targets.delegations.role(RELEASES).keyids
    carol_key = roles["targets/dev"].keys[0]
    assert (carol_key.keytype, carol_key.subject) == ("rsa-x509", "carol")
    assert carol_key.expires == carol.certificate.not_valid_after_utc


def test_a_plan_shows_the_change_and_publishes_nothing(repo):
    bob, dave = key_of(make_bundle("bob")), key_of(make_bundle("dave"))
    repo.delegate(bob, "qa")
    version = repo.targets_version()

    plan = repo.client.plan(repo_change(repo, "replace", bob, dave), now=now())

    assert repo.targets_version() == version
    assert plan.changed
    assert (plan.before.version, plan.after.version) == (version, version + 1)
    changes = {change.name: change for change in plan.role_changes}
    assert set(changes) == {RELEASES, "targets/qa"}
    for change in changes.values():
        assert [key.canonical_id for key in change.added] == [dave.canonical_id]
        assert [key.canonical_id for key in change.removed] == [bob.canonical_id]
    diff = plan.diff()
    assert f"-  key {bob.canonical_id}" in diff
    assert f"+  key {dave.canonical_id}" in diff
    assert "CN=dave" in diff
    unchanged = repo.client.plan(repo_change(repo, "add", bob), now=now())
    assert not unchanged.changed
    assert unchanged.role_changes == []
    assert unchanged.diff() == ""


def repo_change(repo, kind, key, other=None):
    roles = (RELEASES, team_role_name("qa"))
    if kind == "add":
        return AddKey(key, roles)
    if kind == "remove":
        return RemoveKey(key, roles)
    return ReplaceKey(key, other, roles)


@pytest.mark.parametrize("algorithm", ["ecdsa-p384", "rsa-2048"])
def test_repositories_with_p384_or_rsa_targets_keys(notary_url, notary_cli, algorithm):
    repo = Repo(notary_url, targets_algorithm=algorithm)
    bob = Member(notary_cli, "bob")
    repo.delegate(bob.key, "qa")
    assert notary_cli.delegations(repo.gun)[RELEASES]["keys"] == [bob.key.canonical_id]
    bob.sign(repo.gun, "v1", RELEASES, "targets/qa")
    assert listed_tags(notary_cli, repo.gun) == {"v1"}
    repo.revoke(bob.key, "qa")
    assert listed_tags(notary_cli, repo.gun) == set()


def test_a_client_managed_snapshot_is_signed_and_uploaded_with_each_change(notary_url, notary_cli):
    repo = Repo(notary_url, client_snapshot=True)
    bob = key_of(make_bundle("bob"))

    repo.delegate(bob, "qa")

    state = repo.client.fetch(now=now())
    assert state.root.signed.role_keys("snapshot") == [repo.snapshot_key.public]
    assert state.snapshot.valid_signers([repo.snapshot_key.public])
    assert state.snapshot.signed.version == 2
    # The server's timestamp hashes the snapshot we uploaded, which hashes our targets bytes.
    assert state.timestamp.signed.meta["snapshot"].describes(state.snapshot_bytes)
    assert (
        Metadata.from_bytes(state.snapshot_bytes, Snapshot)
        .signed.meta["targets"]
        .describes(state.targets_bytes)
    )
    assert notary_cli.delegations(repo.gun)[RELEASES]["keys"] == [bob.canonical_id]
    repo.revoke(bob, "qa")
    assert notary_cli.delegations(repo.gun)[RELEASES]["keys"] == []


def test_a_client_managed_snapshot_without_its_key_is_a_clear_error(notary_url):
    repo = Repo(notary_url, client_snapshot=True)
    repo.snapshot_key = None  # the portal does not hold it
    version = repo.targets_version()

    with pytest.raises(SnapshotKeyRequired, match="snapshot"):
        repo.delegate(key_of(make_bundle("bob")), "qa")

    assert repo.targets_version() == version


def test_concurrent_add_and_revoke_both_land(repo, notary_cli):
    bob, erin, dave = (key_of(make_bundle(name)) for name in ("bob", "erin", "dave"))
    repo.delegate(bob, "qa")
    start = threading.Barrier(3)
    errors: list[Exception] = []

    def publish(change) -> None:
        client = repo.new_client()  # another worker, with its own view of the server
        start.wait()
        try:
            client.publish_change(change, **repo.signing())
        except Exception as error:  # collected and reported below
            errors.append(error)

    changes = [
        AddKey(erin, (RELEASES, "targets/qa")),
        RemoveKey(bob, (RELEASES, "targets/qa")),
        AddKey(dave, (RELEASES, "targets/dev")),
    ]
    threads = [threading.Thread(target=publish, args=(change,)) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    listed = notary_cli.delegations(repo.gun)
    assert sorted(listed[RELEASES]["keys"]) == sorted([erin.canonical_id, dave.canonical_id])
    assert listed["targets/qa"]["keys"] == [erin.canonical_id]
    assert listed["targets/dev"]["keys"] == [dave.canonical_id]


class RacingTransport(Transport):
    """A transport that lets another publisher in just before its first upload."""

    def __init__(self, *args, before_first_publish, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_first_publish = before_first_publish
        self.publishes = 0

    def publish(self, files: dict[str, bytes]) -> None:
        self.publishes += 1
        if self.publishes == 1:
            self.before_first_publish()
        super().publish(files)


def test_a_version_conflict_is_resolved_by_reapplying_to_the_winners_result(repo, notary_cli):
    bob, erin = key_of(make_bundle("bob")), key_of(make_bundle("erin"))
    transport = RacingTransport(
        repo.notary_url, repo.gun, before_first_publish=lambda: repo.delegate(erin, "dev")
    )
    loser = NotaryClient(transport, pinned_root_keys=[repo.root_key.public])

    result = loser.publish_change(AddKey(bob, (RELEASES, "targets/qa")), **repo.signing())

    assert transport.publishes == 2  # refused once with VERSION, then applied to erin's version
    assert (result.version_before, result.version_after) == (2, 3)
    listed = notary_cli.delegations(repo.gun)
    assert listed[RELEASES]["keys"] == [erin.canonical_id, bob.canonical_id]
