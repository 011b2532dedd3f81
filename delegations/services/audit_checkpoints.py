"""Issuing the audit chain's signed checkpoints (`audit.checkpoints`): to the log stream, and
to the auditors' address when PORTAL_AUDIT_EMAIL is set. Nothing is stored in the database:
being outside it is the point."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from .. import clock
from ..audit.checkpoints import checkpoint_line, checkpoint_make

logger = logging.getLogger("delegations.audit.checkpoints")


def audit_checkpoint_issue(*, now: datetime | None = None) -> dict[str, Any]:
    checkpoint = checkpoint_make(now=now or clock.now())
    line = checkpoint_line(checkpoint)
    logger.info("audit checkpoint %s", line, extra={"checkpoint": line})
    if settings.PORTAL_AUDIT_EMAIL:
        send_mail(
            subject=f"Audit checkpoint: {checkpoint['events']} events",
            message=(
                "The delegation portal's audit chain, as it stood. Keep this mail: "
                "`manage.py audit_verify --checkpoint FILE` checks the log against it later, "
                "and finds a rewrite or deleted events even if the database was edited.\n\n"
                f"{line}\n"
            ),
            from_email=None,
            recipient_list=[settings.PORTAL_AUDIT_EMAIL],
        )
    return checkpoint
