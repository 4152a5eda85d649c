"""``manage.py seed_demo [--reset] [--seed N] [--days N | --no-stock]``: realistic demo data.

* ``northern-lights``: a two-store cannabis retailer on Cova (Toronto and Ottawa) with vaults,
  quarantine rooms and a receiving room, and ~220 SKUs in the classification mix of docs/domain.md.
* ``fresh-corner``: a grocery & pharmacy shop in Vancouver with a cooler and a pharmacy, its own
  classification map and ~80 SKUs.

Each organisation gets a member for every role (sharing one demo password), a tablet and a POS
device token; a platform superuser is created too. Each store then gets stock: deliveries with
lots and expiries, nightly upstock, ``--days`` (default 30) days of POS sales with a few refunds
and voids, and some shrink (``inventory.demo``). Everything depends only on ``--seed`` and
the date, so two runs with the same seed on the same day give the same catalog and the same stock.
Without ``--reset`` an existing demo is left untouched; ``--reset`` removes the demo
organisations with ``org_purge`` (the only way past the ledger's append-only guard) first.
Everything is built through the services, inside each organisation's ``tenant_scope``, in one
transaction.

``build_demo(seed, stdout, days)`` returns the created objects.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.core import mail
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db import transaction
from django.test.utils import override_settings
from django_scopes import scopes_disabled

from demo.builders import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEMO_PASSWORD,
    DEMO_SLUGS,
    build_demo,
    reset_demo,
    summary_lines,
)
from inventory.models import (
    Organization,
)


class Command(BaseCommand):
    help = "Build demo organisations, stores, products, members and device tokens."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the demo organisations and their users first",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"random seed for the catalog and stock (default {DEFAULT_SEED})",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help=f"days of POS sales (default {DEFAULT_DAYS}; 0: no stock)",
        )
        parser.add_argument(
            "--no-stock",
            action="store_true",
            help="organisations, catalog, people and tokens only (--days 0)",
        )

    def handle(self, *args, reset: bool, seed: int, days: int, no_stock: bool, **options):
        # The demo's people share a password printed in the README, one of them a platform
        # superuser; --reset deletes organisations. Neither belongs on a live deployment.
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo refuses to run under production settings: it creates a platform "
                f"superuser and members whose password ({DEMO_PASSWORD!r}) is published. Run "
                "it on a development database (make demo)."
            )
        if days < 0:
            raise CommandError("--days cannot be negative.")
        started = time.monotonic()
        out: OutputWrapper = self.stdout
        # the e-mails are queued when the transaction commits: keep them inside the quiet part
        with _quietly() as outbox, transaction.atomic():
            if reset:
                removed = reset_demo()
                out.write(
                    f"Removed {removed} demo organisation(s) and their users."
                    if removed
                    else "No demo data to remove."
                )
            else:
                with scopes_disabled():
                    existing = sorted(
                        Organization.objects.filter(slug__in=DEMO_SLUGS).values_list(
                            "slug", flat=True
                        )
                    )
                if existing:
                    out.write(
                        self.style.WARNING(
                            f"Demo data exists already ({', '.join(existing)}); nothing changed. "
                            "Use --reset to rebuild it."
                        )
                    )
                    if len(existing) < len(DEMO_SLUGS):
                        out.write(self.style.WARNING("The demo is incomplete: run --reset."))
                    out.write("\n".join(summary_lines(tokens=None)))
                    return
            result = build_demo(seed, out, days=0 if no_stock else days)
        out.write("")
        if outbox:
            out.write(
                f"{len(outbox)} notification e-mail(s) about open HIGH/CRITICAL discrepancies "
                "were composed and not sent (the running server prints them to its console)."
            )
        out.write(
            self.style.SUCCESS(f"Demo built with seed {seed} in {time.monotonic() - started:.1f}s.")
        )
        out.write("\n".join(summary_lines(result["tokens"])))


#: The loggers whose structured lines (one per recorded or decided discrepancy, per task) are
#: for the engineer on call, not for someone building a demo.
_CHATTY = ("discrepancies", "celery", "kombu", "inventory", "counts")


@contextmanager
def _quietly():
    """Build without the operational log lines and keep the notification e-mails the demo's
    discrepancies cause in memory (yielded: the outbox), so the summary is what is printed."""
    levels = {name: logging.getLogger(name).level for name in _CHATTY}
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    outbox: list = []
    missing = object()
    before = getattr(mail, "outbox", missing)  # a test's outbox, when run under one
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            mail.outbox = outbox
            yield outbox
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if before is missing:
            del mail.outbox
        else:
            mail.outbox = before
