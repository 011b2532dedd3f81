from django import forms

from ..services.api_tokens import MAX_EXPIRY_DAYS
from .private_keys import RefusesPrivateKeys


class TokenForm(RefusesPrivateKeys, forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What will use it, e.g. release pipeline of dev/nginx"
    )
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        initial=90,
        help_text="Empty: until you revoke it.",
    )
