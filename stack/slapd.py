"""OpenLDAP's slapd on loopback, from a generated slapd.conf, seeded from an LDIF.

Used by `make run` (PORTAL_DEMO_DIRECTORY=ldap) and by the tests' directory. The configuration
is written again on every start; the database in `<data_dir>/db` is seeded only while it is
empty, so what changes in the directory survives a restart. Nothing here touches the system's
slapd (/etc/ldap/slapd.d) or needs it running.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .processes import LOOPBACK, Service, ServiceError, require_program

BASE_DIR = Path(__file__).resolve().parent.parent
SCHEMA_DIR = Path("/etc/ldap/schema")
# Debian builds the database backends as modules, so back_mdb has to be loaded by name.
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")  # nis: shadowAccount, for shadowExpire

DEMO_LDIF = BASE_DIR / "deploy" / "ldap" / "demo.ldif"
DEMO_BASE_DN = "dc=example,dc=org"
DEMO_BIND_DN = f"cn=portal,ou=services,{DEMO_BASE_DN}"
DEMO_BIND_PASSWORD = "demo"  # noqa: S105 (the demo LDIF's password for every account)
DEMO_PORT = 3389


@dataclass(frozen=True)
class TLSFiles:
    """The server's certificate and key, and the CA it offers clients (PEM files)."""

    certificate: Path
    key: Path
    ca_certificate: Path


def demo_directory_env(uri: str) -> dict[str, str]:
    """The portal's settings for the demo tree at `uri`: `make run` and docker-compose use these."""
    return {
        "PORTAL_LDAP_URI": uri,
        "PORTAL_LDAP_BIND_DN": DEMO_BIND_DN,
        "PORTAL_LDAP_BIND_PASSWORD": DEMO_BIND_PASSWORD,
        "PORTAL_LDAP_USER_BASE": f"ou=people,{DEMO_BASE_DN}",
        "PORTAL_LDAP_GROUP_BASE": f"ou=groups,{DEMO_BASE_DN}",
        "PORTAL_LDAP_TEAM_BASE": f"ou=teams,ou=groups,{DEMO_BASE_DN}",
        "PORTAL_LDAP_ADMIN_GROUP": f"cn=portal-admins,ou=groups,{DEMO_BASE_DN}",
    }


def sbin_program(name: str) -> str:
    """slapd and slapadd live in /usr/sbin, which is not on an ordinary user's PATH on Debian."""
    sbin = Path("/usr/sbin") / name
    if shutil.which(name) is None and os.access(sbin, os.X_OK):
        return str(sbin)
    return require_program(name)


def admin_dn_of(base_dn: str) -> str:
    return f"cn=admin,{base_dn}"


def ssha_hash(password: str) -> str:
    """`{SSHA}` as slappasswd writes it, without putting the password on a command line."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 (slapd's own scheme)
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def base_dn_of(ldif: Path) -> str:
    """The DN of the LDIF's first entry, which must be the base entry of the tree."""
    for line in ldif.read_text().splitlines():
        if line.startswith("dn::"):
            return base64.b64decode(line[4:].strip()).decode()
        if line.startswith("dn:"):
            return line[3:].strip()
    raise ValueError(f"{ldif} has no entry")


def slapd_config(
    *, base_dn: str, admin_password: str, db_dir: Path, tls: TLSFiles | None = None
) -> str:
    includes = "\n".join(f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS)
    tls_lines = ""
    if tls is not None:
        tls_lines = (
            f"TLSCertificateFile {tls.certificate}\n"
            f"TLSCertificateKeyFile {tls.key}\n"
            f"TLSCACertificateFile {tls.ca_certificate}\n"
        )
    return f"""\
# Written by stack/slapd.py on every start; edits here are lost.
{includes}

modulepath {MODULE_DIR}
moduleload back_mdb
{tls_lines}
database mdb
suffix "{base_dn}"
rootdn "{admin_dn_of(base_dn)}"
rootpw {ssha_hash(admin_password)}
directory {db_dir}
index objectClass,uid,cn,member eq

# As a real directory: passwords are only ever compared (binds), people change their own, and
# everything else is for signed-in accounts only. The rootdn bypasses these rules.
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""


def seed_database(*, config_path: Path, db_dir: Path, seed_ldif: Path) -> None:
    """Load `seed_ldif` with slapadd, unless the database already holds something."""
    if (db_dir / "data.mdb").exists():
        return
    db_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sbin_program("slapadd"), "-f", str(config_path), "-l", str(seed_ldif)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        # A half-loaded database would count as seeded next time.
        shutil.rmtree(db_dir)
        raise ServiceError(
            f"slapadd could not load {seed_ldif}:\n{result.stdout}{result.stderr}".rstrip()
        )


def slapd_service(
    *,
    port: int,
    data_dir: Path,
    seed_ldif: Path,
    admin_password: str,
    tls: TLSFiles | None = None,
    ldaps_port: int | None = None,
) -> Service:
    """slapd on `ldap://127.0.0.1:<port>/` (StartTLS too with `tls`), and on
    `ldaps://127.0.0.1:<ldaps_port>/` when given; its admin is `cn=admin,<base DN>`.

    The database is seeded here, so the returned service can be stopped and started again on
    the same data.
    """
    if ldaps_port is not None and tls is None:
        raise ValueError("an ldaps:// listener needs TLS files")
    data_dir.mkdir(parents=True, exist_ok=True)
    db_dir = data_dir / "db"
    config_path = data_dir / "slapd.conf"
    config = slapd_config(
        base_dn=base_dn_of(seed_ldif), admin_password=admin_password, db_dir=db_dir, tls=tls
    )
    config_path.touch(mode=0o600)  # it holds the admin password's hash
    config_path.write_text(config)
    seed_database(config_path=config_path, db_dir=db_dir, seed_ldif=seed_ldif)
    listeners = [f"ldap://{LOOPBACK}:{port}/"]
    if ldaps_port is not None:
        listeners.append(f"ldaps://{LOOPBACK}:{ldaps_port}/")
    command = [
        sbin_program("slapd"),
        # In the foreground; "none" still logs start-up and configuration errors (0 would not).
        "-d", "none",
        "-h", " ".join(listeners),
        "-f", str(config_path),
    ]  # fmt: skip
    return Service("slapd", command, port=port, log_path=data_dir / "slapd.log")


def demo_directory_service(*, port: int, data_dir: Path) -> Service:
    """slapd with the demo tree for `make run`, without TLS. Its admin password is made once
    and kept in `<data_dir>/admin-password`, for someone who wants to edit the tree."""
    data_dir.mkdir(parents=True, exist_ok=True)
    password_file = data_dir / "admin-password"
    if not password_file.exists():
        password_file.touch(mode=0o600)
        password_file.write_text(secrets.token_urlsafe(18) + "\n")
    return slapd_service(
        port=port,
        data_dir=data_dir,
        seed_ldif=DEMO_LDIF,
        admin_password=password_file.read_text().strip(),
    )
