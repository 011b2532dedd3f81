"""A strict reader of DER, the ASN.1 encoding inside key files, and the two encoders they need.

Strict means definite and minimal lengths, low tag numbers only, and nothing after the last
element. Key files come from people, so anything else is refused with `DerError` rather than
guessed at; a truncated or hostile file can never make a read run past the bytes it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
SET = 0x31

_CONSTRUCTED = 0x20
_HIGH_TAG_NUMBER = 0x1F
# Four length bytes address 4 GiB, far beyond any key file; more is a hostile length.
_MAX_LENGTH_BYTES = 4


_MAX_OBJECT_IDENTIFIER_BYTES = 64


class DerError(ValueError):
    """Bytes that are not the strict DER expected; the message says where it went wrong."""


@dataclass(frozen=True)
class Element:
    tag: int
    content: bytes
    encoded: bytes  # the whole element, for copying it into a re-encoded structure unchanged

    def children(self) -> list[Element]:
        if not self.tag & _CONSTRUCTED:
            raise DerError(f"element 0x{self.tag:02x} is not constructed")
        return read_all(self.content)

    def sequence(self, what: str = "structure") -> list[Element]:
        self._expect(SEQUENCE, what)
        return self.children()

    def integer(self, what: str = "integer") -> int:
        self._expect(INTEGER, what)
        content = self.content
        if not content:
            raise DerError(f"{what} is empty")
        # A leading byte that only repeats the sign of the next one is not DER.
        if len(content) > 1 and (content[0], content[1] >> 7) in ((0x00, 0), (0xFF, 1)):
            raise DerError(f"{what} is not minimally encoded")
        return int.from_bytes(content, "big", signed=True)

    def object_identifier(self, what: str = "object identifier") -> str:
        self._expect(OBJECT_IDENTIFIER, what)
        arcs: list[int] = []
        value = 0
        starting = True
        # Real arcs fit in a few bytes; a long one would only cost time (and str() refuses
        # integers of more than 4300 digits).
        if len(self.content) > _MAX_OBJECT_IDENTIFIER_BYTES:
            raise DerError(f"{what} is too long")
        for byte in self.content:
            if starting and byte == 0x80:
                raise DerError(f"{what} is not minimally encoded")
            value = (value << 7) | (byte & 0x7F)
            starting = not byte & 0x80
            if starting:
                arcs.append(value)
                value = 0
        if not arcs or not starting:
            raise DerError(f"{what} is truncated")
        first = min(arcs[0] // 40, 2)
        return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])

    def octet_string(self, what: str = "octet string") -> bytes:
        self._expect(OCTET_STRING, what)
        return self.content

    def _expect(self, tag: int, what: str) -> None:
        if self.tag != tag:
            raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{self.tag:02x}")


def read(data: bytes) -> Element:
    """The one element `data` holds; anything after it is an error."""
    elements = read_all(data)
    if len(elements) != 1:
        raise DerError(f"expected one element, found {len(elements)}")
    return elements[0]


def read_all(data: bytes) -> list[Element]:
    elements: list[Element] = []
    offset = 0
    while offset < len(data):
        element, offset = _read_one(data, offset)
        elements.append(element)
    return elements


def _read_one(data: bytes, start: int) -> tuple[Element, int]:
    if len(data) - start < 2:
        raise DerError("truncated element header")
    tag = data[start]
    if tag & _HIGH_TAG_NUMBER == _HIGH_TAG_NUMBER:
        raise DerError(f"high tag numbers are not used in key files (0x{tag:02x})")
    first = data[start + 1]
    offset = start + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DerError("indefinite length is not DER")
        if count > _MAX_LENGTH_BYTES:
            raise DerError("element length is out of range")
        if offset + count > len(data):
            raise DerError("truncated element length")
        length_bytes = data[offset : offset + count]
        length = int.from_bytes(length_bytes, "big")
        if length_bytes[0] == 0 or length < 0x80:
            raise DerError("element length is not minimally encoded")
        offset += count
    end = offset + length
    if end > len(data):
        raise DerError("truncated element: its length runs past the end of the data")
    return Element(tag, bytes(data[offset:end]), bytes(data[start:end])), end


def encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length_bytes)]) + length_bytes + content


def encode_integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("key files hold no negative integers")
    size = value.bit_length() // 8 + 1  # room for the sign bit
    return encode(INTEGER, value.to_bytes(size, "big", signed=True))


def encode_object_identifier(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"{dotted} is not an object identifier")
    content = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        # Base 128, most significant group first, the high bit set on all but the last.
        groups = [arc & 0x7F]
        arc >>= 7
        while arc:
            groups.append(0x80 | (arc & 0x7F))
            arc >>= 7
        content.extend(reversed(groups))
    return encode(OBJECT_IDENTIFIER, bytes(content))
