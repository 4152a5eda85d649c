"""``manage.py inventory_check``: what moved in a period, per ref_type."""

import datetime
import json
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from inventory.management.commands._common import get_org, get_store
from inventory.reports.reconciliation import ledger_ref_type_summary_list
from inventory.tenancy.scope import tenant_scope


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"'{value}' is not a date (YYYY-MM-DD).") from exc


class Command(BaseCommand):
    help = (
        "Ledger movements between two dates (inclusive, local days) grouped by ref_type: "
        "rows, net quantity and net value at cost."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--store", help="store code (default: the whole organisation)")
        parser.add_argument("--from", required=True, dest="date_from", help="YYYY-MM-DD")
        parser.add_argument("--to", required=True, dest="date_to", help="YYYY-MM-DD")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, org, date_from, date_to, store=None, as_json=False, **options):
        start, end = _date(date_from), _date(date_to)
        if start > end:
            raise CommandError("--from is after --to.")
        organisation = get_org(org)
        with tenant_scope(organisation):
            found = get_store(organisation, store)
            groups = ledger_ref_type_summary_list(
                org=organisation, store=found, date_from=start, date_to=end
            )
        total = {
            "rows": sum(g["rows"] for g in groups),
            "quantity": sum((g["quantity"] for g in groups), Decimal("0.0000")),
            "value": sum((g["value"] for g in groups), Decimal("0.0000")),
        }
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "org": organisation.slug,
                        "store": found.code if found else None,
                        "from": start.isoformat(),
                        "to": end.isoformat(),
                        "ref_types": [
                            {**g, "quantity": str(g["quantity"]), "value": str(g["value"])}
                            for g in groups
                        ],
                        "total": {
                            **total,
                            "quantity": str(total["quantity"]),
                            "value": str(total["value"]),
                        },
                    },
                    indent=2,
                )
            )
            return
        where = organisation.slug + (f" / {found.code}" if found else "")
        self.stdout.write(f"Ledger {where}, {start} to {end}")
        self.stdout.write(f"{'ref_type':<24} {'rows':>8} {'quantity':>16} {'value at cost':>18}")
        for g in [*groups, {"ref_type": "TOTAL", **total}]:
            self.stdout.write(
                f"{g['ref_type']:<24} {g['rows']:>8} {g['quantity']!s:>16} {g['value']!s:>18}"
            )
