"""Bundle drop in a real browser (headless Chromium): the page reads the UCP client bundle, shows
the certificate, signs the challenge with key.pem, and the form sends cert.pem only."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.core.handlers.wsgi import WSGIHandler
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from delegations.demo.bundles import bundle_zip
from delegations.intake.certificates import inspect_certificate
from delegations.models import DelegationRequest, RequestStatus
from tests.factories import PASSWORD, Bundle, make_bundle, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

SIGNED_IN_BROWSER = "Signed in your browser with key.pem from the bundle; the key is not sent."


@pytest.fixture
def bob(db):
    return make_user("bob", teams=("qa",))


def request_form(browser: Browser, base_url: str, *, javascript: bool = True) -> Page:
    """bob's request form, logged in."""
    context = browser.new_context(base_url=base_url, java_script_enabled=javascript)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/requests/new/")
    expect(page.get_by_role("heading", name="Request delegation")).to_be_visible()
    return page


@pytest.fixture
def page(browser, live_server, bob) -> Iterator[Page]:
    page = request_form(browser, live_server.url)
    expect(page.locator(".dropzone")).to_have_count(1)  # the script ran
    yield page
    page.context.close()


def drop(page: Page, files: dict[str, bytes]) -> None:
    """Drop `files` on the drop zone, as a person dragging them from their desktop would."""
    payload = [[name, base64.b64encode(content).decode()] for name, content in files.items()]
    page.locator(".dropzone").evaluate(
        """(zone, files) => {
            const data = new DataTransfer();
            for (const [name, encoded] of files) {
                const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
                data.items.add(new File([bytes], name));
            }
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(
                    new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}),
                );
            }
        }""",
        payload,
    )


def intake_state(page: Page, state: str) -> None:
    expect(page.locator("form.request-form")).to_have_attribute("data-intake", state)


def shown(page: Page, field: str) -> str:
    return page.locator(f'.cert-preview [data-cert="{field}"]').inner_text()


def uploaded_files(page: Page) -> list[dict]:
    return page.get_by_label("Certificate").evaluate(
        "input => Array.from(input.files, (file) => ({name: file.name, size: file.size}))"
    )


def expect_details(page: Page, bundle: Bundle) -> None:
    """The preview shows what the server computes for the same certificate."""
    info = inspect_certificate(bundle.cert_pem, now=timezone.now())
    expect(page.locator(".cert-preview")).to_be_visible()
    assert shown(page, "subject") == info.subject
    assert shown(page, "issuer") == info.issuer
    not_after = page.locator('.cert-preview [data-cert="not-after"] time')
    expected = info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    expect(not_after).to_have_attribute("datetime", expected)
    assert shown(page, "key") == info.key_description
    assert shown(page, "key-id") == info.canonical_key_id
    assert shown(page, "short-key-id") == info.canonical_key_id[:12]
    fingerprint = ":".join(re.findall("..", info.sha256.upper()))
    assert shown(page, "fingerprint") == fingerprint


@pytest.fixture
def received(monkeypatch) -> list[bytes]:
    """The bodies of the POST requests the live server receives, byte for byte.

    Chromium does not hand Playwright the body of a multipart request that carries a file
    (`post_data_buffer` is None), so the body is taken where it arrives instead.
    """
    bodies: list[bytes] = []
    handle = WSGIHandler.__call__

    def recording(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            bodies.append(body)
            environ["wsgi.input"] = io.BytesIO(body)
        return handle(self, environ, start_response)

    monkeypatch.setattr(WSGIHandler, "__call__", recording)
    return bodies


def submit(page: Page, repository, received: list[bytes]) -> bytes:
    """Fill in the rest of the form, send it, and return the request body the server got."""
    page.get_by_label("Repository").select_option(label=repository.gun)
    page.get_by_label("Team").select_option("qa")
    page.get_by_label("Reason").fill("I publish the qa release images")
    received.clear()
    page.get_by_role("button", name="Request delegation").click()
    expect(page.locator(".status")).to_have_text("Pending")
    [body] = received
    return body


def key_fragments(bundle: Bundle) -> list[bytes]:
    """Every form in which the private key's bytes could leak into a request."""
    key = bundle.private_key
    ders = [
        key.private_bytes(serialization.Encoding.DER, format_, serialization.NoEncryption())
        for format_ in (
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.PrivateFormat.PKCS8,
        )
    ]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = [key.private_numbers().private_value]
    else:
        private = key.private_numbers()
        numbers = [private.d, private.p, private.q]
    secrets_ = [n.to_bytes((n.bit_length() + 7) // 8, "big") for n in numbers]
    body_lines = [line for line in bundle.key_pem.splitlines() if not line.startswith(b"-----")]
    return [
        bundle.key_pem,
        b"".join(body_lines),
        *body_lines,
        *ders,
        *(base64.b64encode(der) for der in ders),
        *secrets_,
        *(secret.hex().encode() for secret in secrets_),
        *(secret.hex().upper().encode() for secret in secrets_),
    ]


def assert_only_the_certificate_was_sent(body: bytes, bundle: Bundle, signature: str) -> None:
    assert bundle.cert_pem in body
    assert signature.encode() in body
    assert b"PRIV" + b"ATE KEY" not in body
    for fragment in key_fragments(bundle):
        assert fragment not in body, "private key material in the request"


def signature_of(page: Page) -> str:
    return page.locator("#id_possession_signature").input_value()


# -- the bundle zip -----------------------------------------------------------------------------


def test_a_dropped_bundle_is_read_signed_and_only_its_certificate_sent(
    repository, rq_queue, received, page
):
    bundle = make_bundle("bob")
    drop(page, {"ucp-bundle-bob.zip": bundle.zip()})

    intake_state(page, "signed")
    expect_details(page, bundle)
    expect(page.get_by_role("status")).to_contain_text(SIGNED_IN_BROWSER)
    assert uploaded_files(page) == [{"name": "cert.pem", "size": len(bundle.cert_pem)}]
    signature = signature_of(page)
    assert signature

    body = submit(page, repository, received)
    assert_only_the_certificate_was_sent(body, bundle, signature)
    request = DelegationRequest.objects.get()
    assert request.status == RequestStatus.PENDING
    assert (
        request.canonical_key_id
        == inspect_certificate(bundle.cert_pem, now=timezone.now()).canonical_key_id
    )


def test_a_bundle_picked_with_the_file_picker_works_the_same(
    repository, rq_queue, received, page, tmp_path
):
    bundle = make_bundle("bob")
    path = tmp_path / "ucp-bundle-bob.zip"
    path.write_bytes(bundle.zip())
    assert ".zip" in page.get_by_label("Certificate").get_attribute("accept")

    page.get_by_label("Certificate").set_input_files(path)

    intake_state(page, "signed")
    expect_details(page, bundle)
    assert uploaded_files(page) == [{"name": "cert.pem", "size": len(bundle.cert_pem)}]
    signature = signature_of(page)
    body = submit(page, repository, received)
    assert_only_the_certificate_was_sent(body, bundle, signature)


def test_a_bundle_picked_before_the_script_runs_is_read_when_it_does(page, tmp_path):
    bundle = make_bundle("bob")
    path = tmp_path / "ucp-bundle-bob.zip"
    path.write_bytes(bundle.zip())
    held = []
    page.route("**/js/request-form.js", lambda route: held.append(route))  # it arrives late
    page.goto("/requests/new/", wait_until="commit")

    page.get_by_label("Certificate").set_input_files(path)
    assert uploaded_files(page)[0]["name"] == "ucp-bundle-bob.zip"
    held[0].continue_()

    intake_state(page, "signed")
    assert uploaded_files(page) == [{"name": "cert.pem", "size": len(bundle.cert_pem)}]


def test_a_bundle_inside_a_folder_and_cert_and_key_dropped_together(page):
    bundle = make_bundle("bob")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored, not deflated
        archive.writestr("ucp-bundle-bob/", b"")
        archive.writestr("ucp-bundle-bob/cert.pem", bundle.cert_pem)
        archive.writestr("ucp-bundle-bob/key.pem", bundle.key_pem)
    drop(page, {"ucp-bundle-bob.zip": buffer.getvalue()})
    intake_state(page, "signed")
    assert shown(page, "subject") == "OU=ucp,CN=bob"

    drop(page, {"cert.pem": bundle.cert_pem, "key.pem": bundle.key_pem})
    intake_state(page, "signed")
    expect(page.get_by_role("status")).to_contain_text("Signed in your browser with key.pem")
    assert uploaded_files(page) == [{"name": "cert.pem", "size": len(bundle.cert_pem)}]


@pytest.mark.parametrize(
    "bundle_options",
    [
        pytest.param({"key": "rsa", "bits": 2048}, id="rsa-pkcs1"),
        pytest.param({"curve": ec.SECP384R1()}, id="p384"),
    ],
)
def test_rsa_and_p384_bundles_sign_correctly(repository, rq_queue, received, page, bundle_options):
    bundle = make_bundle("bob", **bundle_options)
    archive = bundle.zip()
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        key_pem = opened.read("key.pem")
    if isinstance(bundle.private_key, rsa.RSAPrivateKey):
        assert key_pem.startswith(b"-----BEGIN RSA PRIV" + b"ATE KEY-----")  # PKCS#1

    drop(page, {"ucp-bundle-bob.zip": archive})

    intake_state(page, "signed")
    expect_details(page, bundle)
    signature = signature_of(page)
    # The server checks the signature: Pending means it holds.
    body = submit(page, repository, received)
    assert_only_the_certificate_was_sent(body, bundle, signature)


def test_a_key_that_is_not_the_certificates_is_reported_and_nothing_signed(page):
    bundle, stranger = make_bundle("bob"), make_bundle("bob")
    archive = bundle_zip(bundle.certificate, stranger.private_key, bundle.ca.certificate)

    drop(page, {"ucp-bundle-bob.zip": archive})

    intake_state(page, "done")
    expect(page.get_by_role("alert")).to_contain_text(
        "key.pem in this bundle does not belong to its cert.pem"
    )
    assert signature_of(page) == ""
    expect(page.locator("#openssl-command")).to_be_visible()


# -- a bare certificate and the openssl fallback ------------------------------------------------


def test_a_bare_certificate_shows_its_details_and_the_openssl_command(page, tmp_path):
    bundle = make_bundle("bob", not_after=timezone.now() + timedelta(days=60))
    path = tmp_path / "cert.pem"
    path.write_bytes(bundle.cert_pem)

    page.get_by_label("Certificate").set_input_files(path)

    intake_state(page, "done")
    expect_details(page, bundle)
    expect(page.locator("#openssl-command")).to_be_visible()
    expect(page.locator("#openssl-command")).to_contain_text("openssl dgst -sha256 -sign key.pem")
    expect(page.get_by_role("status")).to_contain_text("paste its output into Signature")
    expect(page.get_by_role("status")).to_contain_text("expires on")
    assert signature_of(page) == ""


def test_a_certificate_for_someone_else_or_expired_is_flagged_before_sending(page):
    drop(page, {"cert.pem": make_bundle("mallory").cert_pem})
    intake_state(page, "done")
    expect(page.get_by_role("status")).to_contain_text("CN is “mallory”")

    now = timezone.now()
    expired = make_bundle(
        "bob", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    drop(page, {"cert.pem": expired.cert_pem})
    intake_state(page, "done")
    expect(page.get_by_role("alert")).to_contain_text("This certificate expired on")
    expect(page.get_by_role("status")).not_to_contain_text("mallory")


def test_names_times_and_der_are_read_as_the_server_reads_them(page):
    """Escaped and non-ASCII names, an emailAddress, a GeneralizedTime (after 2049), a DER file."""
    now = timezone.now()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Bøb & Co, "builders"+more'),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "bob@example.org"),
            x509.NameAttribute(NameOID.COMMON_NAME, " #bob "),
        ]
    )
    bundle = make_bundle(subject=subject, not_after=now.replace(year=2061))
    der = bundle.certificate.public_bytes(serialization.Encoding.DER)

    drop(page, {"bob.der": der})

    intake_state(page, "done")
    expect_details(page, bundle)
    assert uploaded_files(page) == [{"name": "cert.pem", "size": len(bundle.cert_pem)}]


@pytest.mark.parametrize(
    "key_format",
    [serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8],
    ids=["traditional", "pkcs8"],
)
def test_a_key_with_a_passphrase_sends_the_member_to_openssl(page, key_format):
    bundle = make_bundle("bob")
    key_pem = bundle.private_key.private_bytes(
        serialization.Encoding.PEM, key_format, serialization.BestAvailableEncryption(b"secret")
    )

    drop(page, {"cert.pem": bundle.cert_pem, "key.pem": key_pem})

    intake_state(page, "done")
    expect(page.get_by_role("alert")).to_contain_text("protected with a passphrase")
    expect(page.locator("#openssl-command")).to_be_visible()
    assert signature_of(page) == ""
    assert uploaded_files(page) == [{"name": "cert.pem", "size": len(bundle.cert_pem)}]


def test_without_javascript_cert_pem_and_the_openssl_command_do_it(
    browser, live_server, bob, repository, rq_queue, received, tmp_path
):
    bundle = make_bundle("bob")
    (tmp_path / "cert.pem").write_bytes(bundle.cert_pem)
    (tmp_path / "key.pem").write_bytes(bundle.key_pem)
    page = request_form(browser, live_server.url, javascript=False)
    expect(page.locator(".dropzone")).to_have_count(0)

    page.get_by_label("Certificate").set_input_files(tmp_path / "cert.pem")
    command = page.locator("#openssl-command").inner_text()
    signed = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    page.get_by_label("Signature").fill(signed.stdout)
    body = submit(page, repository, received)

    assert_only_the_certificate_was_sent(body, bundle, signed.stdout.strip())
    page.context.close()


# -- what is refused --------------------------------------------------------------------------


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def garbled(archive: bytes, name: str) -> bytes:
    """`archive` with the compressed bytes of entry `name` damaged, its directory intact."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        info = opened.getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    damaged = bytearray(archive)
    for position in range(start + 2, start + 12):
        damaged[position] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize(
    ("make_archive", "message"),
    [
        pytest.param(
            lambda bundle: bundle.zip()[:200], "table of contents is missing", id="cut-short"
        ),
        pytest.param(
            lambda bundle: garbled(bundle.zip(), "cert.pem"), "zip file is damaged", id="garbled"
        ),
        pytest.param(
            lambda bundle: zip_of({"cert.pem": bundle.cert_pem + bytes(2 * 1024 * 1024)}),
            "far too large",
            id="oversized-entry",
        ),
    ],
)
def test_a_corrupt_zip_gives_a_clear_message_and_uploads_nothing(
    page, tmp_path, make_archive, message
):
    path = tmp_path / "ucp-bundle-bob.zip"
    path.write_bytes(make_archive(make_bundle("bob")))

    page.get_by_label("Certificate").set_input_files(path)

    intake_state(page, "failed")
    expect(page.get_by_role("alert")).to_contain_text(message)
    assert uploaded_files(page) == []
    assert signature_of(page) == ""


def test_a_zip_without_cert_pem_is_refused_and_its_key_not_uploaded(page, tmp_path):
    bundle = make_bundle("bob")
    path = tmp_path / "ucp-bundle-bob.zip"
    path.write_bytes(zip_of({"key.pem": bundle.key_pem, "env.sh": b"export DOCKER_TLS_VERIFY=1\n"}))

    page.get_by_label("Certificate").set_input_files(path)

    intake_state(page, "failed")
    expect(page.get_by_role("alert")).to_contain_text("holds no cert.pem")
    assert uploaded_files(page) == []


def test_a_lone_private_key_is_never_uploaded(page):
    drop(page, {"key.pem": make_bundle("bob").key_pem})
    intake_state(page, "failed")
    expect(page.get_by_role("alert")).to_contain_text("never uploaded")
    assert uploaded_files(page) == []
