"""The request a view behind `login_required` receives: one whose user has signed in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class SignedInRequest(HttpRequest):
    """For the type checker only: Django hands views a plain HttpRequest, whose `user` is
    someone once `login_required` has let the request through."""

    user: User
