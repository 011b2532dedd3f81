"""The forms of the repository pages: registering one, and its owners' settings."""

from __future__ import annotations

from django import forms

from ..models import MAX_DELEGATION_DAYS, UnreviewedPolicy
from .private_keys import RefusesPrivateKeys


class RepositoryRegisterForm(RefusesPrivateKeys, forms.Form):
    dtr_host = forms.CharField(label="DTR host", max_length=253, initial="dtr.example.org")
    namespace = forms.CharField(
        max_length=255, help_text="The organisation that owns it in DTR, e.g. dev"
    )
    name = forms.CharField(max_length=255, help_text="e.g. redis")
    notary_url = forms.URLField(
        label="Notary server",
        assume_scheme="https",
        help_text="Usually DTR itself, e.g. https://dtr.example.org",
    )
    dtr_url = forms.URLField(
        label="DTR API",
        assume_scheme="https",
        required=False,
        help_text="Only when not https://<DTR host> (a proxy, another port)",
    )
    owners_group = forms.CharField(
        label="Owners group", max_length=150, help_text="Its members approve requests"
    )
    approvals_required = forms.IntegerField(
        label="Approvals required", min_value=1, max_value=10, initial=1
    )
    create_in_dtr = forms.BooleanField(
        label="Create it in DTR (private) if it does not exist", required=False, initial=True
    )


class RepositorySettingsForm(RefusesPrivateKeys, forms.Form):
    owners_group = forms.CharField(label="Owners group", max_length=150)
    approvals_required = forms.IntegerField(label="Approvals required", min_value=1, max_value=10)
    max_delegation_days = forms.IntegerField(
        label="Longest delegation (days)",
        required=False,
        min_value=1,
        max_value=MAX_DELEGATION_DAYS,
        help_text="Empty: as long as the member's certificate is valid.",
    )
    default_delegation_days = forms.IntegerField(
        label="Default delegation (days)",
        required=False,
        min_value=1,
        max_value=MAX_DELEGATION_DAYS,
        help_text="What the request form offers; empty offers the longest.",
    )

    review_interval_days = forms.IntegerField(
        label="Review every (days)",
        required=False,
        min_value=1,
        max_value=MAX_DELEGATION_DAYS,
        help_text="The owners re-certify every active delegation this often, e.g. 90. Empty: "
        "no access reviews.",
    )
    review_deadline_days = forms.IntegerField(
        label="Days to finish a review", min_value=1, max_value=365, initial=14
    )
    review_unreviewed = forms.ChoiceField(
        label="At the deadline, delegations nobody reviewed are",
        choices=UnreviewedPolicy.choices,
    )

    @property
    def review_settings(self) -> tuple[int | None, int, str]:
        """How often, how long and what then, as `services.repository_update` takes them."""
        return (
            self.cleaned_data["review_interval_days"],
            self.cleaned_data["review_deadline_days"],
            self.cleaned_data["review_unreviewed"],
        )

    @property
    def lifetime_days(self) -> tuple[int | None, int | None]:
        """The longest and default delegation, as `services.repository_update` takes them."""
        return (
            self.cleaned_data["max_delegation_days"],
            self.cleaned_data["default_delegation_days"],
        )


class RootKeyHandoverForm(forms.Form):
    """The passphrase the root key file is encrypted with; never rendered back."""

    passphrase = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="At least 12 characters. The notary CLI asks for it when the key signs "
        "(NOTARY_ROOT_PASSPHRASE).",
    )
    passphrase_again = forms.CharField(
        label="The passphrase again",
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class RootPinForm(RefusesPrivateKeys, forms.Form):
    root_certificate_pem = forms.CharField(
        label="Root certificate",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="The PEM certificate of the repository's root key (its CN is the repository's "
        "name), e.g. from the root key's owner or `notary -d <trust dir> key list`.",
    )
