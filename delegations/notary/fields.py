"""Strict readers of JSON fields, accepting what Go's typed decoder accepts."""

from __future__ import annotations

from .errors import InvalidMetadata
from .keys import PublicKey


def integer(data: dict[str, object], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMetadata(f"{name} must be an integer")
    return value


def string_list_or_none(value: object, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidMetadata(f"{what} must be a list of strings")
    return list(value)


def key_map(value: object) -> dict[str, PublicKey] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMetadata("keys must be an object")
    return {str(keyid): PublicKey.from_dict(key) for keyid, key in value.items()}
