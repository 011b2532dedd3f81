"""Forms never take, and never show back, private key material pasted into a text field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from ..intake.certificates import PRIVATE_KEY_MESSAGE
from ..intake.private_keys import holds_private_key


class RefusesPrivateKeys(forms.BaseForm):
    """Mixed into a form: any posted text holding a private key (a pasted key.pem is the
    member's UCP login) is an error on its field, and is emptied so that the form shown again
    does not carry it back to the browser (or into the page's cache)."""

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound:
            return
        data: Any = self.data
        holding = [
            name
            for name in self.fields
            if isinstance(data.get(name), str)
            and holds_private_key(data.get(name).encode("utf-8", "replace"))
        ]
        if not holding:
            return
        scrubbed = data.copy() if isinstance(data, QueryDict) else dict(data)
        for name in holding:
            scrubbed[name] = ""
            if PRIVATE_KEY_MESSAGE not in self.errors.get(name, []):
                self.add_error(name, PRIVATE_KEY_MESSAGE)
        self.data = scrubbed
