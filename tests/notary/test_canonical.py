"""Canonical JSON and file bytes, checked against the protocol note's verified vectors."""

import hashlib

import pytest

from delegations.notary.canonical import encode_canonical, file_bytes
from delegations.notary.errors import InvalidMetadata
from delegations.notary.gotime import GoTime
from delegations.notary.metadata import Metadata, Targets

# Protocol note §1.3: this exact key encoding has this sha256.
KEY_VECTOR = (
    b'{"keytype":"ecdsa","keyval":{"private":null,"public":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE'
    b"KesLgCQljT70XVIEYK6wK80HFRxhPjfOJoVXHiFH2/zP9yQ1tvt46IiXPwZ+/X493frC22cgqtPbOQdNpL/wrw=="
    b'"}}'
)
KEY_VECTOR_SHA256 = "d0c12c7c4c58650dc09711bf18a866ad49954317389f33568a2dbd8e08f3ff39"


def test_key_vector_encodes_byte_exactly():
    key = {
        "keyval": {
            "public": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKesLgCQljT70XVIEYK6wK80HFRxhPjfOJoVXHi"
            "FH2/zP9yQ1tvt46IiXPwZ+/X493frC22cgqtPbOQdNpL/wrw==",
            "private": None,
        },
        "keytype": "ecdsa",
    }
    encoded = encode_canonical(key)
    assert encoded == KEY_VECTOR
    assert hashlib.sha256(encoded).hexdigest() == KEY_VECTOR_SHA256


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [3, 1, 2]}, b'{"a":[3,1,2],"b":1}'),  # keys sorted, arrays kept
        ({"x": 2.0}, b'{"x":2}'),  # integral floats are integers
        ({"t": True, "f": False, "n": None}, b'{"f":false,"n":null,"t":true}'),
        ('quote" and back\\slash', b'"quote\\" and back\\\\slash"'),
        ("<&>é", '"<&>é"'.encode()),  # raw in the signed bytes, raw UTF-8
        ("line\u2028sep", '"line\u2028sep"'.encode()),  # raw when signed, escaped in files
        ({"é": 1, "z": 2, "a": 3}, '{"a":3,"z":2,"é":1}'.encode()),  # bytewise UTF-8 order
    ],
)
def test_canonical_encoding(value, expected):
    assert encode_canonical(value) == expected


@pytest.mark.parametrize("bad", [{"x": 1.5}, "tab\there", "newline\n", {1: "x"}, {"x": object()}])
def test_values_go_cannot_publish_are_refused(bad):
    with pytest.raises(InvalidMetadata):
        encode_canonical(bad)


def test_file_bytes_escape_html_only_outside_the_signed_bytes():
    signed = encode_canonical({"name": 'weird<&>é"\\tag\u2028'})
    signature = {"keyid": "ab", "method": "ecdsa", "sig": "c2ln"}
    assert signed == '{"name":"weird<&>é\\"\\\\tag\u2028"}'.encode()
    assert (
        file_bytes(signed, [signature])
        == (
            '{"signed":{"name":"weird\\u003c\\u0026\\u003eé\\"\\\\tag\\u2028"},'
            '"signatures":[{"keyid":"ab","method":"ecdsa","sig":"c2ln"}]}'
        ).encode()
    )


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("2029-11-23T23:43:05.228399841Z", "2029-11-23T23:43:05.228399841Z"),
        ("2026-12-08T23:43:05.24549133Z", "2026-12-08T23:43:05.24549133Z"),
        ("2026-12-08T23:43:05.120Z", "2026-12-08T23:43:05.12Z"),  # trailing zeros trimmed
        ("2026-12-08T23:43:05.000Z", "2026-12-08T23:43:05Z"),  # zero fraction omitted
        ("2026-12-08T23:43:05+00:00", "2026-12-08T23:43:05Z"),  # zero offset is Z
        ("2026-12-08T15:43:05.5-08:00", "2026-12-08T15:43:05.5-08:00"),  # offsets kept
    ],
)
def test_expires_is_written_as_go_writes_it(text, written):
    assert GoTime.parse(text).format() == written


def test_expires_keeps_its_moment():
    parsed = GoTime.parse("2026-12-08T15:43:05.5-08:00")
    assert parsed.as_datetime().isoformat() == "2026-12-08T23:43:05.500000+00:00"


@pytest.mark.parametrize(
    "bad",
    ["2026-12-08 23:43:05Z", "2026-13-08T23:43:05Z", "2026-12-08T23:43:05+24:00", "", None, 5],
)
def test_unparseable_expires_is_invalid_metadata(bad):
    with pytest.raises(InvalidMetadata):
        GoTime.parse(bad)


def test_absurdly_nested_metadata_is_invalid_not_a_crash():
    with pytest.raises(InvalidMetadata):
        Metadata.from_bytes(b"[" * 200_000, Targets)


def test_metadata_nested_deeper_than_any_real_file_is_refused():
    with pytest.raises(InvalidMetadata):
        encode_canonical(nested(5000))
    deep = b'{"signed":{"_type":"Targets","x":' + b"[" * 5000 + b"]" * 5000 + b'},"signatures":[]}'
    with pytest.raises(InvalidMetadata):
        Metadata.from_bytes(deep, Targets)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_metadata_is_read_as_utf8_only_as_go_reads_it():
    document = '{"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1},'
    document += '"signatures":[]}'
    assert Metadata.from_bytes(document.encode(), Targets).signed.version == 1
    for encoding in ("utf-16", "utf-32"):
        with pytest.raises(InvalidMetadata):
            Metadata.from_bytes(document.encode(encoding), Targets)


@pytest.mark.parametrize(
    ("number", "outcome"),
    [("1.5", None), ("NaN", None), ("2.0", b'"x":2'), ("1e2", b'"x":100'), ("7", b'"x":7')],
)
def test_numbers_read_from_a_file_are_written_back_as_go_would(number, outcome):
    # Files parsed without a fractional number skip the walk that looks for floats; with one,
    # the exact encoder decides, as for any value.
    document = '{"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1,'
    document += f'"x":{number}}},"signatures":[]}}'
    if outcome is None:
        with pytest.raises(InvalidMetadata):
            Metadata.from_bytes(document.encode(), Targets)
    else:
        signed = Metadata.from_bytes(document.encode(), Targets).received_signed_bytes
        assert signed is not None
        assert outcome in signed
