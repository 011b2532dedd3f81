"""What people write for others to read: a decision's or an end's comment."""

from __future__ import annotations

from ..exceptions import InvalidInput
from ..intake.certificates import PRIVATE_KEY_MESSAGE
from ..intake.private_keys import holds_private_key
from ..models import MAX_COMMENT_CHARACTERS


def checked_comment(comment: str) -> str:
    """`comment` stripped; InvalidInput (on the comment field) when it is too long or holds a
    private key: comments are stored and mailed, and a pasted key.pem (the member's UCP login)
    must be neither."""
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARACTERS:
        raise InvalidInput(
            f"Keep the comment under {MAX_COMMENT_CHARACTERS} characters.", field="comment"
        )
    if holds_private_key(comment.encode("utf-8", "replace")):
        raise InvalidInput(PRIVATE_KEY_MESSAGE, field="comment")
    return comment
