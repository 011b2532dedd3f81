"""The strict DER reader under the key file loader: it accepts DER and nothing looser."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from delegations.notary import der


def test_a_sequence_reads_into_its_fields():
    # SEQUENCE { INTEGER 0, OID 1.2.840.113549.1.5.13, OCTET STRING "ab", NULL }
    data = bytes.fromhex("3014020100" + "06092a864886f70d01050d" + "04026162" + "0500")
    fields = der.read(data).sequence()
    assert fields[0].integer() == 0
    assert fields[1].object_identifier() == "1.2.840.113549.1.5.13"
    assert fields[2].octet_string() == b"ab"
    assert fields[3].tag == der.NULL
    assert der.read(data).encoded == data


@pytest.mark.parametrize(
    ("encoded", "value"),
    [("020100", 0), ("02017f", 127), ("02020080", 128), ("0201ff", -1), ("02030fffff", 0xFFFFF)],
)
def test_integers_read_and_write_back_the_same(encoded, value):
    assert der.read(bytes.fromhex(encoded)).integer() == value
    if value >= 0:
        assert der.encode_integer(value).hex() == encoded


def test_a_long_length_is_written_in_the_long_form():
    content = b"x" * 300
    encoded = der.encode(der.OCTET_STRING, content)
    assert encoded[:4] == bytes([0x04, 0x82, 0x01, 0x2C])
    assert der.read(encoded).octet_string() == content


@pytest.mark.parametrize(
    ("hex_data", "reason"),
    [
        ("", "expected one element"),
        ("30", "truncated element header"),
        ("3005020100", "runs past the end"),
        ("020100020100", "expected one element, found 2"),
        ("3080020100" + "0000", "indefinite length"),
        ("04810161", "not minimally encoded"),
        ("0482000161", "not minimally encoded"),
        ("0485" + "00" * 5, "out of range"),
        ("1f0100", "high tag numbers"),
        ("02020001", "not minimally encoded"),
        ("0202ff80", "not minimally encoded"),
        ("0200", "is empty"),
        ("06028001", "not minimally encoded"),
        ("06022a86", "truncated"),
    ],
)
def test_anything_looser_than_der_is_refused(hex_data, reason):
    with pytest.raises(der.DerError, match=reason):
        read_fully(bytes.fromhex(hex_data))


def read_fully(data: bytes) -> object:
    element = der.read(data)
    if element.tag == der.INTEGER:
        return element.integer()
    if element.tag == der.OBJECT_IDENTIFIER:
        return element.object_identifier()
    return element.children()


def test_a_field_of_the_wrong_type_is_named():
    with pytest.raises(der.DerError, match="PBKDF2 salt: expected tag 0x04, found 0x02"):
        der.read(bytes.fromhex("020100")).octet_string("PBKDF2 salt")


@given(st.binary(max_size=200))
def test_any_bytes_either_read_or_raise_der_error(data):
    try:
        elements = der.read_all(data)
    except der.DerError:
        return
    assert b"".join(element.encoded for element in elements) == data
