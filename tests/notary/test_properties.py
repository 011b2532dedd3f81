"""Properties of the encoders over generated values (Hypothesis)."""

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from delegations.notary.canonical import _encode_exactly, encode_canonical, file_bytes
from delegations.notary.errors import InvalidMetadata
from delegations.notary.gotime import GoTime

# Text notary can publish: anything but control characters (and lone surrogates).
publishable_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0x20), max_size=20
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | publishable_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(publishable_text, children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_is_json_with_sorted_keys_and_no_whitespace(value):
    encoded = encode_canonical(value)
    assert json.loads(encoded) == value
    assert encode_canonical(json.loads(encoded)) == encoded  # a fixed point


@given(st.dictionaries(publishable_text, json_values, max_size=5))
def test_file_bytes_parse_back_to_the_signed_object(signed):
    data = file_bytes(encode_canonical(signed), [{"keyid": "k", "method": "ecdsa", "sig": "c2ln"}])
    document = json.loads(data)
    assert document["signed"] == signed
    assert not any(char in data for char in b"<>&")  # HTML-escaped, as Go writes files


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)),
    st.integers(0, 999_999_999),
    st.integers(-14 * 60, 14 * 60),
)
def test_go_time_round_trips_to_the_nanosecond(moment, nanosecond, offset_minutes):
    zone = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
    original = GoTime(moment.replace(microsecond=0, tzinfo=zone), nanosecond)
    text = original.format()
    assert GoTime.parse(text) == original
    fraction = re.search(r"\.(\d+)", text)
    assert fraction is None or not fraction.group(1).endswith("0")  # Go trims trailing zeros


any_text = st.text(max_size=12)  # control characters and lone surrogates included
awkward_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)


@given(awkward_values)
def test_the_fast_canonical_encoder_agrees_with_the_exact_one(value):
    try:
        expected = _encode_exactly(value)
    except InvalidMetadata:
        with pytest.raises(InvalidMetadata):
            encode_canonical(value)
        return
    assert encode_canonical(value) == expected
