"""The JSON API (`/api/v1/`, issue 16): the same services and selectors as the pages, so the
same rules (owners only, no self-approval, thresholds, compare-and-set, the audit log naming the
acting user), with tokens for programs. Its schema is at `/api/v1/schema/`."""
