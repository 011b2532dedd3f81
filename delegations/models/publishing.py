"""What the worker needs to publish each repository's waiting changes one batch at a time, and
to resume after a crash: the per-repository lease, and the attempt counters of the changes."""

from __future__ import annotations

from django.db import models

from .repositories import Repository


class PublishLease(models.Model):
    """Who publishes a repository's changes now, and until when.

    A lease in the database rather than a lock in Redis: it survives Redis being flushed or
    restarted, it is read in the same transactions as the work it guards, and a dead holder is
    told from a slow one by time alone (`until`, renewed while the holder works). `fence` grows
    with every acquisition; writes made under a lease check it, so a holder that lost its lease
    (paused past `until`, then woke up) can no longer publish or record anything.
    """

    repository = models.OneToOneField(
        Repository, on_delete=models.CASCADE, primary_key=True, related_name="publish_lease"
    )
    fence = models.BigIntegerField(default=0)
    holder = models.CharField(max_length=200, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    # Raised by a job that found the lease taken: the holder looks for work again before it
    # lets go, so a change that arrived during its last publish is not left waiting.
    wanted = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"publish lease of repository {self.repository_id} ({self.holder or 'free'})"


class PublishedWork(models.Model):
    """The worker's bookkeeping for a change waiting to be published: a request's addition, or
    a delegation's end."""

    # Runs of the worker that took this change up. Counted before anything is sent, so a run
    # that kills its worker counts too, and a change that does so every time ends instead of
    # looping. Conflicts with other publishers are not counted: they are somebody else's doing.
    publish_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    # Not before then: the back-off after a transient failure.
    publish_retry_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When a publish carrying this change was last sent. From then on the server may hold the
    # change whatever error followed, so its outcome is settled by reading the trust data, never
    # by the error.
    publish_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @staticmethod
    def publish_bookkeeping_reset() -> dict[str, object]:
        """The column values of a change that has not been tried yet."""
        return {"publish_attempts": 0, "publish_retry_at": None, "publish_sent_at": None}
