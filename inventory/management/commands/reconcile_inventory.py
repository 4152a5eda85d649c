"""``manage.py reconcile_inventory``: check invariants 1–2 now, as the nightly task does."""

import json

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scopes_disabled

from inventory.management.commands._common import get_org, get_store
from inventory.models import Organization
from inventory.reports.reconciliation import stock_reconciliation_run
from inventory.tasks import reconciliation_email_queue
from inventory.tenancy.scope import tenant_scope


class Command(BaseCommand):
    help = (
        "Compare every quant with the sum of its ledger rows and look for negative quants. "
        "Exits non-zero (and e-mails the organisation's admins) when anything is off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="organisation slug (default: every organisation)")
        parser.add_argument("--store", help="store code (needs --org)")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the reports as JSON"
        )

    def handle(self, *args, org=None, store=None, as_json=False, **options):
        if store and not org:
            raise CommandError("--store needs --org: store codes are unique per organisation.")
        if org:
            orgs = [get_org(org)]
        else:
            with scopes_disabled():
                orgs = list(Organization.objects.order_by("slug"))

        reports = []
        for organisation in orgs:
            with tenant_scope(organisation):
                found = get_store(organisation, store)
                report = stock_reconciliation_run(org=organisation, store=found)
            reports.append(report)
            if not report.ok:
                reconciliation_email_queue(report)

        failed = [r for r in reports if not r.ok]
        if as_json:
            self.stdout.write(
                json.dumps({"ok": not failed, "reports": [r.as_dict() for r in reports]}, indent=2)
            )
        else:
            self.stdout.write("\n\n".join(r.as_text() for r in reports) or "No organisations.")
        if failed:
            raise CommandError(
                "Stock is out of sync in "
                + ", ".join(r.org.slug for r in failed)
                + "; the admins were e-mailed.",
                returncode=1,
            )
