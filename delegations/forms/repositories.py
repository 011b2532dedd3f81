"""The forms of the repository pages: registering one, and its owners' settings."""

from __future__ import annotations

from django import forms


class RepositoryRegisterForm(forms.Form):
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


class RepositorySettingsForm(forms.Form):
    owners_group = forms.CharField(label="Owners group", max_length=150)
    approvals_required = forms.IntegerField(label="Approvals required", min_value=1, max_value=10)
