"""Structured logs (PORTAL_LOG_FORMAT=json): one JSON object per line, each with the ID of the
web request it belongs to. The ID follows the work a request starts: a job queued while it is
handled carries it, and the worker logs under it, so an approval, its job and its publish are
found together.

The ID is the caller's `X-Request-ID` when it is a plain token (a load balancer's, say), else a
new one; responses send it back.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from rq import get_current_job

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_set(request_id: str) -> Iterator[None]:
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdMiddleware:
    """Gives each web request its ID (first in the chain, so every log line has it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _SAFE_ID.fullmatch(offered) else uuid.uuid4().hex
        with request_id_set(request_id):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Puts the current request ID on every record (empty outside a request or a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id()
        return True


# What a record carries of its own; anything else on it was passed as `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
            "process": record.process,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value if isinstance(value, (str, int, float, bool)) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def under_queued_request_id(job_body: Callable[..., Any]) -> Callable[..., Any]:
    """A job body that logs under the ID of the web request that queued it (or, for a periodic
    job, under one of its own)."""

    @functools.wraps(job_body)
    def run(*args: Any, **kwargs: Any) -> Any:
        job = get_current_job()
        request_id = ""
        if job is not None:
            request_id = str(job.meta.get("request_id", "")) or f"job-{job.id}"
        with request_id_set(request_id):
            return job_body(*args, **kwargs)

    return run
