"""Repositories initialised by the portal's client on the test notary-server, with their keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from delegations.notary import (
    RELEASES,
    AddKey,
    NotaryClient,
    PublicKey,
    RemoveKey,
    ReplaceKey,
    SigningKey,
    Transport,
    team_role_name,
)

ALL_PATHS = ['"" <all paths>']  # as `notary delegation list` shows paths [""]


def now() -> datetime:
    return datetime.now(UTC)


def key_of(bundle) -> PublicKey:
    return PublicKey.from_certificate(bundle.certificate)


def new_gun() -> str:
    return f"dtr.example.org/t{uuid.uuid4().hex[:10]}/nginx"


class Repo:
    """A freshly initialised repository; `snapshot_key` makes its snapshot client-managed."""

    def __init__(
        self,
        notary_url: str,
        *,
        targets_algorithm: str = "ecdsa-p256",
        client_snapshot: bool = False,
    ) -> None:
        self.gun = new_gun()
        self.notary_url = notary_url
        self.root_key = SigningKey.generate_root(self.gun, now=now())
        self.targets_key = SigningKey.generate(targets_algorithm)
        self.snapshot_key = SigningKey.generate() if client_snapshot else None
        self.client = self.new_client()
        self.client.initialise(
            root_key=self.root_key,
            targets_key=self.targets_key,
            snapshot_key=self.snapshot_key,
            now=now(),
        )

    def new_client(self, server_url: str | None = None) -> NotaryClient:
        """Another client (another worker, say) anchored in the same root key."""
        return NotaryClient(
            Transport(server_url or self.notary_url, self.gun),
            pinned_root_keys=[self.root_key.public],
        )

    def signing(self) -> dict[str, object]:
        return {"targets_key": self.targets_key, "snapshot_key": self.snapshot_key, "now": now()}

    def delegate(self, key: PublicKey, team: str):
        return self.client.publish_change(
            AddKey(key, (RELEASES, team_role_name(team))), **self.signing()
        )

    def revoke(self, key: PublicKey, team: str):
        change = RemoveKey(key, (RELEASES, team_role_name(team)))
        return self.client.publish_change(change, **self.signing())

    def renew(self, old: PublicKey, new: PublicKey, team: str):
        change = ReplaceKey(old, new, (RELEASES, team_role_name(team)))
        return self.client.publish_change(change, **self.signing())

    def targets_version(self) -> int:
        """The version on the server, read by a client that remembers nothing."""
        return self.new_client().fetch(now=now()).targets.signed.version
