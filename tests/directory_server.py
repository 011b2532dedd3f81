"""A real OpenLDAP directory for the tests: slapd with the demo tree, StartTLS and ldaps.

`DirectoryServer` runs stack/slapd.py's slapd on free loopback ports with a test CA made at run
time, and changes the tree the way a directory administrator would (as the rootdn, over LDAP),
so the portal sees what it would see at work. `reset()` puts back exactly the seeded tree.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap
import ldap.dn
import ldap.modlist
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ldap.ldapobject import LDAPObject
from ldif import LDIFRecordList

from stack.processes import LOOPBACK, ServiceError, free_port
from stack.slapd import (
    DEMO_BIND_DN,
    DEMO_BIND_PASSWORD,
    DEMO_LDIF,
    TLSFiles,
    admin_dn_of,
    base_dn_of,
    slapd_service,
)
from tests.pki import Issued, make_ca

Entry = dict[str, list[bytes]]
# Helper connections give up quickly: a test that stopped the server expects failures, not hangs.
CONNECT_TIMEOUT_SECONDS = 2.0
# The empty DN: the member an OpenLDAP groupOfNames (which must have one) keeps when nobody is left.
NO_MEMBER = b""
LOG_TAIL_CHARS = 4000


def server_certificate(ca: Issued) -> Issued:
    """A TLS server certificate for 127.0.0.1 (and localhost), signed by `ca`."""
    # libldap checks a certificate for "localhost" against this machine's name instead.
    names = sorted({"localhost", socket.gethostname(), socket.getfqdn()})
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    *(x509.DNSName(name) for name in names),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(certificate, key)


def normalized_dn(dn: str) -> str:
    """One spelling per entry: the demo tree's attribute types and values match case-blind."""
    return ldap.dn.dn2str(ldap.dn.str2dn(dn.lower()))


def depth(dn: str) -> int:
    return len(ldap.dn.str2dn(dn))


class DirectoryServer:
    """slapd with the demo tree on free loopback ports, with helpers to change the tree."""

    def __init__(self, work_dir: Path, *, seed_ldif: Path = DEMO_LDIF) -> None:
        self.work_dir = work_dir
        self.seed_ldif = seed_ldif
        self.base_dn = base_dn_of(seed_ldif)
        self.admin_dn = admin_dn_of(self.base_dn)
        self.admin_password = secrets.token_urlsafe(18)
        self.bind_dn = DEMO_BIND_DN
        self.bind_password = DEMO_BIND_PASSWORD
        self.port = free_port()
        self.ldaps_port = free_port()
        while self.ldaps_port == self.port:
            self.ldaps_port = free_port()
        self.uri = f"ldap://{LOOPBACK}:{self.port}"
        self.ldaps_uri = f"ldaps://{LOOPBACK}:{self.ldaps_port}"

        ca = make_ca("Directory test CA")
        tls_dir = work_dir / "tls"
        tls_dir.mkdir(parents=True, exist_ok=True)
        self.ca_file = tls_dir / "ca.pem"
        self.ca_file.write_bytes(ca.cert_pem)
        certificate, key = server_certificate(ca).write(tls_dir, "server")
        self.service = slapd_service(
            port=self.port,
            data_dir=work_dir,
            seed_ldif=seed_ldif,
            admin_password=self.admin_password,
            tls=TLSFiles(certificate=certificate, key=key, ca_certificate=self.ca_file),
            ldaps_port=self.ldaps_port,
        )
        with seed_ldif.open("rb") as seed:
            records = LDIFRecordList(seed)
            records.parse()
        self.seeded: dict[str, tuple[str, Entry]] = {
            normalized_dn(dn): (dn, entry) for dn, entry in records.all_records
        }

    # -- the process ------------------------------------------------------------------------------

    def start(self) -> DirectoryServer:
        try:
            self.service.start()
        except ServiceError as error:
            log = self.service.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
            raise ServiceError(f"{error}\n--- slapd's log ---\n{log}") from error
        return self

    def stop(self) -> None:
        self.service.stop()

    @property
    def running(self) -> bool:
        return self.service.running

    # -- connections ------------------------------------------------------------------------------

    def connect(
        self,
        dn: str | None = None,
        password: str = "",
        *,
        uri: str | None = None,
        start_tls: bool = False,
        ca_file: Path | None = None,
    ) -> LDAPObject:
        """A python-ldap connection, bound as `dn` when given (anonymous otherwise); TLS (StartTLS
        or an ldaps:// `uri`) checks the server against `ca_file`, the test CA by default."""
        uri = uri or self.uri
        connection = ldap.initialize(uri)
        connection.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, CONNECT_TIMEOUT_SECONDS)
        connection.set_option(ldap.OPT_TIMEOUT, CONNECT_TIMEOUT_SECONDS)
        connection.set_option(ldap.OPT_REFERRALS, 0)
        if start_tls or uri.startswith("ldaps://"):
            connection.set_option(ldap.OPT_X_TLS_CACERTFILE, str(ca_file or self.ca_file))
            connection.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # the options above apply from here
        if start_tls:
            connection.start_tls_s()
        if dn is not None:
            connection.simple_bind_s(dn, password)
        return connection

    @contextmanager
    def as_admin(self) -> Iterator[LDAPObject]:
        connection = self.connect(self.admin_dn, self.admin_password)
        try:
            yield connection
        finally:
            connection.unbind_s()

    # -- names ------------------------------------------------------------------------------------

    def user_dn(self, uid: str) -> str:
        return f"uid={ldap.dn.escape_dn_chars(uid)},ou=people,{self.base_dn}"

    def team_dn(self, name: str) -> str:
        return f"cn={ldap.dn.escape_dn_chars(name)},ou=teams,ou=groups,{self.base_dn}"

    def group_dn(self, name: str) -> str:
        return f"cn={ldap.dn.escape_dn_chars(name)},ou=groups,{self.base_dn}"

    # -- changes, as the directory's administrator -------------------------------------------------

    def add_member(self, group_dn: str, user_dn: str) -> None:
        with self.as_admin() as connection:
            with suppress(ldap.TYPE_OR_VALUE_EXISTS):
                connection.modify_s(group_dn, [(ldap.MOD_ADD, "member", [user_dn.encode()])])
            with suppress(ldap.NO_SUCH_ATTRIBUTE):
                connection.modify_s(group_dn, [(ldap.MOD_DELETE, "member", [NO_MEMBER])])

    def remove_member(self, group_dn: str, user_dn: str) -> None:
        """groupOfNames must have a member, so the last one to leave is replaced by the empty DN,
        as OpenLDAP sites keep empty groups: the group is still there, with nobody in it."""
        with self.as_admin() as connection:
            [(_dn, entry)] = connection.search_s(group_dn, ldap.SCOPE_BASE, attrlist=["member"])
            members = {normalized_dn(member.decode()) for member in entry.get("member", [])}
            if members - {normalized_dn(user_dn), ""}:
                with suppress(ldap.NO_SUCH_ATTRIBUTE):
                    change = [(ldap.MOD_DELETE, "member", [user_dn.encode()])]
                    connection.modify_s(group_dn, change)
            else:
                connection.modify_s(group_dn, [(ldap.MOD_REPLACE, "member", [NO_MEMBER])])

    def add_group(self, group_dn: str, members: list[str]) -> None:
        """A groupOfNames (e.g. a new repository's owners group) with `members` (user DNs)."""
        name = ldap.dn.str2dn(group_dn)[0][0][1]
        entry = {
            "objectClass": [b"groupOfNames"],
            "cn": [name.encode()],
            "member": [member.encode() for member in members],
        }
        with self.as_admin() as connection:
            connection.add_s(group_dn, ldap.modlist.addModlist(entry))

    def add_user(self, uid: str, *, password: str = DEMO_BIND_PASSWORD) -> str:
        """A person shaped like the demo ones (mail `<uid>@example.org`); returns their DN."""
        dn = self.user_dn(uid)
        entry = {
            "objectClass": [b"inetOrgPerson", b"shadowAccount"],
            "uid": [uid.encode()],
            "cn": [uid.capitalize().encode()],
            "sn": [uid.encode()],
            "mail": [f"{uid}@example.org".encode()],
            "userPassword": [password.encode()],
        }
        with self.as_admin() as connection:
            connection.add_s(dn, ldap.modlist.addModlist(entry))
        return dn

    def delete(self, dn: str) -> None:
        with self.as_admin() as connection:
            connection.delete_s(dn)

    def disable(self, uid: str) -> None:
        """Disabled the demo tree's way, which the portal's default disabled filter matches."""
        with self.as_admin() as connection:
            connection.modify_s(self.user_dn(uid), [(ldap.MOD_REPLACE, "shadowExpire", [b"1"])])

    def enable(self, uid: str) -> None:
        with self.as_admin() as connection, suppress(ldap.NO_SUCH_ATTRIBUTE):
            connection.modify_s(self.user_dn(uid), [(ldap.MOD_DELETE, "shadowExpire", None)])

    def set_password(self, uid: str, password: str) -> None:
        with self.as_admin() as connection:
            change = [(ldap.MOD_REPLACE, "userPassword", [password.encode()])]
            connection.modify_s(self.user_dn(uid), change)

    # -- back to the seed -------------------------------------------------------------------------

    def entries(self) -> dict[str, tuple[str, Entry]]:
        """Every entry of the tree with its user attributes, as the administrator reads them."""
        with self.as_admin() as connection:
            try:
                found = connection.search_s(self.base_dn, ldap.SCOPE_SUBTREE, "(objectClass=*)")
            except ldap.NO_SUCH_OBJECT:
                return {}
        return {normalized_dn(dn): (dn, entry) for dn, entry in found}

    def restore(self) -> None:
        """Running, with the seeded tree: what each test starts from."""
        if not self.running:
            self.start()
        self.reset()

    def reset(self) -> None:
        """Make the tree exactly the seeded one again, whoever changed it and how: entries added
        since go, deleted ones come back, changed ones get their seeded attributes back. Only
        what differs is written, so a reset after a test that changed little takes milliseconds."""
        current = self.entries()
        with self.as_admin() as connection:
            for key in sorted(current.keys() - self.seeded.keys(), key=depth, reverse=True):
                connection.delete_s(current[key][0])
            for key in sorted(self.seeded.keys() - current.keys(), key=depth):
                dn, entry = self.seeded[key]
                connection.add_s(dn, ldap.modlist.addModlist(entry))
            for key in self.seeded.keys() & current.keys():
                dn, seeded_entry = self.seeded[key]
                changes = attribute_changes(current[key][1], seeded_entry)
                if changes:
                    connection.modify_s(dn, changes)


def attribute_changes(current: Entry, wanted: Entry) -> list[tuple[int, str, list[bytes] | None]]:
    """The modifications that turn `current` into `wanted` (attribute names match case-blind)."""
    have = {name.lower(): set(values) for name, values in current.items()}
    changes: list[tuple[int, str, list[bytes] | None]] = [
        (ldap.MOD_REPLACE, name, values)
        for name, values in wanted.items()
        if have.get(name.lower()) != set(values)
    ]
    wanted_names = {name.lower() for name in wanted}
    changes += [
        (ldap.MOD_DELETE, name, None) for name in current if name.lower() not in wanted_names
    ]
    return changes
