"""The exact bytes notary's Go code signs and stores.

Two encodings matter (protocol note §1 and §2):

- the *canonical* JSON of a `signed` object, which is what signatures cover: sorted keys, no
  whitespace, only `"` and `\\` escaped, integers only;
- the *file* bytes, which is how notary-server re-serialises a parsed upload before hashing it for
  the snapshot: `{"signed":CANON,"signatures":[...]}` with Go's HTML escaping applied to CANON.

An upload that differs from the second form by one byte is accepted with 200 and silently breaks
every reader, so nothing here is approximate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from .errors import InvalidMetadata

# Go's canonical encoder writes control characters raw, which is not valid JSON; the Go client
# then fails to publish. Refusing them up front keeps us from writing a file no reader can parse.
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f]")

# Go's JSON compaction escapes these inside strings even though the signed bytes hold them raw
# (the canonical encoder notary pins writes every non-ASCII character raw, U+2028/9 included).
_HTML_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


# Python's encoder, with sorted keys and no ASCII escaping, writes the same bytes as Go's canonical
# encoder unless it had to escape a control character, wrote a float or met a key that is not
# text; all are rare, and then the exact encoder below decides (and says what is wrong). Sorting
# by code point is sorting by UTF-8 bytes. The fast path matters: a targets file with 1,000
# delegated certificates is 1 MB.
_PYTHON_ONLY_ESCAPE = re.compile(r'\\[^"\\]')


def encode_canonical(value: object, *, parsed_without_floats: bool = False) -> bytes:
    """Return the canonical JSON bytes of `value`, as docker/go's MarshalCanonical writes them.

    `parsed_without_floats`: `value` is what json.loads made of a text in which it met no
    number with a fraction or exponent (and no NaN or Infinity). Its keys are then text and it
    holds no float, so the walk that looks for either is skipped: a fifth of reading a file.
    """
    try:
        return _encode_fast_or_exactly(value, checked=parsed_without_floats)
    except RecursionError:
        raise InvalidMetadata("JSON nested too deeply to be metadata") from None


def _encode_fast_or_exactly(value: object, *, checked: bool = False) -> bytes:
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        text = None
    if (
        text is not None
        and not _PYTHON_ONLY_ESCAPE.search(text)
        and (checked or _without_floats_or_odd_keys(value))
    ):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the exact encoder reports it
    return _encode_exactly(value)


def _without_floats_or_odd_keys(value: object) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) for key in value) and _without_floats_or_odd_keys(
            list(value.values())
        )
    if isinstance(value, (list, tuple)):
        return all(
            not isinstance(item, float)
            and (not isinstance(item, (dict, list, tuple)) or _without_floats_or_odd_keys(item))
            for item in value
        )
    return not isinstance(value, float)


def _encode_exactly(value: object) -> bytes:
    parts: list[str] = []
    _encode(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidMetadata(f"text that is not valid Unicode: {error.reason}") from None


def file_bytes(canonical_signed: bytes, signatures: Iterable[Mapping[str, str]]) -> bytes:
    """Return a metadata file exactly as Go's `json.Marshal` of the `Signed` wrapper writes it.

    `signatures` are mappings with `keyid`, `method` and base64 `sig`, written in that field
    order (Go's declaration order, not sorted).
    """
    written = b",".join(
        b'{"keyid":%s,"method":%s,"sig":%s}'
        % (
            _go_json_string(signature["keyid"]),
            _go_json_string(signature["method"]),
            _go_json_string(signature["sig"]),
        )
        for signature in signatures
    )
    return b'{"signed":' + _html_escape(canonical_signed) + b',"signatures":[' + written + b"]}"


def _html_escape(data: bytes) -> bytes:
    # The characters only occur inside strings in canonical JSON, so escaping them everywhere is
    # the same as escaping them in strings.
    for raw, escaped in _HTML_ESCAPES:
        data = data.replace(raw, escaped)
    return data


def _encode(value: object, parts: list[str]) -> None:
    # bool before int: bool is a subclass of int in Python.
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(_canonical_string(value))
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, float):
        # Go decodes numbers into float64 and writes integral ones as int64; others are an error.
        if not value.is_integer():
            raise InvalidMetadata(f"a non-integral number ({value!r}) cannot be canonical")
        parts.append(str(int(value)))
    elif isinstance(value, Mapping):
        items = list(value.items())
        for key, _ in items:
            if not isinstance(key, str):
                raise InvalidMetadata(f"an object key that is not text: {key!r}")
        items.sort(key=lambda item: item[0].encode("utf-8", "surrogatepass"))
        parts.append("{")
        for index, (key, item) in enumerate(items):
            if index:
                parts.append(",")
            parts.append(_canonical_string(key))
            parts.append(":")
            _encode(item, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    else:
        raise InvalidMetadata(f"a value JSON cannot hold: {type(value).__name__}")


def _canonical_string(text: str) -> str:
    if _CONTROL_CHARACTERS.search(text):
        raise InvalidMetadata(f"text with a control character cannot be published: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _go_json_string(text: str) -> bytes:
    """Encode a short string as Go's encoding/json does (HTML-safe, ASCII control escapes)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or char in "<>&\u2028\u2029":
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out).encode("utf-8")
