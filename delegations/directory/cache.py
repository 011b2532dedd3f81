"""Answers of the directory kept for PORTAL_DIRECTORY_CACHE_SECONDS, per process: every page
asks who the user is. Through a short outage, pages and emails carry on with the last answer,
up to PORTAL_DIRECTORY_STALE_SECONDS old; a caller that acts on the answer (the sync) asks for
a fresh one and never gets an old one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar, cast

from django.conf import settings

from .connection import DirectoryUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

# key → (when it was read, the answer); each key's reader gives answers of one type.
_cache: dict[tuple[str, ...], tuple[float, object]] = {}
_cache_lock = threading.Lock()


def cached(key: tuple[str, ...], read: Callable[[], T], fresh: bool) -> T:
    lifetime = settings.PORTAL_DIRECTORY_CACHE_SECONDS
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if not fresh and hit is not None and now - hit[0] < lifetime:
        return cast(T, hit[1])
    try:
        value = read()
    except DirectoryUnavailable as error:
        # Pages and emails carry on with the last answer through a directory restart; the sync
        # (fresh) never acts on an old one.
        if fresh or hit is None:
            raise
        if now - hit[0] > settings.PORTAL_DIRECTORY_STALE_SECONDS:
            # Past this age an answer may grant rights the directory has since taken away.
            raise
        logger.warning("directory unavailable, using an answer %.0f s old: %s", now - hit[0], error)
        return cast(T, hit[1])
    if lifetime > 0:
        with _cache_lock:
            _cache[key] = (now, value)
    return value


def clear() -> None:
    with _cache_lock:
        _cache.clear()
