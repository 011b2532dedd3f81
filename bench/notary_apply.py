"""One two-role delegation: the portal's Notary client beside the `notary` CLI, same server.

Starts a notary-server on a free loopback port and two repositories on it, one managed by each
side, both with server-managed snapshots. Each round delegates a new certificate to
`targets/releases` and `targets/<team>`:

- ours: `NotaryClient.publish_change` of an `AddKey` in one process (fetch, sign, publish, read
  back), the way the worker runs it; and, in turns with it, the same inside the repository's
  publish lease, taken and let go in the portal's database (SQLite, production settings) and
  checked before the upload, as the worker does;
- the peer: `notary delegation add` twice (staged) and `notary publish`, as DTR's docs do it.

Prints the median and spread of each, and their ratio, beside the protocol floor: the same
requests over one keep-alive connection, with nothing parsed, verified or signed. Then both
repositories get 1,000 more delegated keys (spread over `targets/releases` and ten team roles,
as a large DTR shop would have) and the same delegation is timed again on top of them.

The worker's whole run for one approval (its job, collecting and recording the work, the emails)
is timed by `bench/approval_burst.py`.

    .venv/bin/python bench/notary_apply.py [--rounds 15] [--existing-keys 1000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import in_process
from delegations.notary import (
    RELEASES,
    AddKey,
    NotaryClient,
    PublicKey,
    SigningKey,
    Transport,
    team_role_name,
)
from delegations.notary.changes import plan_change
from delegations.notary.gotime import GoTime
from delegations.notary.metadata import Metadata
from stack.processes import free_port, notary_service

PASSPHRASE = "bench-passphrase"  # noqa: S105 - an obvious value for throwaway trust dirs


def new_certificate(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


class NotaryCLI:
    def __init__(self, server_url: str, trust_dir: Path) -> None:
        self.base = ["notary", "-d", str(trust_dir), "-s", server_url]
        self.env = {
            **os.environ,
            **{
                f"NOTARY_{role}_PASSPHRASE": PASSPHRASE
                for role in ("ROOT", "TARGETS", "SNAPSHOT", "DELEGATION")
            },
        }

    def __call__(self, *args: str) -> None:
        subprocess.run([*self.base, *args], env=self.env, check=True, capture_output=True)


def time_ours(
    client: NotaryClient, targets_key: SigningKey, rounds: int, *, lease_repository_id: int
) -> tuple[list, list]:
    """Each round one delegation without the repository's publish lease and one inside it (the
    lock that keeps other workers off the repository, taken and let go in the portal's database,
    its fence checked just before the upload). Taken in turns, so both meet a targets file of
    the same size: each round makes it two keys larger."""
    from delegations.services.publish_lease import lease_acquire, lease_release, lease_renew

    bare, leased = [], []
    for round_number in range(rounds):
        role = team_role_name(f"team{round_number % 3}")
        key = PublicKey.from_certificate(new_certificate(f"ours{round_number}"))
        start = time.perf_counter()
        client.publish_change(
            AddKey(key, (RELEASES, role)), targets_key=targets_key, now=datetime.now(UTC)
        )
        bare.append(time.perf_counter() - start)

        key = PublicKey.from_certificate(new_certificate(f"leased{round_number}"))
        start = time.perf_counter()
        lease = lease_acquire(repository_id=lease_repository_id, holder="bench")
        if lease is None:
            raise RuntimeError("the bench's own lease is held")
        client.publish_change(
            AddKey(key, (RELEASES, role)),
            targets_key=targets_key,
            now=datetime.now(UTC),
            before_sending=lambda lease=lease: lease_renew(lease, force=True),
        )
        lease_release(lease)
        leased.append(time.perf_counter() - start)
    return bare, leased


def leased_repository_id(server_url: str) -> int:
    """A repository row in a portal database migrated from scratch, for its publish lease."""
    in_process.migrated_application()  # sets Django up, so the models import
    from delegations.models import Repository

    return Repository.objects.create(
        dtr_host="dtr.example.org", namespace="bench", name="leased", notary_url=server_url
    ).pk


def time_cli(cli: NotaryCLI, gun: str, work: Path, rounds: int) -> list:
    durations = []
    for round_number in range(rounds):
        cert_path = work / f"cli{round_number}.pem"
        certificate = new_certificate(f"cli{round_number}")
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        team_role = team_role_name(f"team{round_number % 3}")
        start = time.perf_counter()
        cli("delegation", "add", gun, RELEASES, str(cert_path), "--all-paths")
        cli("delegation", "add", gun, team_role, str(cert_path), "--all-paths")
        cli("publish", gun)
        durations.append(time.perf_counter() - start)
    return durations


def preload_ours(client: NotaryClient, targets_key: SigningKey, count: int) -> None:
    """Put `count` certificate keys into targets/releases and ten team roles, in one publish."""
    state = client.fetch(now=datetime.now(UTC))
    targets = state.targets.signed
    for number in range(count):
        key = PublicKey.from_certificate(new_certificate(f"existing{number}"))
        targets.delegations.add_key(key, [RELEASES, team_role_name(f"big{number % 10}")])
    targets.version += 1
    signed = Metadata(targets)
    signed.sign([targets_key])
    client.transport.publish({"targets": signed.to_bytes()})


def preload_cli(cli: NotaryCLI, gun: str, work: Path, count: int) -> None:
    """The same for the CLI's repository, staged per role and published once."""
    paths_by_team: dict[str, list[str]] = {}
    for number in range(count):
        path = work / f"existing{number}.pem"
        path.write_bytes(
            new_certificate(f"existing{number}").public_bytes(serialization.Encoding.PEM)
        )
        paths_by_team.setdefault(team_role_name(f"big{number % 10}"), []).append(str(path))
    every = [path for paths in paths_by_team.values() for path in paths]
    cli("delegation", "add", gun, RELEASES, *every, "--all-paths")
    for role, paths in paths_by_team.items():
        cli("delegation", "add", gun, role, *paths, "--all-paths")
    cli("publish", gun)


def time_floor(client: NotaryClient, targets_key: SigningKey, server_url: str, rounds: int) -> list:
    """The protocol floor: the requests one of our delegations makes (the GETs of the read,
    the POST, the GETs of the read-back), replayed over one keep-alive connection with nothing
    parsed, verified or signed. Each round POSTs a targets file signed beforehand, one version
    after the other, so the server does the same work as for ours."""
    recorded: list[tuple[str, str]] = []
    transport = client.transport
    get, publish = transport.get, transport.publish

    def recording_get(path: str, **options: object) -> bytes:
        recorded.append(("GET", path))
        return get(path, **options)  # type: ignore[arg-type]

    def recording_publish(files: dict[str, bytes]) -> None:
        recorded.append(("POST", ""))
        publish(files)

    transport.get, transport.publish = recording_get, recording_publish  # type: ignore[method-assign]
    try:
        key = PublicKey.from_certificate(new_certificate("floor-probe"))
        client.publish_change(
            AddKey(key, (RELEASES,)), targets_key=targets_key, now=datetime.now(UTC)
        )
    finally:
        del transport.get, transport.publish
    # Files by hash change with every version; their current names serve the same bytes' size.
    paths = [
        (
            method,
            path if path in ("", "root.json", "timestamp.json") else path.split(".")[0] + ".json",
        )
        for method, path in recorded
    ]
    bodies = []
    targets = client.fetch(now=datetime.now(UTC)).targets.signed
    for number in range(rounds):
        plan = plan_change(
            targets,
            AddKey(PublicKey.from_certificate(new_certificate(f"floor{number}")), (RELEASES,)),
        )
        plan.after.expires = GoTime.from_datetime(datetime.now(UTC) + timedelta(days=1095))
        signed = Metadata(plan.after)
        signed.sign([targets_key])
        bodies.append(_multipart({"targets": signed.to_bytes()}))
        targets = plan.after
    base = f"/v2/{client.gun}/_trust/tuf/"
    parsed = urlsplit(server_url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port)
    durations = []
    for body in bodies:
        start = time.perf_counter()
        for method, path in paths:
            if method == "POST":
                connection.request(
                    "POST",
                    base,
                    body=body,
                    headers={"Content-Type": f"multipart/form-data; boundary={_BOUNDARY}"},
                )
            else:
                connection.request("GET", base + path)
            response = connection.getresponse()
            response.read()
            if response.status not in (200, 404):
                raise RuntimeError(f"the floor's {method} {path} got {response.status}")
        durations.append(time.perf_counter() - start)
    connection.close()
    return durations


_BOUNDARY = "protocolfloor"


def _multipart(files: dict[str, bytes]) -> bytes:
    parts = b"".join(
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{role}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for role, data in files.items()
    )
    return parts + f"--{_BOUNDARY}--\r\n".encode()


def describe(durations: list[float]) -> str:
    milliseconds = sorted(d * 1000 for d in durations)
    return (
        f"median {statistics.median(milliseconds):7.1f} ms   "
        f"min {milliseconds[0]:7.1f}   max {milliseconds[-1]:7.1f}   (n={len(milliseconds)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--existing-keys", type=int, default=1000)
    arguments = parser.parse_args()
    big_rounds = max(3, arguments.rounds // 3)

    with tempfile.TemporaryDirectory(prefix="bench-notary-") as temporary:
        work = Path(temporary)
        port = free_port()
        server = notary_service(port=port, data_dir=work / "server")
        # Nothing connects to Redis here; the settings only need its address.
        portal = in_process.portal_environment(work, redis_url="redis://127.0.0.1:9/0")
        with server, portal:
            server_url = f"http://127.0.0.1:{port}"
            repository_id = leased_repository_id(server_url)

            ours_gun = "dtr.example.org/bench/ours"
            client = NotaryClient(Transport(server_url, ours_gun))
            targets_key = SigningKey.generate()
            client.initialise(
                root_key=SigningKey.generate_root(ours_gun, now=datetime.now(UTC)),
                targets_key=targets_key,
                now=datetime.now(UTC),
            )

            cli_gun = "dtr.example.org/bench/cli"
            cli = NotaryCLI(server_url, work / "cli-trust")
            cli("init", "-p", cli_gun)
            cli("key", "rotate", cli_gun, "snapshot", "-r")  # server-managed, like ours

            ours, leased = time_ours(
                client, targets_key, arguments.rounds, lease_repository_id=repository_id
            )
            floor = time_floor(client, targets_key, server_url, arguments.rounds)
            peer = time_cli(cli, cli_gun, work, arguments.rounds)

            preload_ours(client, targets_key, arguments.existing_keys)
            preload_cli(cli, cli_gun, work, arguments.existing_keys)
            ours_big, leased_big = time_ours(
                client, targets_key, big_rounds, lease_repository_id=repository_id
            )
            floor_big = time_floor(client, targets_key, server_url, big_rounds)
            peer_big = time_cli(cli, cli_gun, work, big_rounds)

    print("One delegation to targets/releases and targets/<team>, local notary-server:")
    report(ours, leased, floor, peer)
    print(f"The same with {arguments.existing_keys} delegated keys already in targets.json:")
    report(ours_big, leased_big, floor_big, peer_big)


def report(ours: list[float], leased: list[float], floor: list[float], peer: list[float]) -> None:
    print(f"  portal client   {describe(ours)}")
    print(f"  with its lease  {describe(leased)}")
    print(f"  protocol floor  {describe(floor)}")
    print(f"  notary CLI      {describe(peer)}")
    for name, figures in (("portal client", ours), ("client with its lease", leased)):
        ratio = statistics.median(peer) / statistics.median(figures)
        above = statistics.median(figures) / statistics.median(floor)
        print(
            f"  ratio           the CLI takes {ratio:.1f}x as long as the {name}, which takes "
            f"{above:.1f}x the floor"
        )


if __name__ == "__main__":
    main()
