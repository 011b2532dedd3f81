"""What a decision would do, read from the live Notary server before anyone signs: the owners'
dry run of a request, and the preview of a revocation.

These are looks, not reads the portal acts on: what the client learns from them (a newer
version, a followed root rotation) is not remembered. The worker's own read, right before it
signs, is the one that is checked against the remembered trust data and remembered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import clock, trust
from ..exceptions import TrustSetupError
from ..instructions import witness_command
from ..models import Delegation, DelegationRequest
from ..notary import ChangeImpact, NotaryError, Plan, short_key_id
from .requests import request_change


@dataclass(frozen=True)
class DryRun:
    """What approving would do to the live `targets.json`, or why that could not be read."""

    plan: Plan | None = None
    error: str = ""


def request_dry_run(request: DelegationRequest) -> DryRun:
    try:
        plan = trust.plan(request.repository, request_change(request), now=clock.now())
    except (NotaryError, TrustSetupError) as error:
        return DryRun(error=error.message)
    return DryRun(plan=plan)


@dataclass(frozen=True)
class RevocationPreview:
    """What revoking would do, read from the live Notary server; `error` when it could not be
    read (revoking still works: the worker retries)."""

    impact: ChangeImpact | None = None
    error: str = ""
    # The roles whose file would stop verifying, in the delegation's order, and the command the
    # remaining signers run to vouch for those files again.
    losing_roles: list[str] = field(default_factory=list)
    witness_command: str = ""
    # The delegation's roles that keep the key because another role still delegates it, and
    # those other roles.
    kept_in: list[str] = field(default_factory=list)
    also_in: list[str] = field(default_factory=list)
    # Who can still sign each role afterwards: {role: [member name or short key ID]}.
    remaining_signers: dict[str, list[str]] = field(default_factory=dict)


def revocation_preview(delegation: Delegation) -> RevocationPreview:
    certificate_pem = delegation.request.certificate_pem
    try:
        impact = trust.impact(
            delegation.repository,
            trust.removing(certificate_pem, delegation.roles),
            now=clock.now(),
        )
        keeping = impact.roles_keeping(trust.certificate_key(certificate_pem))
    except (NotaryError, TrustSetupError) as error:
        return RevocationPreview(error=error.message)
    losing = {role.name for role in impact.losing}
    losing_roles = [name for name in delegation.roles if name in losing]
    return RevocationPreview(
        impact=impact,
        losing_roles=losing_roles,
        witness_command=witness_command(delegation.repository, losing_roles)
        if losing_roles
        else "",
        kept_in=[name for name in delegation.roles if name in keeping],
        also_in=[name for name in keeping if name not in delegation.roles],
        remaining_signers=_remaining_signers(delegation, impact),
    )


def _remaining_signers(delegation: Delegation, impact: ChangeImpact) -> dict[str, list[str]]:
    after = {change.name: change.after for change in impact.plan.role_changes}
    members = dict(
        Delegation.objects.active()
        .filter(repository=delegation.repository)
        .exclude(pk=delegation.pk)
        .values_list("canonical_key_id", "member__username")
    )
    return {
        name: [members.get(key.canonical_id, short_key_id(key.canonical_id)) for key in role.keys]
        for name, role in after.items()
        if role is not None
    }


def roles_signed_by(delegation: Delegation) -> list[dict[str, object]] | None:
    """The delegation's roles whose current file its key signs (with the file's version), as
    the verified read finds them; None when the Notary server could not be read. A signature on
    the current file is the last one the trust data can show: TUF files carry no signing time."""
    try:
        impact = trust.impact(
            delegation.repository,
            trust.removing(delegation.request.certificate_pem, delegation.roles),
            now=clock.now(),
        )
    except (NotaryError, TrustSetupError):
        return None
    return [
        {"role": role.name, "version": role.version}
        for role in impact.roles
        if role.verifies_now and delegation.canonical_key_id in role.signers
    ]
