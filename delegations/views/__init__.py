"""The portal's pages, by area: a member's requests (`requests`), the owners' queue and decisions
(`approvals`), ending delegations (`delegations`) and the audit log (`audit`). Each view checks
its input and calls one selector or service."""
