"""stack/slapd.py and the tests' directory, against the real slapd they run.

The portal's directory code trusts these: the demo tree's shape, ACLs like a real directory's,
StartTLS and ldaps checked against the test CA, `reset()` and a stop/start on the same data.
"""

from __future__ import annotations

import stat

import ldap
import pytest

from stack.processes import LOOPBACK, ServiceError, free_port
from stack.slapd import DEMO_BASE_DN, demo_directory_env, demo_directory_service, slapd_service
from tests.directory_server import DirectoryServer
from tests.pki import make_ca

pytestmark = pytest.mark.services

PEOPLE = ["alice", "bob", "carol", "dave", "erin"]


def values(connection, dn: str, attribute: str) -> list[str]:
    [(_dn, entry)] = connection.search_s(dn, ldap.SCOPE_BASE, attrlist=[attribute])
    return sorted(value.decode() for value in entry.get(attribute, []))


def people_uids(connection, base: str = f"ou=people,{DEMO_BASE_DN}") -> list[str]:
    found = connection.search_s(base, ldap.SCOPE_ONELEVEL, "(objectClass=inetOrgPerson)", ["uid"])
    return sorted(entry["uid"][0].decode() for _dn, entry in found)


def test_the_portal_account_reads_the_seeded_tree(ldap_tree: DirectoryServer):
    portal = ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password)
    assert people_uids(portal) == PEOPLE
    assert values(portal, ldap_tree.team_dn("qa"), "member") == [
        ldap_tree.user_dn("bob"),
        ldap_tree.user_dn("carol"),
    ]
    assert values(portal, ldap_tree.team_dn("dev"), "member") == [
        ldap_tree.user_dn("dave"),
        ldap_tree.user_dn("erin"),
    ]
    assert values(portal, ldap_tree.group_dn("owners:dev/nginx"), "member") == [
        ldap_tree.user_dn("alice")
    ]
    assert values(portal, ldap_tree.user_dn("bob"), "mail") == ["bob@example.org"]


def test_every_dn_of_the_demo_settings_names_an_entry(ldap_tree: DirectoryServer):
    settings = demo_directory_env(ldap_tree.uri)
    portal = ldap_tree.connect(
        settings["PORTAL_LDAP_BIND_DN"], settings["PORTAL_LDAP_BIND_PASSWORD"]
    )
    for name in ("USER_BASE", "GROUP_BASE", "TEAM_BASE", "ADMIN_GROUP"):
        dn = settings[f"PORTAL_LDAP_{name}"]
        assert portal.search_s(dn, ldap.SCOPE_BASE, attrlist=["1.1"]), name
    assert values(portal, settings["PORTAL_LDAP_ADMIN_GROUP"], "member") == [
        ldap_tree.user_dn("alice")
    ]


def test_anonymous_reads_nothing(ldap_tree: DirectoryServer):
    anonymous = ldap_tree.connect()
    for dn in (ldap_tree.base_dn, ldap_tree.user_dn("bob"), ldap_tree.team_dn("qa")):
        try:
            found = anonymous.search_s(dn, ldap.SCOPE_SUBTREE)
        except ldap.NO_SUCH_OBJECT:  # slapd hides entries one may not even see
            found = []
        assert found == [], dn


def test_passwords_are_for_binds_only(ldap_tree: DirectoryServer):
    portal = ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password)
    [(_dn, bob)] = portal.search_s(ldap_tree.user_dn("bob"), ldap.SCOPE_BASE, attrlist=["*"])
    assert "uid" in bob
    assert "userPassword" not in bob
    assert values(portal, ldap_tree.user_dn("bob"), "userPassword") == []


def test_people_bind_with_the_demo_password_and_erin_is_disabled(ldap_tree: DirectoryServer):
    bob = ldap_tree.connect(ldap_tree.user_dn("bob"), "demo")
    assert bob.whoami_s() == f"dn:{ldap_tree.user_dn('bob')}"
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        ldap_tree.connect(ldap_tree.user_dn("bob"), "not-demo")
    portal = ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password)
    disabled = portal.search_s(
        f"ou=people,{ldap_tree.base_dn}", ldap.SCOPE_ONELEVEL, "(shadowExpire=1)", ["uid"]
    )
    assert [entry["uid"] for _dn, entry in disabled] == [[b"erin"]]


def test_starttls_trusts_the_test_ca_only(ldap_tree: DirectoryServer, tmp_path):
    portal = ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password, start_tls=True)
    assert portal.whoami_s() == f"dn:{ldap_tree.bind_dn}"
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(make_ca("Some other CA").cert_pem)
    with pytest.raises((ldap.CONNECT_ERROR, ldap.SERVER_DOWN)):
        ldap_tree.connect(start_tls=True, ca_file=other_ca)


def test_ldaps_trusts_the_test_ca_only(ldap_tree: DirectoryServer, tmp_path):
    portal = ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password, uri=ldap_tree.ldaps_uri)
    assert portal.whoami_s() == f"dn:{ldap_tree.bind_dn}"
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(make_ca("Some other CA").cert_pem)
    with pytest.raises((ldap.CONNECT_ERROR, ldap.SERVER_DOWN)):
        ldap_tree.connect(
            ldap_tree.bind_dn, ldap_tree.bind_password, uri=ldap_tree.ldaps_uri, ca_file=other_ca
        )


def test_reset_undoes_every_kind_of_change(ldap_tree: DirectoryServer):
    seeded = ldap_tree.entries()
    qa, dev = ldap_tree.team_dn("qa"), ldap_tree.team_dn("dev")
    ldap_tree.add_member(qa, ldap_tree.user_dn("dave"))
    ldap_tree.remove_member(dev, ldap_tree.user_dn("erin"))
    ldap_tree.disable("bob")
    ldap_tree.enable("erin")
    ldap_tree.set_password("carol", "changed")
    ldap_tree.add_user("frank")
    ldap_tree.add_group(ldap_tree.group_dn("owners:qa/app"), [ldap_tree.user_dn("frank")])
    ldap_tree.delete(ldap_tree.group_dn("portal-admins"))
    assert ldap_tree.entries() != seeded

    ldap_tree.reset()

    assert ldap_tree.entries() == seeded
    ldap_tree.connect(ldap_tree.user_dn("carol"), "demo")


def test_member_changes_are_idempotent(ldap_tree: DirectoryServer):
    qa, bob = ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob")
    ldap_tree.add_member(qa, bob)
    ldap_tree.remove_member(qa, bob)
    ldap_tree.remove_member(qa, bob)
    ldap_tree.enable("bob")
    admin = ldap_tree.connect(ldap_tree.admin_dn, ldap_tree.admin_password)
    assert values(admin, qa, "member") == [ldap_tree.user_dn("carol")]


def test_the_last_member_to_leave_leaves_an_empty_group(ldap_tree: DirectoryServer):
    qa, bob, carol = ldap_tree.team_dn("qa"), ldap_tree.user_dn("bob"), ldap_tree.user_dn("carol")
    ldap_tree.remove_member(qa, bob)
    ldap_tree.remove_member(qa, carol)
    portal = ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password)
    assert values(portal, qa, "member") == [""]  # groupOfNames must list someone: the empty DN
    found = portal.search_s(qa, ldap.SCOPE_BASE, f"(member={bob})", ["1.1"])
    assert found == []

    ldap_tree.add_member(qa, carol)

    assert values(portal, qa, "member") == [carol]


def test_a_stopped_directory_refuses_connections_and_comes_back_with_its_data(
    ldap_tree: DirectoryServer,
):
    ldap_tree.disable("bob")
    ldap_tree.stop()
    with pytest.raises(ldap.SERVER_DOWN):
        ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password)

    ldap_tree.start()

    portal = ldap_tree.connect(ldap_tree.bind_dn, ldap_tree.bind_password)
    assert values(portal, ldap_tree.user_dn("bob"), "shadowExpire") == ["1"]
    assert people_uids(portal) == PEOPLE


def test_a_failed_start_shows_slapds_log(tmp_path):
    server = DirectoryServer(tmp_path / "slapd")
    (tmp_path / "slapd" / "tls" / "server-key.pem").write_text("not a key\n")
    with pytest.raises(ServiceError, match=r"(?s)slapd exited.*slapd's log.*TLS"):
        server.start()
    server.stop()


def test_a_seed_slapadd_refuses_is_reported_and_not_kept(tmp_path):
    seed = tmp_path / "seed.ldif"
    seed.write_text("dn: dc=example,dc=org\nobjectClass: noSuchClass\ndc: example\n")
    with pytest.raises(ServiceError, match="slapadd could not load"):
        slapd_service(port=free_port(), data_dir=tmp_path, seed_ldif=seed, admin_password="x")
    assert not (tmp_path / "db").exists()


def test_make_run_directory_keeps_its_admin_password_private_and_stable(tmp_path):
    port = free_port()
    with demo_directory_service(port=port, data_dir=tmp_path) as service:
        password_file = tmp_path / "admin-password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "slapd.conf").stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert password not in (tmp_path / "slapd.conf").read_text()
        assert password not in " ".join(service.command)
        admin = ldap.initialize(f"ldap://{LOOPBACK}:{port}")
        admin.simple_bind_s(f"cn=admin,{DEMO_BASE_DN}", password)
        assert people_uids(admin) == PEOPLE
    demo_directory_service(port=port, data_dir=tmp_path)
    assert password_file.read_text().strip() == password
