"""The one place the portal asks for the time, so tests can pass `now=` instead of patching."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
