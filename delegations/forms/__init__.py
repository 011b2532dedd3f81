"""Forms validate input and hand it to one service; they never write."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import QuerySet
from django.http import QueryDict
from django.template.defaultfilters import filesizeformat

from .. import clock, lifetimes, selectors, trust
from ..audit import log as audit_log
from ..exceptions import InvalidInput
from ..intake.certificates import (
    CertificateInfo,
    inspect_certificate,
)
from ..intake.possession import MAX_SIGNATURE_CHARACTERS, PossessionProof
from ..models import (
    MAX_COMMENT_CHARACTERS,
    Delegation,
    DelegationRequest,
    KeyRole,
    Repository,
    ReviewVerdict,
    Verdict,
)
from ..notary import InvalidRoleName, team_role_name
from ..services.repositories import notary_move_needs_confirming
from .private_keys import RefusesPrivateKeys

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class RepositorySelect(forms.Select):
    """Each repository's option carries the date the form offers for it and the latest it
    allows (`data-default-until`, `data-latest-until`), which until-dates.js puts into the Until
    field when the repository is chosen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dates: dict[str, dict[str, str]] = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"].update(self.dates.get(str(value), {}))
        return option


class RepositoryChoiceField(forms.ModelChoiceField):
    """Repositories by name, with how long their delegations may last."""

    widget = RepositorySelect

    def label_from_instance(self, obj: Any) -> str:
        if obj.max_delegation_days:
            return f"{obj} (delegations last at most {obj.max_delegation_days} days)"
        return str(obj)


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def until_field(*, required: bool = False, **kwargs: Any) -> forms.DateField:
    return forms.DateField(
        required=required,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
        **kwargs,
    )


class DelegationRequestForm(RefusesPrivateKeys, forms.Form):
    repository = RepositoryChoiceField(
        label="Repository",
        queryset=selectors.repositories_open_for_requests(),
        empty_label="Choose a repository",
        error_messages={
            "invalid_choice": "That repository does not exist or is not open for requests."
        },
    )
    team = forms.ChoiceField(
        label="Team",
        help_text="You sign as a member of this team: your key goes into targets/releases and "
        "targets/<team>.",
    )
    certificate = forms.FileField(
        label="Certificate",
        required=False,
        help_text="cert.pem from your UCP client bundle. Never upload key.pem.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pem,.crt,.cer,.der"}),
    )
    # The certificate checked on an earlier try of this form, sent back when the form comes back
    # with an error: a certificate is public, and the signature over the challenge is for it.
    kept_certificate = forms.CharField(widget=forms.HiddenInput, required=False, strip=False)
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_COMMENT_CHARACTERS,
        help_text="What will you sign, and why? The repository owners read this.",
    )
    until = until_field(
        label="Until",
        help_text="The last day you need to sign (the owners may shorten it). Empty: as long as "
        "your certificate is valid, where the repository allows it.",
    )
    # The server's challenge and the requester's signature over it (see `possession`). Whether a
    # signature is required is the service's decision, so it is optional here.
    challenge = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)
    possession_signature = forms.CharField(
        label="Signature",
        required=False,
        strip=False,
        max_length=MAX_SIGNATURE_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Proof that you hold the certificate's private key: filled in for you when you "
        "drop your client bundle, or the output of the openssl command shown above.",
        error_messages={
            "max_length": "This is far longer than a signature. Paste only the one "
            "line the openssl command prints."
        },
    )

    def __init__(self, *args, user: User, renewing: Delegation | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        teams = selectors.teams_of(user)
        team_field = cast(forms.ChoiceField, self.fields["team"])
        team_field.choices = [("", "Choose one of your teams")] + [(t, t) for t in teams]
        self.fields["team"].error_messages["invalid_choice"] = (
            "You are not a member of team %(value)s; choose one of your own teams."
        )
        now = clock.now()
        cast(RepositorySelect, self.fields["repository"].widget).dates = {
            str(repository.pk): {
                "data-default-until": _iso(lifetimes.default_until(repository, now=now)),
                "data-latest-until": _iso(lifetimes.latest_allowed(repository, now=now)),
            }
            for repository in selectors.repositories_open_for_requests()
        }
        # With one choice, it is chosen already (and the repository's date offered).
        if len(teams) == 1:
            team_field.initial = teams[0]
        repositories = list(selectors.repositories_open_for_requests()[:2])
        if len(repositories) == 1:
            self.fields["repository"].initial = repositories[0].pk
            self.fields["until"].initial = lifetimes.default_until(repositories[0], now=clock.now())
        if renewing is not None:
            # A renewal keeps its repository and team; only the certificate is new.
            self.fields["repository"].initial = renewing.repository_id
            self.fields["team"].initial = renewing.team
            self.fields["repository"].disabled = self.fields["team"].disabled = True
            # A renewal brings a new certificate, not more time.
            self.fields["until"].initial = renewing.until
            self.fields["until"].disabled = True
            self.fields["until"].help_text = (
                "A renewal keeps the delegation's last day."
                if renewing.until
                else "A renewal keeps the delegation: as long as the certificate is valid."
            )
        self.certificate_info: CertificateInfo | None = None

    @property
    def checked_certificate(self) -> CertificateInfo:
        """The checked certificate, once the form is valid."""
        if self.certificate_info is None:
            raise ValueError("the form has not checked a certificate yet")
        return self.certificate_info

    def clean_team(self) -> str:
        team = self.cleaned_data["team"]
        try:
            team_role_name(team)
        except InvalidRoleName:
            raise forms.ValidationError(
                f"Team {team} cannot be a Notary role name; ask an administrator to rename it.",
                code="invalid_team_name",
            ) from None
        return team

    @property
    def proof(self) -> PossessionProof:
        return PossessionProof(
            challenge=self.cleaned_data.get("challenge", ""),
            signature=self.cleaned_data.get("possession_signature", ""),
        )

    def show_challenge(self, challenge: str, *, keep_signature: bool) -> None:
        """Render the form again with `challenge`, and the certificate checked this time kept
        (the file input comes back empty). A signature goes with its certificate: it is dropped
        when the certificate is not kept, or when it no longer fits the challenge (a private key
        pasted into a text field is gone already: RefusesPrivateKeys)."""
        data = cast(QueryDict, self.data).copy()
        data["challenge"] = challenge
        refused = "certificate" in self.errors
        kept = self.certificate_info.pem if self.certificate_info and not refused else ""
        data["kept_certificate"] = kept
        if not keep_signature or not kept:
            data["possession_signature"] = ""
        self.data = data

    @property
    def kept(self) -> CertificateInfo | None:
        """The certificate the re-rendered form keeps, to show which it is."""
        return self.certificate_info if self.data.get("kept_certificate") else None

    def clean_certificate(self):
        upload = self.cleaned_data["certificate"]
        if not upload:
            kept = self.data.get("kept_certificate", "")
            if not kept:
                raise forms.ValidationError("Choose your cert.pem.", code="required")
            if len(kept) > settings.PORTAL_CERTIFICATE_MAX_BYTES:
                raise forms.ValidationError("Choose your cert.pem again.", code="too_large")
            self.certificate_info = inspect_certificate(
                kept.encode("ascii", "replace"), now=clock.now()
            )
            return None
        if getattr(upload, "oversized", False):
            limit = filesizeformat(settings.PORTAL_CERTIFICATE_MAX_BYTES)
            raise forms.ValidationError(
                f"The file is larger than {limit}; a cert.pem is a few kilobytes. Upload only "
                "cert.pem from your client bundle.",
                code="too_large",
            )
        self.certificate_info = inspect_certificate(upload.read(), now=clock.now())
        return upload


class ExtensionForm(RefusesPrivateKeys, forms.Form):
    until = until_field(
        required=True, label="Until", help_text="The new last day you need to sign."
    )
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_COMMENT_CHARACTERS,
        help_text="Why you need more time. The repository owners read this.",
    )

    def __init__(self, *args: Any, delegation: Delegation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        widget = self.fields["until"].widget
        if delegation.until is not None:
            widget.attrs["min"] = (delegation.until + timedelta(days=1)).isoformat()
        widget.attrs["max"] = lifetimes.last_day_of(delegation.certificate_expires_at).isoformat()


class ReviewDecisionForm(RefusesPrivateKeys, forms.Form):
    verdict = forms.ChoiceField(label="Decision", choices=ReviewVerdict.choices)
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=MAX_COMMENT_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DecisionForm(RefusesPrivateKeys, forms.Form):
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=MAX_COMMENT_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    until = until_field(
        label="Shorten to",
        help_text="When approving: an earlier last day than the one asked for (optional).",
    )


class BulkDecisionForm(DecisionForm):
    """Several requests of the queue decided alike; each is still its own decision."""

    # Any request number is taken here; the service checks each against who is asking.
    request_ids = forms.Field(required=False, widget=forms.MultipleHiddenInput)
    verdict = forms.ChoiceField(choices=Verdict.choices)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["comment"].label = "Comment on all selected"

    def clean_request_ids(self) -> list[int]:
        given = self.cleaned_data["request_ids"] or []
        numbers = [int(value) for value in given if value.isdigit()]
        if not numbers:
            raise forms.ValidationError("Tick the requests to decide first.", code="required")
        return numbers


class QueueFilterForm(RefusesPrivateKeys, forms.Form):
    """The approval queue's filters; the choices come from what waits for this owner."""

    repository = forms.ModelChoiceField(
        queryset=Repository.objects.none(), required=False, empty_label="All repositories"
    )
    team = forms.ChoiceField(required=False)
    # Typed rather than chosen: a queue can hold hundreds of requesters.
    requester = forms.CharField(required=False, max_length=150)

    def __init__(
        self,
        *args: Any,
        queue: QuerySet[DelegationRequest],
        repositories: QuerySet[Repository],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["repository"].queryset = repositories  # type: ignore[attr-defined]
        teams = queue.order_by("team").values_list("team", flat=True).distinct()
        self.fields["team"].choices = [("", "All teams"), *((team, team) for team in teams)]  # type: ignore[attr-defined]

    def selector_filters(self) -> selectors.QueueFilters:
        """The filters as `selectors.approval_queue_narrowed` takes them; none when invalid."""
        if not self.is_valid():
            return {}
        chosen = self.cleaned_data
        return {
            "repository": chosen["repository"],
            "team": chosen["team"],
            "requester": chosen["requester"].strip(),
        }


class RevokeForm(RefusesPrivateKeys, forms.Form):
    comment = forms.CharField(
        label="Comment",
        max_length=MAX_COMMENT_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why you revoke it: the member gets this in the email telling them.",
        error_messages={"required": "Say why you revoke this delegation; the member reads it."},
    )


class AuditFilterForm(RefusesPrivateKeys, forms.Form):
    """The audit log's filters; the choices come from what `user` may read."""

    repository = forms.ModelChoiceField(
        queryset=Repository.objects.none(), required=False, empty_label="All repositories"
    )
    actor = forms.CharField(
        required=False, max_length=150, widget=forms.TextInput(attrs={"placeholder": "username"})
    )
    action = forms.ChoiceField(required=False)
    request = forms.IntegerField(
        required=False,
        min_value=1,
        label="Request #",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data: Any, *, user: User) -> None:
        super().__init__(data)
        self.fields["repository"].queryset = audit_log.audit_repositories_for(user)  # type: ignore[attr-defined]
        self.fields["action"].choices = [  # type: ignore[attr-defined]
            ("", "All actions"),
            *((action, action) for action in audit_log.audit_actions_for(user)),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned

    def selector_filters(self) -> audit_log.AuditFilters:
        data = self.cleaned_data
        return {
            "repository": data["repository"],
            "actor": data["actor"].strip(),
            "action": data["action"],
            "request_id": data["request"],
            "date_from": data["date_from"],
            "date_to": data["date_to"],
        }


class RepositoryKeyImportForm(forms.Form):
    """A key file from a notary trust directory for the admin's import action."""

    role = forms.ChoiceField(
        label="Role",
        choices=[
            (KeyRole.TARGETS.value, "Targets"),
            (KeyRole.SNAPSHOT.value, "Snapshot (only where the client signs snapshots)"),
        ],
        initial=KeyRole.TARGETS.value,
    )
    key_file = forms.FileField(
        label="Key file",
        help_text="<canonical id>.key from the private/ folder of the trust directory "
        "(~/.notary/private or ~/.docker/trust/private).",
    )
    passphrase = forms.CharField(
        label="Passphrase",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The key file's passphrase (NOTARY_TARGETS_PASSPHRASE or "
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE when it was made). Empty for a file that is "
        "not encrypted.",
    )

    def clean_key_file(self) -> bytes:
        upload = self.cleaned_data["key_file"]
        if getattr(upload, "oversized", False):
            limit = filesizeformat(settings.PORTAL_CERTIFICATE_MAX_BYTES)
            raise forms.ValidationError(
                f"The file is larger than {limit}; a notary key file is a few hundred bytes.",
                code="too_large",
            )
        return upload.read()


class RepositoryAdminForm(RefusesPrivateKeys, forms.ModelForm):
    """The admin's repository form: a configured root certificate must be this repository's."""

    # A Notary URL typed without a scheme is meant as https, as DTR serves it.
    notary_url = forms.URLField(
        assume_scheme="https", help_text=Repository._meta.get_field("notary_url").help_text
    )

    confirm_notary_move = forms.BooleanField(
        required=False,
        label="Confirm the Notary server's move",
        help_text="Needed to point the repository at another host, or at plain http: the "
        "portal's service account and its password go wherever this points.",
    )

    class Meta:
        model = Repository
        fields = [
            "dtr_host",
            "namespace",
            "name",
            "notary_url",
            "owners_group",
            "approvals_required",
            "max_delegation_days",
            "default_delegation_days",
            "review_interval_days",
            "review_deadline_days",
            "review_unreviewed",
            "root_certificate_pem",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        moved_to = cleaned.get("notary_url")
        if (
            self.instance.pk
            and moved_to
            and not cleaned.get("confirm_notary_move")
            and notary_move_needs_confirming(self.instance.notary_url, moved_to)
        ):
            self.add_error(
                "notary_url",
                f"Moving the Notary server from {self.instance.notary_url} to {moved_to} sends the "
                "portal's service account and its password there: tick the confirmation.",
            )
        pem = (cleaned.get("root_certificate_pem") or "").strip()
        if pem and "root_certificate_pem" in self.changed_data:
            instance = self.instance
            parts = [
                cleaned.get(name, getattr(instance, name))
                for name in ("dtr_host", "namespace", "name")
            ]
            try:
                trust.root_certificate_key(pem, gun="/".join(str(part) for part in parts))
            except InvalidInput as error:
                self.add_error("root_certificate_pem", error.message)
        return cleaned


DIRECTORY_DOWN_MESSAGE = (
    "The portal cannot reach the company directory (LDAP) right now, so it cannot check your "
    "password. Try again in a few minutes; if it lasts, tell the portal's administrators."
)


class LoginForm(AuthenticationForm):
    """Django's login form, saying "the directory is down" rather than "wrong password"."""

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError as wrong_password:
            if self.request is not None and getattr(self.request, "directory_failure", None):
                raise forms.ValidationError(
                    DIRECTORY_DOWN_MESSAGE, code="directory_unavailable"
                ) from wrong_password
            raise
