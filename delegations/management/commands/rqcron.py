"""django-rq's `rqcron`, whose jobs are written in their queue's format (`job_format`): RQ's
cron scheduler pickles them whatever the queue says."""

import logging
import sys

from django_rq.management.commands import rqcron

from delegations.job_format import QueueFormatCronScheduler


class Command(rqcron.Command):
    def handle(self, *args, **options) -> None:
        scheduler = QueueFormatCronScheduler(
            logging_level=getattr(logging, options["logging_level"])
        )
        self.stdout.write(f"Loading cron configuration from {options['config_path']}")
        scheduler.load_config_from_file(options["config_path"])
        self.stdout.write(f"Starting cron scheduler with {len(scheduler.get_jobs())} jobs...")
        try:
            scheduler.start()
        except KeyboardInterrupt:
            sys.exit(0)
