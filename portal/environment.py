"""Reading the portal's settings from the environment: typed values with a clear error for a
malformed one, and the database and key-encryption keys checked at start-up."""

from __future__ import annotations

import base64
import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_int_list(name: str, default: str) -> list[int]:
    try:
        return [int(item) for item in env_list(name, default)]
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be whole numbers separated by commas") from None


def env_networks(name: str, value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(item.strip()) for item in value.split(",") if item.strip()]
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be networks such as 10.0.0.0/8: {error}") from None


def key_encryption_keys(encoded: list[str]) -> list[str]:
    """Check the format-1 key-encryption keys (kept only to open keys sealed before sealing
    became asymmetric) at start-up rather than at the first use."""
    for value in encoded:
        if _raw_32_bytes(value) is None:
            raise ImproperlyConfigured(
                "PORTAL_KEY_ENCRYPTION_KEYS must hold base64 of 32 random bytes per key, "
                "separated by commas"
            )
    return encoded


def unsealing_keys(encoded: list[str]) -> list[str]:
    for value in encoded:
        if _raw_32_bytes(value) is None:
            raise ImproperlyConfigured(
                "PORTAL_KEY_UNSEALING_KEYS must hold base64 of 32-byte X25519 private keys, "
                "separated by commas (manage.py keys_generate makes one)"
            )
    return encoded


def sealing_key(encoded: str, *, unsealing: list[str]) -> str:
    """The X25519 public key new repository keys are sealed to: as configured, or else the
    public half of the first unsealing key."""
    if encoded:
        if _raw_32_bytes(encoded) is None:
            raise ImproperlyConfigured(
                "PORTAL_KEY_SEALING_KEY must hold base64 of a 32-byte X25519 public key "
                "(manage.py keys_generate prints one)"
            )
        return encoded
    raw = _raw_32_bytes(unsealing[0])
    assert raw is not None  # checked by unsealing_keys
    public = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes_raw()
    return base64.b64encode(public).decode()


def new_unsealing_key() -> str:
    return base64.b64encode(X25519PrivateKey.generate().private_bytes_raw()).decode()


def _raw_32_bytes(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def database_from_url(url: str, *, base_dir: Path) -> dict[str, object]:
    """`sqlite:///relative/or//absolute/path` or `postgres://user:password@host:port/name`."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        name = Path(path) if Path(path).is_absolute() else base_dir / path
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            # IMMEDIATE takes the write lock at BEGIN, so read-then-write transactions (the
            # audit chain, compare-and-set) serialise instead of failing with "locked".
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": name.with_name(f"test_{name.name}")},
        }
    if parts.scheme in ("postgres", "postgresql"):
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 60,
        }
    raise ImproperlyConfigured(f"PORTAL_DATABASE_URL has an unsupported scheme: {parts.scheme!r}")
