"""``manage.py archive_discrepancies --older-than-days N [--org SLUG] [--dry-run]``.

Moves closed discrepancies (rejected, adjusted, informational ones acknowledged) whose last
step is older than N days into the archive table, keeping their ids
(``discrepancies.services.retention``). Every organisation unless ``--org`` names one.
"""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scopes_disabled

from core.errors import ApplicationError
from discrepancies.services.retention import discrepancies_archive
from inventory.models import Organization
from inventory.tenancy.scope import tenant_scope


class Command(BaseCommand):
    help = (
        "Move closed discrepancies older than --older-than-days into the archive "
        "(same ids; still readable, counted in analytics)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=int,
            required=True,
            help="archive what closed more than this many days ago (at least 1)",
        )
        parser.add_argument("--org", help="organisation slug (default: every organisation)")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would move; change nothing"
        )

    def handle(self, *args, older_than_days: int, org=None, dry_run=False, **options):
        if older_than_days < 1:
            raise CommandError("--older-than-days must be at least 1.")
        with scopes_disabled():
            orgs = Organization.objects.order_by("slug")
            if org:
                orgs = orgs.filter(slug=org)
            orgs = list(orgs)
        if org and not orgs:
            raise CommandError(f"No organisation with the slug {org!r}.")
        for organisation in orgs:
            try:
                with tenant_scope(organisation):
                    result = discrepancies_archive(
                        org=organisation,
                        older_than=datetime.timedelta(days=older_than_days),
                        dry_run=dry_run,
                    )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            verb = "would move" if dry_run else "archived"
            batches = "" if dry_run else f" in {len(result.batches)} batch(es)"
            self.stdout.write(
                f"{organisation.slug}: {verb} {result.count} closed discrepanc"
                f"{'y' if result.count == 1 else 'ies'}{batches} "
                f"(closed before {result.cutoff:%Y-%m-%d %H:%M} UTC)."
            )
