"""docker-compose.yml, the Dockerfile and requirements, checked statically (no Docker engine).

Each check guards something that would only break at deploy time: a variable the settings do
not read, a secret with a default, a service that depends on one that does not exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from stack.slapd import base_dn_of, demo_directory_env
from tests.conftest import BASE_DIR

SETTINGS_SOURCE = (BASE_DIR / "portal" / "settings.py").read_text()
PORTAL_SERVICES = ("web", "worker", "cron")


def compose_default(value: str) -> str | None:
    """What compose makes of `${NAME:-default}` with NAME unset (None for a required one)."""
    match = re.fullmatch(r"\$\{[A-Z_]+(?::-(?P<default>[^}]*)|:\?[^}]*)\}", value)
    if match is None:
        return value
    return match["default"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_compose_has_the_services_of_the_stack(compose):
    assert set(compose["services"]) >= {
        "web", "worker", "cron", "redis", "postgres", "notary-server", "openldap", "mailpit",
    }  # fmt: skip


def test_web_and_worker_are_built_from_the_dockerfile_and_run_the_portal(compose):
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["build"] == worker["build"] == compose["services"]["migrate"]["build"] == "."
    assert web["command"][:2] == ["gunicorn", "portal.wsgi"]
    assert compose["services"]["migrate"]["command"][2:4] == ["migrate", "--noinput"]
    assert worker["command"][:3] == ["python", "manage.py", "rqworker"]
    assert "--with-scheduler" in worker["command"]
    assert compose["services"]["cron"]["command"][2:] == ["rqcron", "delegations.cron"]


def test_every_portal_variable_in_compose_is_read_by_the_settings(compose):
    for name in ("migrate", "web", "worker", "cron"):
        for variable in compose["services"][name]["environment"]:
            if variable.startswith("PORTAL_"):
                assert f'"{variable}"' in SETTINGS_SOURCE, f"settings never read {variable}"


@pytest.mark.parametrize(
    ("service", "secret"),
    [
        ("web", "PORTAL_SECRET_KEY"),
        ("web", "PORTAL_AUDIT_KEY"),
        ("web", "PORTAL_KEY_SEALING_KEY"),
        ("worker", "PORTAL_KEY_SEALING_KEY"),
        ("worker", "PORTAL_KEY_UNSEALING_KEYS"),
    ],
)
def test_secrets_are_required_not_defaulted(compose, service, secret):
    value = compose["services"][service]["environment"][secret]
    assert re.fullmatch(r"\$\{" + secret + r":\?[^}]*\}", value), value


@pytest.mark.parametrize("service", ["migrate", "web", "cron"])
def test_only_the_worker_can_open_repository_keys(compose, service):
    environment = compose["services"][service]["environment"]
    assert "PORTAL_KEY_UNSEALING_KEYS" not in environment
    assert "PORTAL_KEY_ENCRYPTION_KEYS" not in environment


def test_dependencies_name_services_that_exist_with_healthchecks(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_nothing_starts_before_the_schema_is_migrated(compose):
    for name in ("web", "worker", "cron"):
        migrate = compose["services"][name]["depends_on"]["migrate"]
        assert migrate["condition"] == "service_completed_successfully"


def test_mounted_files_exist_and_notary_config_listens_for_the_other_containers(compose):
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (BASE_DIR / source).exists(), f"{source} is mounted but missing"
    config = json.loads((BASE_DIR / "deploy" / "notary-server.json").read_text())
    assert config["server"]["http_addr"] == "0.0.0.0:4443"
    assert config["storage"]["backend"] in ("memory", "mysql", "postgres")


def test_dockerfile_installs_the_pinned_requirements_and_ldap_headers():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "libldap2-dev" in dockerfile
    assert "libsasl2-dev" in dockerfile
    assert "USER portal" in dockerfile


def test_requirements_are_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (BASE_DIR / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line), f"{name}: {line}"


def test_every_setting_from_the_environment_is_documented_in_the_readme():
    readme = (BASE_DIR / "README.md").read_text()
    for variable in sorted(set(re.findall(r'"(PORTAL_[A-Z_]+)"', SETTINGS_SOURCE))):
        assert f"`{variable}`" in readme, f"README does not document {variable}"


def test_images_are_pinned(compose):
    for name, service in compose["services"].items():
        if "image" in service:
            repository, _, tag = service["image"].rpartition(":")
            assert repository, f"{name}: {service['image']} has no tag"
            assert tag != "latest", f"{name}: {service['image']}"


def test_openldap_is_seeded_with_the_demo_tree_from_the_repository(compose):
    openldap = compose["services"]["openldap"]
    environment = openldap["environment"]
    ldif_dir = environment["LDAP_CUSTOM_LDIF_DIR"]
    assert f"./deploy/ldap/demo.ldif:{ldif_dir}/demo.ldif:ro" in openldap["volumes"]
    # The image leaves out its own tree, base entry included, when given LDIFs: ours has one.
    assert base_dn_of(BASE_DIR / "deploy" / "ldap" / "demo.ldif") == environment["LDAP_ROOT"]
    assert "nis" in environment["LDAP_EXTRA_SCHEMAS"].split(",")  # shadowExpire
    assert compose_default(environment["LDAP_ADMIN_PASSWORD"]) is None
    assert environment["LDAP_ALLOW_ANON_BINDING"] == "no"


def test_mailpit_takes_the_mail_and_shows_it(compose):
    mailpit = compose["services"]["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit:")
    assert mailpit["ports"] == ["127.0.0.1:8025:8025"]  # its UI on this host only


@pytest.mark.parametrize("name", PORTAL_SERVICES)
def test_portal_services_use_the_demo_directory_and_mailpit(compose, name):
    service = compose["services"][name]
    environment = {key: compose_default(value) for key, value in service["environment"].items()}
    assert environment["PORTAL_SMTP_URL"] == "smtp://mailpit:1025"
    port = compose["services"]["openldap"]["environment"]["LDAP_PORT_NUMBER"]
    uri = f"ldap://openldap:{port}"
    # Bases, bind DN and admin group as `make run` sets them, so both find the same people.
    for variable, value in demo_directory_env(uri).items():
        assert environment[variable] == value, variable
    assert service["depends_on"]["openldap"]["condition"] == "service_healthy"
    assert "mailpit" in service["depends_on"]


def test_the_portal_is_served_over_tls_by_the_proxy_only(compose):
    services = compose["services"]
    assert "ports" not in services["web"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert "443:443" in proxy["ports"]
    assert compose_default(proxy["environment"]["PORTAL_TLS"]) == "internal"
    # The Caddyfile as the proxy container reads it: compose's environment and nothing else.
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", "deploy/caddy/Caddyfile", "--adapter", "caddyfile"],
        cwd=BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            **{name: compose_default(value) for name, value in proxy["environment"].items()},
        },
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(adapted.stdout)
    (server,) = config["apps"]["http"]["servers"].values()
    assert server["listen"] == ["0.0.0.0:443"]
    assert '"dial":"web:8000"' in json.dumps(server, separators=(",", ":"))
    assert config["apps"]["tls"]["automation"]["policies"][0]["issuers"] == [{"module": "internal"}]
    web = {k: compose_default(v) for k, v in services["web"]["environment"].items()}
    assert web["PORTAL_BASE_URL"].startswith("https://")
    assert web["PORTAL_BEHIND_TLS_PROXY"] == "1"


def test_redis_needs_a_password_and_the_portal_sends_it(compose):
    redis = compose["services"]["redis"]
    assert "--requirepass" in redis["command"]
    password = redis["command"][redis["command"].index("--requirepass") + 1]
    assert compose_default(password) is None  # required, never defaulted
    url = compose["services"]["worker"]["environment"]["PORTAL_REDIS_URL"]
    assert url.startswith("redis://:${REDIS_PASSWORD:?")


def test_the_directory_is_reached_over_starttls_checked_against_the_demo_ca(compose):
    openldap = compose["services"]["openldap"]["environment"]
    assert (openldap["LDAP_ENABLE_TLS"], openldap["LDAP_REQUIRE_TLS"]) == ("yes", "yes")
    for name in PORTAL_SERVICES:
        environment = compose["services"][name]["environment"]
        assert compose_default(environment["PORTAL_LDAP_START_TLS"]) == "1"
        assert compose_default(environment["PORTAL_LDAP_CA_FILE"]) == openldap["LDAP_TLS_CA_FILE"]
        assert "demo-certs:/certs:ro" in compose["services"][name]["volumes"]
    certs = compose["services"]["certs"]["command"]
    assert certs[2:4] == ["demo_certs", "/certs"]
    assert certs[certs.index("--name") + 1] == "openldap"  # the host name the portal dials


def test_demo_certificates_make_a_chain_for_the_directorys_name(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from django.utils import timezone

    from delegations.demo.tls import demo_server_certificates

    assert demo_server_certificates(tmp_path, names=["openldap"], now=timezone.now())
    assert not demo_server_certificates(tmp_path, names=["openldap"], now=timezone.now())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    ca.public_key().verify(
        server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm)
    )
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["openldap"]
    assert b"PRIVATE KEY" in (tmp_path / "server-key.pem").read_bytes()
