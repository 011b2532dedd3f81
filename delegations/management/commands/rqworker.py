"""django-rq's `rqworker`, reading jobs in the queue's format (`job_format`) unless told
otherwise: django-rq's own reads pickle whatever the queue writes."""

from django_rq.management.commands import rqworker

from delegations.job_format import job_serializer_path
from delegations.queueing import QUEUE


class Command(rqworker.Command):
    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(serializer=job_serializer_path(QUEUE))
