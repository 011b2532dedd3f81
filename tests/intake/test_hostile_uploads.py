"""Hostile uploads to the request form: thousands of random and mutated files, never a server error.

The request form is where strangers' bytes reach the portal, and what a member drops there by
mistake is most often their UCP client bundle or its key.pem, which is also their UCP login
(product §4, rules 1 and 7). So whatever is posted, the answer is below 500; anything holding
private key material, and any zip, is refused with a form error and opens no request; and
afterwards no table, database write, file or log record holds any of the private keys sent.

Hypothesis makes the uploads, about 3,000 a run. `derandomize=True` sends the same inputs every
run (only the keys and signatures in them are fresh) and `database=None` keeps failing examples,
which hold key material, off the disk. Every upload is posted by bob (team qa) with the page's
challenge signed by the key of the certificate inside, so the checks of the certificate are all
that stands between an upload and a new request; when one opens, alice rejects it so that bob
may ask again.

What this file found is pinned at its end: a quadratic PEM search, a name attribute of the wrong
ASN.1 type (a server error), subjects longer than their column (a server error on PostgreSQL),
keys in DER or bare base64 beside a PEM certificate, and zips with something in front.
"""

from __future__ import annotations

import base64
import html
import io
import ipaddress
import itertools
import logging
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import hypothesis
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, models
from django.db.models.functions import Length
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import reverse_lazy
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from delegations import services
from delegations.intake.certificates import PRIVATE_KEY_MESSAGE, inspect_certificate
from delegations.intake.possession import challenge_issue
from delegations.models import DelegationRequest, Repository, RequestStatus
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    # Made on purpose: zips with duplicate names, certificates with empty or very long common
    # names and with negative or zero serial numbers.
    pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning"),
    pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning"),
    pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive"),
]

FORM_URL = reverse_lazy("delegations:request_create")
PEM_TYPE = "application/x-pem-file"
ZIP_EXPLANATION = "This is a zip file"
TOO_LARGE = "The file is larger than"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# No deadline: a post's time depends on the machine, and the inputs are large by design.
FUZZ = hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def fuzz(examples: int) -> hypothesis.settings:
    return hypothesis.settings(FUZZ, max_examples=examples)


# -- the keys that are sent, and their traces -----------------------------------------------------

PRIVATE_KEY_MARKER = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY")
PASSPHRASE = b"correct horse battery staple"
# Encodings with PEM markers, and the same material without them.
ARMOURED = (
    "PKCS#8 PEM",
    "SEC1 or PKCS#1 PEM",
    "encrypted PKCS#8 PEM",
    "encrypted legacy PEM",
    "OpenSSH",
)
UNARMOURED = ("PKCS#8 DER", "SEC1 or PKCS#1 DER", "encrypted PKCS#8 DER", "PKCS#8 base64")
DER_KEYS = UNARMOURED[:3]


@dataclass(frozen=True)
class HeldKey:
    """A private key in every encoding a member's files could hold it, and its traces."""

    key: PrivateKey
    encodings: dict[str, bytes]
    traces: tuple[tuple[str, bytes], ...]


def hold(key: PrivateKey) -> HeldKey:
    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    pkcs8 = serialization.PrivateFormat.PKCS8
    legacy = serialization.PrivateFormat.TraditionalOpenSSL
    plain = serialization.NoEncryption()
    # Encrypted once: every upload of an encrypted key is these very bytes, so traces find them.
    locked = serialization.BestAvailableEncryption(PASSPHRASE)
    encodings = {
        "PKCS#8 PEM": key.private_bytes(pem, pkcs8, plain),
        "SEC1 or PKCS#1 PEM": key.private_bytes(pem, legacy, plain),
        "encrypted PKCS#8 PEM": key.private_bytes(pem, pkcs8, locked),
        "encrypted legacy PEM": key.private_bytes(pem, legacy, locked),  # Proc-Type, DEK-Info
        "OpenSSH": key.private_bytes(pem, serialization.PrivateFormat.OpenSSH, plain),
        "PKCS#8 DER": key.private_bytes(der, pkcs8, plain),
        "SEC1 or PKCS#1 DER": key.private_bytes(der, legacy, plain),
        "encrypted PKCS#8 DER": key.private_bytes(der, pkcs8, locked),
    }
    encodings["PKCS#8 base64"] = base64.encodebytes(encodings["PKCS#8 DER"])
    return HeldKey(key, encodings, tuple(traces_of(key, encodings)))


def traces_of(key: PrivateKey, encodings: dict[str, bytes]) -> Iterator[tuple[str, bytes]]:
    """What would show that `key` was kept: each encoding whole, in base64 too, and its secret
    numbers raw, in hex and in base64 from each of the three offsets base64 can start them at.

    Haystacks are also searched with their whitespace removed, so that base64 wrapped in lines
    of 64 (or any other width) is found by the unwrapped needle.
    """
    for name, encoded in encodings.items():
        yield name, encoded
        yield f"{name} in base64", base64.b64encode(encoded)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        secrets = {"private scalar": key.private_numbers().private_value.to_bytes(size, "big")}
    else:
        numbers = key.private_numbers()
        secrets = {
            name: value.to_bytes((value.bit_length() + 7) // 8, "big")
            for name, value in (("d", numbers.d), ("p", numbers.p), ("q", numbers.q))
        }
    for name, secret in secrets.items():
        yield name, secret
        yield f"{name} in hex", secret.hex().encode()
        yield f"{name} in HEX", secret.hex().upper().encode()
        for offset in range(3):
            window = base64.b64encode(secret[offset : offset + 24])
            yield f"{name} in base64", window
            yield f"{name} in base64url", window.replace(b"+", b"-").replace(b"/", b"_")


@cache
def bobs_bundle() -> factories.Bundle:
    return factories.make_bundle("bob")


@cache
def held_keys() -> tuple[HeldKey, ...]:
    """The keys whose files are uploaded: bob's bundle key, and one of each kind UCP issues."""
    keys = [
        bobs_bundle().private_key,
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ]
    return tuple(hold(key) for key in keys)


def leaks_in(haystack: bytes, *, markers: bool = True) -> list[str]:
    """The names of the traces in `haystack` of any key sent, and of PEM private key markers."""
    # JSON and repr() escape newlines; base64 wrapped in lines is joined again.
    joined = re.sub(rb"\s+|\\[nrt]", b"", haystack)
    found = ["PEM private key marker"] if markers and PRIVATE_KEY_MARKER.search(haystack) else []
    for held in held_keys():
        found += [name for name, trace in held.traces if trace in haystack or trace in joined]
    return found


# -- watching everything the portal could keep ----------------------------------------------------

# While an upload is posted: every file the process opens for writing. An audit hook sees even
# a temporary file that is gone again by the end of the request.
_opened_for_writing: list[str] | None = None
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND


def _note_files_opened_for_writing(event: str, args: tuple) -> None:
    if _opened_for_writing is not None and event == "open" and (args[2] or 0) & _WRITING:
        _opened_for_writing.append(str(args[0]))


# An audit hook cannot be removed; outside a post it returns at once.
sys.addaudithook(_note_files_opened_for_writing)


@contextmanager
def no_file_written() -> Iterator[None]:
    global _opened_for_writing
    _opened_for_writing = []
    try:
        yield
    finally:
        opened, _opened_for_writing = _opened_for_writing, None
    assert not opened, f"files opened for writing while an upload was handled: {opened}"


def database_writes(into: list[bytes]) -> Callable:
    """A database execute wrapper that keeps the parameters of every write, rolled back or not."""

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "REPLACE"):
            for row in params if many else [params]:
                into.extend(as_bytes(value) for value in row or ())
        return execute(sql, params, many, context)

    return wrapper


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value)
    return str(value).encode("utf-8", "surrogateescape")


def database_tables() -> Iterator[tuple[str, bytes]]:
    """Every table of the database, each as one haystack of all its values."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            yield table, b"\0".join(as_bytes(value) for row in cursor.fetchall() for value in row)


def files_under(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
    for root, _, names in os.walk(path):
        yield from (Path(root) / name for name in names)


def contents_of(path: Path, *, limit: int = 256 << 20) -> bytes:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > limit:
            return b""
        return path.read_bytes()
    except OSError:  # another process's temporary file, gone again or not ours to read
        return b""


# -- bob's request form ---------------------------------------------------------------------------


@dataclass
class RequestForm:
    """The request form as bob uses it, and everything the portal could keep of what he sends."""

    client: Client
    repository: Repository
    bob: AbstractBaseUser
    alice: AbstractBaseUser
    log: pytest.LogCaptureFixture
    upload_dir: Path
    temp_before: set[str]
    writes: list[bytes] = field(default_factory=list)
    challenge: str = ""
    posted: int = 0
    opened: int = 0

    def current_challenge(self) -> str:
        """The page's challenge; a new one once a request has used it."""
        if not self.challenge:
            page = self.client.get(FORM_URL).content.decode()
            found = re.search(r'name="challenge" value="([^"]+)"', page)
            self.challenge = html.unescape(found.group(1))
        return self.challenge

    def fields(
        self,
        upload: bytes | None,
        *,
        key: object = None,
        name: str = "cert.pem",
        content_type: str = PEM_TYPE,
    ) -> dict:
        """The form filled in with `upload` as the certificate and the challenge signed by `key`
        (when it is a key notary could use)."""
        data = {"repository": self.repository.pk, "team": "qa", "reason": "nginx releases"}
        if upload is not None:
            data["certificate"] = SimpleUploadedFile(name, upload, content_type)
        if isinstance(key, PrivateKey):
            data["challenge"] = self.current_challenge()
            data["possession_signature"] = signature(key, data["challenge"])
        return data

    def post(self, data: dict | None = None, *, body: bytes = b"", content_type: str = ""):
        """Post the form (or a raw body): never a server error, and a 302 exactly when a request
        opened. The test client raises what the view raises, which fails the test too."""
        with no_file_written():
            if data is None:
                response = self.client.generic("POST", FORM_URL, body, content_type=content_type)
            else:
                response = self.client.post(FORM_URL, data)
        self.posted += 1
        assert response.status_code < 500
        # make_room leaves no request pending, so a pending one is new.
        opened = DelegationRequest.objects.filter(status=RequestStatus.PENDING).exists()
        assert opened == (response.status_code == 302), response.status_code
        if opened:
            self.opened += 1
            self.make_room()
        return response

    def make_room(self) -> None:
        """alice rejects bob's new request, so that he may ask again."""
        pending = DelegationRequest.objects.get(status=RequestStatus.PENDING)
        services.request_reject(
            request_id=pending.pk, acting_user=self.alice, comment="cleared by the fuzz test"
        )
        self.challenge = ""  # its nonce is used now

    def assert_still_accepts_a_good_request(self) -> None:
        """After all that, bob's own cert.pem still opens a request: what the form refuses, it
        refuses for cause."""
        bundle = bobs_bundle()
        assert self.post(self.fields(bundle.cert_pem, key=bundle.private_key)).status_code == 302

    def assert_no_key_kept(self) -> None:
        """No key sent is in a table, in any write made to the database (rolled back or not), in
        a file of the data or media folder or a new temporary one, or in a log record."""
        assert not list(files_under(self.upload_dir)), "an upload reached FILE_UPLOAD_TEMP_DIR"
        places = {f"table {table}": leaks_in(values) for table, values in database_tables()}
        places["database writes"] = leaks_in(b"\0".join(self.writes))
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        places["log"] = leaks_in(b"\n".join(formatter.format(r).encode() for r in self.log.records))
        # Files only for this run's keys: the SQLite file keeps deleted rows of other tests.
        temp = Path(tempfile.gettempdir())
        folders = [temp / name for name in set(os.listdir(temp)) - self.temp_before]
        folders += [Path(django_settings.DATA_DIR)]
        folders += [Path(django_settings.MEDIA_ROOT)] if django_settings.MEDIA_ROOT else []
        # The database's own files are searched through its tables above, never opened here:
        # closing a descriptor on a file SQLite holds drops every POSIX lock this process has on
        # it, and a worker process that then thinks itself alone resets the WAL's shared memory
        # under this process's mapping of it (a bus error, later, in another test).
        database = str(connection.settings_dict["NAME"])
        for path in (path for folder in folders for path in files_under(folder)):
            if not str(path).startswith(database):
                places[str(path)] = leaks_in(contents_of(path), markers=False)
        leaks = {place: names for place, names in places.items() if names}
        assert not leaks, f"private key material kept: {leaks}"


@pytest.fixture
def form(client, people, repository, settings, tmp_path, caplog) -> Iterator[RequestForm]:
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(upload_dir)
    caplog.set_level(logging.DEBUG)
    client.force_login(people["bob"])
    bobs_form = RequestForm(
        client=client,
        repository=repository,
        bob=people["bob"],
        alice=people["alice"],
        log=caplog,
        upload_dir=upload_dir,
        temp_before=set(os.listdir(tempfile.gettempdir())),
    )
    with connection.execute_wrapper(database_writes(bobs_form.writes)):
        yield bobs_form


def signature(key: PrivateKey, challenge: str) -> str:
    """What `openssl dgst -sha256 -sign key.pem | openssl base64 -A` prints for `challenge`."""
    message = challenge.encode()  # a real challenge is ASCII; fuzzed ones need not be
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signed = key.sign(message, ec.ECDSA(hashes.SHA256()))
    else:
        signed = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signed).decode("ascii")


def certificate_errors(response: HttpResponse) -> list[str]:
    return response.context["form"].errors.get("certificate", [])


def assert_refused(response: HttpResponse, *explanations: str) -> None:
    """A 400 whose certificate field says what is wrong (one of `explanations`, when given)."""
    assert response.status_code == 400
    errors = certificate_errors(response)
    assert errors, response.context["form"].errors
    if explanations:
        assert any(text in error for error in errors for text in explanations), errors


# -- building blocks of uploads -------------------------------------------------------------------


def pem(der: bytes, label: str = "CERTIFICATE", *, width: int = 64, ending: bytes = b"\n"):
    body = base64.b64encode(der)
    lines = [body[i : i + width] for i in range(0, len(body), width)] if width else [body]
    begin, end = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    return ending.join([begin, *lines, end, b""])


def with_line_endings(data: bytes, ending: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", ending)


def bobs_der() -> bytes:
    return bobs_bundle().certificate.public_bytes(serialization.Encoding.DER)


# What `openssl pkcs12 -nodes` and `openssl x509` print around the PEM blocks.
OPENSSL_TEXT = (
    b"Bag Attributes\n    localKeyID: 01 00 00 00 \nsubject=CN = bob, OU = ucp\n\n"
    b"issuer=CN = Test UCP Client Root CA\n\n"
)
line_endings = st.sampled_from([b"\n", b"\r\n", b"\r"])


def good_certificates() -> list[bytes]:
    """Bob's certificate as members upload it: PEM (LF or CRLF), after openssl's text, DER."""
    cert_pem = bobs_bundle().cert_pem
    return [cert_pem, with_line_endings(cert_pem, b"\r\n"), OPENSSL_TEXT + cert_pem, bobs_der()]


# -- 1. files holding a private key, and files too large ------------------------------------------


@st.composite
def key_files(draw, encodings: tuple[str, ...], beside: tuple[str, ...]) -> tuple[bytes, str]:
    """A file holding a private key in one of `encodings`, alone ("nothing") or beside bob's
    certificate in one of the forms in `beside` ("PEM", "DER"): after it, before it or between
    two, as `cat cert.pem key.pem` makes. Returns the file and the key's encoding."""
    held = draw(st.sampled_from(held_keys()))
    encoding = draw(st.sampled_from(encodings))
    key = held.encodings[encoding]
    ending = draw(line_endings)
    if encoding in ARMOURED:
        key = with_line_endings(key, ending)
        if draw(st.booleans()):  # cut short after its BEGIN line: still most of a key
            key = key[: draw(st.integers(45, len(key)))]
    certificate = draw(st.sampled_from(beside))
    if certificate == "nothing":
        return key, encoding
    cert = with_line_endings(bobs_bundle().cert_pem, ending) if certificate == "PEM" else bobs_der()
    if certificate == "PEM" and draw(st.booleans()):
        cert = OPENSSL_TEXT + cert
    gap = draw(st.sampled_from([b"", ending, ending * 2, b" "]))
    upload = draw(
        st.sampled_from([cert + gap + key, key + gap + cert, cert + gap + key + gap + cert])
    )
    return upload, encoding


@pytest.mark.parametrize(
    ("encodings", "beside", "fuzzing"),
    [
        pytest.param(
            ARMOURED, ("nothing", "PEM", "DER"), fuzz(450),
            id="armoured key, alone or with a certificate",
        ),
        pytest.param(
            UNARMOURED, ("nothing", "DER", "PEM"), fuzz(200),
            id="binary or bare key, alone or with a certificate",
        ),
    ],
)  # fmt: skip
def test_a_file_holding_a_private_key_is_refused_and_forgotten(form, encodings, beside, fuzzing):
    @fuzzing
    @given(key_file=key_files(encodings, beside))
    def post(key_file):
        upload, encoding = key_file
        response = form.post(form.fields(upload, key=bobs_bundle().private_key))
        # A PEM key anywhere, or a DER key as the whole file, is recognised as a key.
        if encoding in ARMOURED or upload in whole_der_keys():
            assert_refused(response, PRIVATE_KEY_MESSAGE)
        else:
            assert_refused(response)

    post()
    form.assert_still_accepts_a_good_request()
    form.assert_no_key_kept()


@cache
def whole_der_keys() -> frozenset[bytes]:
    return frozenset(held.encodings[name] for held in held_keys() for name in DER_KEYS)


def test_an_oversized_file_is_refused_whatever_it_holds(form, settings):
    settings.PORTAL_CERTIFICATE_MAX_BYTES = cap = 4096  # small, to keep the posts quick
    keys = [held.encodings[name] for held in held_keys() for name in ("PKCS#8 PEM", "PKCS#8 DER")]
    contents = st.sampled_from([bobs_bundle().cert_pem, bobs_der(), bobs_bundle().zip(), *keys])

    @fuzz(200)
    @given(parts=st.lists(contents, min_size=1, max_size=4), size=st.integers(cap - 2, 20 * cap))
    def post(parts, size):
        # Repeated to `size`: a key sits in the first chunk, across chunks, or at the very end.
        upload = b"\n".join(parts)
        upload = (upload * (size // len(upload) + 1))[:size] if size > len(upload) else upload
        response = form.post(form.fields(upload, key=bobs_bundle().private_key))
        if len(upload) > cap:
            assert_refused(response, TOO_LARGE)
        elif response.status_code == 400:
            assert not any(TOO_LARGE in error for error in certificate_errors(response))

    post()
    # The other limits: DATA_UPLOAD_MAX_MEMORY_SIZE for fields, ..._NUMBER_FILES for files.
    key_pem = held_keys()[0].encodings["SEC1 or PKCS#1 PEM"].decode()
    huge_reason = form.fields(bobs_bundle().cert_pem) | {"reason": key_pem * 2000}
    assert form.post(huge_reason).status_code == 400
    many_files = [SimpleUploadedFile(f"key{i}.pem", key_pem.encode()) for i in range(120)]
    assert form.post(form.fields(None) | {"certificate": many_files}).status_code == 400
    form.assert_no_key_kept()


# -- 2. zips --------------------------------------------------------------------------------------

TRAVERSALS = ["../../../../etc/cron.d/portal", "/etc/passwd", "..\\..\\key.pem", "C:/key.pem"]
TRAVERSALS += ["bundle/../../key.pem", "ключ/key.pem", "a" * 1000, "cert.pem\0.txt", ""]
COMPRESSIONS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


def zipped(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, compression in entries:
            archive.writestr(zipfile.ZipInfo(name), content, compress_type=compression)
    return buffer.getvalue()


@cache
def bundle_files() -> list[tuple[str, st.SearchStrategy[bytes]]]:
    key_pem = st.sampled_from([held.encodings["SEC1 or PKCS#1 PEM"] for held in held_keys()])
    ca_pem = factories.test_ca().certificate.public_bytes(serialization.Encoding.PEM)
    return [
        ("cert.pem", st.just(bobs_bundle().cert_pem)),
        ("key.pem", key_pem),
        ("ca.pem", st.just(ca_pem)),
        ("env.sh", st.just(b"export DOCKER_TLS_VERIFY=1\nexport DOCKER_HOST=tcp://ucp:443\n")),
        # A bomb: megabytes of zeros that deflate to a kilobyte or two.
        ("bomb.bin", st.sampled_from([bytes(1 << 20), bytes(2 << 20)])),
        # A bundle inside a bundle.
        ("bundle.zip", key_pem.map(lambda key: zipped([("key.pem", key, zipfile.ZIP_DEFLATED)]))),
    ]


@st.composite
def zip_entries(draw) -> list[tuple[str, bytes, int]]:
    """Files of a bundle, bombs and nested bundles, some under traversal names."""
    entries = []
    for _ in range(draw(st.integers(1, 6))):
        name, content = draw(st.sampled_from(bundle_files()))
        compression = (
            zipfile.ZIP_DEFLATED if name == "bomb.bin" else draw(st.sampled_from(COMPRESSIONS))
        )
        if draw(st.integers(0, 4)) == 0:
            name = draw(st.sampled_from(TRAVERSALS))
        entries.append((name, draw(content), compression))
    return entries


@st.composite
def zip_files(draw, *, prefixed: bool) -> bytes:
    """A zip as a member might drop it: UCP's bundle, or one made of zip_entries; with a
    comment, flipped bytes, or cut short; with something before it when `prefixed` (as in a
    self-extracting archive, or `cat cert.pem bundle.zip`)."""
    archive = draw(st.just(bobs_bundle().zip()) | zip_entries().map(zipped))
    if draw(st.booleans()):
        with_comment = io.BytesIO(archive)
        with zipfile.ZipFile(with_comment, "a") as reopened:
            reopened.comment = draw(st.binary(max_size=200))
        archive = with_comment.getvalue()
    for _ in range(draw(st.integers(0, 3))):  # never in the magic number: then it is no zip
        at = draw(st.integers(4, len(archive) - 1))
        flipped = archive[at] ^ draw(st.integers(1, 255))
        archive = archive[:at] + bytes([flipped]) + archive[at + 1 :]
    if draw(st.booleans()):
        archive = archive[: draw(st.integers(4, len(archive)))]
    if prefixed:
        script = b'#!/bin/sh\nexec unzip "$0"\n'
        before = st.binary(min_size=1, max_size=64) | st.sampled_from(
            [bobs_bundle().cert_pem, script]
        )
        archive = draw(before) + archive
    return archive


@pytest.mark.parametrize(
    ("prefixed", "fuzzing"),
    [
        pytest.param(False, fuzz(220), id="zip"),
        pytest.param(True, fuzz(60), id="zip with a prefix"),
    ],
)
def test_a_zip_is_refused_with_an_explanation(form, prefixed, fuzzing):
    @fuzzing
    @given(
        archive=zip_files(prefixed=prefixed),
        name=st.sampled_from(["bundle.zip", "cert.pem", "ucp-bundle-bob.zip"]),
        content_type=st.sampled_from(["application/zip", PEM_TYPE, "application/octet-stream"]),
    )
    def post(archive, name, content_type):
        data = form.fields(
            archive, key=bobs_bundle().private_key, name=name, content_type=content_type
        )
        assert_refused(form.post(data), ZIP_EXPLANATION, PRIVATE_KEY_MESSAGE, TOO_LARGE)

    post()
    form.assert_still_accepts_a_good_request()
    form.assert_no_key_kept()


# -- 3. certificates, mutated ---------------------------------------------------------------------

INSERTIONS = [b"\x00", b"-----", b"=", b"\n", b"\r\n", b" ", b"*", b"\xff\xfe", b"\x30\x82"]
INSERTIONS += [b"-----END CERTIFICATE-----\n", b"-----BEGIN CERTIFICATE-----\n"]
LABELS = [b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE", b"certificate", b"CERTIFICATE REQUEST"]
LABELS += [b"PUBLIC KEY", b"", b"CERTIFICATE ", b"CERTIFICATE\x00"]
PEM_HEADERS = [b"Proc-Type: 4,ENCRYPTED", b"DEK-Info: AES-128-CBC,00112233445566778899AABBCCDD"]
PEM_HEADERS += [b"Comment: " + b"x" * 5000, b"X-Unknown:", b":", b"Subject: CN=alice"]


def flip(data: bytes, at: int, draw) -> bytes:
    if at >= len(data):
        return data
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]


def truncate(data: bytes, at: int, draw) -> bytes:
    return data[:at]


def insert(data: bytes, at: int, draw) -> bytes:
    return data[:at] + draw(st.sampled_from(INSERTIONS) | st.binary(max_size=16)) + data[at:]


def delete(data: bytes, at: int, draw) -> bytes:
    return data[:at] + data[at + draw(st.integers(1, 64)) :]


def duplicate(data: bytes, at: int, draw) -> bytes:
    return data[:at] + data[at : at + draw(st.integers(1, 200))] + data[at:]


def relabel(data: bytes, at: int, draw) -> bytes:
    return data.replace(b"CERTIFICATE", draw(st.sampled_from(LABELS)), draw(st.integers(1, 2)))


def add_headers(data: bytes, at: int, draw) -> bytes:
    headers = draw(st.lists(st.sampled_from(PEM_HEADERS), min_size=1, max_size=3))
    return data.replace(b"-----\n", b"-----\n" + b"\n".join(headers) + b"\n\n", 1)


def rewrap(data: bytes, at: int, draw) -> bytes:
    """Bob's certificate again, its base64 in lines of another width (0: all on one line)."""
    width = draw(st.sampled_from([0, 1, 3, 63, 65, 76, 1000]))
    return pem(bobs_der(), width=width, ending=draw(line_endings))


def indent(data: bytes, at: int, draw) -> bytes:
    return data.replace(b"\n", b"\n" + draw(st.sampled_from([b" ", b"\t", b"  \t"])))


MUTATIONS = [flip, truncate, insert, delete, duplicate, relabel, add_headers, rewrap, indent]


@st.composite
def mutated_certificates(draw) -> bytes:
    """Bob's certificate in one of its good forms, or random bytes alone or in PEM armour;
    changed in one to four places."""
    data = draw(st.sampled_from(good_certificates()) | st.just(b"random"))
    if data == b"random":
        body = draw(st.binary(max_size=2000))
        data = draw(st.sampled_from([body, pem(body), b"-----BEGIN CERTIFICATE-----\n" + body]))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        data = mutation(data, int(draw(st.floats(0, 1)) * len(data)), draw)
    return data


def test_a_mutated_certificate_gets_a_form_error_or_a_request(form):
    good = itertools.cycle(good_certificates())

    @fuzz(550)
    @given(upload=mutated_certificates(), name=st.sampled_from(["cert.pem", "cert.der", "x"]))
    def post(upload, name):
        response = form.post(form.fields(upload, key=bobs_bundle().private_key, name=name))
        assert response.status_code in (302, 400)
        if form.posted % 25 == 0:  # now and then a good one: refusals are for cause
            response = form.post(form.fields(next(good), key=bobs_bundle().private_key))
            assert response.status_code == 302, response.context["form"].errors

    post()
    form.assert_no_key_kept()


# -- 4. PEM with enormous parts -------------------------------------------------------------------


@st.composite
def pem_with_enormous_parts(draw) -> bytes:
    """Bob's certificate in PEM with enormous parts, from a few kilobytes to about the cap:
    header lines, its base64 on one line, text or other blocks before it, copies of it, or a
    label of thousands of characters."""
    cert = bobs_bundle().cert_pem
    count = draw(st.integers(1, 900))
    length = min(draw(st.integers(1, 70_000)), 70_000 // count)
    kind = draw(st.sampled_from(["headers", "one line", "text", "blocks", "copies", "label"]))
    if kind == "headers":
        begin, rest = cert.split(b"\n", 1)
        header = b"X-Header-" + b"h" * length + b": " + b"v" * length
        return begin + b"\n" + b"\n".join([header] * count) + b"\n\n" + rest
    if kind == "one line":
        return pem(bobs_der(), width=0) + b" " * draw(st.integers(0, 65_000))
    if kind == "text":
        return b"x" * (length * count) + b"\n" + cert
    if kind == "blocks":
        blocks = b"".join(pem(bytes([i % 256]) * 3, f"BLOCK {i}") for i in range(count))
        if draw(st.booleans()):  # none of them closed
            blocks = re.sub(rb"-----END [^-]*-----", b"", blocks)
        return blocks + cert
    if kind == "copies":
        return cert * (count // 10 + 1)
    label = b"A" * draw(st.integers(1, 60_000))
    return b"-----BEGIN " + label + b"-----\n" + cert + b"-----END " + label + b"-----\n"


def test_pem_with_enormous_parts_gets_a_form_error_or_a_request(form):
    @fuzz(120)
    @given(upload=pem_with_enormous_parts())
    def post(upload):
        response = form.post(form.fields(upload, key=bobs_bundle().private_key))
        assert response.status_code in (302, 400)

    post()
    form.assert_no_key_kept()


# -- 5. certificates with absurd contents ---------------------------------------------------------


def der_element(data: bytes, at: int) -> tuple[int, int]:
    """(start, end) of the contents of the DER element at `at`."""
    first = data[at + 1]
    if first < 0x80:
        return at + 2, at + 2 + first
    start = at + 2 + (first & 0x7F)
    return start, start + int.from_bytes(data[at + 2 : start], "big")


def elements(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each DER element, header included, from `start` to `end`."""
    found = []
    while start < end:
        found.append((start, der_element(data, start)[1]))
        start = found[-1][1]
    return found


def der(tag: int, contents: bytes) -> bytes:
    if len(contents) < 0x80:
        return bytes([tag, len(contents)]) + contents
    size = len(contents).to_bytes((len(contents).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + contents


def signed_again(certificate: x509.Certificate, patch: Callable[[bytes], bytes]) -> bytes:
    """`certificate` (signed by the test CA) with its to-be-signed part changed by `patch` and
    signed again, so that the change reaches the checks after the chain's too."""
    whole = certificate.public_bytes(serialization.Encoding.DER)
    contents, _ = der_element(whole, 0)
    _, tbs_end = der_element(whole, contents)
    _, algorithm_end = der_element(whole, tbs_end)
    tbs = patch(whole[contents:tbs_end])
    signed = factories.test_ca().key.sign(tbs, ec.ECDSA(certificate.signature_hash_algorithm))
    return der(0x30, tbs + whole[tbs_end:algorithm_end] + der(0x03, b"\0" + signed))


@cache
def other_keys() -> dict[str, object]:
    """Subject keys notary cannot use, or must refuse; made once, as some are slow to make."""
    return {
        "P-521": ec.generate_private_key(ec.SECP521R1()),
        "secp256k1": ec.generate_private_key(ec.SECP256K1()),
        "brainpoolP256r1": ec.generate_private_key(ec.BrainpoolP256R1()),
        "RSA 1024": rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
        "RSA 2048, e=3": rsa.generate_private_key(public_exponent=3, key_size=2048),
        "Ed25519": ed25519.Ed25519PrivateKey.generate(),
        "Ed448": ed448.Ed448PrivateKey.generate(),
        "X25519": x25519.X25519PrivateKey.generate(),
        "DSA": dsa.generate_private_key(key_size=1024),  # noqa: S505
    }


# ASN.1 types a name value is re-tagged as, whether or not its bytes fit: UTF8String, Numeric-,
# Printable-, T61-, IA5-, Visible-, Universal- and BMPString, OCTET STRING, NULL, SEQUENCE and
# INTEGER. BIT STRING (0x03) is a server error today; it is pinned by
# test_a_name_of_the_wrong_asn1_type_is_a_form_error and joins this list once that is fixed.
STRING_TAGS = [0x0C, 0x12, 0x13, 0x14, 0x16, 0x1A, 0x1C, 0x1E, 0x04, 0x05, 0x30, 0x02, 0x03]
# Extensions built as 1.2.3.<n> are renamed 2.5.29.<one of these> with garbage values, and twice
# over when two draw the same: key usage, SAN, basic constraints, name constraints, EKU, etc.
KNOWN_EXTENSIONS = [0x0E, 0x0F, 0x11, 0x12, 0x13, 0x1E, 0x1F, 0x20, 0x23, 0x24, 0x25, 0x36]
PLACEHOLDER = "zq9Xplace-holderX9qz"  # the name value that is re-tagged after building
NOW = datetime.now(UTC)
# Usual validity ends, and the edges: UTCTime's last years, GeneralizedTime's first, year 9999.
TIMES = [NOW - timedelta(hours=1), NOW + timedelta(days=365)] * 3 + [
    NOW + timedelta(days=2),
    NOW - timedelta(seconds=1),
    datetime(1950, 1, 1, tzinfo=UTC),
    datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2050, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
]
NAME_OIDS = [
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.DOMAIN_COMPONENT,
    NameOID.USER_ID,
    x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"),
]


def general_names(kind: str, count: int) -> list[x509.GeneralName]:
    make = {
        "DNS": lambda i: x509.DNSName(f"h{i}.example.org"),
        "email": lambda i: x509.RFC822Name(f"user{i}@example.org"),
        "URI": lambda i: x509.UniformResourceIdentifier(f"https://example.org/{i}"),
        "IP": lambda i: x509.IPAddress(ipaddress.ip_address(i + 1)),
        "other": lambda i: x509.OtherName(x509.ObjectIdentifier("1.2.3.4"), der(0x04, b"%d" % i)),
        "RID": lambda i: x509.RegisteredID(x509.ObjectIdentifier(f"1.2.3.{i}")),
        "dirName": lambda i: x509.DirectoryName(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"alice{i}")])
        ),
    }[kind]
    return [make(i) for i in range(count)]


def absurd_names(draw) -> x509.Name:
    """Bob's name, or nearly: odd or very long common names, a second one, or up to two
    thousand more attributes."""
    odd = ["BOB", "bob ", "b\u043eb", "bob\0", "", "bob" * 5000]
    common_name = draw(st.sampled_from(["bob"] * 6 + odd))
    # _validate=False lets the common name be empty or long, as no CA would write it.
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False)]
    if draw(st.integers(0, 5)) == 0:
        names.append(x509.NameAttribute(NameOID.COMMON_NAME, "alice"))
    # Past about 1024 characters the subject no longer fits its column; that is pinned by
    # test_what_a_request_stores_fits_its_columns (on PostgreSQL this test fails with it too).
    attribute = x509.NameAttribute(
        draw(st.sampled_from(NAME_OIDS)), draw(st.text(min_size=1, max_size=64))
    )
    names += [attribute] * draw(st.sampled_from([0, 0, 1, 20, 200, 2000]))
    names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, PLACEHOLDER))
    return x509.Name(names)


def absurd_extensions(draw) -> list[tuple[x509.ExtensionType, bool]]:
    """Well-formed extensions with absurd contents: huge lists, huge numbers, random bytes."""
    bools, huge = st.booleans(), st.integers(0, 2**62)
    agreement = draw(bools)  # encipher_only and decipher_only need key_agreement
    many_oids = [
        x509.ObjectIdentifier(f"1.3.6.1.4.1.99999.{i}") for i in range(draw(st.integers(0, 300)))
    ]
    ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
    choices = {
        "basic constraints": lambda: x509.BasicConstraints(ca=True, path_length=draw(huge)),
        "key usage": lambda: x509.KeyUsage(
            *[draw(bools) for _ in range(4)], agreement, draw(bools), draw(bools),
            agreement and draw(bools), agreement and draw(bools),
        ),
        "EKU": lambda: x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING, *many_oids]),
        "name constraints": lambda: x509.NameConstraints(
            general_names("DNS", draw(st.integers(1, 300))), None
        ),
        "policies": lambda: x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), [draw(ascii_text)])]
        ),
        "key identifier": lambda: x509.SubjectKeyIdentifier(draw(st.binary(max_size=300))),
        "authority key identifier": lambda: x509.AuthorityKeyIdentifier(
            draw(st.binary(max_size=300)), None, None
        ),
        "inhibit any policy": lambda: x509.InhibitAnyPolicy(draw(huge)),
        "policy constraints": lambda: x509.PolicyConstraints(draw(huge), None),
        "OCSP no check": x509.OCSPNoCheck,
        "TLS feature": lambda: x509.TLSFeature([x509.TLSFeatureType.status_request]),
        "SAN": lambda: x509.SubjectAlternativeName(general_names(
            draw(st.sampled_from(["DNS", "email", "URI", "IP", "other", "RID", "dirName"])),
            draw(st.sampled_from([1, 50, 800])),
        )),
    }  # fmt: skip
    chosen = draw(st.lists(st.sampled_from(sorted(choices)), unique=True, max_size=4))
    extensions = [(choices[name](), draw(bools)) for name in chosen]
    for number in range(draw(st.integers(0, 3))):  # unknown ones, perhaps critical
        oid = x509.ObjectIdentifier(f"1.3.6.1.4.1.99999.9.{number}")
        value = draw(st.binary(max_size=300))
        extensions.append((x509.UnrecognizedExtension(oid, value), draw(bools)))
    return extensions


@dataclass(frozen=True)
class Patch:
    """Changes to a built certificate that no builder makes: a name value re-tagged, garbage
    under known extension OIDs, a negative or zero serial number, validity ends swapped."""

    tag: int
    value: bytes
    garbage: list[int]
    serial: str
    swap_validity: bool

    def __call__(self, tbs: bytes) -> bytes:
        at = tbs.index(PLACEHOLDER.encode())
        tbs = (
            tbs[: at - 2]
            + bytes([self.tag, len(self.value)])
            + self.value
            + tbs[at + len(self.value) :]
        )
        for number, known in enumerate(self.garbage):
            placeholder, renamed = bytes([6, 3, 0x2A, 3, number]), bytes([6, 3, 0x55, 0x1D, known])
            tbs = tbs.replace(placeholder, renamed, 1)
        _version, serial, _algorithm, _issuer, validity, *_ = elements(tbs, *der_element(tbs, 0))
        start, end = der_element(tbs, serial[0])
        if self.serial == "negative":
            tbs = tbs[:start] + bytes([tbs[start] | 0x80]) + tbs[start + 1 :]
        elif self.serial == "zero":
            tbs = tbs[:start] + bytes(end - start) + tbs[end:]
        if self.swap_validity:
            (a, b), (c, d) = elements(tbs, *der_element(tbs, validity[0]))
            tbs = tbs[:a] + tbs[c:d] + tbs[a:b] + tbs[d:]
        return tbs


@st.composite
def absurd_certificates(draw) -> tuple[bytes, object]:
    """A certificate for bob, signed by the run's UCP client CA, with absurd names, extensions,
    dates, serial number, key or signature hash; and the private key that signs the challenge."""
    ca = factories.test_ca()
    key_name = draw(st.sampled_from(["P-256"] * 4 + sorted(other_keys())))
    key = other_keys().get(key_name) or ec.generate_private_key(ec.SECP256R1())
    two_times = st.lists(st.sampled_from(TIMES), min_size=2, max_size=2, unique=True)
    not_before, not_after = sorted(draw(two_times))
    builder = (
        x509.CertificateBuilder()
        .subject_name(absurd_names(draw))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(draw(st.integers(1, 2**159 - 1)))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in absurd_extensions(draw):
        builder = builder.add_extension(extension, critical)
    garbage = draw(st.lists(st.sampled_from(KNOWN_EXTENSIONS), max_size=3))
    for number in range(len(garbage)):
        renamed_later = x509.ObjectIdentifier(f"1.2.3.{number}")
        value = draw(st.binary(max_size=64))
        builder = builder.add_extension(
            x509.UnrecognizedExtension(renamed_later, value), draw(st.booleans())
        )
    hash_algorithm = draw(st.sampled_from([hashes.SHA256(), hashes.SHA384(), hashes.SHA512()]))
    certificate = builder.sign(ca.key, hash_algorithm)
    patch = Patch(
        tag=draw(st.sampled_from(STRING_TAGS)),
        value=draw(st.binary(min_size=len(PLACEHOLDER), max_size=len(PLACEHOLDER))),
        garbage=garbage,
        serial=draw(st.sampled_from(["as built"] * 3 + ["negative", "zero"])),
        swap_validity=draw(st.integers(0, 4)) == 0,
    )
    if draw(st.integers(0, 2)):
        whole = signed_again(certificate, patch)
    else:
        whole = certificate.public_bytes(serialization.Encoding.DER)
    return (pem(whole) if draw(st.booleans()) else whole), key


def test_an_absurd_certificate_gets_a_form_error_or_a_request(form, tmp_path):
    ucp_ca = tmp_path / "ucp-ca.pem"
    ucp_ca.write_bytes(factories.test_ca().certificate.public_bytes(serialization.Encoding.PEM))

    @fuzz(280)
    @given(certificate=absurd_certificates(), site_checks_the_chain=st.booleans())
    def post(certificate, site_checks_the_chain):
        upload, key = certificate
        with override_settings(PORTAL_UCP_CA_BUNDLE=str(ucp_ca) if site_checks_the_chain else ""):
            response = form.post(form.fields(upload, key=key))
        assert response.status_code in (302, 400)

    post()
    assert form.opened, "no absurd but acceptable certificate opened a request"
    form.assert_no_key_kept()


# -- 6. any form fields, and multipart bodies by hand ---------------------------------------------

ODD_NAMES = ["cert.pem", "key.pem", "../../etc/passwd", "C:\\fakepath\\cert.pem", "ключ.pem"]
ODD_NAMES += ["a" * 5000, 'a"b.pem', "a\r\nContent-Type: text/html", "cert.pem\0.txt", ".pem"]
CONTENT_TYPES = [PEM_TYPE, "application/zip", "application/octet-stream", "text/html", ""]
CONTENT_TYPES += ["image/png", "multipart/mixed; boundary=zzz", "text/plain; charset=utf-16"]


def file_contents() -> st.SearchStrategy[bytes]:
    bundle = bobs_bundle()
    keys = [held.encodings[name] for held in held_keys() for name in ("PKCS#8 PEM", "PKCS#8 DER")]
    known = st.sampled_from([bundle.cert_pem, bobs_der(), bundle.zip(), b"", *keys])
    return known | st.binary(max_size=300)


def has_a_file_name(name: str) -> bool:
    return os.path.basename(name) not in ("", ".", "..")


def holds_a_sent_key(data: bytes) -> bool:
    return any(key in data for held in held_keys() for key in held.encodings.values())


def test_any_form_fields_get_an_answer(form):
    files = st.builds(
        SimpleUploadedFile,
        # Django refuses to make a file without a name; the multipart bodies send those.
        st.sampled_from(ODD_NAMES) | st.text(max_size=40).filter(has_a_file_name),
        file_contents(),
        st.sampled_from(CONTENT_TYPES) | st.text(max_size=40),
    )
    # "<...>" values are filled in when posting; any field may be left out.
    values = {
        "repository": st.sampled_from(["<repository>", "", "abc", "9" * 40, "-1", "1.5", "１"])
        | st.text(max_size=20),
        "team": st.sampled_from(["qa", "dev", "QA", "", "qa\0", "q" * 100, ["qa", "dev"]])
        | st.text(max_size=20),
        "reason": st.sampled_from(["", "\0", " " * 10, "<key.pem>"]) | st.text(max_size=2100),
        "certificate": files | st.lists(files, min_size=2, max_size=3),
        "challenge": st.sampled_from(["<page>", "<alice's>", "<expired>", "", "x" * 300])
        | st.text(max_size=250),
        "possession_signature": st.sampled_from(["<signed>", "<spaced>", "<key.pem>", "A" * 3000])
        | st.text(max_size=100)
        | st.binary(max_size=120).map(lambda raw: base64.b64encode(raw).decode()),
    }
    extra_fields = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=50))
    bob_key = bobs_bundle().private_key

    def filled_in(value: object, data: dict) -> object:
        now = timezone.now()
        challenge = data.get("challenge") if isinstance(data.get("challenge"), str) else ""
        placeholders = {
            "<repository>": lambda: form.repository.pk,
            "<page>": form.current_challenge,
            "<alice's>": lambda: challenge_issue(form.alice, now=now),
            "<expired>": lambda: challenge_issue(form.bob, now=now - timedelta(hours=2)),
            "<signed>": lambda: signature(bob_key, challenge),
            "<spaced>": lambda: " \n".join(re.findall(".{1,9}", signature(bob_key, challenge))),
            "<key.pem>": lambda: bobs_bundle().key_pem.decode(),
        }
        return placeholders[value]() if isinstance(value, str) and value in placeholders else value

    @fuzz(450)
    @given(choices=st.data())
    def post(choices):
        data = {}
        for name, strategy in values.items():
            if choices.draw(st.integers(0, 4), label=f"{name} given"):
                data[name] = filled_in(choices.draw(strategy, label=name), data)
        data |= choices.draw(extra_fields, label="extra fields")
        uploads = data.get("certificate", [])
        uploads = uploads if isinstance(uploads, list) else [uploads]
        holding_a_key = any(holds_a_sent_key(upload.read()) for upload in uploads)
        for upload in uploads:
            upload.seek(0)
        response = form.post(data)
        assert response.status_code in (200, 302, 400)
        assert not (holding_a_key and response.status_code == 302)
        assert not leaks_in(response.content), "a key was echoed back"

    post()
    form.assert_no_key_kept()


BOUNDARY_CHARACTERS = "abcXYZ0189'()+_,-./:=? "
DISPOSITIONS = [
    b'form-data; name="certificate"; filename="cert.pem"',
    b"form-data; name=certificate; filename=cert.pem",
    b"form-data; name=\"certificate\"; filename*=UTF-8''%E2%9C%93%ff.pem",
    b"form-data; name=\"certificate\"; filename*=bogus''x.pem",
    b"form-data; name*=UTF-8''certificate; filename=\"a\"",
    b'form-data; name="certificate"; name="reason"; filename="a"',
    b'form-data; filename="cert.pem"',
    b'attachment; name="certificate"; filename="a"',
    b'form-data; name="certificate"; filename="' + b"a" * 20_000 + b'"',
    b'form-data; name="certificate"; filename="\xff\xfe\x00.pem"',
    b'form-data; name="certificate"; filename="a";;;; =; x',
]
PART_HEADERS = [
    b"Content-Type: application/x-pem-file",
    b"Content-Type: text/plain; charset=bogus",
    b"Content-Type: multipart/mixed; boundary=inner",
    b"Content-Type:",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Transfer-Encoding: x-garbage",
    b"X-Folded: a\r\n continued\r\n\tand again",
    b"a header line without a colon",
    b"X-Latin-1: \xe9\xff",
]
REQUEST_TYPES = [
    "multipart/form-data; boundary={}",
    'multipart/form-data; boundary="{}"',
    "multipart/form-data; boundary={}; charset=bogus",
    "multipart/form-data; charset=utf-16; boundary={}",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/mixed; boundary={}",
    "application/x-www-form-urlencoded",
    "text/plain",
]


@st.composite
def multipart_bodies(draw, repository: int) -> tuple[bytes, str]:
    """A request body built by hand, with part headers no browser sends: many or huge ones, odd
    dispositions and encodings; perhaps cut short or never closed. Returns it with the request's
    content type."""
    boundary = draw(st.text(BOUNDARY_CHARACTERS, min_size=1, max_size=70) | st.just("b" * 200))
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    headers = [b"Content-Disposition: " + draw(st.sampled_from(DISPOSITIONS))]
    headers += draw(st.lists(st.sampled_from(PART_HEADERS), max_size=3))
    count, length = draw(st.sampled_from([0, 1, 10, 300])), draw(st.sampled_from([1, 100, 5000]))
    headers += [b"X-Pad-%d: " % i + b"p" * length for i in range(count)]
    content = draw(file_contents())
    if b"Content-Transfer-Encoding: base64" in headers and draw(st.booleans()):
        content = base64.encodebytes(content)
    fields = {b"repository": b"%d" % repository, b"team": b"qa", b"reason": b"nginx releases"}
    parts = [([b'Content-Disposition: form-data; name="%s"' % n], v) for n, v in fields.items()]
    separator = b"--" + boundary.encode()
    body = draw(st.sampled_from([b"", b"a preamble" + end]))
    for part_headers, part in [*parts, (headers, content)]:
        body += separator + end + end.join(part_headers) + end + end + part + end
    body += draw(st.sampled_from([separator + b"--" + end, b"", separator, b"--", b"junk"]))
    if draw(st.integers(0, 4)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body, draw(st.sampled_from(REQUEST_TYPES)).format(boundary)


def test_a_multipart_body_made_by_hand_gets_an_answer(form):
    @fuzz(550)
    @given(multipart=multipart_bodies(form.repository.pk))
    def post(multipart):
        body, content_type = multipart
        response = form.post(body=body, content_type=content_type)
        assert response.status_code in (200, 400)  # 200: nothing parsed, so an empty form

    post()
    form.assert_no_key_kept()


# -- findings, fixed and pinned --------------------------------------------------------------


@pytest.mark.parametrize("field", ["reason", "possession_signature"])
def test_a_private_key_pasted_into_a_text_field_is_refused_and_not_echoed(form, field):
    bundle = bobs_bundle()
    data = form.fields(bundle.cert_pem, key=bundle.private_key)
    response = form.post(data | {field: "my key, in case:\n" + bundle.key_pem.decode()})
    assert response.status_code == 400
    assert PRIVATE_KEY_MESSAGE in response.context["form"].errors[field]
    assert not leaks_in(response.content)
    form.assert_no_key_kept()


def test_unclosed_pem_blocks_are_parsed_in_linear_time():
    def parsing_time(blocks: int) -> float:
        started = time.process_time()
        with pytest.raises(ValidationError):
            inspect_certificate(b"-----BEGIN A-----" * blocks, now=timezone.now())
        return time.process_time() - started

    # Four times the blocks may take about four times as long, not sixteen.
    assert parsing_time(2000) < 8 * parsing_time(500) + 0.02


def certificate_for_bob(key: PrivateKey, *more_names: x509.NameAttribute) -> x509.Certificate:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, "bob"), *more_names]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(factories.test_ca().certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=30))
        .sign(factories.test_ca().key, hashes.SHA256())
    )


def test_a_name_of_the_wrong_asn1_type_is_a_form_error(form):
    key = ec.generate_private_key(ec.SECP256R1())
    unit = x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, PLACEHOLDER)
    bit_string = Patch(0x03, bytes(len(PLACEHOLDER)), [], "as built", swap_validity=False)
    upload = pem(signed_again(certificate_for_bob(key, unit), bit_string))
    assert_refused(form.post(form.fields(upload, key=key)))


def values_longer_than_their_column() -> list[str]:
    """What PostgreSQL would refuse to store, and SQLite (the test database) stores anyway."""
    found = []
    for model in apps.get_models():
        for column in model._meta.concrete_fields:
            if isinstance(column, models.CharField) and column.max_length:
                rows = model._default_manager.annotate(length=Length(column.name))
                lengths = rows.filter(length__gt=column.max_length).values_list("length", flat=True)
                found += [f"{model.__name__}.{column.name}: {n} characters" for n in lengths]
    return found


def test_what_a_request_stores_fits_its_columns(form):
    key = ec.generate_private_key(ec.SECP256R1())
    units = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"unit {i}") for i in range(150)]
    upload = certificate_for_bob(key, *units).public_bytes(serialization.Encoding.PEM)
    response = form.post(form.fields(upload, key=key))
    assert response.status_code in (302, 400)
    assert not values_longer_than_their_column()
